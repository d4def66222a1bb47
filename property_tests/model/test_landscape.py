"""Non-convexity and stationary points (docs/theory.md, sections 2 and 3)."""

import numpy as np
from hypothesis import given

import verify
from verify.landscape import midpoint_violation, minimiser_excess_floor
from verify.model import ImplicitLayer
from strategies import cases

EPS = np.finfo(float).eps


@given(cases(loss="square", regime="m>n"))
def test_nonconvexity_midpoint_violation(case):
    problem = verify.ShallowProblem(case.Phi, case.Y)
    v = midpoint_violation(problem, gamma=case.gamma, rng=np.random.default_rng(case.seed))
    # Both endpoints are global minimisers: their excess is at the rounding floor of
    # W = (W* U_k) U_k^{-1} (verify.landscape.minimiser_excess_floor).
    floor = minimiser_excess_floor(problem, gamma=case.gamma)
    assert v.loss_1 <= floor and v.loss_2 <= floor
    # The midpoint is not: its excess exceeds the same floor by many orders of magnitude.
    assert v.gap > 1e6 * floor


def test_nonconvexity_refused_for_width_one():
    rng = np.random.default_rng(0)
    problem = verify.ShallowProblem(rng.standard_normal((1, 3)), rng.standard_normal((2, 3)))
    try:
        midpoint_violation(problem, gamma=0.5, rng=rng)
    except ValueError as err:
        assert "m >= 2" in str(err)
    else:
        raise AssertionError("m = 1 must be refused")


@given(cases())
def test_grad_L0_is_dL_dB_times_U_transpose(case):
    """grad L0(W) = dL/dB U^T, so ||grad L0|| <= ||dL/dB|| ||U||_2: dL/dB = 0 forces grad L0 = 0."""
    L, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    layer = ImplicitLayer.from_weights(case.A, gamma=case.gamma)
    problem = verify.ShallowProblem(case.Phi, case.Y, case.loss)
    W = layer.end_to_end_weight(case.B)
    grad_L0 = problem.output_gradient(W) @ case.Phi.T
    cond = (1 + case.gamma) / (1 - case.gamma)
    scale = np.abs(grad_L0).max() + np.abs(dB).max() * np.abs(layer.U).max()
    assert np.abs(dB @ layer.U.T - grad_L0).max() <= 50 * case.m * cond * EPS * scale


@given(cases(loss="square"))
def test_stationary_points_are_global(case):
    """At B = W* U every gradient vanishes and L = L*; conversely grad L0 = 0 there."""
    problem = verify.ShallowProblem(case.Phi, case.Y)
    layer = ImplicitLayer.from_weights(case.A, gamma=case.gamma)
    B = problem.minimiser @ layer.U
    L, dA, dB = verify.loss_and_grad(case.A, B, case.Phi, case.Y, gamma=case.gamma)
    scale = (np.abs(problem.minimiser).max() + np.abs(case.Y).max()) * np.abs(case.Phi).max() ** 2 * case.n
    cond = (1 + case.gamma) / (1 - case.gamma)
    assert np.abs(dB).max() <= 100 * case.m * cond * EPS * scale * (1 + np.linalg.cond(case.Phi))
    assert L - problem.optimal_loss <= 1e-9 * max(1.0, problem.optimal_loss)
