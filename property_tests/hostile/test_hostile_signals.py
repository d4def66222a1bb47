"""How a run ends when it is told to, and what the command line says about the machine.

Found by outside testers: SIGTERM (what `timeout`, a CI cancel or a batch scheduler sends) left
the pool's workers running (8 orphans held 1.4 GB for minutes) while Ctrl-C was handled well;
--workers 1024 on a 2-core machine was accepted without a word; DEQ_VERIFY_WORKERS='²' gave a
traceback (str.isdigit accepts it); --only UNKNOWN printed on stdout, over three lines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from verify import __main__ as cli
from verify.__main__ import main, parse_args


def _pool_children(process: psutil.Process) -> list[psutil.Process]:
    return [c for c in process.children(recursive=True) if c.is_running()]


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_the_run_like_ctrl_c(signum, status, tmp_path):
    """The signal goes to the main process only, as `timeout` sends it: the workers are stopped,
    the partial report is printed and written, the exit status is 128 + the signal."""
    path = tmp_path / "r.json"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "verify",
            "--only",
            "WELL-POSED,EXPRESSIVITY",
            "--count",
            "1000000",
            "--workers",
            "2",
            "--json",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        parent = psutil.Process(run.pid)
        deadline = time.monotonic() + 60
        while len(_pool_children(parent)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # the workers have imported the project and are checking
        workers = _pool_children(parent)
        assert len(workers) >= 2 and run.poll() is None
        run.send_signal(signum)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == status, err
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, alive  # no orphaned worker
    report = json.loads(path.read_text())
    assert report["interrupted"] and not report["all_hold"] and not report["claims"][0]["complete"]
    assert "INTERRUPTED" in out


def _sigterm_at_the_third_configuration(monkeypatch):
    """WELL-POSED's check replaced by one that sends this process SIGTERM at its third call."""
    from verify import claims as claims_module
    from verify.claims import condition, outcome

    calls = {"n": 0}
    claim = claims_module.CLAIMS_BY_ID["WELL-POSED"]

    def check(config):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGTERM)
        return outcome([condition("reached", True)])

    monkeypatch.setitem(claims_module.CLAIMS_BY_ID, "WELL-POSED", claim.__class__(**{**claim.__dict__, "check": check}))


def test_sigterm_in_the_serial_path_keeps_the_partial_report(tmp_path, monkeypatch):
    """In this process (--workers 1): the handler turns SIGTERM into the Ctrl-C path."""
    _sigterm_at_the_third_configuration(monkeypatch)
    path = tmp_path / "r.json"
    assert main(["--only", "WELL-POSED", "--count", "50", "--workers", "1", "--json", str(path)]) == 143
    report = json.loads(path.read_text())
    assert report["interrupted"] and report["claims"][0]["tried"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the run


@pytest.mark.parametrize(
    "workers, cores, memory, expected",
    [
        (
            1024,
            2,
            16 * 2**30,
            "--workers 1024 exceeds the 2 usable cores and needs about 128 GiB at 128 MiB per worker "
            "(measured), more than the 16 GiB available",
        ),
        (3, 2, 16 * 2**30, "--workers 3 exceeds the 2 usable cores;"),
        (
            8,
            8,
            2**29,
            "--workers 8 needs about 1 GiB at 128 MiB per worker (measured), more than the 0.5 GiB available",
        ),
        (2, 2, 16 * 2**30, None),
    ],
)
def test_too_many_workers_are_warned_about_in_one_line(workers, cores, memory, expected, monkeypatch, capsys):
    monkeypatch.setattr("verify.executors.available_cores", lambda: cores)
    monkeypatch.setattr(cli, "available_memory", lambda: memory)
    args = parse_args(["--workers", str(workers)])
    assert args.workers == workers  # a warning, not a refusal
    err = capsys.readouterr().err
    if expected is None:
        assert err == ""
    else:
        assert len(err.strip().splitlines()) == 1 and err.startswith("deq-verify: warning: ") and expected in err, err


@pytest.mark.parametrize("value", ["²", "٣", "1_0", "+2", " 0", "1025"])
def test_a_bad_workers_environment_is_one_line(value, monkeypatch, capsys):
    monkeypatch.setenv("DEQ_VERIFY_WORKERS", value)
    with pytest.raises(SystemExit) as exc:
        parse_args([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "DEQ_VERIFY_WORKERS must be an integer in [1, 1024]" in err


@pytest.mark.parametrize("argv", [["--only", "UNKNOWN"], ["--scale", "--only", "WELL-POSED"]])
def test_an_unknown_claim_is_one_line_on_stderr(argv, capsys):
    assert main(argv + ["--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deq-verify: error: --only: unknown claim(s)"), err


def test_a_second_sigterm_does_not_cut_the_clean_up_short(tmp_path, monkeypatch):
    """Found probing: a second SIGTERM while the first one's clean-up ran (workers stopped, report
    written) escaped as a traceback and lost the report. Further signals now wait until the end."""
    _sigterm_at_the_third_configuration(monkeypatch)
    write = cli._write_reports

    def write_after_another_signal(*args):
        signal.raise_signal(signal.SIGTERM)
        return write(*args)

    monkeypatch.setattr(cli, "_write_reports", write_after_another_signal)
    path = tmp_path / "r.json"
    assert main(["--only", "WELL-POSED", "--count", "50", "--workers", "1", "--json", str(path)]) == 143
    assert json.loads(path.read_text())["interrupted"]


def test_a_lower_case_claim_gets_a_hint(capsys):
    assert main(["--only", "well-posed", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "claim ids are upper case: well-posed -> WELL-POSED" in err[0], err
