"""The campaign in parallel: local worker processes and a real Dask cluster started in
the test. Same seed, same report (timings aside) whatever the backend, the number of workers and
the order in which results arrive; a worker that dies is reported, never lost; Ctrl-C cancels
the outstanding work and keeps the partial report; configurations stream (memory does not grow
with --count)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import signal
import threading
import time

import pytest
import rich.progress

from verify import claims as claims_module
from verify import executors
from verify.__main__ import main, parse_args
from verify.campaign import ClaimReport, claim_configurations, iter_configurations, run_claim
from verify.claims import CLAIMS_BY_ID, condition, equal, outcome

# A batched claim (CONSERVATION), a claim with a digest (UNIFORM-RATE), plain ones, and the
# test-only claim below, patched in for EXPRESSIVITY, whose third configuration raises.
CLAIMS = "WELL-POSED,EXPRESSIVITY,CONSERVATION,UNIFORM-RATE,NAIVE-BOUND-FALSE"


@pytest.fixture(autouse=True)
def _random_configurations_only(monkeypatch):
    """These tests are about the parallel machinery: the claims run their random configurations
    only (the fixed tight instances, which every run adds, are tested elsewhere)."""
    import dataclasses

    for claim_id, claim in list(claims_module.CLAIMS_BY_ID.items()):
        monkeypatch.setitem(claims_module.CLAIMS_BY_ID, claim_id, dataclasses.replace(claim, fixed=()))


# ---- test-only checks: module-level, so worker processes import them by name ---------------------
def _indexed_sample(rng, index):
    return {"index": index, "seed": int(rng.integers(2**32))}


def _raises_at_two(config):
    if config["index"] == 2:
        raise ValueError(f"broken on purpose at {config['index']}")
    return outcome(
        [equal("seed-dependent error", (config["seed"] % 1000) / 1e4, 1.0)],
        f"seed {config['seed']}",
        residue=config["seed"] % 7,
    )


def _dies_at_three(config):
    if config["index"] == 3:
        os._exit(3)  # the worker process vanishes, as after a segfault or the OOM killer
    return outcome([condition("reached", True)])


def _pool_workers() -> set:
    """The live worker processes of process pools (their target is the pool's worker loop). Only
    these: the Dask cluster of this module's other tests starts processes of its own in the
    background (seen: a SpawnProcess without that target, alive after a Ctrl-C test, in 1 of 4-8
    runs of this module), which say nothing about the pool."""
    import concurrent.futures.process as pool

    return {p for p in multiprocessing.active_children() if getattr(p, "_target", None) is pool._process_worker}


def _reached(config):
    return outcome([condition("reached", True)])


def _worker_state():
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info()), signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _sleeps_from_two(config):
    if config["index"] >= 2:
        time.sleep(20)  # busy when Ctrl-C comes: only terminating the workers stops it
    return outcome([condition("reached", True)])


def _fails_at_three(config):
    return outcome([condition("index is not 3", config["index"] != 3)])


def _patch(monkeypatch, claim_id, check):
    claim = CLAIMS_BY_ID[claim_id]
    patched = claim.__class__(**{**claim.__dict__, "check": check, "sample": _indexed_sample})
    monkeypatch.setitem(claims_module.CLAIMS_BY_ID, claim_id, patched)
    return patched


def _report(path):
    report = json.loads(path.read_text())
    report.pop("wall_time")
    for c in report["claims"]:
        c.pop("seconds")
    return report


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster: a scheduler in this process and two worker processes (one thread each),
    started by nannies that restart a worker that dies. allowed_failures=0: a task whose worker
    died is failed at once (KilledWorker) instead of being tried on 3 more workers; the campaign
    then runs it again alone."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        scheduler_kwargs={"allowed_failures": 0},
    ) as c:
        yield c.scheduler_address


# ---- same seed, same report ---------------------------------------------------------------------
def test_same_report_serially_on_two_processes_and_on_a_dask_cluster(cluster, monkeypatch, tmp_path):
    _patch(monkeypatch, "EXPRESSIVITY", _raises_at_two)
    runs = {"serial": ["--workers", "1"], "local": ["--workers", "2"], "dask": ["--scheduler", cluster]}
    reports = {}
    for name, option in runs.items():
        path = tmp_path / f"{name}.json"
        assert main(["--only", CLAIMS, "--count", "12", "--seed", "3", "--json", str(path), *option]) == 1
        reports[name] = _report(path)
    assert reports["local"] == reports["serial"]
    assert reports["dask"] == reports["serial"]
    expressivity = reports["serial"]["claims"][1]
    assert expressivity["tried"] == 12 and expressivity["passed"] == 11
    assert "broken on purpose at 2" in expressivity["failures"][0]["traceback"]
    assert [r["config"]["index"] for r in expressivity["records"]] == list(range(12))


class _ReversingExecutor(cf.Executor):
    """Runs each call at once, in this process, but finishes the futures in reverse order: every
    third submission finishes the three held back, last first (a thread finishes what is left).
    Records the order in which configurations finished."""

    def __init__(self, hold=3):
        self.hold, self.held, self.finished = hold, [], []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def submit(self, fn, *args):
        future = cf.Future()
        result = fn(*args)
        with self.lock:
            self.held.append((future, result, args[-1]))
            if len(self.held) >= self.hold:
                self._release()
        return future

    def _release(self):
        while self.held:
            future, result, configs = self.held.pop()
            self.finished.extend(json.dumps(c, sort_keys=True) for c in configs)
            future.set_result(result)

    def _drain(self):
        while not self.stop.wait(0.01):
            with self.lock:
                self._release()

    def shutdown(self, wait=True, **kwargs):
        self.stop.set()


class _Backend:
    """run_parallel's backend protocol around any concurrent.futures executor."""

    target_task_seconds = 0.0  # one configuration per task

    def __init__(self, executor, slots=2):
        self.executor, self._slots = executor, slots

    def slots(self):
        return self._slots

    def check(self):
        pass

    def recover(self):
        pass

    def close(self, cancel=False):
        self.executor.shutdown(wait=False)


def _serial_reports(plan, seed):
    reports = [ClaimReport(c.id, c.statement, c.provenance, c.symbolic) for c, _ in plan]
    for (claim, count), report in zip(plan, reports):
        run_claim(claim, iter_configurations(claim, seed, count), report)
    return reports


def _strip(reports):
    return [{k: v for k, v in r.__dict__.items() if k != "seconds"} for r in reports]


def test_results_are_placed_by_configuration_index_whatever_the_order_of_arrival():
    plan = [(CLAIMS_BY_ID[c], 10) for c in ("WELL-POSED", "CONSERVATION", "UNIFORM-RATE")]
    reports = [ClaimReport(c.id, c.statement, c.provenance, c.symbolic) for c, _ in plan]
    executor = _ReversingExecutor()
    advanced = []
    assert executors.run_parallel(plan, reports, 7, _Backend(executor), advance=advanced.append) is False
    executor.shutdown()
    well_posed = [json.dumps(c, sort_keys=True) for c in claim_configurations(plan[0][0], 7, 10)]
    arrived = [s for s in executor.finished if s in well_posed]
    assert arrived != well_posed  # they did arrive out of order ...
    assert _strip(reports) == _strip(_serial_reports(plan, 7))  # ... and the report is the serial one
    assert sum(advanced) == 30 and len(advanced) > 3  # the bar moved as results arrived


class _SlowHeadExecutor(cf.Executor):
    """Finishes every call at once except the first, held back until no call has been submitted
    for 50 ms (the stream has stopped, waiting for it): the worst case for the reorder window."""

    def __init__(self):
        self.head, self.submitted = None, 0
        self.stop = threading.Event()
        threading.Thread(target=self._release_when_idle, daemon=True).start()

    def submit(self, fn, *args):
        future = cf.Future()
        result = fn(*args)
        self.submitted += 1
        if self.head is None:
            self.head = (future, result)
        else:
            future.set_result(result)
        return future

    def _release_when_idle(self):
        seen, idle = -1, 0
        while not self.stop.wait(0.01):
            idle = idle + 1 if self.submitted == seen else 0
            seen = self.submitted
            if idle >= 5 and self.head is not None and not self.head[0].done():
                self.head[0].set_result(self.head[1])

    def shutdown(self, wait=True, **kwargs):
        self.stop.set()


def test_configurations_stream_through_a_bounded_window():
    claim = CLAIMS_BY_ID["WELL-POSED"]
    drawn = {"n": 0}

    def sample(rng, index):
        drawn["n"] += 1
        return _indexed_sample(rng, index)

    claim = claim.__class__(**{**claim.__dict__, "check": _fails_at_three, "sample": sample})
    report = ClaimReport(claim.id, claim.statement, claim.provenance, claim.symbolic)
    outstanding = []

    class Watching(_SlowHeadExecutor):
        def submit(self, fn, *args):
            outstanding.append(drawn["n"] - report.tried)  # drawn, not yet in the report
            return super().submit(fn, *args)

    executor = Watching()
    executors.run_parallel([(claim, 2000)], [report], 0, _Backend(executor, slots=1))
    executor.shutdown()
    assert report.tried == 2000 and report.complete and report.passed == 1999
    assert max(outstanding) <= executors.WINDOW_PER_SLOT  # not 2000: memory does not grow with --count


def test_workers_pin_blas_to_one_thread_and_leave_ctrl_c_to_the_parent(cluster, monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # LocalCluster sets them here
        monkeypatch.delenv(name, raising=False)
    local = executors.LocalBackend(2)
    try:
        assert local.executor.submit(_worker_state).result() == (1, True)
    finally:
        local.close()
    dask = executors.DaskBackend(cluster)
    try:
        assert dask.executor.submit(_worker_state).result()[0] == 1
    finally:
        dask.close()


def test_a_check_that_cannot_be_sent_to_a_worker_runs_in_this_process(monkeypatch, tmp_path):
    calls = []
    _patch(monkeypatch, "EXPRESSIVITY", lambda config: calls.append(config) or _fails_at_three(config))
    path = tmp_path / "r.json"
    assert main(["--only", "EXPRESSIVITY", "--count", "6", "--workers", "2", "--json", str(path)]) == 1
    report = _report(path)["claims"][0]
    assert len(calls) == 6 and report["tried"] == 6 and report["passed"] == 5
    assert report["failures"][0]["detail"] == "fails: index is not 3"


# ---- failures, dead workers, Ctrl-C ---------------------------------------------------------------
def test_a_pool_that_breaks_between_waits_sends_the_task_to_the_suspects(monkeypatch, tmp_path):
    """Seen once in a fresh clone's test run: a worker died, and before the next wait noticed it
    the loop submitted more work; the broken pool raised BrokenProcessPool from submit(), which
    ended the whole run ("the parallel run stopped"). Such a task now joins the suspects and is
    run again on a new pool. Simulated here: the third submit() raises."""
    _patch(monkeypatch, "EXPRESSIVITY", _reached)
    calls = {"n": 0}
    original = executors.LocalBackend._new_pool

    class BreaksOnce:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise cf.process.BrokenProcessPool("simulated: a worker died since the last wait")
            return self.pool.submit(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.pool, name)

    monkeypatch.setattr(executors.LocalBackend, "_new_pool", lambda self: BreaksOnce(original(self)))
    path = tmp_path / "r.json"
    assert main(["--only", "EXPRESSIVITY", "--count", "10", "--workers", "2", "--json", str(path)]) == 0
    report = _report(path)["claims"][0]
    assert report["tried"] == 10 and report["passed"] == 10 and report["complete"]
    assert calls["n"] > 3


@pytest.mark.parametrize("backend", ["local", "dask"])
def test_a_worker_that_dies_is_reported_with_its_replay_line_and_the_run_goes_on(
    backend, request, monkeypatch, tmp_path, capsys
):
    _patch(monkeypatch, "EXPRESSIVITY", _dies_at_three)
    option = ["--workers", "2"] if backend == "local" else ["--scheduler", request.getfixturevalue("cluster")]
    path = tmp_path / "r.json"
    assert main(["--only", "EXPRESSIVITY,WELL-POSED", "--count", "10", "--json", str(path), *option]) == 1
    report = _report(path)
    died, well_posed = report["claims"]
    assert died["tried"] == 10 and died["passed"] == 9 and died["complete"]
    assert [r["config"]["index"] for r in died["records"]] == list(range(10))
    [failure] = died["failures"]
    assert failure["config"]["index"] == 3 and "worker died" in failure["detail"]
    assert ("BrokenProcessPool" if backend == "local" else "KilledWorker") in failure["detail"]
    assert well_posed["holds"] and well_posed["tried"] == 10  # the run went on
    out = capsys.readouterr().out
    assert "reproduce: python -m verify --only EXPRESSIVITY --replay" in out and '"index": 3' in out


def test_fail_fast_stops_at_the_same_configuration_as_the_serial_path(monkeypatch, tmp_path):
    _patch(monkeypatch, "EXPRESSIVITY", _fails_at_three)
    reports = []
    for workers in ("1", "2"):
        path = tmp_path / f"{workers}.json"
        assert (
            main(
                [
                    "--only",
                    "EXPRESSIVITY,WELL-POSED",
                    "--count",
                    "40",
                    "--fail-fast",
                    "--workers",
                    workers,
                    "--json",
                    str(path),
                ]
            )
            == 1
        )
        reports.append(_report(path))
    assert reports[0] == reports[1]
    assert reports[0]["claims"][0]["tried"] == 4 and reports[0]["claims"][1]["tried"] == 0


def test_ctrl_c_cancels_the_workers_and_keeps_the_partial_report(monkeypatch, tmp_path, capsys):
    advance = rich.progress.Progress.advance
    calls = {"n": 0}

    def interrupt_at_the_second_result(self, task, n=1):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, to this process only
        advance(self, task, n)

    monkeypatch.setattr(rich.progress.Progress, "advance", interrupt_at_the_second_result)
    _patch(monkeypatch, "WELL-POSED", _sleeps_from_two)
    before = _pool_workers()
    path = tmp_path / "r.json"
    argv = ["--only", "WELL-POSED,EXPRESSIVITY", "--count", "100000", "--workers", "2", "--json", str(path)]
    assert main(argv) == 130
    assert _pool_workers() <= before  # the worker processes, busy, were stopped
    report = json.loads(path.read_text())
    assert report["interrupted"] and not report["all_hold"]
    well_posed = report["claims"][0]
    assert not well_posed["complete"] and not well_posed["holds"] and well_posed["tried"] < 100000
    serial = claim_configurations(CLAIMS_BY_ID["WELL-POSED"], 0, well_posed["tried"])
    assert [r["config"] for r in well_posed["records"]] == serial  # a prefix, in order
    assert "INTERRUPTED" in capsys.readouterr().out


def test_a_cluster_that_goes_away_keeps_the_partial_report(monkeypatch, tmp_path, capsys):
    class GoesAway(_ReversingExecutor):
        def submit(self, fn, *args):
            if self.submitted == 5:
                raise RuntimeError("cannot schedule new futures: the client lost its scheduler")
            self.submitted += 1
            return super().submit(fn, *args)

    executor = GoesAway()
    executor.submitted = 0
    monkeypatch.setattr("verify.__main__.make_backend", lambda *args: _Backend(executor))
    path = tmp_path / "r.json"
    assert main(["--only", "WELL-POSED", "--count", "20", "--workers", "2", "--json", str(path)]) == 2
    report = json.loads(path.read_text())
    assert report["interrupted"] and not report["claims"][0]["complete"]
    assert 0 < report["claims"][0]["tried"] <= 5
    # (a one-core machine adds the --workers warning line)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "warning:" not in line]
    assert len(err) == 1 and "the parallel run stopped (RuntimeError: cannot schedule new futures" in err[0], err


# ---- the command line -------------------------------------------------------------------------
def test_workers_default_to_the_cores_or_the_environment(monkeypatch):
    monkeypatch.delenv("DEQ_VERIFY_WORKERS")
    assert parse_args([]).workers == executors.available_cores()
    monkeypatch.setenv("DEQ_VERIFY_WORKERS", "3")
    assert parse_args([]).workers == 3
    assert parse_args(["--workers", "1"]).workers == 1
    assert parse_args(["--scheduler", "tcp://h:8786"]).workers is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "0"],
        ["--workers", "2", "--scheduler", "tcp://h:8786"],
        ["--scheduler", " "],
        ["--scheduler", "host-without-port"],
        ["--scheduler", "tcp://host:notaport"],
        ["--scheduler", "tcp://host:0"],
        ["--only", "WELL-POSED", "--replay", "{}", "--workers", "2"],
    ],
)
def test_bad_parallel_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


def test_bad_environment_default_exits_2(monkeypatch):
    monkeypatch.setenv("DEQ_VERIFY_WORKERS", "many")
    with pytest.raises(SystemExit) as exc:
        parse_args([])
    assert exc.value.code == 2


def test_an_unreachable_scheduler_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", 1.0)
    assert main(["--only", "WELL-POSED", "--count", "2", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "--scheduler: no Dask scheduler answers at tcp://127.0.0.1:9" in capsys.readouterr().err
