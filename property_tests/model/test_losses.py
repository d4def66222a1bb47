"""L* of the shallow model and the cancellation-free excess loss."""

import numpy as np
import pytest
from hypothesis import given
from strategies import cases, make_case

import verify
from verify.losses import NotAttainedError

EPS = np.finfo(float).eps


@given(cases(loss="square"))
def test_square_optimum_matches_pseudo_inverse(case):
    problem = verify.ShallowProblem(case.Phi, case.Y)
    W_pinv = case.Y @ np.linalg.pinv(case.Phi)  # an independent route (SVD-based pinv)
    R = W_pinv @ case.Phi - case.Y
    L_pinv = 0.5 * np.sum(R * R)
    assert problem.optimal_loss == pytest.approx(L_pinv, rel=1e-9, abs=1e-12 * np.sum(case.Y**2))
    # L* is a minimum: no random W does better.
    rng = np.random.default_rng(case.seed)
    for _ in range(5):
        W = W_pinv + rng.standard_normal(W_pinv.shape)
        assert problem.value(W) >= problem.optimal_loss


@given(cases(loss="square"))
def test_excess_loss_is_cancellation_free(case):
    """L0(W) - L* = 1/2 ||(W - W*) Phi||^2 keeps full relative accuracy next to the optimum."""
    problem = verify.ShallowProblem(case.Phi, case.Y)
    rng = np.random.default_rng(case.seed)
    D = rng.standard_normal((case.m_y, case.m))
    scale = max(1.0, np.abs(problem.minimiser).max())
    delta = 1e-8 * scale
    W = problem.minimiser + delta * D
    expected = 0.5 * delta**2 * np.sum((D @ case.Phi) ** 2)
    # W - W* is exact up to the rounding of W: a relative error of 2 eps scale / delta per entry
    # (4.4e-8), doubled by the square; the Phi products add a few eps.
    assert problem.excess(W) == pytest.approx(expected, rel=8 * EPS * scale / delta + 1e-12, abs=0)
    # The naive difference L0(W) - L* cannot resolve this: its absolute error is ~eps * L*.
    assert problem.excess(W) > 0


def test_cross_entropy_separable_data_have_L_star_zero_not_attained():
    Phi = np.array([[1.0, 2.0, -1.0, -2.0], [0.5, -0.3, 0.2, 0.1]])
    Y = np.eye(2)[:, [0, 0, 1, 1]]
    problem = verify.ShallowProblem(Phi, Y, "cross_entropy")
    assert problem.separability.status == "separable"
    assert problem.optimal_loss == 0.0
    with pytest.raises(NotAttainedError, match="not attained"):
        problem.minimiser


def test_cross_entropy_partially_separable_is_refused_clearly():
    Phi = np.array([[1.0, 1.0, -1.0, 2.0]])
    Y = np.eye(3)[:, [0, 1, 2, 0]]  # class 2 alone at phi < 0: separable from the rest
    problem = verify.ShallowProblem(Phi, Y, "cross_entropy")
    assert problem.separability.status == "partially separable"
    with pytest.raises(NotAttainedError, match="partially separable"):
        problem.optimal_loss


@given(cases(loss="cross_entropy", non_separable=True))
def test_cross_entropy_optimum_on_non_separable_data(case):
    problem = verify.ShallowProblem(case.Phi, case.Y, "cross_entropy")
    assert problem.separability.status == "non-separable"
    W = problem.minimiser
    # First-order optimality to rounding: ||grad|| <= c eps n ||Phi||^2 (the gradient's own error).
    assert np.linalg.norm(problem.gradient(W)) <= 1e3 * EPS * case.n * max(1.0, np.abs(case.Phi).max()) ** 2
    rng = np.random.default_rng(case.seed)
    for _ in range(5):
        assert problem.value(W + 0.1 * rng.standard_normal(W.shape)) >= problem.optimal_loss


def test_cross_entropy_optimum_known_in_closed_form():
    """Each feature vector seen with every label equally often: the optimum predicts uniform
    probabilities, so L* = n log m_y exactly (independent of this suite's solver)."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 4))
    Phi = np.repeat(base, 3, axis=1)
    Y = np.eye(3)[:, np.tile(np.arange(3), 4)]
    assert verify.optimal_loss(Phi, Y, loss="cross_entropy") == pytest.approx(12 * np.log(3), rel=1e-14)


def test_pl_constant_is_smallest_nonzero_eigenvalue():
    case = make_case(5, m=5, m_y=2, n=3, gamma=0.5)  # m > n: Phi Phi^T has rank 3
    problem = verify.ShallowProblem(case.Phi, case.Y)
    ev = np.linalg.eigvalsh(case.Phi @ case.Phi.T)
    assert problem.pl_constant == pytest.approx(np.sort(ev)[-3], rel=1e-10)
