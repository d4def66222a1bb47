"""A Dask cluster that goes away, or an address that is not one, against real `dask scheduler` and
`dask worker` processes that the tests start and kill by pid.

Found by outside testers: with the scheduler killed mid-run there was no exit after 150 s and no
JSON (the docs promise a partial report and exit 2); the same when the only worker died; a TCP
server that never speaks Dask held the run for more than 6 minutes; tls://, inproc://, ucx:// and
a server sending garbage ended in a traceback after 61-67 s. Each now ends with exit 2 and one
line on stderr naming the address; a run that had started writes its partial report.

The in-process tests shorten the cluster's timeouts (verify.executors.CLUSTER_LOST_AFTER and
SCHEDULER_TIMEOUT) so that they take seconds; the slow test runs the command with its defaults
and holds it to the promised 60 s (measured: 21-23 s after the kill).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import rich.progress

from verify import executors
from verify.__main__ import main

pytest.importorskip("distributed")
DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


@pytest.fixture
def cluster():
    """A scheduler and one worker (no nanny: a killed worker stays dead), as separate processes;
    yields (address, scheduler process, worker process); both killed by pid afterwards."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker = None
    try:
        _wait_for_port(port)
        worker = subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"], **quiet)
        yield address, scheduler, worker
    finally:
        for process in (worker, scheduler):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(30)


def _shorten_timeouts(monkeypatch):
    monkeypatch.setattr(executors, "CLUSTER_LOST_AFTER", 3.0)
    monkeypatch.setattr(executors, "CLUSTER_CHECK_EVERY", 0.5)
    monkeypatch.setattr(executors, "CLOSE_TIMEOUT", 4.0)


def _kill_at_the_second_result(monkeypatch, process):
    advance = rich.progress.Progress.advance
    calls = {"n": 0}

    def advance_and_kill(self, task, n=1):
        calls["n"] += 1
        if calls["n"] == 2:
            process.kill()
        advance(self, task, n)

    monkeypatch.setattr(rich.progress.Progress, "advance", advance_and_kill)


@pytest.mark.parametrize("victim", ["scheduler", "worker"])
def test_a_cluster_lost_mid_run_ends_the_run_with_the_partial_report(victim, cluster, monkeypatch, tmp_path, capsys):
    address, scheduler, worker = cluster
    _shorten_timeouts(monkeypatch)
    _kill_at_the_second_result(monkeypatch, scheduler if victim == "scheduler" else worker)
    path = tmp_path / "r.json"
    started = time.monotonic()
    assert (
        main(["--only", "WELL-POSED,EXPRESSIVITY", "--count", "100000", "--scheduler", address, "--json", str(path)])
        == 2
    )
    assert time.monotonic() - started < 60
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and address in err[0], err
    assert ("lost the Dask scheduler" if victim == "scheduler" else "has had no worker") in err[0]
    report = json.loads(path.read_text())
    assert report["interrupted"] and not report["all_hold"]
    assert 0 < report["claims"][0]["tried"] < 100000 and not report["claims"][0]["complete"]


def _server(behaviour: str):
    """A TCP server on a free port that accepts connections and stays silent, or sends garbage."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    kept = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            kept.append(conn)
            if behaviour == "garbage":
                try:
                    conn.sendall(bytes(range(256)) * 64)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.mark.parametrize("behaviour", ["silent", "garbage"])
def test_a_server_that_is_not_a_scheduler_is_a_usage_error(behaviour, monkeypatch, capsys):
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", 2.0)
    server = _server(behaviour)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        started = time.monotonic()
        assert main(["--only", "WELL-POSED", "--count", "2", "--scheduler", address]) == 2
        assert time.monotonic() - started < 15
    finally:
        server.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--scheduler: no Dask scheduler answers at {address}" in err[0], err


@pytest.mark.parametrize(
    "address, message",
    [
        ("tls://127.0.0.1:8786", "tls:// needs TLS certificates in the Dask configuration"),
        ("inproc://127.0.0.1/1/1", "inproc:// addresses exist only inside one process"),
        ("ucx://127.0.0.1:8786", "ucx:// needs UCX"),
        ("carrier-pigeon://host:1", "unknown address scheme"),
    ],
)
def test_addresses_this_run_cannot_use_are_refused_up_front(address, message, capsys):
    if address.startswith("ucx"):
        import importlib.util

        if any(importlib.util.find_spec(n) for n in ("ucp", "ucxx", "distributed_ucxx")):
            pytest.skip("UCX is installed here")
    started = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(["--only", "WELL-POSED", "--scheduler", address])
    assert exc.value.code == 2 and time.monotonic() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and address in err[0] and message in err[0], err


@pytest.mark.slow
def test_a_killed_scheduler_ends_the_command_within_60_seconds(cluster, tmp_path):
    """The command as a user runs it, with its default timeouts: the scheduler is killed by pid
    once the run has started; exit 2 within 60 s, one line naming the address, the JSON written."""
    address, scheduler, _ = cluster
    path = tmp_path / "r.json"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verify",
            "--only",
            "WELL-POSED,EXPRESSIVITY,STATE-WISE",
            "--count",
            "100000",
            "--scheduler",
            address,
            "--json",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(15)  # connected, and checking
        assert run.poll() is None
        scheduler.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        out, err = run.communicate(timeout=90)
        assert time.monotonic() - killed < 60
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and address in lines[0], lines
    assert json.loads(path.read_text())["interrupted"]
