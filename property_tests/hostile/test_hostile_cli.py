"""Hostile and careless use of the campaign's command line: bad arguments exit 2 with
one line naming the argument and the rule, before any work is done; a report is never lost."""

import json
import os
import stat

import pytest

from verify import campaign
from verify import claims as claims_module
from verify.__main__ import main
from verify.campaign import claim_configurations
from verify.claims import CLAIMS, condition, outcome

FAST = "WELL-POSED"


def _counting_claim(monkeypatch, claim_id=FAST, interrupt_at=None):
    """Replace a claim's check (and sampler) by counting wrappers; returns the counters."""
    claim = claims_module.CLAIMS_BY_ID[claim_id]
    calls = {"check": 0, "sample": 0}

    def check(config):
        calls["check"] += 1
        if interrupt_at is not None and calls["check"] == interrupt_at:
            raise KeyboardInterrupt
        return claim.check(config)

    def sample(rng, index):
        calls["sample"] += 1
        return claim.sample(rng, index)

    monkeypatch.setitem(
        claims_module.CLAIMS_BY_ID, claim_id, claim.__class__(**{**claim.__dict__, "check": check, "sample": sample})
    )
    return calls


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# ---- data loss -----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["directory", "parent is a file", "unwritable directory", "empty"])
@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_output_path_is_checked_before_the_run(tmp_path, monkeypatch, capsys, where, option):
    if where == "directory":
        path = str(tmp_path)
    elif where == "parent is a file":
        (tmp_path / "file").write_text("x")
        path = str(tmp_path / "file" / "r.json")
    elif where == "unwritable directory":
        if os.geteuid() == 0:  # root writes in any directory with mode 0500, but not in /proc
            path = "/proc/deq-verify-no-such-dir/r.json"
        else:
            locked = tmp_path / "locked"
            locked.mkdir()
            locked.chmod(0o500)
            path = str(locked / "r.json")
    else:
        path = ""
    calls = _counting_claim(monkeypatch)
    assert _exit_code(["--only", FAST, "--count", "2", option, path]) == 2
    assert calls["check"] == 0  # refused before any configuration was checked
    err = capsys.readouterr().err
    assert option in err and len(err.strip().splitlines()) == 1


def test_report_is_kept_when_the_final_write_fails(tmp_path, monkeypatch, capsys):
    def failing(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(campaign, "write_atomically", failing)
    from verify import __main__ as cli

    monkeypatch.setattr(cli, "write_atomically", failing, raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gettempdir() caches: set the cache itself
    code = main(["--only", FAST, "--count", "2", "--json", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "saved to" in err
    saved = err.split("saved to ")[1].split()[0]
    assert os.path.dirname(saved) == str(tmp_path)
    report = json.loads(open(saved).read())
    assert report["claims"][0]["tried"] == 2 + len(claims_module.CLAIMS_BY_ID[FAST].fixed)


def test_json_and_markdown_on_the_same_file_is_refused(tmp_path, capsys):
    p = str(tmp_path / "r")
    assert _exit_code(["--only", FAST, "--count", "2", "--json", p, "--markdown", p]) == 2
    assert "same file" in capsys.readouterr().err
    assert not os.path.exists(p)


def test_replay_writes_the_requested_reports(tmp_path, capsys):
    config = claim_configurations(claims_module.CLAIMS_BY_ID["STATE-WISE"], 0, 1)[0]
    j, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["--only", "STATE-WISE", "--replay", json.dumps(config), "--json", str(j), "--markdown", str(md)]) == 0
    report = json.loads(j.read_text())
    assert report["mode"] == "replay" and report["claims"][0]["tried"] == 1
    assert report["claims"][0]["records"][0]["config"] == config
    assert "STATE-WISE" in md.read_text()


def test_report_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "r.json"
        assert main(["--only", FAST, "--count", "2", "--json", str(p)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


# ---- hangs and unbounded work ------------------------------------------------------------------------
def test_configurations_are_generated_lazily(monkeypatch, capsys):
    calls = _counting_claim(monkeypatch, interrupt_at=3)
    assert main(["--only", FAST, "--count", "200000"]) == 130
    assert calls["sample"] <= 4  # one configuration ahead of the check at most
    out = capsys.readouterr().out
    assert "INTERRUPTED" in out


def test_absurd_count_is_refused(capsys):
    assert _exit_code(["--only", FAST, "--count", "1000000000"]) == 2
    assert "--count" in capsys.readouterr().err


def _a_config(claim_id="STATE-WISE"):
    return claim_configurations(claims_module.CLAIMS_BY_ID[claim_id], 0, 1)[0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: "{not json", "not valid JSON"),
        (lambda c: "[1, 2]", "must be a JSON object"),
        (lambda c: json.dumps({k: v for k, v in c.items() if k != "m"}), "missing the key 'm' that STATE-WISE needs"),
        (lambda c: json.dumps({**c, "mm": 3}), "unknown configuration key 'mm'"),
        (
            lambda c: json.dumps({**c, "derivation": "Groenwall step"}),
            "'derivation' is not a configuration key of STATE-WISE",
        ),
        (lambda c: json.dumps({**c, "m": 2.5}), "'m' must be an integer"),
        (lambda c: json.dumps({**c, "m": True}), "'m' must be an integer"),
        (lambda c: json.dumps({**c, "m": 0}), r"'m' must lie in \[1, "),
        (lambda c: json.dumps({**c, "gamma": 1.0}), r"'gamma' must lie in \(0, 1\)"),
        (lambda c: json.dumps(c).replace(json.dumps(c["gamma"]), "NaN"), "NaN"),
        (lambda c: json.dumps({**c, "loss": "hinge"}), "'loss' must be one of"),
        (lambda c: json.dumps({**c, "m": 100000}), "GiB"),
        (lambda c: json.dumps(c)[:-1] + ', "m": 2}', "duplicate key 'm'"),
        (lambda c: "[" * 100000, "JSON"),
    ],
)
def test_malformed_replay_exits_2_naming_the_problem(mutate, message, capsys):
    assert _exit_code(["--only", "STATE-WISE", "--replay", mutate(_a_config())]) == 2
    err = capsys.readouterr().err
    assert "--replay" in err and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


@pytest.mark.parametrize("violation", [-1, 28, 1000])
def test_replay_of_a_violation_that_does_not_exist_exits_2(violation, capsys):
    config = {"entry": "gradient_flow", "violation": violation, "loss": "square", "gamma": 0.5, "seed": 1}
    assert _exit_code(["--only", "HYPOTHESES", "--replay", json.dumps(config)]) == 2
    assert "violation" in capsys.readouterr().err


def test_every_sampled_configuration_passes_the_replay_schema():
    """A claim whose sampler emits a key the schema does not know could not be replayed: this
    test names it (add the key to verify.config_schema.SCHEMA)."""
    import json as _json

    from verify.config_schema import claim_keys, replay_config, validate_config

    for claim in CLAIMS:
        required, allowed = claim_keys(claim)
        for config in claim_configurations(claim, 0, 10)[:10]:
            validate_config(config, claim.id, required, allowed)
        for config in claim.fixed:  # the fixed tight instances replay as printed
            assert replay_config(_json.dumps(config), claim) == config


# ---- coercions and exit codes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, option",
    [
        (["--only", ""], "--only"),
        (["--only", "WELL-POSED,"], "--only"),
        (["--only", "WELL-POSED,WELL-POSED"], "--only"),
        (["--seed", "-1"], "--seed"),
        (["--only", "STATE-WISE", "--replay", "{}", "--count", "3"], "--count"),
        (["--only", "STATE-WISE", "--replay", "{}", "--seed", "3"], "--seed"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, option, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert option in err and len(err.strip().splitlines()) == 1


def test_interrupted_claim_is_not_reported_as_holding(monkeypatch, tmp_path, capsys):
    _counting_claim(monkeypatch, interrupt_at=3)
    p = tmp_path / "r.json"
    assert main(["--only", FAST, "--count", "5", "--json", str(p)]) == 130
    report = json.loads(p.read_text())
    assert report["claims"][0]["tried"] == 2 and report["claims"][0]["holds"] is False
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if FAST in line and "reproduce" not in line)
    assert "yes" not in row and "partial" in row


def test_failing_claim_check_during_replay_is_exit_1(monkeypatch, capsys):
    claim = claims_module.CLAIMS_BY_ID["STATE-WISE"]
    monkeypatch.setitem(
        claims_module.CLAIMS_BY_ID,
        "STATE-WISE",
        claim.__class__(**{**claim.__dict__, "check": lambda c: outcome([condition("broken", False)])}),
    )
    assert main(["--only", "STATE-WISE", "--replay", json.dumps(_a_config())]) == 1
    assert "FAILS" in capsys.readouterr().out
