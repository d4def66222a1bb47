"""Run the campaign's checks in parallel: local worker processes, or a Dask distributed cluster.

Both backends are one interface, a :class:`concurrent.futures.Executor`: a
:class:`~concurrent.futures.ProcessPoolExecutor` on this machine (``--workers N``), or the
executor of a ``distributed.Client`` connected to an existing scheduler (``--scheduler ADDRESS``).
The claims know nothing of where they run: a task is a module-level function of
:mod:`verify.worker_tasks` (:func:`run_checks`, :func:`run_batch`) applied to a claim's
module-level check function and a few JSON configurations, and it returns plain data (outcomes,
or a crash's text).

:func:`run_parallel` streams the configurations through the executor. They are drawn lazily,
as in the serial path; at most ``IN_FLIGHT_PER_SLOT`` tasks per worker are outstanding and at
most ``WINDOW_PER_SLOT`` per worker wait to be added, so memory does not grow with --count.
Results are added to the reports in configuration order, whatever the order in which they
arrive, so the report (timings aside) is the serial path's, whatever the number of workers and
the backend. A worker that dies takes its tasks with it: those tasks are run again, one at a
time once the others are done, so the culprit is known; a configuration that kills its worker
even alone is reported as failed, with the error and the replay line, and the run goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

from .campaign import BATCH_CHUNK, ClaimReport, crash_detail, iter_configurations
from .worker_tasks import prepare_worker, run_batch, run_checks

#: outstanding tasks per worker slot (enough to keep each worker fed while results travel back)
IN_FLIGHT_PER_SLOT = 4
#: tasks per worker slot submitted but not yet added to a report (results that arrived before a
#: slower predecessor wait in order; past this the stream waits for the predecessor)
WINDOW_PER_SLOT = 32
#: most configurations of a (non-batched) claim sent in one task
MAX_TASK_CONFIGS = 64
#: seconds to reach a Dask scheduler (and for it to have a worker) before giving up
SCHEDULER_TIMEOUT = 30.0
#: seconds without an answer from the scheduler, or without a worker, after which a running
#: campaign gives up on the cluster (exit 2 with the partial report): the client's own reconnect
#: loop, a nanny's restart of a worker and the scheduler's heartbeats all take a few seconds
CLUSTER_LOST_AFTER = 20.0
#: seconds between two looks at the cluster (each one call to the scheduler, at most
#: CLUSTER_CALL_TIMEOUT long)
CLUSTER_CHECK_EVERY = 2.0
CLUSTER_CALL_TIMEOUT = 5.0
#: seconds a Dask client may take to close before it is left to the interpreter's exit
CLOSE_TIMEOUT = 10.0


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ---- the two backends --------------------------------------------------------------------------
class LocalBackend:
    """``workers`` local processes (spawned: no state of the parent is inherited, as on a cluster)."""

    name = "local"
    #: a task should take about this long, so that the per-task overhead (below a millisecond) is small
    target_task_seconds = 0.05

    def __init__(self, workers: int, blas_threads: int = 1):
        self.workers = workers
        self.blas_threads = blas_threads
        self.executor = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=prepare_worker,
            initargs=(self.blas_threads,),
        )

    def slots(self) -> int:
        return self.workers

    def check(self) -> None:
        """The local pool cannot be lost (a dead worker is found by its futures)."""

    def recover(self) -> None:
        """A pool whose worker died takes no more work: replace it."""
        self._terminate()
        self.executor = self._new_pool()

    def _terminate(self) -> None:
        # the pool's processes (a private attribute; Python 3.14 has terminate_workers())
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(10)
            if p.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
                p.kill()
                p.join()

    def close(self, cancel: bool = False) -> None:
        if cancel:  # Ctrl-C, --fail-fast: running checks are stopped, not waited for
            self._terminate()
        else:
            self.executor.shutdown(wait=True)


try:  # distributed is needed for --scheduler only
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover
    _WorkerPlugin = object


class PrepareDaskWorker(_WorkerPlugin):
    """The Dask counterpart of the pool's initializer: runs once in every worker of the cluster,
    including workers that join (or are restarted) later."""

    def __init__(self, blas_threads: int = 1):
        self.blas_threads = blas_threads

    def setup(self, worker):
        prepare_worker(self.blas_threads, ignore_sigint=False)


def _within(seconds: float, function, *args):
    """function(*args) in a daemon thread, waited for at most ``seconds``: (finished, result,
    exception). A Dask client's own timeouts do not cover everything (measured: a TCP server that
    never answers held ``Client(address, timeout=30)`` for more than 6 minutes)."""
    box = {}

    def run():
        try:
            box["result"] = function(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    thread = threading.Thread(target=run, name="deq-verify-dask", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), box.get("result"), box.get("error")


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask ``address`` for its identity over one plain connection, within ``timeout`` (plus 5 s
    for the thread): ConnectionError, naming the address, unless a Dask scheduler answers. Done
    before a Client exists, because a Client that failed to start takes 60 s to close at exit
    (measured: a server sending garbage failed at once, then the exit waited 60 s)."""
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    finished, answer, err = _within(timeout + 5.0, lambda: asyncio.run(identity()))
    if not finished or isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        raise ConnectionError(
            f"no Dask scheduler answers at {address} within {timeout:g} s (nothing, or something "
            "that does not speak Dask's protocol, listens there)"
        )
    if err is not None:
        if not isinstance(err, Exception):
            raise err
        raise ConnectionError(
            f"no Dask scheduler answers at {address} ({type(err).__name__}: {_one_line(err)})"
        ) from err
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise ConnectionError(f"{address} answers, but not as a Dask scheduler (identity: {str(answer)[:80]!r})")


class DaskBackend:
    """The workers of an existing Dask distributed cluster, through ``Client.get_executor()``.

    Every call to the cluster is bounded in time: connecting (SCHEDULER_TIMEOUT, plus a hard
    limit on the client's handshake), the looks at the cluster during the run (:meth:`check`:
    a scheduler that stops answering, or a cluster without a worker, for CLUSTER_LOST_AFTER
    seconds ends the run with ConnectionError) and closing (CLOSE_TIMEOUT)."""

    name = "dask"
    #: a Dask task costs milliseconds (scheduler round trips): send larger tasks
    target_task_seconds = 0.5

    def __init__(self, address, blas_threads: int = 1, timeout: float = 30.0):
        from distributed import Client

        self.address = address
        _probe_scheduler(address, timeout)
        finished, client, err = _within(timeout + 5.0, lambda: Client(address, timeout=timeout, set_as_default=False))
        if not finished:
            raise ConnectionError(
                f"no Dask scheduler answers at {address} within {timeout + 5.0:g} s (something "
                "accepts connections there but does not complete Dask's handshake)"
            )
        if err is not None:
            if not isinstance(err, Exception):
                raise err
            raise ConnectionError(
                f"no Dask scheduler answers at {address} ({type(err).__name__}: {_one_line(err)})"
            ) from err
        self.client = client
        try:
            threads = self._nthreads()
            if not threads:
                try:
                    self.client.wait_for_workers(1, timeout=timeout)
                except TimeoutError as err:
                    raise ConnectionError(
                        f"the Dask scheduler at {address} has no worker after {timeout:g} s "
                        "(start some with `dask worker ADDRESS`)"
                    ) from err
                threads = self._nthreads()
            try:
                self.client.register_plugin(PrepareDaskWorker(blas_threads), name="deq-verify-prepare-worker")
            except Exception as err:  # noqa: BLE001 - raised on a worker: most likely the project is missing there
                raise ConnectionError(
                    f"the workers at {address} could not import the project "
                    f"({type(err).__name__}: {_one_line(err)}); install it on every worker machine "
                    "(pip install -e .)"
                ) from err
        except BaseException:
            self._close_client()
            raise
        self.executor = self.client.get_executor(pure=False)  # pure=False: a task run again is a new task
        self._slots = max(1, sum((threads or {}).values()))
        now = time.monotonic()
        self._checked_at = self._scheduler_seen = self._worker_seen = now

    def _nthreads(self) -> dict | None:
        """{worker: threads} from the scheduler, or None when it does not answer in time."""
        try:
            return dict(self.client.nthreads(callback_timeout=CLUSTER_CALL_TIMEOUT))
        except Exception:  # noqa: BLE001 - OSError, TimeoutError, CommClosedError, a closed client
            return None

    def slots(self) -> int:
        """Threads of the cluster's workers as last seen by :meth:`check` (workers come and go)."""
        return self._slots

    def check(self) -> None:
        """Every CLUSTER_CHECK_EVERY seconds, ask the scheduler for its workers; raise
        ConnectionError, naming the address, once it has not answered (or has had no worker) for
        CLUSTER_LOST_AFTER seconds. Without this a killed scheduler or the death of the only
        worker left the campaign waiting for ever (measured: no exit after 150 s)."""
        now = time.monotonic()
        if now - self._checked_at < CLUSTER_CHECK_EVERY:
            return
        self._checked_at = now
        status = self.client.status
        threads = self._nthreads() if status == "running" else None
        now = time.monotonic()
        if threads is None:
            if status in ("closing", "closed") or now - self._scheduler_seen > CLUSTER_LOST_AFTER:
                raise ConnectionError(
                    f"lost the Dask scheduler at {self.address} (no answer for "
                    f"{now - self._scheduler_seen:.0f} s; client {status})"
                )
            return
        self._scheduler_seen = now
        if threads:
            self._worker_seen = now
            self._slots = max(1, sum(threads.values()))
        elif now - self._worker_seen > CLUSTER_LOST_AFTER:
            raise ConnectionError(
                f"the Dask cluster at {self.address} has had no worker for "
                f"{now - self._worker_seen:.0f} s (nothing runs the remaining configurations)"
            )

    def recover(self) -> None:
        """Nothing to do: the nannies restart dead workers and the scheduler reschedules."""

    def _close_client(self) -> None:
        _within(CLOSE_TIMEOUT, lambda: self.client.close(timeout=CLOSE_TIMEOUT / 2))

    def close(self, cancel: bool = False) -> None:
        """Cancel or wait for the outstanding tasks and close the client, within CLOSE_TIMEOUT
        (a cluster that went away has nothing left to close)."""
        _quiet_distributed()  # its reconnect loop logs tracebacks while the client closes: the run is over

        def shutdown():
            try:
                self.executor.shutdown(wait=not cancel)  # wait=False cancels the outstanding tasks
            finally:
                self.client.close(timeout=CLOSE_TIMEOUT / 2)

        _within(CLOSE_TIMEOUT, shutdown)


def _quiet_distributed() -> None:
    """Silence distributed's loggers (the command line's report says what happened, in one line)."""
    import logging

    names = ["distributed"] + [name for name in logging.root.manager.loggerDict if name.startswith("distributed.")]
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def check_scheduler_address(address: str) -> None:
    """Refuse an address a Dask client could not connect to (before anything starts): it must
    be PROTOCOL://HOST:PORT with a protocol of distributed's that reaches another process and is
    set up here: tcp:// (or ws://); tls:// and wss:// only with TLS certificates in the Dask
    configuration; ucx:// only with UCX installed; inproc:// never (it lives inside one process)."""
    try:
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import get_backend
    except ModuleNotFoundError as err:
        raise ValueError(
            "needs the 'distributed' package (pip install distributed, or the project's 'cluster' extra)"
        ) from err
    try:
        scheme, location = parse_address(address.strip())
        get_backend(scheme)  # an unknown protocol: ValueError
        if scheme == "inproc":
            raise ValueError(
                "inproc:// addresses exist only inside one process; reach a scheduler with tcp://HOST:PORT"
            )
        if scheme in ("tls", "wss"):
            from distributed.security import Security

            if Security().get_connection_args("client").get("ssl_context") is None:
                raise ValueError(
                    f"{scheme}:// needs TLS certificates in the Dask configuration "
                    "(distributed.comm.tls.ca-file, .client.cert and .client.key), and none are set"
                )
        if scheme == "ucx":
            import importlib.util

            if not any(importlib.util.find_spec(name) for name in ("ucp", "ucxx", "distributed_ucxx")):
                raise ValueError("ucx:// needs UCX (the distributed-ucxx package), which is not installed")
        if scheme in ("tcp", "tls", "ws", "wss", "ucx"):
            _, port = parse_host_port(location)
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} outside [1, 65535]")
    except ValueError as err:
        raise ValueError(
            f"{address!r} is not a scheduler address this run can use, such as tcp://host:8786 ({err})"
        ) from err


def make_backend(workers: int | None = None, scheduler=None, blas_threads: int = 1):
    """The local pool (``workers`` processes) or, given a scheduler address, the Dask cluster."""
    if scheduler is not None:
        return DaskBackend(scheduler, blas_threads=blas_threads, timeout=SCHEDULER_TIMEOUT)
    return LocalBackend(workers or available_cores(), blas_threads=blas_threads)


# ---- the stream --------------------------------------------------------------------------------
@dataclass(eq=False)
class _Task:
    report: ClaimReport
    configs: list
    function: object  # run_checks or run_batch
    args: tuple  # what precedes the configurations
    last: bool  # the claim's last task: its report is complete once this is added
    inline: bool = False  # the check cannot be pickled (defined in a test, say): run in this process
    results: list | None = None
    lost: BaseException | None = None


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - lambdas, closures, locally defined functions
        return False
    return True


def _tasks(plan, reports, seed: int, task_size):
    """The campaign as a lazy stream of tasks, claim after claim, each claim's configurations in
    order: chunks of ``BATCH_CHUNK`` for a batched claim (the serial path's chunks), otherwise
    ``task_size(claim)`` configurations."""
    for (claim, count), report in zip(plan, reports):
        configs = iter_configurations(claim, seed, count)
        count += len(claim.fixed)  # the claim's fixed configurations follow its random ones
        if claim.check_batch is not None:
            function, args = run_batch, (claim.check_batch, claim.batch_key)
        else:
            function, args = run_checks, (claim.check,)
        inline = not _picklable(args)
        drawn = 0
        while drawn < count:
            size = BATCH_CHUNK if function is run_batch else task_size(claim)
            chunk = list(itertools.islice(configs, min(size, count - drawn)))
            drawn += len(chunk)
            yield _Task(report, chunk, function, args, last=drawn == count, inline=inline)


def run_parallel(
    plan,
    reports: list[ClaimReport],
    seed: int,
    backend,
    *,
    advance=lambda n: None,
    on_claim=lambda claim_id: None,
    fail_fast: bool = False,
) -> bool:
    """Check ``plan`` ((claim, count) pairs) on ``backend`` and add the outcomes to ``reports``,
    in configuration order, as the serial ``run_claim`` does; ``advance(n)`` as results arrive.
    Returns True if ``fail_fast`` stopped the run at a failure. Ctrl-C (KeyboardInterrupt)
    propagates; the reports then hold the configurations added so far (a prefix of each claim),
    and the claim that was running is not complete. The caller closes the backend."""
    seconds: dict[str, list] = {}  # claim id -> [configurations timed, seconds]

    def task_size(claim) -> int:
        n, s = seconds.get(claim.id, (0, 0.0))
        if n == 0:
            return 1
        return max(1, min(MAX_TASK_CONFIGS, int(backend.target_task_seconds / max(s / n, 1e-9))))

    stream = _tasks(plan, reports, seed, task_size)
    window: deque[_Task] = deque()  # submitted, not yet added, in order
    pending: dict[cf.Future, _Task] = {}
    suspects: list[_Task] = []  # tasks whose worker died: run again, one at a time
    exhausted = False
    current = None

    def submit(task: _Task) -> cf.Future:
        if task.inline:
            future = cf.Future()
            future.set_result(task.function(*task.args, task.configs))
            return future
        try:
            return backend.executor.submit(task.function, *task.args, task.configs)
        except cf.BrokenExecutor as err:
            # a worker died since the last wait and the pool refuses new work: this task joins
            # the suspects like the ones in flight (seen once in a fresh clone's test run: the
            # error ended the whole run)
            future = cf.Future()
            future.set_exception(err)
            return future

    def arrived(task: _Task, results: list) -> None:
        task.results = results
        timing = seconds.setdefault(task.report.id, [0, 0.0])
        timing[0] += len(results)
        timing[1] += sum(r[-1] for r in results)
        advance(len(results))

    def collect(done) -> None:
        for future in done:
            task = pending.pop(future)
            results, err = _collect(future)
            if err is not None:  # the worker died (the check's own exceptions come back as data)
                task.lost = err
                suspects.append(task)
            else:
                arrived(task, results)

    def add_in_order() -> bool:
        """Add what arrived, in order, up to the first task still out; True at a fail-fast stop."""
        nonlocal current
        while window and window[0].results is not None:
            task = window.popleft()
            if task.report.id != current:
                current = task.report.id
                on_claim(current)
            if _add(task) and fail_fast:
                window.clear()
                return True
        return False

    try:
        while True:
            slots = backend.slots()
            while (
                not suspects
                and not exhausted
                and len(pending) < IN_FLIGHT_PER_SLOT * slots
                and len(window) < WINDOW_PER_SLOT * slots
            ):
                task = next(stream, None)
                if task is None:
                    exhausted = True
                    break
                window.append(task)
                pending[submit(task)] = task
            if pending:
                done, _ = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
                collect(done)
                backend.check()  # a cluster that went away: ConnectionError (the partial report is kept)
            elif suspects:  # everything else is done: find the culprits
                backend.recover()
                for task in suspects:
                    arrived(task, _run_alone(backend, task))
                suspects.clear()
            if add_in_order():
                return True
            if exhausted and not window and not pending:
                return False
    finally:  # Ctrl-C, a cluster that went away: keep what arrived (a prefix of each claim, in order)
        collect([future for future in pending if future.done()])
        add_in_order()


def _add(task: _Task) -> bool:
    """Add a task's results to its report; True if one of them failed."""
    report, failed = task.report, False
    for config, result in zip(task.configs, task.results):
        if result[0] == "ok":
            report.add(config, result[1])
            failed |= not result[1].passed
        else:
            report.add_crash_record(config, result[1], result[2])
            failed = True
        report.seconds += result[-1]
    if task.last:
        report.complete = True
    return failed


def _collect(future: cf.Future) -> tuple[list | None, BaseException | None]:
    """A finished task's results, or what went wrong: the worker process died (BrokenProcessPool),
    the cluster gave up on it (KilledWorker), the task was cancelled; not raised here (a
    SystemExit or KeyboardInterrupt from a worker must not end this process)."""
    if future.cancelled():
        return None, cf.CancelledError("the task was cancelled by the executor")
    err = future.exception()
    return (None, err) if err is not None else (future.result(), None)


def _run_alone(backend, task: _Task) -> list:
    """Run a task whose worker died with nothing else in flight; if it is lost again, each of its
    configurations alone; a configuration lost even alone is reported as a crash (never dropped)."""
    results, err = _collect(_wait(backend, backend.executor.submit(task.function, *task.args, task.configs)))
    if err is None:
        return results
    backend.recover()
    if len(task.configs) > 1:
        results = []
        for config in task.configs:
            results.extend(
                _run_alone(backend, _Task(task.report, [config], task.function, task.args, last=False, lost=task.lost))
            )
        return results
    detail = (
        f"the worker died while checking this configuration, twice (the second time alone): "
        f"{crash_detail(task.lost)}; then {crash_detail(err)}"
    )
    return [("crash", detail, "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=4)), 0.0)]


def _wait(backend, future: cf.Future) -> cf.Future:
    """The future once done, looking at the cluster meanwhile (:meth:`DaskBackend.check`)."""
    while not cf.wait([future], timeout=1.0).done:
        backend.check()
    return future
