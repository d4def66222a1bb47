"""Certified verdicts (verify/certify/): ball-arithmetic proofs at concrete instances, claim by claim.

Each certificate must (i) prove true instances (certified; consistent where equations are
involved), (ii) never pass a false statement -- a certified violation or "not certified", never
"certified" or "consistent" -- and leave exact equalities "not certified", (iii) enclose the
float64 values of the numerical core, up to the float64 computation's own rounding error (stated
per quantity). Extreme scales, arguments, the plan and the command line: test_certify_plan.py;
the structured metric: test_certify_structured.py.
"""

import numpy as np
import pytest
from certify_support import EPS, assert_encloses, assert_matrix_encloses, cond_bound, state, statuses
from flint import acb_mat, arb, arb_mat, ctx
from hypothesis import given
from strategies import budget, cases, make_case

import verify
from verify import certify as C
from verify.certify import proof
from verify.dynamics import preconditioner, vec
from verify.gradients import DEQObjective
from verify.sampling import tight_state_wise_case
from verify.trust_region import solve_trust_region


# ---- items and verdicts: every decision is an Arb comparison ----------------------------------------
def test_inequality_items_decide_only_on_whole_balls():
    assert C.inequality("x > 0", arb("1e-30 +/- 1e-31")).status == C.PROVED
    assert C.inequality("x > 0", arb("-1e-30 +/- 1e-31")).status == C.FAILED
    assert C.inequality("x > 0", arb("0 +/- 1e-300")).status == C.UNDECIDED  # straddles
    assert C.inequality("x > 0", arb(1) / arb("0 +/- 1")).status == C.UNDECIDED  # [+/- inf]
    assert C.positive_definite("M > 0", arb("nan")).status == C.UNDECIDED
    huge = arb(10) ** 1000  # beyond float64: decided in Arb, reported as +inf
    item = C.inequality("x > 0", huge)
    assert item.status == C.PROVED and item.margin.hi == np.inf and item.margin.lo > 1e307


def test_equation_items_report_consistency_bits_from_the_balls():
    # residual within 2^-70 of 0, largest term 1: consistent to 2^-69 or 2^-70 (radius rounded up)
    item = C.equation("x = y", [arb(0, 2.0**-70)], [arb(1)])
    assert item.status == C.CONSISTENT and item.consistent_bits in (69, 70)
    # the same relative size with terms beyond float64 (1e1000): no overflow, the same k
    big = arb(10) ** 1000
    item = C.equation("x = y", [arb(0, 2.0**-70) * big], [big])
    assert item.status == C.CONSISTENT and item.consistent_bits in (68, 69, 70)
    assert C.equation("x = y", [arb("1e-40 +/- 1e-41")], [arb(1)]).status == C.FAILED
    assert C.equation("x = y", [arb(0)], [arb(1)]).status == C.PROVED  # exactly 0
    assert C.equation("x = y", [arb(0, 1e-20)], [arb(0, 1e-10)]).status == C.UNDECIDED  # terms may vanish
    assert C.equation("x = y", [arb(0, 2.0)], [arb(1)]).status == C.UNDECIDED  # wider than the terms
    assert C.equation("x = y", [arb(1) / arb("0 +/- 1")], [arb(1)]).status == C.UNDECIDED


def test_verdicts_need_every_item_and_equations_to_two_to_the_minus_64():
    proved = C.inequality("a", arb(1))
    eq = C.equation("b", [arb(0, 2.0**-100)], [arb(1)])
    short = C.equation("c", [arb(0, 2.0**-40)], [arb(1)])
    assert proof.verdict_of([proved]) == C.CERTIFIED
    assert proof.verdict_of([proved, eq]) == C.CONSISTENT
    assert proof.verdict_of([proved, short]) == C.NOT_CERTIFIED
    assert proof.verdict_of([proved, C.inequality("d", arb(0, 1))]) == C.NOT_CERTIFIED
    assert proof.verdict_of([eq, C.inequality("e", arb(-1))]) == C.VIOLATED


def test_the_precision_loop_keeps_going_until_equations_reach_the_target():
    # an equation with a residual of 2^-50 at every precision: violated once the ball is narrow enough
    def compute(cert):
        cert.items.append(C.equation("x = y", [arb(2.0**-50) + arb(0, 2.0 ** (10 - ctx.prec))], [arb(1)]))

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
    assert cert.enclosures["1/(1+gamma)^2"].contains(1 / 1.9**2)
    assert cert.enclosures["1/(1+gamma sqrt m)^2"].contains(1 / (1 + 0.9 * np.sqrt(30)) ** 2)


def test_naive_bound_certificate_reports_a_violation_where_the_naive_bound_holds():
    # m = 2: lambda(A) ~ 0.55 > 1/(1.9)^2 ~ 0.277, so "lambda < 1/(1+gamma)^2" is false
    cert = C.certify_naive_bound_false(2, 0.9)
    assert cert.status == C.VIOLATED
    assert statuses(cert)["lambda(A) < 1/(1+gamma)^2"] == C.FAILED
    assert "certified violation" in cert.reason


@pytest.mark.parametrize(
    "seed, m, gamma, a_scale", [(0, 32, 0.9, 1.0), (1, 32, 0.99, 3.0), (2, 5, 0.3, 0.1), (3, 1, 0.9, 1.0)]
)
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
@pytest.mark.parametrize(
    "shape", [pytest.param((32, 10, 200), marks=pytest.mark.slow), (3, 6, 10), (40, 5, 20), (2, 1, 5)]
)
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
    for factor, expected in [
        (1.5 * ratio, C.VIOLATED),
        (ratio * (1 + 1e-6), C.VIOLATED),
        (ratio * (1 - 1e-6), C.CERTIFIED),
    ]:
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
    assert_matrix_encloses(
        cert.balls["Kg"],
        Kg,
        100 * K.shape[0] * m * cond_bound(0.9) ** 2 * EPS * np.abs(K).max() * np.abs(g).max(),
        "K g",
    )
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
