"""Certified verdicts (verify/certify/): ball-arithmetic proofs at concrete instances.

Each certificate must (i) prove true instances (certified; consistent where equations are
involved), (ii) never pass a false statement -- a certified violation or "not certified", never
"certified" or "consistent" -- and leave exact equalities "not certified", (iii) enclose the
float64 values of the numerical core, up to the float64 computation's own rounding error (stated
per quantity), and (iv) keep (i)-(ii) at scales 1e-300 and 1e300. The plan (verify/certify/plan.py)
and the command line are tested at the end, including weakened proof rules and wrong formulas
that `--certify` itself must catch.
"""

import ast
import functools
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from flint import acb_mat, arb, arb_mat, ctx
from hypothesis import given
from strategies import budget, cases, make_case

import verify
from verify import certify as C
from verify.__main__ import main
from verify.certify import ball_model, cli, kronecker, metric, plan, proof
from verify.dynamics import preconditioner, vec
from verify.gradients import DEQObjective
from verify.sampling import tight_state_wise_case
from verify.trust_region import solve_trust_region

EPS = np.finfo(float).eps
PROOF_VERDICTS = (C.CERTIFIED, C.CONSISTENT)


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


def state(shape, seed=0, gamma=0.9):
    case = make_case(seed, *shape, gamma)
    return case.A, case.B, case.Phi, case.Y


# ---- items and verdicts: every decision is an Arb comparison ----------------------------------------
def test_inequality_items_decide_only_on_whole_balls():
    assert C.inequality("x > 0", arb("1e-30 +/- 1e-31")).status == C.PROVED
    assert C.inequality("x > 0", arb("-1e-30 +/- 1e-31")).status == C.FAILED
    assert C.inequality("x > 0", arb("0 +/- 1e-300")).status == C.UNDECIDED          # straddles
    assert C.inequality("x > 0", arb(1) / arb("0 +/- 1")).status == C.UNDECIDED       # [+/- inf]
    assert C.positive_definite("M > 0", arb("nan")).status == C.UNDECIDED
    huge = arb(10) ** 1000  # beyond float64: decided in Arb, reported as +inf
    item = C.inequality("x > 0", huge)
    assert item.status == C.PROVED and item.margin.hi == np.inf and item.margin.lo > 1e307


def test_equation_items_report_consistency_bits_from_the_balls():
    # residual within 2^-70 of 0, largest term 1: consistent to 2^-69 or 2^-70 (radius rounded up)
    item = C.equation("x = y", [arb(0, 2.0 ** -70)], [arb(1)])
    assert item.status == C.CONSISTENT and item.consistent_bits in (69, 70)
    # the same relative size with terms beyond float64 (1e1000): no overflow, the same k
    big = arb(10) ** 1000
    item = C.equation("x = y", [arb(0, 2.0 ** -70) * big], [big])
    assert item.status == C.CONSISTENT and item.consistent_bits in (68, 69, 70)
    assert C.equation("x = y", [arb("1e-40 +/- 1e-41")], [arb(1)]).status == C.FAILED
    assert C.equation("x = y", [arb(0)], [arb(1)]).status == C.PROVED                 # exactly 0
    assert C.equation("x = y", [arb(0, 1e-20)], [arb(0, 1e-10)]).status == C.UNDECIDED  # terms may vanish
    assert C.equation("x = y", [arb(0, 2.0)], [arb(1)]).status == C.UNDECIDED          # wider than the terms
    assert C.equation("x = y", [arb(1) / arb("0 +/- 1")], [arb(1)]).status == C.UNDECIDED


def test_verdicts_need_every_item_and_equations_to_two_to_the_minus_64():
    proved = C.inequality("a", arb(1))
    eq = C.equation("b", [arb(0, 2.0 ** -100)], [arb(1)])
    short = C.equation("c", [arb(0, 2.0 ** -40)], [arb(1)])
    assert proof.verdict_of([proved]) == C.CERTIFIED
    assert proof.verdict_of([proved, eq]) == C.CONSISTENT
    assert proof.verdict_of([proved, short]) == C.NOT_CERTIFIED
    assert proof.verdict_of([proved, C.inequality("d", arb(0, 1))]) == C.NOT_CERTIFIED
    assert proof.verdict_of([eq, C.inequality("e", arb(-1))]) == C.VIOLATED


def test_the_precision_loop_keeps_going_until_equations_reach_the_target():
    # an equation with a residual of 2^-50 at every precision: violated once the ball is narrow enough
    def compute(cert):
        cert.items.append(C.equation("x = y", [arb(2.0 ** -50) + arb(0, 2.0 ** (10 - ctx.prec))], [arb(1)]))
    cert = C.run_certificate("UNIFORM-RATE", {}, compute)
    assert cert.status == C.VIOLATED and cert.bits == 106 and cert.history[0][:2] == (53, C.NOT_CERTIFIED)

    def exact(cert):  # a true equation: consistent at the first precision whose k reaches 64
        cert.items.append(C.equation("x = y", [arb(0, 2.0 ** (10 - ctx.prec))], [arb(1)]))
    cert = C.run_certificate("UNIFORM-RATE", {}, exact)
    assert cert.status == C.CONSISTENT and cert.bits == 106 and cert.consistent_bits >= C.EQUATION_BITS


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


@pytest.mark.parametrize("exponent", [-3000, 3000])
def test_eigenvalue_enclosures_at_scales_beyond_float64(exponent):
    # 2^+-3000 M: the float64 eigenbasis is computed for an exactly rescaled matrix
    X = np.random.default_rng(2).standard_normal((5, 5))
    M = C.ball_matrix(X @ X.T)
    factor = arb(2) ** exponent
    low, base = C.lambda_min_enclosure(M * factor), C.lambda_min_enclosure(M)
    assert low > 0 and (low / factor).overlaps(base)
    assert float((low / factor).rad()) < 1e-12 * float(base.mid())


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


def test_softmax_ball_at_logits_beyond_arb_exp():
    # exp(1e300) is [+/- inf] in Arb; the shifted softmax is one-hot up to exp(-1e300)
    S = C.column_softmax_ball(np.array([[1e300, -1e300], [-1e300, 1e300]]))
    assert all(x.is_finite() for x in S.entries())
    assert S[0, 0].contains(1) and S[1, 0] < 1e-300 and S[1, 0] >= 0


# ---- NAIVE-BOUND-FALSE and UNIFORM-RATE -------------------------------------------------------------
def test_naive_bound_is_certified_false_at_the_concentrated_weight():
    cert = C.certify_naive_bound_false(30, 0.9)
    assert cert.status == C.CERTIFIED and cert.bits == 53
    lam = cert.balls["lam"]
    assert float(lam.rad()) < 1e-13
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


@pytest.mark.parametrize("seed, m, gamma, a_scale", [(0, 32, 0.9, 1.0), (1, 32, 0.99, 3.0), (2, 5, 0.3, 0.1),
                                                     (3, 1, 0.9, 1.0)])
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
    low = C.certify_uniform_rate(A, 0.9, bound_factor=factor, precisions=(53,))
    assert low.status == C.NOT_CERTIFIED and "undecided" in low.reason


# ---- STATE-WISE ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [pytest.param((32, 10, 200), marks=pytest.mark.slow), (3, 6, 10), (40, 5, 20),
                                   (2, 1, 5)])
def test_state_wise_is_certified_and_encloses_the_float_values(shape):
    case = make_case(0, *shape, 0.9)
    cert = C.certify_state_wise(case.A, case.B, case.Phi, case.Y, 0.9)
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
    gram_norm = np.linalg.norm(case.Phi, 2) ** 2
    assert_encloses(b["kappa"], problem.pl_constant, 10 * max(m, n) * EPS * gram_norm, "kappa")
    assert cert.max_rel_width < 1e-9
    if m > n:
        assert any("Phi^T Phi" in it.statement for it in cert.items)  # the nonzero spectrum, n x n


def test_state_wise_with_the_bound_too_large_is_a_certified_violation():
    A, B, Phi, Y = state((5, 3, 8))
    ratio = C.certify_state_wise(A, B, Phi, Y, 0.9).enclosures["ratio"].mid
    for factor, expected in [(1.5 * ratio, C.VIOLATED), (ratio * (1 + 1e-6), C.VIOLATED),
                             (ratio * (1 - 1e-6), C.CERTIFIED)]:
        assert C.certify_state_wise(A, B, Phi, Y, 0.9, bound_factor=factor).status == expected


@pytest.mark.parametrize("shape", [(1, 3, 5), (1, 1, 1)])
def test_state_wise_equality_at_m_equal_1_is_never_certified(shape):
    cert = C.certify_state_wise(*state(shape), 0.9)
    assert cert.status == C.NOT_CERTIFIED and cert.bits == C.PRECISIONS[-1]
    assert "undecided" in cert.reason and "2 kappa lambda(A) (L - L*)" in cert.reason


@pytest.mark.parametrize("seed, m, m_y", [(0, 2, 1), (1, 4, 2), (2, 8, 3)])
def test_exact_tight_state_is_an_equality_and_never_decided(seed, m, m_y):
    from verify.certify.instances import exact_tight_case

    A, B, Phi, Y = exact_tight_case(seed, m, m_y, 0.9)
    # exact dyadic data: the float64 reference agrees with ratio 1 to rounding
    assert abs(verify.reference.rate_constant(A, 0.9) - 1) < 10 * m * EPS
    for certify in (C.certify_state_wise, C.certify_energy):
        cert = certify(A, B, Phi, Y, 0.9)
        assert cert.status == C.NOT_CERTIFIED and cert.bits == C.PRECISIONS[-1], cert.reason


def test_the_float64_tight_state_is_true_and_never_violated():
    # u is only a float64 eigenvector, so the ratio is 1 + O(eps^2) >= 1 (docs/theory.md, section 5)
    case = tight_state_wise_case(0, 8, 3, 12, 0.9)
    cert = C.certify_state_wise(case.A, case.B, case.Phi, case.Y, 0.9)
    assert cert.status in (C.CERTIFIED, C.NOT_CERTIFIED)
    assert abs(cert.enclosures["ratio"].mid - 1) < 1e-12


def test_state_wise_with_rank_deficient_data_is_not_certified():
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
@pytest.mark.parametrize("shape", [pytest.param((32, 10, 200), marks=pytest.mark.slow), (8, 2, 4), (2, 1, 5)])
def test_energy_is_consistent_and_encloses_the_float_metric(shape):
    case = make_case(0, *shape, 0.9)
    cert = C.certify_energy(case.A, case.B, case.Phi, case.Y, 0.9)
    assert cert.status == C.CONSISTENT, cert.reason  # equations: never "certified"
    assert cert.consistent_bits >= C.EQUATION_BITS
    assert {it.status for it in cert.items if it.kind == "equation"} == {C.CONSISTENT}
    m = shape[0]
    K = preconditioner(case.A, case.B, gamma=0.9)
    g = cert.balls["g"]
    g = np.array([float(x) for x in g.entries()])
    Kg = K @ g
    # float64 K g: products of U^{-1} factors and W, error <= c m cond(U)^2 eps max|K| max|g| (times d terms)
    assert_matrix_encloses(cert.balls["Kg"], Kg, 100 * K.shape[0] * m * cond_bound(0.9) ** 2 * EPS
                           * np.abs(K).max() * np.abs(g).max(), "K g")
    lam_K = np.linalg.eigvalsh(K)[0]  # backward stable
    assert_encloses(cert.balls["lam_K"], lam_K, 10 * K.shape[0] * EPS * np.abs(K).max(), "lambda_min(K)")
    assert "Temple" in statuses_detail(cert)["K >= lambda(A) I  (lambda_min(K) - lambda(A))"]


def statuses_detail(cert) -> dict:
    return {it.statement: it.detail for it in cert.items}


@pytest.mark.parametrize("scale", [0.0, 1 / 0.9, 1.001, 1 + 1e-10])
def test_energy_with_a_wrong_metric_is_a_certified_violation(scale):
    # 0: the gamma^2 term dropped; 1/gamma: gamma instead of gamma^2; 1 + 1e-10: off by ~1e-11 relative
    cert = C.certify_energy(*state((8, 2, 4)), 0.9, second_term_scale=scale)
    assert cert.status == C.VIOLATED
    failed = {s for s, v in statuses(cert).items() if v == C.FAILED}
    assert "vec(dW/dt) = -K g" in failed or "dL/dt = -g^T K g" in failed
    assert "dL/dt = -(||dL/dA||^2 + ||dL/dB||^2)" not in failed  # the gradients are still right


@pytest.mark.slow
def test_energy_issue_example_at_the_headline_size_is_violated():
    # a K false by 7.75e-12 relative was "certified" at 53 bits by the old 2^-30 rule
    cert = C.certify_energy(*state((32, 10, 200)), 0.9, second_term_scale=1 + 1e-10)
    assert cert.status == C.VIOLATED and cert.bits >= 106


@pytest.mark.parametrize("shape", [(3, 6, 10), (1, 3, 5)])
def test_energy_metric_bound_is_tight_and_not_certified_when_m_below_m_y_or_1(shape):
    # m < m_y: W J_j^2 W^T share a null space, so lambda_min(K) = lambda(A) exactly; m = 1: K = lambda I
    cert = C.certify_energy(*state(shape), 0.9)
    assert cert.status == C.NOT_CERTIFIED
    assert statuses(cert)["K >= lambda(A) I  (lambda_min(K) - lambda(A))"] == C.UNDECIDED


# ---- TRUST-REGION ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 6, 10), (8, 2, 4)])
def test_trust_region_kkt_is_consistent_and_encloses_the_float_solver(shape):
    case = make_case(0, *shape, 0.9)
    cert = C.certify_trust_region(case.A, case.B, case.Phi, case.Y, 0.9)
    assert cert.status == C.CONSISTENT, cert.reason
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


@pytest.mark.slow
def test_trust_region_at_the_requested_size():
    cert = C.certify_trust_region(*state((32, 10, 200)), 0.9)
    assert cert.status == C.CONSISTENT and all(it.settled for it in cert.items)


def test_trust_region_step_bound_is_sharp_and_depends_on_H():
    cert = C.certify_trust_region(*state((8, 2, 4)), 0.9)
    s = statuses(cert)
    assert s["G_dt > 0 at dt = (1 - 0.0156) dt_max"] == C.PROVED
    assert s["x^T G_dt x < 0 at dt = (1 + 0.0156) dt_max"] == C.PROVED


@pytest.mark.parametrize("multiplier", [1.001, 1 + 1e-8])
def test_trust_region_with_a_wrong_multiplier_is_a_certified_violation(multiplier):
    cert = C.certify_trust_region(*state((3, 6, 10)), 0.9, multiplier=multiplier)
    assert cert.status == C.VIOLATED
    assert statuses(cert)[f"(H + {multiplier!r} G) v + g = 0 at v = -dt K g"] == C.FAILED


def test_trust_region_issue_example_with_targets_beyond_float64_products():
    # Y ~ 1e307: the terms' sizes overflow float64; the old rule compared after float() and passed
    A, B, Phi, Y = state((3, 6, 10))
    assert C.certify_trust_region(A, B, 8 * Phi, 1e307 * Y, 0.9, multiplier=1 + 1e-8).status == C.VIOLATED
    assert C.certify_trust_region(A, B, 8 * Phi, 1e307 * Y, 0.9).status in (C.CONSISTENT, C.NOT_CERTIFIED)


def test_trust_region_beyond_the_step_bound_is_a_certified_violation():
    cert = C.certify_trust_region(*state((8, 2, 4)), 0.9, dt_factor=2.0)  # G = K^{-1}/dt - H is indefinite
    assert cert.status == C.VIOLATED
    assert statuses(cert)["G = K^{-1}/dt - H > 0 x dt_factor 2.0"] == C.FAILED


def test_trust_region_is_not_consistent_at_53_bits_alone():
    cert = C.certify_trust_region(*state((3, 6, 10)), 0.9, precisions=(53,))
    assert cert.status == C.NOT_CERTIFIED
    assert "(H + 1.0 G) v + g = 0" in cert.reason and "2^-64 required" in cert.reason


# ---- the structured metric against the explicit (m m_y)^2 matrices (small sizes) -------------------------
def _structured(shape, seed=0, scale=1.0):
    A, B, Phi, Y = state(shape, seed)
    st = ball_model.BallState(A, B, Phi, Y, 0.9)
    return st, metric.StructuredMetric(st, scale)


def _unvec(v, rows):
    cols = v.nrows() // rows
    return arb_mat([[v[i * rows + k, 0] for i in range(cols)] for k in range(rows)])


@pytest.mark.parametrize("shape", [(8, 2, 4), (3, 6, 10), (5, 3, 8), (1, 3, 5), (4, 1, 2)])
@pytest.mark.parametrize("scale", [1.0, 1.1])
def test_structured_products_overlap_the_explicit_metric(shape, scale):
    """K X, K^{-1} X and H X by the Kronecker factors overlap (K vec X), K^{-1} (vec X) and H vec X with
    the explicit ball matrices (both enclose the same exact numbers), and K^{-1} K X encloses X."""
    with ctx.workprec(106):
        st, K = _structured(shape, scale=scale)
        X = C.ball_matrix(np.random.default_rng(1).standard_normal((shape[1], shape[0])))
        Kx = st.metric(scale)
        for structured, explicit in ((K.apply(X), Kx * C.balls.ball_vec(X)),
                                     (K.apply_inverse(X), Kx.inv() * C.balls.ball_vec(X)),
                                     (K.apply_hessian(X), st.hessian() * C.balls.ball_vec(X))):
            explicit = _unvec(explicit, shape[1])
            assert all(a.overlaps(b) for a, b in zip(structured.entries(), explicit.entries()))
        assert all(b.contains(a) for a, b in zip(X.entries(), K.apply_inverse(K.apply(X)).entries()))


@pytest.mark.parametrize("shape, seed", [((8, 2, 4), 0), ((5, 3, 8), 1), ((6, 2, 3), 2), ((3, 6, 10), 0),
                                         ((4, 4, 8), 3)])
def test_structured_eigenvalue_enclosures_overlap_the_explicit_ones(shape, seed):
    """lambda_min(K) (Temple or the Schur bound) overlaps lambda_min_enclosure of the explicit K, and is
    narrow (1e-20 relative at 106 bits) where a gap is proved; Lambda = 1/dt_max overlaps lambda_max of the
    explicit Xi^T K Xi (its nonzero spectrum is that of K^{1/2} H K^{1/2}); lambda_max(K) and lambda_min(G)
    overlap the explicit enclosures (G from the explicit K^{-1}); the float64 reference lies in both."""
    A, B, Phi, Y = state(shape, seed)
    with ctx.workprec(106):
        st, K = _structured(shape, seed)
        lam, how = K.lambda_min()
        Kx = st.metric()
        explicit = C.lambda_min_enclosure(Kx)
        assert lam.overlaps(explicit), (lam, explicit)
        if "Temple" in how:  # quadratic in the float64 eigenvector's error (~1e-14): ~1e-25 relative
            assert lam.rad() <= 1e-20 * abs(lam)
        Xi = C.ball_matrix(np.kron(Phi, np.eye(shape[1])))
        step = K.step_bound()
        Lam_explicit = C.lambda_max_enclosure(Xi.transpose() * Kx * Xi)
        assert step["Lambda"].overlaps(Lam_explicit), (step["Lambda"], Lam_explicit)
        lam_max, _ = K.lambda_max()
        assert lam_max.overlaps(C.lambda_max_enclosure(Kx))
        dt = arb(0.5) / step["Lambda"].mid()
        found = K.lambda_min_G(arb(dt.mid()))
        if found is not None:
            G = Kx.inv() / arb(dt.mid()) - st.hessian()
            assert found[0].overlaps(C.lambda_min_enclosure(G)), (found[0], C.lambda_min_enclosure(G))
    K_f = verify.reference.metric(A, B, 0.9)
    W = verify.reference.end_to_end_weight(A, B, 0.9)
    H_f = verify.reference.shallow_hessian(W, Phi, Y, "square")
    cond = np.linalg.cond(K_f)
    assert_encloses(lam, np.linalg.eigvalsh(K_f)[0], 100 * cond * EPS * np.linalg.norm(K_f, 2), "lambda_min(K)")
    Lam_f = 1 / verify.reference.admissible_step_bound(K_f, H_f)
    assert_encloses(step["Lambda"], Lam_f, 100 * cond * EPS * Lam_f, "1/dt_max")


@pytest.mark.parametrize("shape, seed", [((8, 2, 4), 0), ((5, 3, 8), 1)])
def test_structured_temple_step_refuses_a_gap_it_cannot_prove(shape, seed, monkeypatch):
    """Temple's bound needs lambda_2 >= nu; the float64 helpers only suggest nu. Fed a false "next
    eigenvalue" (nu between lambda_2 and lambda_3) and a poor vector x = v_1 + v_2 / 3, Temple alone
    would put lambda_min(K) above its true value (x^T (K - lambda_1) x > 0 and nu - lambda_1 > lambda_2 -
    lambda_1 make the bound exceed lambda_1); the Schur bound must refuse the gap, and the enclosure must
    still hold lambda_min of the explicit K."""
    with ctx.workprec(106):
        st, K = _structured(shape, seed)
        Kx = st.metric()
        w, V = np.linalg.eigh(C.balls.mid_array(Kx))
        assert w[2] - w[1] > 1e-3 * w[2]  # the lie below needs distinct lambda_2 < lambda_3
        lie = w[0] + 8 * (0.5 * (w[1] + w[2]) - w[0])  # _extreme puts nu at theta + (next - theta) / 8
        x = (V[:, 0] + V[:, 1] / 3).reshape(shape[0], shape[1]).T
        monkeypatch.setattr(metric.StructuredMetric, "_float_extreme", lambda self, which, step=1.0: (w[0], lie, x))
        lam, how = K.lambda_min()
        assert "Temple" not in how, how
        assert lam.overlaps(C.lambda_min_enclosure(Kx)), (lam, C.lambda_min_enclosure(Kx))


def _random_blocks(rng, m, my, negatives, coupling):
    """E with ``negatives`` eigenvalues -1/2 (the rest in [1, 2]) and PSD blocks of size ``coupling``."""
    V = np.linalg.qr(rng.standard_normal((m, m)))[0]
    e = np.concatenate([-0.5 * np.ones(negatives), rng.uniform(1, 2, m - negatives)])
    E = (V * e) @ V.T
    D = np.array([coupling * (R @ R.T) for R in rng.standard_normal((m, my, my))])
    return E, D


@pytest.mark.parametrize("seed", range(6))
def test_the_schur_bound_never_proves_a_false_inertia(seed):
    """prove_inertia(E, D, k, count) > 0 only when Z = E (x) I + blockdiag(D) has at most ``count``
    eigenvalues <= 0 (float64 count of the dense Z, well separated from 0 by construction), at every k;
    and it does prove a true count when the coupling is small (it is not vacuous)."""
    rng = np.random.default_rng(seed)
    m, my = 7, 3
    for negatives, coupling in ((0, 0.1), (1, 0.1), (1, 2.0), (2, 0.1), (3, 1.0)):
        E, D = _random_blocks(rng, m, my, negatives, coupling)
        w = np.linalg.eigvalsh(kronecker.float_blocks(E, D))
        nonpositive = int(np.sum(w <= 0))
        assert np.min(np.abs(w)) > 1e-6
        for k in (1, 2, 4, m):
            for count in (0, 1):
                try:
                    margin = kronecker.prove_inertia(C.ball_matrix(E), [C.ball_matrix(x) for x in D], k, count)
                except proof.Undecided:
                    continue
                if margin > 0:
                    assert nonpositive <= count, (negatives, coupling, k, count, w[:4])
                elif k == m and nonpositive <= count:
                    pytest.fail(f"the dense case failed to prove a true count {count}: {w[:4]}")
    for my, negatives, count in ((1, 1, 1), (3, 0, 0)):  # one negative eigenvalue of Z (m_y = 1); Z > 0
        E, D = _random_blocks(np.random.default_rng(seed), m, my, negatives, 0.01)
        assert kronecker.prove_inertia(C.ball_matrix(E), [C.ball_matrix(x) for x in D], 1, count) > 0


def test_temple_bound_is_below_the_smallest_eigenvalue_and_needs_the_gap():
    rng = np.random.default_rng(0)
    Qm = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    lam = np.array([1.0, 1.5, 2.0, 3.0, 4.0, 5.0])
    K = (Qm * lam) @ Qm.T
    x = Qm[:, 0] + 1e-4 * rng.standard_normal(6)
    with ctx.workprec(106):
        Kb, xb = C.ball_matrix(K), C.ball_matrix(x[:, None])
        sigma = arb(1.0)
        r = Kb * xb - xb * sigma
        q0, q1, q2 = (xb.transpose() * xb)[0, 0], (xb.transpose() * r)[0, 0], (r.transpose() * r)[0, 0]
        low = kronecker.temple_lower(q0, q1, q2, arb(1.5) - sigma)
        assert low is not None and low + sigma <= 1.0 and low + sigma > 1 - 1e-5  # ||r||^2 ~ 1e-7
        # nu below the Rayleigh quotient: no bound
        assert kronecker.temple_lower(q0, q1, q2, arb(-0.5)) is None


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
        ("bound_factor must be a finite real number", lambda: C.certify_state_wise(A, B, Phi, Y, 0.9,
                                                                                   bound_factor=True)),
        ("dt_factor must be > 0", lambda: C.certify_trust_region(A, B, Phi, Y, 0.9, dt_factor=-1.0)),
        ("step_gap must lie in the open interval (0, 1)",
         lambda: C.certify_trust_region(A, B, Phi, Y, 0.9, step_gap=1.0)),
        ("m must be", lambda: C.certify_naive_bound_false(True)),
        ("precisions must be strictly increasing", lambda: C.certify_uniform_rate(A, 0.9, precisions=(106, 53))),
        ("precisions must be integers", lambda: C.certify_uniform_rate(A, 0.9, precisions=(53.0,))),
        ("instance must be a dict", lambda: C.certify_uniform_rate(A, 0.9, instance="x")),
        ("logit_gap must be finite", lambda: C.certify_naive_bound_false(30, 0.9, logit_gap=np.inf)),
        ("more than 1e300 ball operations", lambda: C.certify_naive_bound_false(10 ** 200)),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_arguments_are_refused_by_name(index):
    message, call = _bad_calls()[index]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize("claim, call", [
    ("TRUST-REGION", lambda: C.certify_trust_region(*state((600, 10, 20)), 0.9)),
    ("ENERGY", lambda: C.certify_energy(*state((600, 10, 20)), 0.9)),
    ("UNIFORM-RATE", lambda: C.certify_uniform_rate(np.zeros((1000, 1000)), 0.9)),
    ("STATE-WISE", lambda: C.certify_state_wise(*state((200, 2, 20000)), 0.9)),
])
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
    for name in ("certify_energy", "certify_naive_bound_false", "certify_state_wise", "certify_trust_region",
                 "certify_uniform_rate"):
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
        key = {"ENERGY": "-dL/dt / (lambda ||g||^2)" if energy
               else "lambda_min(K) / lambda(A)"}.get(config["claim"], "ratio")
        ratio = cert.enclosures[key]
        floor = reference_values(config)["floor"]
        assert abs(ratio.mid / config["ratio_ref"] - 1) <= floor, config
        if not any(f in config for f in factors):
            assert abs(ratio.mid - 1) < 0.05  # a natural near-tight instance
        checked += 1
    assert checked >= 5


def test_run_entry_refuses_configurations_it_cannot_rebuild():
    config = plan.entries(0, quick=True)[10]
    for bad, message in [({**config, "m": True}, "config\\['m'\\] must be an integer"),
                         ({**config, "claim": "NOPE"}, "config\\['claim'\\] must be one of"),
                         ({**config, "typo": 1}, "keys \\['typo'\\]"),
                         ({**config, "expect": ["proved"]}, "config\\['expect'\\]")]:
        with pytest.raises(ValueError, match=message):
            plan.run_entry(bad)


# ---- the command line ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _small_plan(seed):
    return json.dumps([c for c in plan.entries(seed, quick=True) if c["m"] <= 8][:12])


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


@pytest.mark.parametrize("argv, message", [
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
])
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
    argv = {"directory": ["--json", str(tmp_path)], "empty": ["--json", ""],
            "under a file": ["--json", str(tmp_path / "file" / "r.json")],
            "same file": ["--json", str(tmp_path / "r"), "--markdown", str(tmp_path / "r")]}[where]
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


@pytest.mark.parametrize("weakening", ["straddle counted as proved", "equation rule loosened 2^30",
                                       "loop stops at 53 bits", "gradient x 10", "lambda = 1/||U||", "K x 1.05",
                                       "H x 0.95", "gamma instead of gamma^2 in K"])
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
        monkeypatch.setattr(metric.StructuredMetric, "apply_hessian",
                            lambda self, X: original_hessian(self, X) * arb(0.95))
    elif weakening == "gamma instead of gamma^2 in K":
        monkeypatch.setattr(metric.StructuredMetric, "__init__", _gamma_not_squared)
    else:
        monkeypatch.setattr(ball_model, "rate_enclosure", lambda U: (arb(1) / ball_model.norm_sq_enclosure(U).sqrt(),
                                                                     ball_model.norm_sq_enclosure(U)))
        monkeypatch.setattr(statements, "rate_enclosure", ball_model.rate_enclosure)
    wrong = [c for c in quick_plan if not plan.judge(c, plan.run_entry(c))]
    assert wrong, f"the quick plan did not notice: {weakening}"
