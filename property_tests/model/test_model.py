"""Well-posedness, the fixed point and expressivity (docs/theory.md, section 2)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import cases

import verify
from verify.model import ImplicitLayer, column_softmax, weight_for

EPS = np.finfo(float).eps


@given(cases())
def test_softmax_columns_sum_to_one_and_norm_is_gamma(case):
    S = column_softmax(case.A)
    # Each column sum has m rounded terms plus one division: |error| <= (m + 1) eps.
    assert np.all(S > 0)
    np.testing.assert_allclose(S.sum(axis=0), 1.0, rtol=0, atol=(case.m + 1) * EPS)
    assert abs(np.linalg.norm(case.gamma * S, 1) - case.gamma) <= 2 * (case.m + 1) * EPS


@given(cases())
def test_spectral_radius_of_gamma_S_is_gamma(case):
    gS = case.gamma * column_softmax(case.A)
    radius = np.max(np.abs(np.linalg.eigvals(gS)))
    # The Perron eigenvalue of a positive column-stochastic matrix is simple; eigvals' backward
    # error is ~ m eps ||gS|| and the eigenvalue condition number is moderate (positive S).
    assert radius == pytest.approx(case.gamma, abs=1e3 * case.m * EPS)


@given(cases())
def test_condition_number_bound(case):
    U = ImplicitLayer.from_weights(case.A, gamma=case.gamma).U
    bound = (1 + case.gamma) / (1 - case.gamma)
    assert np.linalg.cond(U, 1) <= bound * (1 + 1e-10)


@given(cases(), st.integers(1, 60))
def test_fixed_point_iteration_contracts_like_gamma_power(case, layers):
    z_star = verify.equilibrium(case.A, case.Phi, gamma=case.gamma)
    iterates = verify.fixed_point_iterates(case.A, case.Phi, gamma=case.gamma, layers=layers)
    err0 = np.abs(iterates[0] - z_star).sum(axis=0)
    errl = np.abs(iterates[-1] - z_star).sum(axis=0)
    # ||z^(l) - z*||_1 <= gamma^l ||z^(0) - z*||_1 per column, up to the rounding floor of the
    # iteration and of the LU solution (each ~ m eps ||z*||_1 / (1 - gamma)).
    floor = 10 * case.m * EPS * np.abs(z_star).sum(axis=0) / (1 - case.gamma)
    assert np.all(errl <= case.gamma**layers * err0 * (1 + 1e-12) + floor)


@given(cases())
def test_fixed_point_limit_equals_linear_solve(case):
    layers = int(np.ceil(np.log(1e-18) / np.log(case.gamma))) + 5
    iterates = verify.fixed_point_iterates(case.A, case.Phi, gamma=case.gamma, layers=layers)
    z_star = verify.equilibrium(case.A, case.Phi, gamma=case.gamma)
    # Both are backward stable; their difference is bounded by cond_1(U) times m eps.
    tol = 20 * case.m * EPS * (1 + case.gamma) / (1 - case.gamma) * np.abs(z_star).max()
    assert np.abs(iterates[-1] - z_star).max() <= tol + 1e-300


@given(cases())
def test_expressivity_B_equals_W_U_reproduces_any_W(case):
    rng = np.random.default_rng(case.seed)
    W_target = rng.standard_normal((case.m_y, case.m))
    B = weight_for(case.A, W_target, gamma=case.gamma)
    W = verify.end_to_end_weight(case.A, B, gamma=case.gamma)
    # One product and one backward-stable solve: relative error <= c m cond(U) eps.
    cond = (1 + case.gamma) / (1 - case.gamma)
    assert np.abs(W - W_target).max() <= 20 * case.m * cond * EPS * max(1.0, np.abs(W_target).max())


@given(cases(loss="square"))
def test_expressivity_inf_L_equals_L_star(case):
    """At any A, B = W* U attains L* (so inf_{A,B} L = inf_W L0 whatever the width)."""
    problem = verify.ShallowProblem(case.Phi, case.Y)
    B = weight_for(case.A, problem.minimiser, gamma=case.gamma)
    L, _, _ = verify.loss_and_grad(case.A, B, case.Phi, case.Y, gamma=case.gamma)
    assert L == pytest.approx(problem.optimal_loss, rel=1e-9, abs=1e-12)


def test_softmax_does_not_overflow_for_large_entries():
    rng = np.random.default_rng(7)
    A = 1e3 * rng.choice([-1.0, 1.0], size=(5, 5))
    S = column_softmax(A)
    assert np.all(np.isfinite(S))
    L, dA, dB = verify.loss_and_grad(
        A, rng.standard_normal((2, 5)), rng.standard_normal((5, 4)), rng.standard_normal((2, 4)), gamma=0.9
    )
    assert np.isfinite(L) and np.all(np.isfinite(dA)) and np.all(np.isfinite(dB))
    # Column with equal maxima splits the mass exactly; a single 1e3 gap gives exp(-2e3) = 0.
    A2 = np.array([[1e3, -1e3], [1e3, 1e3]])
    np.testing.assert_array_equal(column_softmax(A2), [[0.5, 0.0], [0.5, 1.0]])
