"""The campaign's command line: report contents, exit status, determinism, replay, Ctrl-C."""

import json

import pytest

from verify import claims as claims_module
from verify.__main__ import main
from verify.claims import CLAIMS, condition, outcome

FAST = "WELL-POSED,CONSERVATION,NAIVE-BOUND-FALSE"


def _strip_times(report):
    assert report.pop("wall_time") > 0
    for c in report["claims"]:
        c.pop("seconds")
    return report


def test_json_report_lists_claims_and_is_deterministic(tmp_path, capsys):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p in paths:
        assert main(["--only", FAST, "--count", "3", "--seed", "5", "--json", str(p)]) == 0
    a, b = (json.loads(p.read_text()) for p in paths)
    assert [c["id"] for c in a["claims"]] == FAST.split(",")
    assert a["all_hold"] and a["seed"] == 5
    # three random configurations each, then the claim's fixed tight instances
    assert all(c["tried"] == c["passed"] == 3 + len(claims_module.CLAIMS_BY_ID[c["id"]].fixed) for c in a["claims"])
    assert _strip_times(a) == _strip_times(b)
    out = capsys.readouterr().out
    assert "WELL-POSED" in out and "only the paper's abstract" in out


def test_different_seeds_give_different_configurations(tmp_path):
    from verify.campaign import claim_configurations

    claim = CLAIMS[0]
    assert claim_configurations(claim, 0, 3) != claim_configurations(claim, 1, 3)
    assert claim_configurations(claim, 0, 3) == claim_configurations(claim, 0, 3)


def test_every_claim_is_listed(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for c in CLAIMS:
        assert c.id in out


def test_markdown_report(tmp_path):
    p = tmp_path / "r.md"
    assert main(["--only", "WELL-POSED", "--count", "2", "--markdown", str(p)]) == 0
    text = p.read_text()
    assert text.startswith("| claim |") and "WELL-POSED" in text and "\\|" in text


def test_failure_exits_1_and_prints_a_reproduction(monkeypatch, capsys, tmp_path):
    claim = claims_module.CLAIMS_BY_ID["WELL-POSED"]
    failing = claim.__class__(
        **{**claim.__dict__, "check": lambda config: outcome([condition("broken on purpose", False)])}
    )
    monkeypatch.setitem(claims_module.CLAIMS_BY_ID, "WELL-POSED", failing)
    p = tmp_path / "r.json"
    assert main(["--only", "WELL-POSED", "--count", "2", "--json", str(p)]) == 1
    out = capsys.readouterr().out
    assert "FAILED WELL-POSED" in out and "--replay" in out
    report = json.loads(p.read_text())
    assert not report["all_hold"] and report["claims"][0]["failures"][0]["config"]["seed"] >= 0


def test_replay_of_a_configuration(capsys):
    from verify.campaign import claim_configurations

    config = claim_configurations(claims_module.CLAIMS_BY_ID["STATE-WISE"], 0, 1)[0]
    assert main(["--only", "STATE-WISE", "--replay", json.dumps(config)]) == 0
    assert "holds" in capsys.readouterr().out


def test_ctrl_c_prints_partial_table(monkeypatch, capsys):
    claim = claims_module.CLAIMS_BY_ID["WELL-POSED"]
    calls = {"n": 0}

    def interrupt(config):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return claim.check(config)

    monkeypatch.setitem(
        claims_module.CLAIMS_BY_ID, "WELL-POSED", claim.__class__(**{**claim.__dict__, "check": interrupt})
    )
    assert main(["--only", "WELL-POSED", "--count", "5"]) == 130
    out = capsys.readouterr().out
    assert "INTERRUPTED" in out and "WELL-POSED" in out


def test_unknown_claim_returns_2(capsys):
    assert main(["--only", "NOPE"]) == 2
    assert "unknown claim" in capsys.readouterr().err  # one line on stderr, as every usage error


@pytest.mark.parametrize("argv", [["--replay", "{}"], ["--count", "0"], ["--quick", "--thorough"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_report_is_strict_json_even_with_non_finite_values(tmp_path, monkeypatch):
    """A measurement of inf (an excess of exactly 0 makes a ratio infinite) or a crash must not
    write Infinity/NaN, which strict JSON parsers reject."""
    claim = claims_module.CLAIMS_BY_ID["WELL-POSED"]

    def check(config):
        if config["seed"] % 2:
            raise RuntimeError("crash on purpose")
        return outcome([claims_module.equal("an infinite error", float("inf"), 1.0)])

    monkeypatch.setitem(claims_module.CLAIMS_BY_ID, "WELL-POSED", claim.__class__(**{**claim.__dict__, "check": check}))
    p = tmp_path / "r.json"
    assert main(["--only", "WELL-POSED", "--count", "4", "--json", str(p)]) == 1

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    report = json.loads(p.read_text(), parse_constant=refuse)
    values = [m["value"] for r in report["claims"][0]["records"] for m in r["measurements"]]
    assert "inf" in values


def test_uniform_bound_refuses_widths_beyond_float_integers():
    import verify

    with pytest.raises(ValueError, match="m must be an integer in"):
        verify.uniform_rate_bound(10**400, gamma=0.5)
