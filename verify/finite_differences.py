"""Finite-difference references for the gradient checks.

The fourth-order central difference

    D f(x)[v] ~ (8 (f(x + h v) - f(x - h v)) - (f(x + 2h v) - f(x - 2h v))) / (12 h)

has truncation error O(h^4 ||f^(5)||) and rounding error about 3 eps |f| / h; h = eps^(1/5) ~ 7e-4
(times the scale of x) balances the two at about eps^(4/5) ~ 3e-13 relative, far below the
1e-7 the gradient checks require.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = np.finfo(np.float64).eps
STEP = EPS ** 0.2


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
    from .model import ImplicitLayer

    layer = ImplicitLayer.from_weights(A, gamma=gamma)
    Z = layer.equilibrium(Phi)
    W = layer.end_to_end_weight(B)
    z = float(np.abs(Z).max())
    return STEP / max(1.0, 0.5 * gamma * float(np.abs(W).max()) * z * A.shape[0]), STEP / max(1.0, z)
