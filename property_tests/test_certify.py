"""Certified verdicts (verify/certify.py): ball-arithmetic proofs at concrete instances.

Each certificate must (i) succeed on true instances, (ii) fail on false ones -- a certified
violation or "not certified", never "certified" -- and (iii) enclose the float64 values of the
numerical core, up to the float64 computation's own rounding error (stated per quantity).
"""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from flint import acb_mat, arb, arb_mat, ctx
from hypothesis import given

import verify
from verify import certify as C
from verify.__main__ import main
from verify.dynamics import preconditioner, vec
from verify.gradients import DEQObjective
from verify.trust_region import solve_trust_region
from strategies import budget, cases, make_case

EPS = np.finfo(float).eps


def assert_encloses(ball: arb, value: float, float_error: float = 0.0, what: str = "") -> None:
    """value lies in the ball, widened by float_error (the float64 value's own rounding bound)."""
    lo, hi = float(ball.lower()), float(ball.upper())
    assert lo - float_error <= value <= hi + float_error, f"{what}: {value!r} not in {ball} (+- {float_error:.1e})"


def assert_matrix_encloses(balls: arb_mat, values: np.ndarray, float_error: float, what: str) -> None:
    values = np.asarray(values).reshape(balls.nrows(), balls.ncols())
    for (i, j), x in np.ndenumerate(values):
        assert_encloses(balls[i, j], float(x), float_error, f"{what}[{i},{j}]")


def statuses(cert) -> dict:
    return {it.statement: it.status for it in cert.items}


def cond_bound(gamma):
    """cond_1(U) <= (1 + gamma) / (1 - gamma) (docs/theory.md, section 2)."""
    return (1 + gamma) / (1 - gamma)


# ---- eigenvalue enclosures against an independent rigorous method --------------------------------
def _flint_eigenvalues(M: arb_mat, multiple: bool = False) -> list[arb]:
    """flint's rigorous eigenvalue enclosures (acb_mat.eig); real parts sorted by midpoint."""
    return sorted((e.real for e in acb_mat(M).eig(multiple=multiple)), key=lambda x: float(x.mid()))


@pytest.mark.parametrize("bits", [53, 212])
@pytest.mark.parametrize("seed, n", [(0, 6), (1, 24)])
def test_extremal_eigenvalue_enclosures_overlap_flint_eig_and_tighten_with_precision(bits, seed, n):
    X = np.random.default_rng(seed).standard_normal((n, n))
    M = X @ X.T  # symmetric positive definite; exact as a ball
    with ctx.workprec(bits):
        Mb = C.ball_matrix(M)
        low, high = C.lambda_min_enclosure(Mb), C.lambda_max_enclosure(Mb)
        ev = _flint_eigenvalues(Mb)
        assert low.overlaps(ev[0]) and high.overlaps(ev[-1])
        scale = float(np.abs(M).max())
        # the width follows the precision (an enclosure of width 1 would "overlap" too)
        assert float(low.rad()) < 2.0 ** (20 - bits) * scale and float(high.rad()) < 2.0 ** (20 - bits) * scale
    w = np.linalg.eigvalsh(M)  # backward stable: error <= c n eps ||M||_2
    assert_encloses(low, w[0], 10 * n * EPS * w[-1])
    assert_encloses(high, w[-1], 10 * n * EPS * w[-1])


def test_enclosures_at_a_multiple_eigenvalue_and_known_spectra():
    # U^T U at the concentrated A: eigenvalue ~1 of multiplicity m - 2, lambda_max isolated
    _, U = C.implicit_matrix_ball(C.concentrated_instance(8), 0.9)
    M = U.transpose() * U
    ev = _flint_eigenvalues(M, multiple=True)
    assert C.lambda_max_enclosure(M).overlaps(ev[-1])
    assert C.lambda_min_enclosure(M).overlaps(ev[0])
    two = C.ball_matrix(np.array([[2.0, 1.0], [1.0, 2.0]]))  # eigenvalues exactly 1 and 3
    assert C.lambda_min_enclosure(two).contains(1) and C.lambda_max_enclosure(two).contains(3)
    assert not C.lambda_min_enclosure(two).contains(1.000001)


def test_positive_definiteness_is_never_proved_for_singular_or_indefinite_matrices():
    singular = C.ball_matrix(np.ones((3, 3)))  # eigenvalues 0, 0, 3
    assert C.positive_definite("M > 0", C.lambda_min_enclosure(singular)).status == C.UNDECIDED
    indefinite = C.ball_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues -1, 3
    assert C.positive_definite("M > 0", C.lambda_min_enclosure(indefinite)).status == C.FAILED
    # a ball too wide for the congruence proof: the upper end alone still refutes M > 0
    wide = arb_mat([[arb("-1 +/- 0.5"), arb("0 +/- 3")], [arb("0 +/- 3"), arb("5 +/- 10")]])
    assert C.positive_definite("M > 0", C.lambda_min_enclosure(wide)).status == C.FAILED


# ---- NAIVE-BOUND-FALSE and UNIFORM-RATE -------------------------------------------------------------
def test_naive_bound_is_certified_false_at_the_concentrated_weight():
    cert = C.certify_naive_bound_false(30, 0.9)
    assert cert.status == C.CERTIFIED and cert.bits == 53
    lam = cert.balls["lam"]
    assert float(lam.rad()) < 1e-13  # the target: +- 2e-12
    # float64 lambda = 1/||U||_2^2 from an SVD: relative error <= c m eps
    assert_encloses(lam, verify.rate_constant(C.concentrated_instance(30), gamma=0.9), 10 * 30 * EPS, "lambda")
    assert cert.enclosures["1/(1+gamma)^2"].contains(1 / 1.9 ** 2)
    assert cert.enclosures["1/(1+gamma sqrt m)^2"].contains(1 / (1 + 0.9 * np.sqrt(30)) ** 2)


def test_naive_bound_certificate_reports_a_violation_where_the_naive_bound_holds():
    # m = 2: lambda(A) ~ 0.55 > 1/(1.9)^2 ~ 0.277, so "lambda < 1/(1+gamma)^2" is false
    cert = C.certify_naive_bound_false(2, 0.9)
    assert cert.status == C.VIOLATED
    assert statuses(cert)["lambda(A) < 1/(1+gamma)^2"] == C.FAILED
    assert "certified violation" in cert.reason


@pytest.mark.parametrize("seed, m, gamma, a_scale", [(0, 32, 0.9, 1.0), (1, 32, 0.99, 3.0), (2, 5, 0.3, 0.1), (3, 1, 0.9, 1.0)])
def test_uniform_rate_is_certified_and_encloses_the_float_value(seed, m, gamma, a_scale):
    A = make_case(seed, m, 1, 1, gamma, a_scale=a_scale).A
    cert = C.certify_uniform_rate(A, gamma)
    assert cert.status == C.CERTIFIED
    assert_encloses(cert.balls["lam"], verify.rate_constant(A, gamma=gamma), 10 * m * EPS, "lambda")
    assert cert.balls["norm_sq"].sqrt() < 1 + arb(gamma) * arb(m).sqrt()  # the rigorous ||U||_2 bound
    assert cert.enclosures["lambda(A)"].rel_width < 1e-12


@given(cases(loss="square"))
@budget(10, 100)
def test_uniform_rate_is_certified_on_random_weights(case):
    assert C.certify_uniform_rate(case.A, case.gamma).status == C.CERTIFIED


def test_uniform_rate_with_a_perturbed_bound_is_a_certified_violation():
    A = make_case(0, 32, 1, 1, 0.9).A
    ratio = verify.rate_constant(A, gamma=0.9) / verify.uniform_rate_bound(32, gamma=0.9)
    cert = C.certify_uniform_rate(A, 0.9, bound_factor=ratio * (1 + 1e-9))  # bound 1e-9 above lambda
    assert cert.status == C.VIOLATED and cert.bits == 53
    assert C.certify_uniform_rate(A, 0.9, bound_factor=ratio * (1 - 1e-9)).status == C.CERTIFIED


def test_a_near_tie_raises_the_precision_and_agrees_with_an_independent_enclosure():
    # bound_factor = lambda / bound in float64: the two sides differ by ~1e-16, below the 53-bit widths
    A = make_case(0, 6, 1, 1, 0.9).A
    factor = verify.rate_constant(A, gamma=0.9) / verify.uniform_rate_bound(6, gamma=0.9)
    cert = C.certify_uniform_rate(A, 0.9, bound_factor=factor)
    assert cert.bits > 53 and cert.status in (C.CERTIFIED, C.VIOLATED)
    with ctx.workprec(300):  # lambda from flint's eigenvalues of U^T U (another method), 300 bits
        _, U = C.implicit_matrix_ball(A, 0.9)
        lam = arb(1) / _flint_eigenvalues(U.transpose() * U)[-1]
        diff = lam - arb(factor) / (1 + arb(0.9) * arb(6).sqrt()) ** 2
        assert diff > 0 or diff < 0
        assert cert.status == (C.CERTIFIED if diff > 0 else C.VIOLATED)
    # with only 53 bits the same claim is undecided: "not certified", never a pass
    low = C.certify_uniform_rate(A, 0.9, bound_factor=factor, precisions=(53,))
    assert low.status == C.NOT_CERTIFIED and "undecided" in low.reason


# ---- STATE-WISE ---------------------------------------------------------------------------------------
def _state_wise(shape, seed=0, gamma=0.9, **kw):
    case = make_case(seed, *shape, gamma)
    return case, C.certify_state_wise(case.A, case.B, case.Phi, case.Y, gamma, **kw)


@pytest.mark.parametrize("shape", [(32, 10, 200), (3, 6, 10), (40, 5, 20), (2, 1, 5)])
def test_state_wise_is_certified_and_encloses_the_float_values(shape):
    case, cert = _state_wise(shape)
    assert cert.status == C.CERTIFIED
    m, m_y, n = shape
    b = cert.balls
    problem = verify.ShallowProblem(case.Phi, case.Y, "square")
    st_ = DEQObjective(problem, gamma=0.9).evaluate(case.A, case.B, with_excess=True)
    # float64 gradients: products and LU solves with U, error <= c (m + n) cond(U)^2 eps |entries|
    tol = 100 * (m + n) * cond_bound(0.9) ** 2 * EPS
    assert_matrix_encloses(b["dL_dA"], st_.dA, tol * np.abs(st_.dA).max(), "dL/dA")
    assert_matrix_encloses(b["dL_dB"], st_.dB, tol * np.abs(st_.dB).max(), "dL/dB")
    assert_encloses(b["grad_norm_sq"], st_.grad_norm_sq, 2 * tol * st_.grad_norm_sq, "||grad||^2")
    assert_encloses(b["excess"], st_.excess, tol * st_.excess, "L - L*")
    assert_encloses(b["lam"], verify.rate_constant(case.A, gamma=0.9), 10 * m * EPS, "lambda")
    # kappa from a float eigen-solver on the Gram matrix: error <= c max(m, n) eps ||Phi Phi^T||
    gram_norm = np.linalg.norm(case.Phi, 2) ** 2
    assert_encloses(b["kappa"], problem.pl_constant, 10 * max(m, n) * EPS * gram_norm, "kappa")
    assert cert.max_rel_width < 1e-9
    if m > n:
        assert any("Phi^T Phi" in it.statement for it in cert.items)  # the nonzero spectrum, n x n


def test_state_wise_with_kappa_too_large_is_a_certified_violation():
    _, cert = _state_wise((32, 10, 200))
    ratio = cert.enclosures["ratio"].mid  # LHS / (2 kappa lambda (L - L*)), about 387 here
    for factor, expected in [(1.5 * ratio, C.VIOLATED), (ratio * (1 + 1e-6), C.VIOLATED), (ratio * (1 - 1e-6), C.CERTIFIED)]:
        _, wrong = _state_wise((32, 10, 200), kappa_factor=factor)
        assert wrong.status == expected, (factor, wrong.reason)


def test_state_wise_equality_at_m_equal_1_is_never_certified():
    # m = 1: the inequality is an equality (README), so no ball can prove it at any precision
    _, cert = _state_wise((1, 3, 5))
    assert cert.status == C.NOT_CERTIFIED and cert.bits == C.PRECISIONS[-1]
    assert "undecided" in cert.reason and "2 kappa lambda(A) (L - L*)" in cert.reason


def test_state_wise_with_rank_deficient_data_is_not_certified():
    # m > n and two equal feature columns: rank Phi = n - 1, kappa's positive lower bound cannot be proved
    case = make_case(0, 6, 2, 4, 0.9)
    Phi = case.Phi.copy()
    Phi[:, 3] = Phi[:, 2]
    cert = C.certify_state_wise(case.A, case.B, Phi, case.Y, 0.9)
    assert cert.status == C.NOT_CERTIFIED
    assert any(it.kind == "positive definite" and it.status == C.UNDECIDED for it in cert.items)


@given(cases(loss="square"))
@budget(10, 100)
def test_state_wise_is_certified_on_random_states_except_at_the_equality_m_1(case):
    cert = C.certify_state_wise(case.A, case.B, case.Phi, case.Y, case.gamma)
    assert cert.status != C.VIOLATED  # the theorem is true
    if case.m == 1:
        assert cert.status == C.NOT_CERTIFIED
    elif np.linalg.svd(case.Phi, compute_uv=False).min() > 1e-6:  # full-rank data
        assert cert.status == C.CERTIFIED, cert.reason


# ---- ENERGY ------------------------------------------------------------------------------------------
def _energy(shape, seed=0, gamma=0.9, **kw):
    case = make_case(seed, *shape, gamma)
    return case, C.certify_energy(case.A, case.B, case.Phi, case.Y, gamma, **kw)


@pytest.mark.parametrize("shape", [(32, 10, 200), (8, 2, 4), (2, 1, 5)])
def test_energy_is_certified_and_encloses_the_float_metric(shape):
    case, cert = _energy(shape)
    assert cert.status == C.CERTIFIED, cert.reason
    m, m_y, n = shape
    K = preconditioner(case.A, case.B, gamma=0.9)
    # float64 K: products of U^{-1} factors and W, error <= c m cond(U)^2 eps max|K|
    assert_matrix_encloses(cert.balls["K"], K, 100 * m * cond_bound(0.9) ** 2 * EPS * np.abs(K).max(), "K")
    lam_K = np.linalg.eigvalsh(K)[0]  # backward stable
    assert_encloses(cert.balls["lam_K"], lam_K, 10 * K.shape[0] * EPS * np.abs(K).max(), "lambda_min(K)")


@pytest.mark.parametrize("scale", [0.0, 1 / 0.9, 1.001])
def test_energy_with_a_wrong_metric_is_a_certified_violation(scale):
    # 0: the gamma^2 term dropped; 1/gamma: gamma instead of gamma^2; 1.001: off by 0.1 %
    _, cert = _energy((8, 2, 4), second_term_scale=scale)
    assert cert.status == C.VIOLATED
    failed = {s for s, v in statuses(cert).items() if v == C.FAILED}
    assert "vec(dW/dt) = -K g" in failed and "dL/dt = -g^T K g" in failed
    assert "dL/dt = -(||dL/dA||^2 + ||dL/dB||^2)" not in failed  # the gradients are still right


def test_energy_metric_bound_is_tight_and_not_certified_when_m_below_m_y():
    # m < m_y: W J_j^2 W^T share a null space, so lambda_min(K) = lambda(A) exactly
    _, cert = _energy((3, 6, 10))
    assert cert.status == C.NOT_CERTIFIED
    s = statuses(cert)
    assert s["K >= lambda(A) I  (lambda_min(K) - lambda(A))"] == C.UNDECIDED
    assert s["-dL/dt >= lambda(A) ||g||^2"] == C.PROVED and s["vec(dW/dt) = -K g"] == C.CONTAINED


# ---- TRUST-REGION ------------------------------------------------------------------------------------
def _trust_region(shape, seed=0, gamma=0.9, **kw):
    case = make_case(seed, *shape, gamma)
    return case, C.certify_trust_region(case.A, case.B, case.Phi, case.Y, gamma, **kw)


@pytest.mark.parametrize("shape", [(3, 6, 10), (8, 2, 4)])
def test_trust_region_kkt_is_certified_and_encloses_the_float_solver(shape):
    case, cert = _trust_region(shape)
    assert cert.status == C.CERTIFIED, cert.reason
    assert cert.bits == 106  # at 53 bits the explicit K^{-1} is too wide for the stationarity residual
    dt = cert.instance["dt"]
    K = preconditioner(case.A, case.B, gamma=0.9)
    problem = verify.ShallowProblem(case.Phi, case.Y, "square")
    W = verify.end_to_end_weight(case.A, case.B, gamma=0.9)
    g, H = vec(problem.gradient(W)), problem.hessian(W)
    v = -dt * K @ g
    tol = 100 * K.shape[0] * cond_bound(0.9) ** 2 * EPS * np.abs(v).max()
    assert_matrix_encloses(cert.balls["v"], v, tol, "v = -dt K g")
    G = np.linalg.inv(K) / dt - H
    G = 0.5 * (G + G.T)
    solution = solve_trust_region(g, H, G, float(np.sqrt(v @ G @ v)))
    # the float solver stops at relative 1e-12 in the radius, i.e. ~1e-12 cond(H~ + I) in v
    assert solution.multiplier == pytest.approx(1.0, rel=1e-8)
    assert_matrix_encloses(cert.balls["v_kkt"], solution.v, 1e-8 * np.abs(v).max(), "v_KKT")


def test_trust_region_at_the_requested_size():
    _, cert = _trust_region((32, 10, 200))
    assert cert.status == C.CERTIFIED and all(it.status in (C.PROVED, C.CONTAINED) for it in cert.items)


def test_trust_region_step_bound_is_sharp_and_depends_on_H():
    # G_dt > 0 at dt = (1 - 2^-6) / lambda_max(K^{1/2} H K^{1/2}) and x^T G_dt x < 0 at (1 + 2^-6)
    _, cert = _trust_region((8, 2, 4))
    s = statuses(cert)
    assert s["G_dt > 0 at dt = (1 - 2^-6) dt_max"] == C.PROVED
    assert s["x^T G_dt x < 0 at dt = (1 + 2^-6) dt_max"] == C.PROVED


def test_trust_region_with_a_wrong_multiplier_is_a_certified_violation():
    _, cert = _trust_region((3, 6, 10), multiplier=1.001)
    assert cert.status == C.VIOLATED
    assert statuses(cert)["(H + 1.001 G) v + g = 0 at v = -dt K g"] == C.FAILED


def test_trust_region_beyond_the_step_bound_is_a_certified_violation():
    _, cert = _trust_region((8, 2, 4), dt_factor=2.0)  # G = K^{-1}/dt - H is indefinite
    assert cert.status == C.VIOLATED
    assert statuses(cert)["G = K^{-1}/dt - H > 0"] == C.FAILED


def test_trust_region_is_not_certified_at_53_bits_alone():
    _, cert = _trust_region((3, 6, 10), precisions=(53,))
    assert cert.status == C.NOT_CERTIFIED
    assert "(H + 1.0 G) v + g = 0" in cert.reason and "too wide" in cert.reason


# ---- independence and the command line ----------------------------------------------------------------
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
    core = {"model", "gradients", "dynamics", "convergence", "trust_region", "losses", "batched"}
    outside = {name for name in imported if name.startswith("verify.")}
    assert not {name.split(".")[-1] for name in outside} & core, imported


def test_cli_certify_writes_json_and_exits_zero(tmp_path, monkeypatch):
    # the default plan at small sizes (the full plan is timed in the README; m = 32 is tested above)
    monkeypatch.setattr(C.plan, "PLAN_SHAPES", {claim: [(3, 2, 5), (4, 2, 3)] for claim in C.PLAN_SHAPES})
    monkeypatch.setattr(C.plan, "PLAN_RATE", [(6, 0.9, 1.0), (6, 0.9, None)])
    path = tmp_path / "certify.json"
    assert main(["--certify", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["all_certified"] is True
    assert {c["claim"] for c in report["certificates"]} == set(C.CLAIMS)
    assert all(c["status"] == "certified" for c in report["certificates"])


def test_cli_exit_status_is_one_when_a_certificate_fails(capsys):
    from rich.console import Console

    A = make_case(0, 6, 1, 1, 0.9).A
    plan = [("UNIFORM-RATE", lambda: C.certify_uniform_rate(A, 0.9)),
            ("UNIFORM-RATE", lambda: C.certify_uniform_rate(A, 0.9, bound_factor=100.0))]
    assert C.run_cli(Console(width=170), plan=plan) == 1
    assert "VIOLATED" in capsys.readouterr().out
