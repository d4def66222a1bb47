"""Implicit gradients: finite differences, the conservation law, the unrolled limit (section 3)."""

import numpy as np
import pytest
from hypothesis import given
from strategies import cases, make_case

import verify
from verify.finite_differences import gradient_check
from verify.gradients import DEQObjective

EPS = np.finfo(float).eps


@given(cases())
def test_gradients_match_finite_differences(case):
    # Tolerance 1e-7 plus the FD reference's own rounding bound (verify.finite_differences.gradient_check).
    r = gradient_check(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    if case.m == 1:  # sigma = 1: dL/dA = 0 exactly, and the reference sees only rounding
        assert np.all(r["dA"] == 0.0) and np.abs(r["fd_A"]).max() <= 3 * EPS * max(1.0, abs(r["L"])) / r["h_A"]
    else:
        assert r["error_A"] <= r["tolerance_A"]
    assert r["error_B"] <= r["tolerance_B"]


@pytest.mark.parametrize("wrong", ["dA", "dB"])
def test_gradient_check_rejects_a_wrong_gradient(wrong):
    """The checker shared by tests and users, fed a gradient known to be wrong (a transposed
    Gamma = dL/dS for dA; U^{-1} instead of U^{-T} for dB), must fail."""
    case = make_case(4, m=3, m_y=2, n=5, gamma=0.7)
    layer = verify.model.ImplicitLayer.from_weights(case.A, gamma=case.gamma)
    W = layer.end_to_end_weight(case.B)
    grad_L0 = (W @ case.Phi - case.Y) @ case.Phi.T
    dB_true = layer.right_solve_transposed(grad_L0)
    if wrong == "dA":
        Gamma = case.gamma * (W.T @ dB_true)
        kwargs = {"dA": verify.gradients.softmax_vjp(layer.S, Gamma.T)}
    else:
        kwargs = {"dB": layer.right_solve(grad_L0)}
    r = gradient_check(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss="square", **kwargs)
    key = "A" if wrong == "dA" else "B"
    assert r[f"error_{key}"] > 1e3 * r[f"tolerance_{key}"]


@given(cases())
def test_problem_cache_gives_the_same_gradients(case):
    """The sufficient-statistics path (ShallowProblem) agrees with the direct path."""
    L, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    st_ = DEQObjective(verify.ShallowProblem(case.Phi, case.Y, case.loss), gamma=case.gamma).evaluate(
        case.A, case.B, with_excess=False
    )
    # Two summation orders of the same quantities: agreement to cond(U) * cond(Phi) * eps.
    cond = (1 + case.gamma) / (1 - case.gamma) * np.linalg.cond(case.Phi @ case.Phi.T + np.eye(case.m) * 1e-300)
    tol = 100 * case.m * EPS * min(cond, 1e8)
    assert st_.loss == pytest.approx(L, rel=tol, abs=tol)
    assert np.abs(st_.dB - dB).max() <= tol * max(1.0, np.abs(dB).max())
    assert np.abs(st_.dA - dA).max() <= tol * max(1.0, np.abs(dB).max() * np.abs(st_.W).max())


@given(cases())
def test_conservation_law_column_sums_of_dA_vanish(case):
    _, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    S = verify.column_softmax(case.A)
    Gamma = case.gamma * verify.end_to_end_weight(case.A, case.B, gamma=case.gamma).T @ dB
    # Column j of dA is s o Gamma_j - s (s . Gamma_j); its sum is (1 - 1^T s)(s . Gamma_j) = O(m eps)
    # plus the rounding of 2m terms: |sum| <= 4 (m + 2) eps sum_i |s_i Gamma_ij| (|s . Gamma_j| is
    # bounded by the same sum, and 1^T s = 1 to (m + 1) eps).
    tol = 4 * (case.m + 2) * EPS * np.abs(S * Gamma).sum(axis=0)
    assert np.all(np.abs(dA.sum(axis=0)) <= tol + 1e-300)


@given(cases(gamma_range=(0.3, 0.9)))
def test_unrolled_gradient_converges_like_gamma_power(case):
    L, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, loss=case.loss)
    # Pick depths where gamma^H is between 1e-3 and 1e-9, far above rounding.
    H1 = int(np.ceil(np.log(1e-3) / np.log(case.gamma)))
    H2 = int(np.ceil(np.log(1e-9) / np.log(case.gamma)))
    errs = []
    for H in (H1, H2):
        _, dA_H, dB_H = verify.unrolled_loss_and_grad(
            case.A, case.B, case.Phi, case.Y, gamma=case.gamma, layers=H, loss=case.loss
        )
        errs.append(np.linalg.norm(dA_H - dA) + np.linalg.norm(dB_H - dB))
    ref = np.linalg.norm(dA) + np.linalg.norm(dB)
    # The error is a sum of at most H + 1 terms each of order gamma^H (powers of gamma S with
    # spectral radius gamma): err(H2)/err(H1) <= gamma^(H2-H1) (H2+1)/(H1+1) up to the
    # transient of (gamma S)^H, allowed a factor 10.
    if errs[0] > 1e-12 * ref:
        assert errs[1] <= 10 * errs[0] * case.gamma ** (H2 - H1) * (H2 + 1) / (H1 + 1) + 1e-13 * ref
    assert errs[1] <= 1e-6 * max(ref, 1.0)


def test_unrolled_rate_is_exactly_gamma_asymptotically():
    """The asymptotic decay factor per layer is gamma (the spectral radius of gamma S)."""
    case = make_case(3, m=4, m_y=2, n=5, gamma=0.7)
    _, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma)

    def err(H):
        _, a, b = verify.unrolled_loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=case.gamma, layers=H)
        return np.linalg.norm(a - dA) + np.linalg.norm(b - dB)

    factor = (err(60) / err(40)) ** (1 / 20)
    # Polynomial prefactor (H+1) moves the per-layer factor by at most (61/41)^(1/20) - 1 < 2%.
    assert factor == pytest.approx(case.gamma, rel=0.03)
