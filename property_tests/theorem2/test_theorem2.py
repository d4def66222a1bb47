"""Theorem 2 (this suite's formalisation, docs/theory.md, section 6): trust-region Newton correspondence."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import NonlinearConstraint, brentq, minimize
from strategies import REGIMES, budget, cases, make_case

import verify
from theory.trust_region import derived_hessian, steepest_descent_in_metric
from verify.dynamics import vec
from verify.gradients import DEQObjective
from verify.model import ImplicitLayer
from verify.trust_region import (
    admissible_step_bound,
    check_correspondence,
    frozen_A_preconditioner,
    solve_trust_region,
    trust_region_iteration,
    trust_region_metric,
)

EPS = np.finfo(float).eps


# ---- symbolic -------------------------------------------------------------------------------
# The admissible step theorem, its instances at the derived K and H, and the subproblem on both
# sides of the threshold: property_tests/derivations/test_derivations.py.
def test_first_order_form_is_steepest_descent_in_metric_K_inverse():
    residuals = steepest_descent_in_metric(2)
    assert len(residuals) == 1 and residuals[0] == sp.zeros(2, 1)


@pytest.mark.parametrize(
    "loss, size",
    [("square", (2, 2, 2)), ("square", (1, 3, 2)), ("cross_entropy", (2, 2, 2)), ("cross_entropy", (2, 3, 1))],
)
def test_derived_hessian_matches_numerical_core(loss, size):
    m, m_y, n = size
    H_sym, W, Phi, Y = derived_hessian(m, m_y, n, loss)
    f = sp.lambdify([list(W), list(Phi), list(Y)], H_sym, modules="numpy")
    case = make_case(sum(size), m, m_y, n, 0.5, loss)
    W0 = np.random.default_rng(1).standard_normal((m_y, m))
    H_num = verify.ShallowProblem(case.Phi, case.Y, loss).hessian(W0)
    H_der = np.asarray(f(list(W0.ravel()), list(case.Phi.ravel()), list(case.Y.ravel())), dtype=float)
    # Same quantity, two evaluation orders: agreement to a few eps times its magnitude.
    assert np.abs(H_der - H_num).max() <= 100 * EPS * max(1.0, np.abs(H_num).max())


# ---- the independent solver on its own ---------------------------------------------------------
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.floats(0.01, 10.0))
def test_more_sorensen_against_a_scalar_root_finder(n, seed, delta):
    """Diagonal H in the Euclidean metric: ||w(mu)|| = delta is a 1-D equation for brentq."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.0, 3.0, n)
    g = rng.standard_normal(n)
    sol = solve_trust_region(g, np.diag(h), np.eye(n), delta, tol=1e-13)
    norm = lambda mu: np.linalg.norm(g / (h + mu))  # noqa: E731
    if np.all(h > 0) and norm(0.0) <= delta:
        mu_ref = 0.0
    else:
        mu_ref = brentq(
            lambda mu: norm(mu) - delta,
            1e-300 if np.any(h == 0) else 0.0,
            1e6 + np.abs(g).sum() / delta,
            xtol=1e-15,
            rtol=1e-15,
        )
    w_ref = -g / (h + mu_ref)
    assert np.linalg.norm(sol.v - w_ref) <= 1e-9 * np.linalg.norm(w_ref)


def test_more_sorensen_against_scipy_trust_constr():
    """A generic constrained solver from SciPy agrees on a non-diagonal, non-Euclidean problem."""
    rng = np.random.default_rng(4)
    n = 4
    M = rng.standard_normal((n, n))
    H = M @ M.T
    Q = rng.standard_normal((n, n))
    G = Q @ Q.T + n * np.eye(n)
    g = 3 * rng.standard_normal(n)
    delta = 0.3
    sol = solve_trust_region(g, H, G, delta)
    ref = minimize(
        lambda v: g @ v + 0.5 * v @ H @ v,
        np.zeros(n),
        jac=lambda v: g + H @ v,
        hess=lambda v: H,
        method="trust-constr",
        constraints=[
            NonlinearConstraint(
                lambda v: v @ G @ v, -np.inf, delta**2, jac=lambda v: 2 * G @ v, hess=lambda v, y: 2 * y[0] * G
            )
        ],
        options={"gtol": 1e-12, "xtol": 1e-14, "maxiter": 5000},
    )
    # trust-constr stops at its own tolerance (~1e-8 here); the comparison cannot be tighter.
    assert np.linalg.norm(sol.v - ref.x) <= 1e-6 * np.linalg.norm(sol.v)
    assert sol.boundary and sol.v @ G @ sol.v == pytest.approx(delta**2, rel=1e-12)


def test_solver_rejects_bad_input():
    with pytest.raises(ValueError, match="delta"):
        solve_trust_region(np.ones(2), np.eye(2), np.eye(2), 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        solve_trust_region(np.ones(2), np.eye(2), -np.eye(2), 1.0)
    with pytest.raises(ValueError, match="tol"):
        solve_trust_region(np.ones(2), np.eye(2), np.eye(2), 1.0, tol=0.0)


# ---- the correspondence along real DEQ trajectories ----------------------------------------------
def _states_along_flow(case, count=3, T=1.0):
    problem = verify.ShallowProblem(case.Phi, case.Y, case.loss)
    traj = verify.gradient_flow(
        case.A,
        case.B,
        problem,
        gamma=case.gamma,
        T=T,
        rtol=1e-8,
        t_eval=np.linspace(0, T, count),
        record_parameters=True,
    )
    return problem, traj


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("loss", ["square", "cross_entropy"])
@budget(ci=4, thorough=300)
@given(data=st.data())
def test_trust_region_solution_equals_euler_step_along_trajectories(regime, loss, data):
    case = data.draw(cases(regime=regime, loss=loss, gamma_range=(0.05, 0.95)))
    problem, traj = _states_along_flow(case)
    objective = DEQObjective(problem, gamma=case.gamma)
    for A, B in zip(traj.A_t, traj.B_t):
        check = check_correspondence(objective, A, B, dt_fraction=data.draw(st.floats(0.05, 0.95)))
        assert check.holds, (check.relative_error, check.tolerance, check.multiplier)


@pytest.mark.parametrize("loss", ["square", "cross_entropy"])
@pytest.mark.parametrize("regime", REGIMES)
def test_trust_region_iteration_reproduces_the_deq_trajectory_first_order(loss, regime):
    shapes = {"m<m_y": (2, 4, 3), "m<n": (3, 2, 5), "m>n": (4, 2, 2), "m=1": (1, 3, 4)}
    case = make_case(17, *shapes[regime], 0.6, loss, well_conditioned=True)
    problem = verify.ShallowProblem(case.Phi, case.Y, loss)
    T = 0.5
    traj = verify.gradient_flow(
        case.A, case.B, problem, gamma=case.gamma, T=T, rtol=1e-12, t_eval=np.linspace(0, T, 81), record_parameters=True
    )
    errors = []
    for N in (10, 20, 40, 80):
        idx = np.arange(0, 81, 80 // N)
        Ws = trust_region_iteration(problem, traj.A_t[idx], traj.B_t[idx], traj.t[idx], gamma=case.gamma)
        errors.append(np.linalg.norm(Ws[-1] - traj.W[-1]))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # Euler's global error is C dt + O(dt^2): observed orders approach 1 as dt halves.
    assert np.all(np.abs(orders - 1.0) <= 0.15), orders


# ---- where the correspondence stops -------------------------------------------------------------
@given(cases())
def test_metric_indefinite_beyond_the_step_bound(case):
    problem = verify.ShallowProblem(case.Phi, case.Y, case.loss)
    st_ = DEQObjective(problem, gamma=case.gamma).evaluate(case.A, case.B, with_excess=False)
    K = verify.preconditioner(case.A, case.B, gamma=case.gamma)
    H = problem.hessian(st_.W)
    bound = admissible_step_bound(K, H)
    if not np.isfinite(bound):
        return
    assert np.linalg.eigvalsh(trust_region_metric(K, H, 0.9 * bound)).min() > 0
    assert np.linalg.eigvalsh(trust_region_metric(K, H, 1.1 * bound)).min() < 0


@given(cases())
def test_frozen_A_leaves_a_fixed_preconditioner(case):
    """With only B trained, vec(dW/dt) = -((U^{-T} U^{-1}) (x) I) g, independent of B."""
    _, _, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    layer = ImplicitLayer.from_weights(case.A, gamma=case.gamma)
    # W is linear in B, so the derivative along -dB is exact: -dB U^{-1}.
    dW = -layer.right_solve(dB)
    problem = verify.ShallowProblem(case.Phi, case.Y, case.loss)
    g = vec(problem.output_gradient(layer.end_to_end_weight(case.B)) @ case.Phi.T)
    P = frozen_A_preconditioner(layer, case.m_y)
    cond = (1 + case.gamma) / (1 - case.gamma)
    assert np.abs(vec(dW) + P @ g).max() <= 50 * case.m * cond**2 * EPS * max(1.0, np.abs(P @ g).max())
    K = verify.preconditioner(case.A, case.B, gamma=case.gamma)
    # The A-part is what frozen A loses: K - P is positive semidefinite.
    assert np.linalg.eigvalsh(K - P).min() >= -100 * K.shape[0] * EPS * np.abs(K).max()


@given(cases())
def test_K_is_not_a_multiple_of_the_identity_unless_m_is_one(case):
    K = verify.preconditioner(case.A, case.B, gamma=case.gamma)
    ev = np.linalg.eigvalsh(K)
    if case.m == 1:
        # sigma(A) = 1: K = (1 - gamma)^-2 I exactly, the flow is scaled gradient descent.
        np.testing.assert_allclose(ev, 1 / (1 - case.gamma) ** 2, rtol=1e-13)
    else:
        assert ev[-1] / ev[0] > 1 + 1e-6
