"""Per-configuration overhead of the parallel campaign (verify/executors.py).

    python benchmarks/parallel_overhead.py [--count 2000] [--workers 2]

A trivial claim (the check returns one satisfied condition, the sampler one index) is run
serially (``run_claim``), on ``--workers`` local processes and on a Dask LocalCluster with as
many single-threaded workers, each time with one configuration per task and with the adaptive
task size that the campaign uses. Pools and clusters are started, and warmed up, before the
clock starts; their start-up is reported separately. Wall-clock times on this machine: they are
measurements, not test assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from verify import executors  # noqa: E402
from verify.campaign import ClaimReport, iter_configurations, run_claim  # noqa: E402
from verify.claims import CLAIMS_BY_ID, condition, outcome  # noqa: E402


def trivial_check(config):
    return outcome([condition("trivial", True)])


def trivial_sample(rng, index):
    return {"index": index}


CLAIM = dataclasses.replace(CLAIMS_BY_ID["NAIVE-BOUND-FALSE"], check=trivial_check, sample=trivial_sample)


def _report():
    return ClaimReport(CLAIM.id, CLAIM.statement, CLAIM.provenance, CLAIM.symbolic)


def serial(count: int) -> float:
    start = time.perf_counter()
    run_claim(CLAIM, iter_configurations(CLAIM, 0, count), _report())
    return time.perf_counter() - start


def parallel(backend, count: int, one_per_task: bool) -> float:
    saved = backend.target_task_seconds
    backend.target_task_seconds = 0.0 if one_per_task else saved
    try:
        executors.run_parallel([(CLAIM, 50)], [_report()], 0, backend)  # warm-up: workers import the project
        start = time.perf_counter()
        report = _report()
        executors.run_parallel([(CLAIM, count)], [report], 0, backend)
        assert report.tried == count and report.holds
        return time.perf_counter() - start
    finally:
        backend.target_task_seconds = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    rows = [("serial (run_claim)", serial(args.count), None)]

    start = time.perf_counter()
    local = executors.LocalBackend(args.workers)
    local.executor.submit(int).result()
    startup = time.perf_counter() - start
    for one in (True, False):
        rows.append(
            (
                f"local, {args.workers} processes, {'1 configuration per task' if one else 'adaptive tasks'}",
                parallel(local, args.count, one),
                startup,
            )
        )
    local.close()

    from distributed import LocalCluster

    start = time.perf_counter()
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        dask = executors.DaskBackend(cluster.scheduler_address)
        startup = time.perf_counter() - start
        for one in (True, False):
            rows.append(
                (
                    f"Dask LocalCluster, {args.workers} workers, "
                    f"{'1 configuration per task' if one else 'adaptive tasks'}",
                    parallel(dask, args.count, one),
                    startup,
                )
            )
        dask.close()

    print(f"{args.count} trivial configurations; wall time per configuration (start-up excluded)")
    for name, seconds, startup in rows:
        extra = "" if startup is None else f"   (start-up {startup:.1f} s)"
        print(f"  {name:<58} {1e6 * seconds / args.count:9.1f} us{extra}")


if __name__ == "__main__":
    main()
