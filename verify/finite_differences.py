"""Finite-difference references for gradient checks, on the REFERENCE forward pass.

The fourth-order central difference

    D f(x)[v] ~ (8 (f(x + h v) - f(x - h v)) - (f(x + 2h v) - f(x - 2h v))) / (12 h)

has truncation error O(h^4 ||f^(5)||) and rounding error about 3 eps |f| / h; h = eps^(1/5) ~ 7e-4
(times the scale of x) balances the two at about eps^(4/5) ~ 3e-13 relative, far below the
1e-7 the gradient checks require. The loss differentiated is :func:`verify.reference.loss_value`
(a plain dense solve, written independently of the core), so a check built on it is a second
opinion on the core's gradients and not a restatement of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import reference

EPS = np.finfo(np.float64).eps
STEP = EPS**0.2


def directional_derivative(f: Callable[[np.ndarray], float], x: np.ndarray, v: np.ndarray, h: float = STEP) -> float:
    return (8.0 * (f(x + h * v) - f(x - h * v)) - (f(x + 2 * h * v) - f(x - 2 * h * v))) / (12.0 * h)


def finite_difference_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = STEP) -> np.ndarray:
    """Entry-by-entry fourth-order central differences of a scalar f at the array x."""
    grad = np.empty_like(x, dtype=float)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x, dtype=float)
        e[idx] = 1.0
        grad[idx] = directional_derivative(f, x, e, h)
    return grad


def relative_error(approx: np.ndarray, exact: np.ndarray) -> float:
    """||approx - exact||_F / ||exact||_F (inf when exact is 0 and approx is not)."""
    num = float(np.linalg.norm(np.asarray(approx) - np.asarray(exact)))
    den = float(np.linalg.norm(exact))
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


def parameter_steps(A: np.ndarray, B: np.ndarray, Phi: np.ndarray, gamma: float) -> tuple[float, float]:
    """FD steps (h_A, h_B) scaled to how fast the outputs Q = B U^{-1} Phi move.

    dQ/dB_ij = Z_j. (Z = U^{-1} Phi), so a change h in B moves Q by h max|Z|; the fifth
    derivative of L along B then scales like max|Z|^5 and the truncation error like
    (h max|Z|)^4. Dividing eps^(1/5) by max(1, max|Z|) keeps h max|Z| at eps^(1/5). For A,
    dQ = gamma W dS Z with ||dS||_1 <= ||dA||_max / 2 columnwise, giving the factor
    gamma max|W| max|Z| / 2 in place of max|Z|.
    """
    U = reference.implicit_matrix(A, gamma)
    Z = np.linalg.solve(U, Phi)
    W = reference.end_to_end_weight(A, B, gamma)
    z = float(np.abs(Z).max())
    return STEP / max(1.0, 0.5 * gamma * float(np.abs(W).max()) * z * A.shape[0]), STEP / max(1.0, z)


def gradient_check(A, B, Phi, Y, *, gamma: float, loss: str, dA=None, dB=None) -> dict:
    """Gradients (dA, dB) -- by default the core's :func:`verify.loss_and_grad` -- against
    fourth-order finite differences of the reference loss.

    Steps from :func:`parameter_steps` keep the truncation error near eps^(4/5). Each evaluation
    of L is accurate to rounding = m cond_1(U) eps relative (one LU solve), so the reference's
    rounding error is <= 3 rounding |L| / h per entry (weights 8/12, 1/12), i.e. relative
    3 rounding |L| sqrt(N) / (h ||g||), with g the finite-difference gradient (the reference: a
    tolerance scaled by the gradient being judged would let a zero gradient pass). The tolerance
    is 1e-7 plus that: only a reference that cannot resolve 1e-7 (a loss far larger than its
    gradient) widens it.

    Returns L, dA, dB, fd_A, fd_B, h_A, h_B and the relative errors and tolerances for A and B.
    """
    if dA is None or dB is None:
        from .gradients import loss_and_grad

        L, dA_core, dB_core = loss_and_grad(A, B, Phi, Y, gamma=gamma, loss=loss)
        dA = dA_core if dA is None else dA
        dB = dB_core if dB is None else dB
    f = lambda A_, B_: float(reference.loss_value(A_, B_, Phi, Y, gamma, loss))  # noqa: E731
    L = f(A, B)
    h_A, h_B = parameter_steps(A, B, Phi, gamma)
    fd_A = finite_difference_gradient(lambda A_: f(A_, B), A, h=h_A)
    fd_B = finite_difference_gradient(lambda B_: f(A, B_), B, h=h_B)
    rounding = A.shape[0] * (1 + gamma) / (1 - gamma) * EPS

    def tolerance(grad, h):
        return 1e-7 + 3 * rounding * abs(L) * np.sqrt(grad.size) / (h * max(np.linalg.norm(grad), 1e-300))

    return {
        "L": L,
        "dA": dA,
        "dB": dB,
        "fd_A": fd_A,
        "fd_B": fd_B,
        "h_A": h_A,
        "h_B": h_B,
        "error_A": relative_error(dA, fd_A),
        "tolerance_A": tolerance(fd_A, h_A),
        "error_B": relative_error(dB, fd_B),
        "tolerance_B": tolerance(fd_B, h_B),
    }
