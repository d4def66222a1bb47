"""Certificates at scales 1e-300 and 1e300 (never a false verdict), their arguments and size
budget, their independence from the numerical core, the plan (verify/certify/plan.py) and the
command line, including weakened proof rules and wrong formulas that `--certify` itself must catch.
"""

import ast
import functools
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from certify_support import state
from flint import arb

import verify
from verify import certify as C
from verify.__main__ import main
from verify.certify import ball_model, cli, metric, plan, proof

# ---- extreme scales: never a false verdict ------------------------------------------------------------
TRUE_CERTIFICATES = {
    "UNIFORM-RATE": lambda A, B, Phi, Y, **kw: C.certify_uniform_rate(A, 0.9, **kw),
    "STATE-WISE": lambda A, B, Phi, Y, **kw: C.certify_state_wise(A, B, Phi, Y, 0.9, **kw),
    "ENERGY": lambda A, B, Phi, Y, **kw: C.certify_energy(A, B, Phi, Y, 0.9, **kw),
    "TRUST-REGION": lambda A, B, Phi, Y, **kw: C.certify_trust_region(A, B, Phi, Y, 0.9, **kw),
}


def _false_keywords(claim, arrays, unscaled, what):
    """A false statement at the scaled instance, from the float64 reference (never from the
    certificate): the bound 1e-6 above the reference ratio (STATE-WISE: the ratio is invariant
    under scaling (Phi, Y), where float64 overflows, so the unscaled one is used), a wrong K, a
    wrong multiplier. None where float64 cannot place it (B x 1e300 for STATE-WISE)."""
    from verify.certify.instances import _state_wise_ratio

    R = verify.reference
    if claim == "UNIFORM-RATE":
        return {"bound_factor": R.rate_constant(arrays[0], 0.9) * (1 + 0.9 * np.sqrt(3)) ** 2 * (1 + 1e-6)}
    if claim == "STATE-WISE":
        with np.errstate(all="ignore"):
            ratio = _state_wise_ratio(*(unscaled if what == "data" else arrays), 0.9)
        return {"bound_factor": ratio * (1 + 1e-6)} if np.isfinite(ratio) and ratio > 0 else None
    return {"second_term_scale": 1.001} if claim == "ENERGY" else {"multiplier": 1.001}


@pytest.mark.parametrize("scale", [1e-300, 1e300])
@pytest.mark.parametrize("claim", sorted(TRUE_CERTIFICATES))
@pytest.mark.parametrize("what", ["A", "B", "data"])
def test_every_certificate_at_extreme_scales_never_gives_a_false_verdict(claim, scale, what):
    """A x s, B x s or (Phi, Y) x s at s = 1e-300 and 1e300: a true claim stays certified (or
    consistent) or becomes "not certified" with the reason; a false one is never certified."""
    unscaled = state((3, 2, 5))
    A, B, Phi, Y = unscaled
    if what == "A":
        A = A * scale
    elif what == "B":
        B = B * scale
    else:
        Phi, Y = Phi * scale, Y * scale
    true = TRUE_CERTIFICATES[claim](A, B, Phi, Y)
    assert true.status in (C.CERTIFIED, C.CONSISTENT, C.NOT_CERTIFIED), true.reason
    if true.status == C.NOT_CERTIFIED:
        assert "undecided" in true.reason
    keywords = _false_keywords(claim, (A, B, Phi, Y), unscaled, what)
    if keywords is not None:
        false = TRUE_CERTIFICATES[claim](A, B, Phi, Y, **keywords)
        assert false.status in (C.VIOLATED, C.NOT_CERTIFIED), false.reason


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_naive_bound_at_extreme_logit_gaps(scale):
    assert C.certify_naive_bound_false(30, 0.9, logit_gap=50 * scale).status in (C.CERTIFIED, C.VIOLATED)
    # a saturated softmax (gap 5e301): lambda is ~ that of the gap-50 instance, well below the naive bound
    if scale > 1:
        assert C.certify_naive_bound_false(30, 0.9, logit_gap=50 * scale).status == C.CERTIFIED


# ---- arguments and the size budget ------------------------------------------------------------------
def _bad_calls():
    A, B, Phi, Y = state((3, 2, 5))
    return [
        ("A must be square", lambda: C.certify_uniform_rate(np.zeros((3, 4)), 0.9)),
        ("A must be square", lambda: C.certify_energy(np.zeros((3, 4)), B, Phi, Y, 0.9)),
        ("gamma must lie in the open interval (0, 1)", lambda: C.certify_state_wise(A, B, Phi, Y, 1.5)),
        ("gamma must be a real scalar", lambda: C.certify_state_wise(A, B, Phi, Y, True)),
        ("gamma must lie in the open interval (0, 1)", lambda: C.certify_naive_bound_false(30, 0.0)),
        ("A must be a real numeric array", lambda: C.certify_uniform_rate(A + 0j, 0.9)),
        ("A must be a real numeric array", lambda: C.certify_uniform_rate(A.astype(object), 0.9)),
        ("Phi must contain only finite values", lambda: C.certify_state_wise(A, B, Phi * np.nan, Y, 0.9)),
        ("A must contain only finite values", lambda: C.certify_uniform_rate(A * np.inf, 0.9)),
        ("B must be m_y x m", lambda: C.certify_energy(A, B.T, Phi, Y, 0.9)),
        ("Phi must be m x n", lambda: C.certify_trust_region(A, B, Phi.T, Y, 0.9)),
        ("Y must be m_y x n", lambda: C.certify_trust_region(A, B, Phi, Y[:, :2], 0.9)),
        ("multiplier must be finite", lambda: C.certify_trust_region(A, B, Phi, Y, 0.9, multiplier=np.nan)),
        (
            "bound_factor must be a finite real number",
            lambda: C.certify_state_wise(A, B, Phi, Y, 0.9, bound_factor=True),
        ),
        ("dt_factor must be > 0", lambda: C.certify_trust_region(A, B, Phi, Y, 0.9, dt_factor=-1.0)),
        (
            "step_gap must lie in the open interval (0, 1)",
            lambda: C.certify_trust_region(A, B, Phi, Y, 0.9, step_gap=1.0),
        ),
        ("m must be", lambda: C.certify_naive_bound_false(True)),
        ("precisions must be strictly increasing", lambda: C.certify_uniform_rate(A, 0.9, precisions=(106, 53))),
        ("precisions must be integers", lambda: C.certify_uniform_rate(A, 0.9, precisions=(53.0,))),
        ("instance must be a dict", lambda: C.certify_uniform_rate(A, 0.9, instance="x")),
        ("logit_gap must be finite", lambda: C.certify_naive_bound_false(30, 0.9, logit_gap=np.inf)),
        ("more than 1e300 ball operations", lambda: C.certify_naive_bound_false(10**200)),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_arguments_are_refused_by_name(index):
    message, call = _bad_calls()[index]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize(
    "claim, call",
    [
        ("TRUST-REGION", lambda: C.certify_trust_region(*state((600, 10, 20)), 0.9)),
        ("ENERGY", lambda: C.certify_energy(*state((600, 10, 20)), 0.9)),
        ("UNIFORM-RATE", lambda: C.certify_uniform_rate(np.zeros((1000, 1000)), 0.9)),
        ("STATE-WISE", lambda: C.certify_state_wise(*state((200, 2, 20000)), 0.9)),
    ],
)
def test_instances_over_the_budget_are_refused_before_any_work(claim, call, monkeypatch):
    monkeypatch.setattr(proof, "run_certificate", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ValueError, match=rf"{claim} at m = \d+.* would cost about .* \(limit 3e\+09"):
        call()
    assert C.estimated_cost("TRUST-REGION", 32, 10, 200) < C.COST_LIMIT  # the headline size fits


# ---- independence -----------------------------------------------------------------------------------
CORE = {"model", "gradients", "dynamics", "convergence", "trust_region", "losses", "batched"}


def test_certificates_do_not_import_the_numerical_core():
    imported = set()
    for path in sorted(Path(C.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                # relative imports: "..model" is verify.model (the core); ".balls" stays inside the package
                module = node.module or ""
                imported.add(module if node.level <= 1 else "verify." + module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    outside = {name for name in imported if name.startswith("verify.")}
    assert not {name.split(".")[-1] for name in outside} & CORE, imported
    assert not {name for name in imported if name.split(".")[0] in CORE}, imported


def test_the_plan_places_its_bounds_without_running_a_certificate(monkeypatch):
    """Canaries and near-tight bounds come from the float64 reference: building the plan with every
    certificate (and the ball model) disabled gives the same entries."""
    expected = plan.entries(1, quick=True)

    def forbidden(*args, **kwargs):
        raise AssertionError("the plan ran a certificate to place a bound")

    for name in (
        "certify_energy",
        "certify_naive_bound_false",
        "certify_state_wise",
        "certify_trust_region",
        "certify_uniform_rate",
    ):
        monkeypatch.setattr(plan, name, forbidden)
    monkeypatch.setattr(ball_model.BallState, "__init__", forbidden)
    monkeypatch.setattr(proof, "run_certificate", forbidden)
    assert plan.entries(1, quick=True) == expected


# ---- the plan -----------------------------------------------------------------------------------------
TRAJECTORY_CLAIMS = ("GD-RATE", "INTEGRATED", "NONCONVEX", "CONSERVATION", "STATIONARY")


@pytest.fixture(scope="module")
def quick_plan():
    return plan.entries(0, quick=True)


def test_plan_entries_are_strict_json_with_every_kind_and_claim(quick_plan):
    json.loads(json.dumps(quick_plan, allow_nan=False))
    assert {c["claim"] for c in quick_plan} == set(C.CLAIMS)
    # the trajectory and finite claims have their own rules (test_certify_trajectories.py)
    quick_plan = [c for c in quick_plan if c["claim"] not in TRAJECTORY_CLAIMS]
    for claim in sorted(set(C.CLAIMS) - set(TRAJECTORY_CLAIMS)):
        kinds = {c["kind"] for c in quick_plan if c["claim"] == claim}
        assert {"instance", "tight", "canary"} <= kinds
    assert {c["claim"] for c in quick_plan if c["kind"] == "equality"} == {"STATE-WISE", "ENERGY"}
    for c in quick_plan:
        plan.check_config(c)
        if c["kind"] == "canary":
            assert set(c["expect"]) == {C.VIOLATED, C.NOT_CERTIFIED} and 1e-12 <= c["false_by"] <= 1e-3 * 1.0001
        if c["kind"] == "equality":
            assert c["expect"] == [C.NOT_CERTIFIED]
    margins = {c["claim"]: [] for c in quick_plan}
    for c in quick_plan:
        if c["kind"] == "canary":
            margins[c["claim"]].append(c["false_by"])
    for claim, values in margins.items():  # per claim, canaries from ~1e-12 to 1e-3
        assert min(values) < 1e-11 and max(values) >= 1e-3, (claim, values)


def test_the_quick_plan_comes_out_as_expected(quick_plan):
    for config in quick_plan:
        cert = plan.run_entry(json.loads(json.dumps(config)))  # from its JSON alone
        assert plan.judge(config, cert), (config, cert.status, cert.reason)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_the_full_plan_comes_out_as_expected(seed):
    for config in plan.entries(seed, quick=False):
        cert = plan.run_entry(config)
        assert plan.judge(config, cert), (config, cert.status, cert.reason)


@pytest.mark.parametrize("seed", [0, 3])
def test_near_tight_entries_are_within_a_few_percent_and_canaries_false_against_the_certificate(seed):
    """The reference-placed ratios agree with the certificate's own enclosures to within the
    reference's error bound (the canaries are false whatever the reference's rounding)."""
    from verify.certify.instances import reference_values

    factors = ("bound_factor", "rate_factor", "energy_factor")
    checked = 0
    for config in plan.entries(seed, quick=True):
        if "ratio_ref" not in config or config["kind"] != "tight" or config["claim"] in TRAJECTORY_CLAIMS:
            continue
        cert = plan.run_entry({k: v for k, v in config.items() if k not in factors})
        energy = "energy_factor" in config or "energy_ratio" in config.get("label", "")
        key = {"ENERGY": "-dL/dt / (lambda ||g||^2)" if energy else "lambda_min(K) / lambda(A)"}.get(
            config["claim"], "ratio"
        )
        ratio = cert.enclosures[key]
        floor = reference_values(config)["floor"]
        assert abs(ratio.mid / config["ratio_ref"] - 1) <= floor, config
        if not any(f in config for f in factors):
            assert abs(ratio.mid - 1) < 0.05  # a natural near-tight instance
        checked += 1
    assert checked >= 5


def test_run_entry_refuses_configurations_it_cannot_rebuild():
    config = plan.entries(0, quick=True)[10]
    for bad, message in [
        ({**config, "m": True}, "config\\['m'\\] must be an integer"),
        ({**config, "claim": "NOPE"}, "config\\['claim'\\] must be one of"),
        ({**config, "typo": 1}, "keys \\['typo'\\]"),
        ({**config, "expect": ["proved"]}, "config\\['expect'\\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            plan.run_entry(bad)


# ---- the command line ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _small_plan(seed):
    small = [c for c in plan.entries(seed, quick=True) if c["m"] <= 8]
    # the first entries, and the first ENERGY entry (a "consistent" verdict) wherever it sits in the plan
    return json.dumps(small[:12] + [c for c in small[12:] if c["claim"] == "ENERGY"][:1])


def small_plan(seed, *, quick):
    """A fast stand-in for the plan (CLI tests): every kind of entry and every verdict."""
    return json.loads(_small_plan(seed))


def test_cli_certify_writes_strict_json_and_markdown_and_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "entries", small_plan)
    path, md = tmp_path / "certify.json", tmp_path / "certify.md"
    old = os.umask(0o022)
    try:
        assert main(["--certify", "--json", str(path), "--markdown", str(md)]) == 0
    finally:
        os.umask(old)
    text = path.read_text()
    report = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert report["all_as_expected"] is True and report["interrupted"] is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    statuses_ = {e["certificate"]["status"] for e in report["entries"]}
    assert {C.CERTIFIED, C.CONSISTENT, C.VIOLATED, C.NOT_CERTIFIED} <= statuses_
    assert "| consistent to |" in md.read_text().splitlines()[0]
    for e in report["entries"]:
        if e["certificate"]["status"] == C.CONSISTENT:
            assert e["certificate"]["consistent_bits"] >= C.EQUATION_BITS


def test_cli_exit_status_is_one_when_an_entry_is_unexpected(monkeypatch, capsys):
    def with_a_lie(seed, *, quick):
        entries = small_plan(seed, quick=quick)
        canary = next(c for c in entries if c["kind"] == "canary")
        return entries + [{**canary, "expect": [C.CERTIFIED]}]  # a canary that "should" pass

    monkeypatch.setattr(cli, "entries", with_a_lie)
    assert main(["--certify"]) == 1
    out = capsys.readouterr().out
    assert "UNEXPECTED" in out and "--certify --replay" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--certify", "--count", "3"], "--count does not apply to --certify"),
        (["--certify", "--workers", "2"], "--workers does not apply to --certify"),
        (["--certify", "--thorough"], "--thorough does not apply to --certify"),
        (["--certify", "--scheduler", "tcp://localhost:8786"], "--scheduler does not apply to --certify"),
        (["--certify", "--scale"], "--certify does not apply with --scale"),
        (["--certify", "--only", "WELL-POSED"], "have no certificate"),
        (["--certify", "--seed", "-1"], "--seed must be >= 0"),
        (["--certify", "--replay", "{"], "--replay: not JSON"),
        (["--certify", "--replay", "{}"], "config['claim'] must be one of"),
        (["--certify", "--replay", "{}", "--only", "ENERGY"], "--only does not apply to --certify --replay"),
    ],
)
def test_cli_refuses_flags_that_do_not_apply(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_entry", lambda c: pytest.fail("work started"))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["directory", "empty", "under a file", "same file"])
def test_cli_bad_report_paths_fail_before_any_work(where, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "entries", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "file").write_text("x")
    argv = {
        "directory": ["--json", str(tmp_path)],
        "empty": ["--json", ""],
        "under a file": ["--json", str(tmp_path / "file" / "r.json")],
        "same file": ["--json", str(tmp_path / "r"), "--markdown", str(tmp_path / "r")],
    }[where]
    assert main(["--certify", *argv]) == 2
    assert "deq-verify: error:" in capsys.readouterr().err


def test_cli_only_selects_claims_and_replay_runs_one_entry(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "entries", small_plan)
    path = tmp_path / "r.json"
    assert main(["--certify", "--only", "UNIFORM-RATE,STATE-WISE", "--json", str(path)]) == 0
    claims = {e["config"]["claim"] for e in json.loads(path.read_text())["entries"]}
    assert claims == {"UNIFORM-RATE", "STATE-WISE"}
    entry = next(c for c in small_plan(0, quick=True) if c["kind"] == "canary")
    assert main(["--certify", "--replay", json.dumps(entry), "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["mode"] == "certify replay" and len(report["entries"]) == 1
    assert report["entries"][0]["config"] == entry


def test_cli_ctrl_c_prints_the_partial_table_writes_the_report_and_exits_130(monkeypatch, tmp_path, capsys):
    calls = []

    def interrupted(config):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return plan.run_entry(config)

    monkeypatch.setattr(cli, "entries", small_plan)
    monkeypatch.setattr(cli, "run_entry", interrupted)
    path = tmp_path / "r.json"
    assert main(["--certify", "--json", str(path)]) == 130
    assert "INTERRUPTED" in capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report["interrupted"] is True and report["all_as_expected"] is False and len(report["entries"]) == 2


def test_cli_fail_fast_stops_at_the_first_unexpected_entry(monkeypatch):
    def lie_first(seed, *, quick):
        entries = small_plan(seed, quick=quick)
        wrong = [v for v in C.VERDICTS if v not in entries[0]["expect"]][:1]
        return [{**entries[0], "expect": wrong}] + entries[1:]

    monkeypatch.setattr(cli, "entries", lie_first)
    calls = []
    monkeypatch.setattr(cli, "run_entry", lambda c: calls.append(c) or plan.run_entry(c))
    assert main(["--certify", "--fail-fast"]) == 1 and len(calls) == 1


# ---- weakened proof rules and wrong formulas make --certify itself fail (quick plan) -----------------
def _straddle_counts(statement, diff, detail=""):
    return proof.Item(statement, "inequality", proof.FAILED if diff < 0 else proof.PROVED, proof.Enclosure.of(diff))


def _stop_at_first(claim, instance, compute, precisions=proof.PRECISIONS):
    return original_run_certificate(claim, instance, compute, precisions[:1])


original_run_certificate = proof.run_certificate


def _wrong_gradient(self, *args):
    original_init(self, *args)
    self.dL_dA, self.dL_dB = self.dL_dA * 10, self.dL_dB * 10
    self.grad_norm_sq = C.balls.frobenius_sq(self.dL_dA) + C.balls.frobenius_sq(self.dL_dB)


original_init = ball_model.BallState.__init__


original_metric_init = metric.StructuredMetric.__init__
original_apply, original_hessian = metric.StructuredMetric.apply, metric.StructuredMetric.apply_hessian


def _gamma_not_squared(self, st, second_term_scale=1.0):
    original_metric_init(self, st, second_term_scale)
    self.c = self.c / st.gamma
    self.M = [C.balls.ball_identity(self.my) + Nj * self.c for Nj in self.N]


@pytest.mark.parametrize(
    "weakening",
    [
        "straddle counted as proved",
        "equation rule loosened 2^30",
        "loop stops at 53 bits",
        "gradient x 10",
        "lambda = 1/||U||",
        "K x 1.05",
        "H x 0.95",
        "gamma instead of gamma^2 in K",
    ],
)
def test_weakened_rules_and_wrong_formulas_fail_the_quick_plan(weakening, monkeypatch, quick_plan):
    import verify.certify.statements as statements

    if weakening == "straddle counted as proved":
        monkeypatch.setattr(statements, "inequality", _straddle_counts)
    elif weakening == "equation rule loosened 2^30":
        monkeypatch.setattr(proof, "EQUATION_BITS", proof.EQUATION_BITS - 30)
    elif weakening == "loop stops at 53 bits":
        monkeypatch.setattr(statements, "run_certificate", _stop_at_first)
    elif weakening == "gradient x 10":
        monkeypatch.setattr(ball_model.BallState, "__init__", _wrong_gradient)
    elif weakening == "K x 1.05":
        monkeypatch.setattr(metric.StructuredMetric, "apply", lambda self, X: original_apply(self, X) * arb(1.05))
    elif weakening == "H x 0.95":
        monkeypatch.setattr(
            metric.StructuredMetric, "apply_hessian", lambda self, X: original_hessian(self, X) * arb(0.95)
        )
    elif weakening == "gamma instead of gamma^2 in K":
        monkeypatch.setattr(metric.StructuredMetric, "__init__", _gamma_not_squared)
    else:
        monkeypatch.setattr(
            ball_model,
            "rate_enclosure",
            lambda U: (arb(1) / ball_model.norm_sq_enclosure(U).sqrt(), ball_model.norm_sq_enclosure(U)),
        )
        monkeypatch.setattr(statements, "rate_enclosure", ball_model.rate_enclosure)
    wrong = [c for c in quick_plan if not plan.judge(c, plan.run_entry(c))]
    assert wrong, f"the quick plan did not notice: {weakening}"
