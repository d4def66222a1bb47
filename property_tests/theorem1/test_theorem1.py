"""Theorem 1 (this suite's formalisation, docs/theory.md, sections 4-5): metric K, energy identity,
state-wise inequality, integrated bound along trajectories, uniform rate bound."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from strategies import REGIMES, budget, cases, make_case

import verify
from theory.dynamics import closed_form_metric_terms, comparison_ode, derive_metric, metric_function
from theory.dynamics import vec as svec
from theory.symbolic_model import build, random_rational_point
from verify.convergence import concentrated_weight, softmax_norm_rate_bound, state_wise_ratio
from verify.dynamics import preconditioner_matvec, vec
from verify.gradients import DEQObjective
from verify.judging import flow_bound_report, flow_to_target

EPS = np.finfo(float).eps


# ---- symbolic ---------------------------------------------------------------------------
@pytest.mark.parametrize("m, m_y", [(1, 2), (2, 1), (2, 3), (3, 2)])
def test_derived_metric_equals_closed_form_exactly(m, m_y):
    D = derive_metric(m, m_y)
    rng = np.random.default_rng(m * 10 + m_y)
    point = random_rational_point(build(m, m_y, 1, "square"), rng)
    for s in D.g:
        point[s] = sp.Rational(int(rng.integers(-20, 20)), 7)
    JA, JB = D.J_A.xreplace(point), D.J_B.xreplace(point)
    first, second = closed_form_metric_terms(D, point)
    zero = sp.zeros(m * m_y, m * m_y)
    assert JB * JB.T - first == zero  # B-part: (U^{-T} U^{-1}) (x) I
    assert JA * JA.T - second == zero  # A-part: gamma^2 sum_j (...) (x) (W J_j^2 W^T)
    K = first + second
    g = svec(D.g.xreplace(point))
    assert D.dW_dt.xreplace(point) + K * g == sp.zeros(m * m_y, 1)  # dW/dt = -K g
    energy = D.param_grad_norm_sq.xreplace(point)
    assert D.dL_dt.xreplace(point) == -energy  # dL/dt = -||dL/dtheta||^2
    assert (g.T * K * g)[0, 0] == energy  # = -g^T K g


def test_comparison_ode_derivation():
    # the PL inequality and the uniform bound: property_tests/derivations/test_derivations.py
    d_ratio, initial = comparison_ode()
    assert d_ratio == 0 and initial == 0


@pytest.mark.parametrize("m, m_y", [(2, 2), (1, 3), (2, 1)])
def test_lambdified_metric_equals_the_core(m, m_y):
    rng = np.random.default_rng(m + 7 * m_y)
    A, B, gamma = 2 * rng.standard_normal((m, m)), rng.standard_normal((m_y, m)), 0.8
    K_sym = metric_function(m, m_y)(A, B, gamma)
    K = verify.preconditioner(A, B, gamma=gamma)
    # adjugate/determinant evaluation in float64: a few hundred eps times cond(U)^2 ||K||
    assert np.abs(K_sym - K).max() <= 1e3 * EPS * ((1 + gamma) / (1 - gamma)) ** 2 * np.abs(K).max()


# ---- K, the energy identity and the state-wise inequality ----------------------------------
@given(cases())
def test_preconditioner_explicit_matches_matvec_and_is_spd(case):
    K = verify.preconditioner(case.A, case.B, gamma=case.gamma)
    G = np.random.default_rng(case.seed).standard_normal((case.m_y, case.m))
    KG = preconditioner_matvec(case.A, case.B, G, gamma=case.gamma)
    scale = np.abs(K).max() * np.abs(G).max() * K.shape[0]
    assert np.abs(K @ vec(G) - vec(KG)).max() <= 100 * EPS * scale
    np.testing.assert_array_equal(K, K.T)  # built from symmetric einsum pieces
    lam = verify.rate_constant(case.A, gamma=case.gamma)
    # K >= lambda(A) I; eigvalsh is backward stable: error <= c n eps ||K||_2.
    assert np.linalg.eigvalsh(K).min() >= lam - 10 * K.shape[0] * EPS * np.linalg.norm(K, 2)


@given(cases())
def test_energy_identity_and_state_wise_inequality(case):
    problem = verify.ShallowProblem(case.Phi, case.Y, case.loss)
    st_ = DEQObjective(problem, gamma=case.gamma).evaluate(case.A, case.B, with_excess=case.loss == "square")
    K = verify.preconditioner(case.A, case.B, gamma=case.gamma)
    g = vec(st_.grad_L0)
    gKg = float(g @ K @ g)
    # dL/dt = -g^T K g = -(||dA||^2 + ||dB||^2): two routes, rounding ~ cond(U)^2 eps.
    cond = (1 + case.gamma) / (1 - case.gamma)
    assert st_.grad_norm_sq == pytest.approx(gKg, rel=100 * K.shape[0] * cond**2 * EPS, abs=0)
    lam = verify.rate_constant(case.A, gamma=case.gamma)
    # K >= lambda I: ||dtheta L||^2 >= lambda ||grad L0||^2 (both losses).
    assert st_.grad_norm_sq >= lam * float(g @ g) * (1 - 1e-10)
    if case.loss == "square":
        ratio = state_wise_ratio(st_.grad_norm_sq, st_.excess, kappa=problem.pl_constant, rate=lam)
        assert ratio >= 1 - 1e-9  # the heart of Theorem 1, exact (no ODE)


def test_state_wise_inequality_is_tight_for_width_one():
    """m = 1: K = (1 - gamma)^-2, lambda = (1 - gamma)^-2 and 1-D least squares is exactly PL."""
    case = make_case(11, m=1, m_y=1, n=5, gamma=0.5)
    problem = verify.ShallowProblem(case.Phi, case.Y)
    st_ = DEQObjective(problem, gamma=0.5).evaluate(case.A, case.B)
    lam = verify.rate_constant(case.A, gamma=0.5)
    assert lam == pytest.approx(4.0, rel=1e-15)
    ratio = state_wise_ratio(st_.grad_norm_sq, st_.excess, kappa=problem.pl_constant, rate=lam)
    assert ratio == pytest.approx(1.0, rel=1e-10)


# ---- the uniform rate bound and its counterexample -----------------------------------------
@given(st.integers(1, 40), st.floats(0.01, 0.99), st.sampled_from([0.1, 1.0, 10.0, 1e3]), st.integers(0, 2**32 - 1))
def test_rate_constant_uniform_bound(m, gamma, scale, seed):
    A = scale * np.random.default_rng(seed).standard_normal((m, m))
    lam = verify.rate_constant(A, gamma=gamma)
    # The 2-norm is computed to ~m eps relative; the chain of bounds must hold up to that.
    tol = 1 + 10 * m * EPS
    assert lam * tol >= softmax_norm_rate_bound(A, gamma=gamma)
    assert softmax_norm_rate_bound(A, gamma=gamma) * tol >= verify.uniform_rate_bound(m, gamma=gamma)
    assert lam <= 1 / (1 - gamma) ** 2 * tol  # ||U||_2 >= 1 - gamma (U has eigenvalue 1 - gamma)


def test_uniform_bound_is_nearly_tight():
    """At the concentrated A, lambda / bound -> 1 as m grows (the sqrt(m) is the right order)."""
    ratios = [
        verify.rate_constant(concentrated_weight(m), gamma=0.9) / verify.uniform_rate_bound(m, gamma=0.9)
        for m in (4, 16, 64, 256, 1024)
    ]
    assert all(r >= 1 for r in ratios)
    assert all(b < a for a, b in zip(ratios, ratios[1:]))  # decreasing towards 1
    assert ratios[-1] < 1.1


def test_naive_bound_counterexample():
    ce = verify.naive_bound_counterexample(m=30, gamma=0.9)
    assert ce["violated"]
    assert ce["rate_constant"] == pytest.approx(0.0408, abs=5e-4)  # docs/theory.md: ~0.041 < 0.277
    assert ce["naive_bound"] == pytest.approx(1 / 1.9**2)
    assert ce["rate_constant"] >= ce["uniform_bound"]


# ---- trajectories ---------------------------------------------------------------------------
@pytest.mark.parametrize("regime", REGIMES)
@budget(ci=5)
@given(data=st.data())
def test_flow_converges_at_the_bounded_rate_in_every_width_regime(regime, data):
    case = data.draw(cases(regime=regime, loss="square", gamma_range=(0.05, 0.9), well_conditioned=True))
    # rtol 1e-12 keeps the a-priori ODE-error slack small enough to resolve 6 decades even at
    # gamma = 0.9 (the slack grows like 1/(1 - gamma)).
    problem = verify.ShallowProblem(case.Phi, case.Y)
    traj, E0 = flow_to_target(problem, case.A, case.B, gamma=case.gamma, decades=10.0, rtol=1e-12)
    if traj is None:
        return
    report = flow_bound_report(traj, problem, gamma=case.gamma, rtol=1e-12)
    assert report["holds"], report
    # Records are checked while the ODE-error slack is <= 0.05 in log (a wrong rate, say gamma
    # dropped, shifts the log-decay by O(1-10)); they must cover at least 6 of the 10 decades,
    # unless the start is within 6 decades of what the ODE error can resolve (near the optimum).
    assert report["resolution_ok"], report
    # Reached the target (event fired) before the time the uniform bound allows: convergence
    # to L* whatever the width.
    assert traj.event_time is not None
    assert traj.excess_loss[-1] <= 1.0001e-10 * E0
    # Monotone loss: increases only at the level of the ODE's local error.
    assert np.all(np.diff(traj.loss) <= 1e-8 * traj.loss[0])
    # Conservation of the column sums of A along the flow (ODE error only).
    assert np.ptp(traj.column_sums, axis=0).max() <= 1e-7 * max(1.0, np.abs(case.A).max())


@pytest.mark.parametrize("regime", REGIMES)
@budget(ci=5)
@given(data=st.data())
def test_gradient_descent_small_steps_track_the_flow(regime, data):
    case = data.draw(cases(regime=regime, loss="square", gamma_range=(0.05, 0.8), well_conditioned=True))
    problem = verify.ShallowProblem(case.Phi, case.Y)
    T = 2.0
    flow = verify.gradient_flow(case.A, case.B, problem, gamma=case.gamma, T=T, t_eval=np.array([0.0, T]))
    errors = []
    for lr in (2e-3, 1e-3):
        gd = verify.gradient_descent(
            case.A, case.B, problem, gamma=case.gamma, lr=lr, steps=int(T / lr), record_every=int(T / lr)
        )
        # Descent with a small step is monotone (descent lemma for a locally smooth L).
        errors.append(np.linalg.norm(gd.W[-1] - flow.W[-1]))
    scale = max(np.linalg.norm(flow.W[-1] - flow.W[0]), 1e-12)
    # Euler is first order: halving lr halves the error (ratio 2, up to O(lr) corrections).
    if errors[0] > 1e-9 * scale:
        assert 1.6 <= errors[0] / errors[1] <= 2.4
    assert errors[1] <= 0.05 * scale


@budget(ci=8)
@given(cases(loss="square", gamma_range=(0.05, 0.8), well_conditioned=True))
def test_gradient_descent_with_small_step_decreases_monotonically(case):
    problem = verify.ShallowProblem(case.Phi, case.Y)
    gd = verify.gradient_descent(case.A, case.B, problem, gamma=case.gamma, lr=1e-2, steps=300)
    assert np.all(np.diff(gd.loss) <= 4 * EPS * gd.loss[0])


# ---- cross-entropy ----------------------------------------------------------------------------
@budget(ci=5)
@given(cases(loss="cross_entropy", non_separable=True, gamma_range=(0.05, 0.8), max_dim=4))
def test_cross_entropy_non_separable_converges_linearly(case):
    problem = verify.ShallowProblem(case.Phi, case.Y, "cross_entropy")
    kappa_est = verify.convergence.local_pl_estimate(problem)
    E0 = problem.excess(verify.end_to_end_weight(case.A, case.B, gamma=case.gamma))
    T = 30.0 / (kappa_est * verify.uniform_rate_bound(case.m, gamma=case.gamma))
    traj = verify.gradient_flow(
        case.A,
        case.B,
        problem,
        gamma=case.gamma,
        T=T,
        target_excess=max(1e-8 * E0, 1e-10 * problem.optimal_loss),
        num_points=300,
    )
    assert np.all(np.diff(traj.loss) <= 1e-8 * traj.loss[0])  # monotone
    assert traj.event_time is not None, "did not reach L* within the estimated time"
    # Linear rate in the final phase: log-excess against time is straight, slope <= -2 kappa_est
    # lambda_T / 4 (an estimate: kappa_est is the Hessian's local constant at W*, not a certificate).
    E, t = traj.excess_loss, traj.t
    tail = E < 1e-3 * E0
    if tail.sum() >= 5:
        slope = np.polyfit(t[tail], np.log(E[tail]), 1)[0]
        assert slope <= -2 * kappa_est * traj.rate.min() / 4


def test_cross_entropy_separable_decay_is_sublinear():
    """On separable data L* = 0 is not attained: the excess decays like 1/t, not exponentially."""
    rng = np.random.default_rng(2)
    Phi = rng.standard_normal((2, 6))
    labels = (Phi[0] > 0).astype(int)
    Y = np.eye(2)[:, labels]
    problem = verify.ShallowProblem(Phi, Y, "cross_entropy")
    assert problem.separability.status == "separable"
    A0, B0 = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    traj = verify.gradient_flow(A0, B0, problem, gamma=0.5, T=2000.0, rtol=1e-8, t_eval=np.geomspace(1.0, 2000.0, 50))
    assert np.all(np.diff(traj.loss) <= 0)
    late = traj.t > 100
    slope = np.polyfit(np.log(traj.t[late]), np.log(traj.excess_loss[late]), 1)[0]
    # Loss ~ c / (t log t)-type decay: log-log slope near -1, far from exponential.
    assert -1.5 < slope < -0.5


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(T=0.0), "T must be"),
        (dict(T=-1.0), "T must be"),
        (dict(rtol=0.0), "rtol"),
        (dict(rtol=1.0), "rtol"),
        (dict(rtol=np.nan), "rtol"),
        (dict(rtol=1e-15), "100 eps"),
    ],
)
def test_gradient_flow_rejects_bad_arguments(kwargs, match):
    case = make_case(0, 2, 2, 3, 0.5)
    args = dict(gamma=0.5, T=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        verify.gradient_flow(case.A, case.B, case.Phi, case.Y, **args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=-1e-3), "lr"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(track_rate="no"), "track_rate must be True or False"),
        (dict(track_rate=0), "track_rate"),
    ],
)
def test_gradient_descent_rejects_bad_arguments(kwargs, match):
    case = make_case(0, 2, 2, 3, 0.5)
    args = dict(gamma=0.5, lr=1e-2, steps=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        verify.gradient_descent(case.A, case.B, case.Phi, case.Y, **args)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_failed_ode_solve_raises_with_solver_message(monkeypatch):
    case = make_case(0, 2, 2, 3, 0.5)
    # A right-hand side that turns infinite after a few evaluations: every step is rejected until
    # the step size underflows, and solve_ivp reports failure (status -1).
    import dataclasses

    from verify import dynamics

    original, calls = dynamics.DEQObjective.evaluate, {"n": 0}

    def breaking(self, A, B, **kwargs):
        calls["n"] += 1
        st = original(self, A, B, **kwargs)
        return dataclasses.replace(st, dA=np.full_like(st.dA, np.inf)) if calls["n"] > 20 else st

    monkeypatch.setattr(dynamics.DEQObjective, "evaluate", breaking)
    with pytest.raises(RuntimeError, match="ODE solver failed: Required step size"):
        verify.gradient_flow(case.A, case.B, case.Phi, case.Y, gamma=0.5, T=100.0)


def test_gradient_descent_divergence_is_reported():
    case = make_case(0, 3, 2, 3, 0.5)
    with pytest.raises(FloatingPointError, match="diverged"):
        verify.gradient_descent(case.A, case.B, case.Phi, case.Y, gamma=0.5, lr=1e3, steps=200)
    traj = verify.gradient_descent(case.A, case.B, case.Phi, case.Y, gamma=0.5, lr=1e3, steps=200, on_divergence="stop")
    assert "diverged" in traj.message


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(16, 20, 40), (24, 4, 12), (12, 3, 200)])
def test_flow_bounds_at_larger_widths(shape):
    """Long run (``-m slow``): the integrated and lambda_T bounds at widths beyond the
    Hypothesis strategies' range (m < m_y, m > n, n >> m)."""
    case = make_case(99, *shape, 0.8, well_conditioned=True, a_scale=3.0)
    problem = verify.ShallowProblem(case.Phi, case.Y)
    traj, _ = flow_to_target(problem, case.A, case.B, gamma=0.8, decades=8.0, rtol=1e-12)
    report = flow_bound_report(traj, problem, gamma=0.8, rtol=1e-12)
    assert report["holds"], report
    assert traj.event_time is not None


def test_descent_without_the_rate_integral_takes_the_same_steps():
    """track_rate=False changes what is recorded, never the iterates: the same A, B and losses
    at every record (bit for bit: the update does not read lambda); lambda at the last record
    equal to 1/sigma_max(U)^2 (docs/theory.md, section 4) from an independent SVD of the final U;
    the integral NaN after the first record (it needs lambda at every step)."""
    case = make_case(3, 4, 2, 12, 0.7)
    kwargs = dict(gamma=0.7, lr=0.05, steps=30, record_every=10)
    on = verify.gradient_descent(case.A, case.B, case.Phi, case.Y, **kwargs)
    off = verify.gradient_descent(case.A, case.B, case.Phi, case.Y, track_rate=False, **kwargs)
    np.testing.assert_array_equal(on.A, off.A)
    np.testing.assert_array_equal(on.B, off.B)
    np.testing.assert_array_equal(on.loss, off.loss)
    assert len(off.t) == 4 and np.isnan(off.rate_integral[1:]).all() and off.rate_integral[0] == 0.0
    assert np.isfinite(on.rate_integral).all() and on.rate_integral[-1] > 0
    E = np.exp(off.A - off.A.max(axis=0))
    U = np.eye(4) - 0.7 * E / E.sum(axis=0)
    sigma_max = np.linalg.svd(U, compute_uv=False)[0]
    # lambda's relative error: the tracker's rtol 1e-10 plus the SVD's O(m eps)
    np.testing.assert_allclose(off.rate[-1], 1.0 / sigma_max**2, rtol=1e-9)


# ---- CE-SEPARABLE extends its horizon past a transient, and still refutes a linear rate ----------------
#: the campaign configuration of seed 36 whose drops still grew by 1.8x at 2000 time units
SEPARABLE_TRANSIENT = {"a_scale": 0.1, "gamma": 0.6775916804247963, "loss": "cross_entropy", "m": 4, "m_y": 5,
                       "n": 4, "phi_scale": 0.33220273355119484, "regime": "m<m_y", "seed": 1744231773,
                       "y_scale": 1.0}  # fmt: skip


def test_cross_entropy_separable_check_extends_its_horizon_past_a_transient():
    from verify.claims import cross_entropy

    outcome = cross_entropy.check_cross_entropy_separable(SEPARABLE_TRANSIENT)
    assert outcome.passed, outcome.detail
    assert outcome.info["horizon"] > 2000.0  # measured after an extension


def test_cross_entropy_separable_check_fails_a_linear_rate(monkeypatch):
    from types import SimpleNamespace

    from verify.claims import cross_entropy

    def linear_rate_flow(A0, B0, problem, *, gamma, T, rtol, t_eval):  # E = exp(-t / 300): linear
        E = np.exp(-t_eval / 300.0 * SEPARABLE_TRANSIENT["phi_scale"] ** 2)
        return SimpleNamespace(t=t_eval, excess_loss=E, loss=E)

    monkeypatch.setattr(cross_entropy, "gradient_flow", linear_rate_flow)
    outcome = cross_entropy.check_cross_entropy_separable(SEPARABLE_TRANSIENT)
    assert not outcome.passed
    assert outcome.info["horizon"] == pytest.approx(2000.0 * cross_entropy.SEPARABLE_EXTENSIONS[-1])
