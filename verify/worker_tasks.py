"""The tasks a campaign worker runs (:mod:`verify.executors` sends them): module-level functions,
so that they pickle by reference to a local process or a Dask worker, applied to a claim's
module-level check and a few JSON configurations; they return plain data."""

from __future__ import annotations

import signal
import time

from .campaign import check_in_batches, crash_detail, crash_traceback


def prepare_worker(blas_threads: int = 1, *, ignore_sigint: bool = True) -> None:
    """Once per worker process: import the project (claims, SciPy, SymPy derivations) and pin the
    BLAS pools. NumPy's and SciPy's OpenBLAS each start a thread per core; two of them per
    process, times the worker processes, spin against each other (100x slowdowns measured).
    SIGINT is left to the parent, which cancels the work and terminates the pool."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadpoolctl import threadpool_limits

    from . import claims  # noqa: F401  (loads SciPy's OpenBLAS as well as NumPy's, before the limit)

    threadpool_limits(limits=blas_threads)


def run_checks(check, configs: list[dict]) -> list[tuple]:
    """Check each configuration; a check that raises is a result too. Returns, per configuration,
    ``("ok", outcome, seconds)`` or ``("crash", detail, traceback, seconds)``."""
    results = []
    for config in configs:
        start = time.perf_counter()
        try:
            outcome = check(config)
        except Exception as err:  # noqa: BLE001 - a crash is a failure, reported with its config
            results.append(("crash", crash_detail(err), crash_traceback(err), time.perf_counter() - start))
            continue
        results.append(("ok", outcome, time.perf_counter() - start))
    return results


def run_batch(check_batch, batch_key, configs: list[dict]) -> list[tuple]:
    """A claim's vectorised check on one chunk (the serial path's chunk: same groups, same
    results); the chunk's time is shared evenly between its configurations. A chunk that raises
    marks each of its configurations as crashed."""
    start = time.perf_counter()
    try:
        outcomes = check_in_batches(check_batch, batch_key, configs)
    except Exception as err:  # noqa: BLE001
        seconds = (time.perf_counter() - start) / len(configs)
        return [("crash", crash_detail(err), crash_traceback(err), seconds)] * len(configs)
    seconds = (time.perf_counter() - start) / len(configs)
    return [("ok", outcome, seconds) for outcome in outcomes]
