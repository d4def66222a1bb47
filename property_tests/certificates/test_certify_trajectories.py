"""Certificates along trajectories (docs/theory.md, sections 9 and 10) and of the remaining finite
claims: true instances certified (or consistent), false ones -- a wrong rate constant, a step above
the bound, a perturbed vector field, wrong formulas -- violated or not certified, and the
enclosures containing independent high-precision values."""

from __future__ import annotations

import json

import mpmath as mp
import numpy as np
import pytest
from flint import arb, ctx

from verify import reference as R
from verify.certify import CERTIFIED, CONSISTENT, NOT_CERTIFIED, VIOLATED, plan
from verify.certify import trajectory_instances as ti
from verify.certify import trajectory_plan as tp
from verify.certify.balls import ball_matrix, mid_array
from verify.certify.descent import certify_descent, descent_run, float_gradient
from verify.certify.finite import certify_conservation, certify_nonconvex, certify_stationary
from verify.certify.flow import taylor_coefficients
from verify.certify.paths import ProblemBalls, hessian_of_loss
from verify.sampling import make_case

FALSE = (VIOLATED, NOT_CERTIFIED)


def entry(claim, kind, label_part=""):
    return next(
        e
        for e in tp.entries(0, quick=True)
        if e["claim"] == claim and e["kind"] == kind and label_part in e.get("label", "")
    )


def statuses(cert) -> dict:
    return {it.statement.split(" (")[0][:40]: it.status for it in cert.items}


def contains(ball: arb, value, slack: float = 0.0) -> bool:
    return float(ball.lower()) - slack <= float(value) <= float(ball.upper()) + slack


# ---- the model along a segment --------------------------------------------------------------------------
def test_second_derivative_and_hessian_match_the_reference():
    """phi''(0) in balls against central differences of the reference's complex-step slope, and the
    ball Hessian against the same quadratic form."""
    c = make_case(3, 3, 2, 5, 0.7)
    P, YP = c.Phi @ c.Phi.T, c.Y @ c.Phi.T
    dA, dB = float_gradient(c.A, c.B, P, YP, c.gamma)

    def slope(s):
        return R.directional_derivative(c.A - s * dA, c.B - s * dB, c.Phi, c.Y, c.gamma, "square", -dA, -dB)

    h = 1e-5
    fd = (slope(h) - slope(-h)) / (2 * h)  # truncation h^2 |phi''''| ~ 1e-10 relative, rounding ~1e-11
    with ctx.workprec(106):
        point = ProblemBalls(c.Phi, c.Y, c.gamma).at_floats(c.A, c.B)
        value = point.second_derivative(-ball_matrix(dA), -ball_matrix(dB))
        H = hessian_of_loss(point)
        v = np.concatenate([-dA.ravel(), -dB.ravel()])
        quad = float(v @ mid_array(H) @ v)
    assert abs(float(value.mid()) / fd - 1) < 1e-7
    assert abs(quad / fd - 1) < 1e-7
    assert np.allclose(mid_array(H), mid_array(H).T)


# ---- the discrete Theorem 1 ------------------------------------------------------------------------------
def test_descent_below_the_bound_is_certified_and_encloses_the_reference_run():
    config = entry("GD-RATE", "instance")
    A, B, Phi, Y = tp.build(config)
    As, Bs = descent_run(A, B, Phi, Y, config["gamma"], config["lr"], config["steps"])
    cert = certify_descent(As, Bs, Phi, Y, config["gamma"], config["lr"])
    assert cert.status == CERTIFIED, cert.reason
    assert cert.bits == 53 and cert.instance["steps_checked"] == config["steps"]
    assert {it.status for it in cert.items} == {"proved"}
    # every E_k and lambda(A_k) ball holds the float64 reference value (relative error ~1e-13)
    for k, _, balls, _ in cert.balls["steps"]:
        E_ref = R.square_excess(R.end_to_end_weight(As[k], Bs[k], config["gamma"]), Phi, Y)
        assert contains(balls["E"], E_ref, 1e-12 * E_ref)
        lam_ref = R.rate_constant(As[k], config["gamma"])
        assert contains(balls["lambda"], lam_ref, 1e-12 * lam_ref)
    # the run's decay is enclosed and at most the certified product of bounds
    run = R.square_excess(R.end_to_end_weight(As[-1], Bs[-1], config["gamma"]), Phi, Y) / R.square_excess(
        R.end_to_end_weight(As[0], Bs[0], config["gamma"]), Phi, Y
    )
    product = cert.enclosures["E_K / E_0 (run)"]
    assert product.contains(run) or abs(product.mid / run - 1) < 1e-10
    assert cert.enclosures["E_K / E_0 (run)"].hi <= cert.enclosures["prod_k (1 - lr kappa lambda(A_k))"].lo
    assert cert.enclosures["worst ratio / bound"].hi < 1


@pytest.mark.parametrize(
    "label, expected",
    [
        ("rate constant x (1 + 0.001)", VIOLATED),
        ("rate constant x (1 + 1e-12)", VIOLATED),
        ("rate constant x (1 + 0.05)", VIOLATED),
        ("step 5% above 1/M", VIOLATED),
        ("step 5% above 1/max curvature", VIOLATED),
        ("step 1% above 1/max curvature", VIOLATED),
    ],
)
def test_descent_canaries_are_violated(label, expected):
    config = next(e for e in tp.entries(0, quick=True) if e["claim"] == "GD-RATE" and label in e["label"])
    cert = plan.run_entry(config)
    assert cert.status == expected, cert.reason
    if "step" in label:  # the step-size condition is refuted (a point value of the curvature exceeds 1/lr)
        assert statuses(cert)["lr M_k <= 1 at every step"] == "violated"


def test_width_one_is_an_equality_of_the_refined_bound_and_never_certified():
    config = entry("GD-RATE", "equality")
    cert = plan.run_entry(config)
    assert cert.status == NOT_CERTIFIED
    refined = next(it for it in cert.items if "(1 - 2 lr" in it.statement)
    assert refined.status == "undecided" and "undecided at" in refined.detail
    simple = next(it for it in cert.items if it.statement.startswith("E(theta_k - lr g_k) <= (1 - lr kappa"))
    assert simple.status == "proved"


def test_a_step_above_the_bound_at_the_exact_tight_state_loses_the_contraction():
    config = next(
        e
        for e in tp.entries(0, quick=False)
        if e["claim"] == "GD-RATE" and e["instance"] == "exact-tight" and e["kind"] == "canary"
    )
    cert = plan.run_entry(config)
    assert cert.status == VIOLATED
    assert (
        next(it for it in cert.items if "(1 - lr kappa lambda(A_k)) E(theta_k) at every" in it.statement).status
        == "violated"
    )


def test_a_run_of_a_perturbed_gradient_is_not_a_descent_run():
    """Iterates made with dL/dA lacking its factor gamma: the certificate refuses them as descent steps."""
    c = make_case(0, 3, 2, 6, 0.5)
    P, YP = c.Phi @ c.Phi.T, c.Y @ c.Phi.T
    lr = 0.3 / ti.reference_curvature(
        c.A, c.B, c.Phi, c.Y, c.gamma, *float_gradient(c.A, c.B, P, YP, c.gamma), 0.0, 1e-6
    )
    As, Bs = [c.A], [c.B]
    for _ in range(3):
        dA, dB = float_gradient(As[-1], Bs[-1], P, YP, c.gamma)
        As.append(As[-1] - lr * dA / c.gamma)
        Bs.append(Bs[-1] - lr * dB)
    cert = certify_descent(As, Bs, c.Phi, c.Y, c.gamma, lr)
    assert cert.status == VIOLATED
    assert next(it for it in cert.items if "descent steps" in it.statement).status == "violated"


def test_descent_arguments_are_checked_by_name():
    c = make_case(0, 2, 1, 3, 0.5)
    with pytest.raises(ValueError, match="A_steps"):
        certify_descent([c.A], [c.B], c.Phi, c.Y, c.gamma, 0.1)
    with pytest.raises(ValueError, match="lr"):
        certify_descent([c.A, c.A], [c.B, c.B], c.Phi, c.Y, c.gamma, -0.1)
    with pytest.raises(ValueError, match="subdivisions"):
        certify_descent([c.A, c.A], [c.B, c.B], c.Phi, c.Y, c.gamma, 0.1, subdivisions=0)


# ---- the validated flow ----------------------------------------------------------------------------------
def test_taylor_coefficients_of_the_flow_match_the_field():
    """theta_[1] = f(theta_0) and 2 theta_[2] = Df f (by a central difference of the float field)."""
    c = make_case(1, 2, 2, 4, 0.6, well_conditioned=True)
    P, YP = c.Phi @ c.Phi.T, c.Y @ c.Phi.T
    with ctx.workprec(106):
        A_co, B_co, L1 = taylor_coefficients(ProblemBalls(c.Phi, c.Y, c.gamma), ball_matrix(c.A), ball_matrix(c.B), 4)
    dA, dB = float_gradient(c.A, c.B, P, YP, c.gamma)
    assert np.allclose(mid_array(A_co[1]), -dA, rtol=1e-12, atol=1e-14)
    assert np.allclose(mid_array(B_co[1]), -dB, rtol=1e-12, atol=1e-14)
    h = 1e-6
    up, down = (float_gradient(c.A - s * dA, c.B - s * dB, P, YP, c.gamma) for s in (h, -h))
    second_A = -(up[0] - down[0]) / (2 * h) / 2
    assert np.allclose(mid_array(A_co[2]), second_A, rtol=1e-6, atol=1e-8)
    assert abs(float(L1.mid()) + np.sum(dA**2) + np.sum(dB**2)) < 1e-10 * (np.sum(dA**2) + np.sum(dB**2))


def test_the_flow_at_width_one_encloses_the_closed_form_solution():
    """m = 1: B(t) = B_inf + (B_0 - B_inf) exp(-kappa lambda t), evaluated in mpmath at 40 digits at every
    step end; the integrated bound is an equality there, so not certified; a rate constant 1.05 is violated."""
    config = entry("INTEGRATED", "equality")
    A, B, Phi, Y = tp.build(config)
    gamma = config["gamma"]
    cert = plan.run_entry(config)
    assert cert.status == NOT_CERTIFIED
    mp.mp.dps = 40
    p = mp.fsum(mp.mpf(x) ** 2 for x in Phi.ravel())
    rate = p / (1 - mp.mpf(gamma)) ** 2
    for r in cert.balls["records"][:: max(1, len(cert.balls["records"]) // 20)]:
        t = mp.mpf(r["t"].mid().str(50, radius=False))
        for k in range(B.shape[0]):
            yp = mp.fsum(mp.mpf(Y[k, i]) * mp.mpf(Phi[0, i]) for i in range(Phi.shape[1]))
            b_inf = (1 - mp.mpf(gamma)) * yp / p
            exact = b_inf + (mp.mpf(B[k, 0]) - b_inf) * mp.exp(-rate * t)
            ball = r["B"][k, 0]
            # t itself is a ball of radius ~2^-64 t: widen by |dB/dt| rad(t)
            slack = float(abs(rate * (exact - b_inf))) * float(r["t"].rad()) * 2
            assert contains(ball, exact, slack), (float(t), ball, exact)
    wrong = plan.run_entry(
        next(e for e in tp.entries(0, quick=True) if e["claim"] == "INTEGRATED" and "(1 + 0.05)" in e["label"])
    )
    assert wrong.status == VIOLATED


def test_the_flow_encloses_an_independent_high_precision_solution_and_is_certified():
    """m = 2: the certified enclosure (64 bits) holds mpmath's Taylor-series solution (25 digits) at
    the records up to t ~ 0.3, and the integrated bound is certified over the 3-decade horizon."""
    config = entry("INTEGRATED", "instance")
    cert = plan.run_entry(config)
    assert cert.status == CERTIFIED, cert.reason
    assert cert.enclosures["decades of decay at t_end"].lo >= 3.0
    assert cert.instance["max_state_rel_width"] < 1e-6
    A0, B0, Phi, Y = tp.build(config)
    gamma, m, m_y = config["gamma"], A0.shape[0], B0.shape[0]
    mp.mp.dps = 25
    Pm = [
        [mp.fsum(mp.mpf(Phi[i, k]) * mp.mpf(Phi[j, k]) for k in range(Phi.shape[1])) for j in range(m)]
        for i in range(m)
    ]
    YPm = [
        [mp.fsum(mp.mpf(Y[i, k]) * mp.mpf(Phi[j, k]) for k in range(Phi.shape[1])) for j in range(m)]
        for i in range(m_y)
    ]
    g = mp.mpf(gamma)

    def field(_, x):  # docs/theory.md, section 3, in mpmath
        A = mp.matrix([[x[i * m + j] for j in range(m)] for i in range(m)])
        B = mp.matrix([[x[m * m + i * m + j] for j in range(m)] for i in range(m_y)])
        S = mp.matrix(m, m)
        for j in range(m):
            e = [mp.exp(A[i, j]) for i in range(m)]
            for i in range(m):
                S[i, j] = e[i] / mp.fsum(e)
        U = mp.eye(m) - g * S
        W = mp.matrix(m_y, m)
        dB = mp.matrix(m_y, m)
        for r in range(m_y):
            col = mp.lu_solve(U.T, B[r, :].T)
            for j in range(m):
                W[r, j] = col[j]
        G = W * mp.matrix(Pm) - mp.matrix(YPm)
        for r in range(m_y):
            col = mp.lu_solve(U, G[r, :].T)
            for j in range(m):
                dB[r, j] = col[j]
        Gam = W.T * dB * g
        dA = [
            [S[i, j] * (Gam[i, j] - mp.fsum(S[k, j] * Gam[k, j] for k in range(m))) for j in range(m)] for i in range(m)
        ]
        return [-dA[i][j] for i in range(m) for j in range(m)] + [-dB[i, j] for i in range(m_y) for j in range(m)]

    sol = mp.odefun(field, 0, [mp.mpf(v) for v in A0.ravel()] + [mp.mpf(v) for v in B0.ravel()])
    checked = 0
    for r in cert.balls["records"][1:]:
        t = float(r["t"].mid())
        if t > 0.3:
            break
        if checked and t < 0.1 * checked:
            continue
        x = sol(mp.mpf(r["t"].mid().str(30, radius=False)))
        for i in range(m * m):
            assert contains(r["A"][i // m, i % m], x[i], 1e-18)
        for i in range(m_y * m):
            assert contains(r["B"][i // m, i % m], x[m * m + i], 1e-18)
        checked += 1
    assert checked >= 2


def test_a_perturbed_vector_field_is_not_certified():
    """The flow of -(dL/dA / gamma, dL/dB) still decreases L and meets the integrated bound; the
    certificate refuses it because dL/dt along it is not -||dtheta/dt||^2."""
    config = entry("INTEGRATED", "canary", "perturbed field")
    cert = plan.run_entry(config)
    assert cert.status in FALSE and cert.status == VIOLATED
    assert next(it for it in cert.items if "gradient field" in it.statement).status == "violated"


# ---- the finite claims -----------------------------------------------------------------------------------
def test_nonconvex_is_certified_and_a_gap_bound_above_the_gap_is_violated():
    A1, B1, A2, B2, Phi, Y = tp.build(entry("NONCONVEX", "instance"))
    cert = certify_nonconvex(A1, B1, A2, B2, Phi, Y, 0.9)
    assert cert.status == CERTIFIED
    gap = cert.enclosures["gap"]
    assert gap.lo > 0
    assert certify_nonconvex(A1, B1, A2, B2, Phi, Y, 0.9, gap_bound=gap.hi * 1.001).status == VIOLATED


def test_at_width_one_the_midpoint_inequality_is_never_certified():
    """m = 1: L is convex in B (sigma = 1), so no midpoint violation exists."""
    A1, B1, Phi, Y = ti.width_one_case(0, 2, 4)
    A2, B2 = np.array([[3.0]]), B1 + 1.0
    assert certify_nonconvex(A1, B1, A2, B2, Phi, Y, 0.5).status in FALSE


def test_conservation_is_exact_at_rationals_and_consistent_at_the_softmax():
    A, B, Phi, Y = tp.build(entry("CONSERVATION", "instance"))
    cert = certify_conservation(A, B, Phi, Y, 0.9)
    assert cert.status == CONSISTENT and cert.consistent_bits >= 64
    exact, balls = cert.items
    assert exact.status == "proved" and exact.detail == "every residual is exactly 0"
    assert balls.status == "consistent"
    wrong = certify_conservation(A, B, Phi, Y, 0.9, jacobian_scale=1 + 1e-12)
    assert wrong.status == VIOLATED and {it.status for it in wrong.items} == {"violated"}


def test_stationary_is_consistent_and_a_transposed_u_is_violated():
    A, B, Phi, Y = tp.build(entry("STATIONARY", "instance"))
    cert = certify_stationary(A, B, Phi, Y, 0.9)
    assert cert.status == CONSISTENT
    assert [it.status for it in cert.items][:2] == ["proved", "proved"]
    assert certify_stationary(A, B, Phi, Y, 0.9, transpose=False).status == VIOLATED
    assert certify_stationary(A, B, Phi, Y, 0.9, multiplier=1 + 1e-12).status == VIOLATED


# ---- the plan --------------------------------------------------------------------------------------------
def test_trajectory_entries_are_strict_json_replayable_and_have_canaries():
    quick = tp.entries(0, quick=True)
    json.loads(json.dumps(quick, allow_nan=False))
    for claim in tp.CLAIMS:
        kinds = {e["kind"] for e in quick if e["claim"] == claim}
        assert {"instance", "canary"} <= kinds, claim
        for e in quick:
            if e["claim"] == claim and e["kind"] == "canary":
                assert set(e["expect"]) == {VIOLATED, NOT_CERTIFIED} and e["false_by"] > 0
    labels = " ".join(e["label"] for e in quick)
    for brief in ("rate constant x (1 + 0.05)", "step 5% above", "gamma dropped"):
        assert brief in labels
    for e in quick:
        assert plan.check_config(json.loads(json.dumps(e))) == e


def test_trajectory_configs_are_refused_by_key():
    e = entry("GD-RATE", "instance")
    with pytest.raises(ValueError, match="instance"):
        plan.check_config(e | {"instance": "concentrated"})
    with pytest.raises(ValueError, match="steps"):
        plan.check_config(e | {"steps": 0})
    with pytest.raises(ValueError, match="does not take"):
        plan.check_config(e | {"bound_factor": 1.0})
    with pytest.raises(ValueError, match="gamma_in_gradient"):
        plan.check_config(entry("INTEGRATED", "instance") | {"gamma_in_gradient": "no"})


@pytest.mark.parametrize("seed", [13, 44, 46, 97, 1])
def test_descent_canary_steps_are_placed_at_least_as_false_as_asked(seed):
    # seed 13: the fixed-point iteration lr = lr_factor / M(lr) cycled there; seeds 44, 46, 97: a
    # geometric-mean iteration crept up to the window's edge from below
    canaries = [e for e in tp.entries(seed, quick=True) if e["kind"] == "canary" and e.get("lr_factor", 0) > 1]
    placed = [e for e in canaries if e["instance"] == "random"]
    assert len(placed) == 2
    for e in placed:
        assert e["lr_factor"] <= e["ratio_ref"] <= e["lr_factor"] + 0.1 * (e["lr_factor"] - 1), e["label"]
