"""The deep equilibrium linear model (docs/theory.md, section 1 and 2).

    S = sigma(A),  sigma(A)_ij = exp(A_ij) / sum_k exp(A_kj)     (softmax of each column)
    U = I - gamma S
    z* = U^{-1} phi(x),   f(x) = B z* = W phi(x),   W = B U^{-1}

One LU factorisation of U serves both U and U^T (``lu_solve(..., trans=1)``); no inverse is
ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lu_factor, lu_solve

from ._validation import as_matrix, check_gamma, check_memory, check_model, check_positive, check_square_weight


def column_softmax(A: np.ndarray) -> np.ndarray:
    """sigma(A)_ij = exp(A_ij) / sum_k exp(A_kj), stable for |A_ij| up to float64 range.

    Subtracting each column's maximum leaves sigma unchanged and keeps every exponent <= 0, so
    nothing overflows and the largest entry of each column is computed as 1 / (sum) exactly.
    Works on stacks of matrices (..., m, m) too.
    """
    shifted = A - A.max(axis=-2, keepdims=True)
    E = np.exp(shifted)
    return E / E.sum(axis=-2, keepdims=True)


@dataclass(frozen=True)
class ImplicitLayer:
    """The implicit layer at one weight matrix: S = sigma(A), U = I - gamma S and LU(U).

    Build with :meth:`from_weights`; every solve with U or U^T reuses the one factorisation.
    """

    A: np.ndarray
    gamma: float
    S: np.ndarray
    U: np.ndarray
    lu: tuple

    @classmethod
    def from_weights(cls, A, *, gamma, validate: bool = True) -> ImplicitLayer:
        if validate:
            A = check_square_weight(A)
            gamma = check_gamma(gamma)
        S = column_softmax(A)
        U = np.eye(A.shape[0]) - gamma * S
        # U is strictly column diagonally dominant (its off-diagonal column mass is gamma(1-S_jj)
        # < 1 - gamma S_jj), so LU with partial pivoting is backward stable with no growth.
        return cls(A=A, gamma=gamma, S=S, U=U, lu=lu_factor(U, check_finite=False))

    @property
    def m(self) -> int:
        return self.A.shape[0]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """U^{-1} rhs."""
        return lu_solve(self.lu, rhs, check_finite=False)

    def solve_transposed(self, rhs: np.ndarray) -> np.ndarray:
        """U^{-T} rhs."""
        return lu_solve(self.lu, rhs, trans=1, check_finite=False)

    def right_solve(self, M: np.ndarray) -> np.ndarray:
        """M U^{-1}  (computed as (U^{-T} M^T)^T)."""
        return self.solve_transposed(M.T).T

    def right_solve_transposed(self, M: np.ndarray) -> np.ndarray:
        """M U^{-T}  (computed as (U^{-1} M^T)^T)."""
        return self.solve(M.T).T

    def end_to_end_weight(self, B: np.ndarray) -> np.ndarray:
        """W = B U^{-1}."""
        return self.right_solve(B)

    def equilibrium(self, Phi: np.ndarray) -> np.ndarray:
        """Z = U^{-1} Phi, the fixed point of z <- gamma S z + phi for every column."""
        return self.solve(Phi)


def end_to_end_weight(A, B, *, gamma) -> np.ndarray:
    """The shallow weight W = B (I - gamma sigma(A))^{-1}, so that f(x) = W phi(x)."""
    A, B, gamma = check_model(A, B, gamma)
    return ImplicitLayer.from_weights(A, gamma=gamma, validate=False).end_to_end_weight(B)


def equilibrium(A, Phi, *, gamma) -> np.ndarray:
    """Z = (I - gamma sigma(A))^{-1} Phi by one LU solve."""
    A = check_square_weight(A)
    Phi = as_matrix("Phi", Phi, shape=(A.shape[0], None))
    return ImplicitLayer.from_weights(A, gamma=gamma).equilibrium(Phi)


def fixed_point_iterates(A, Phi, *, gamma, layers: int, z0=None) -> np.ndarray:
    """The weight-tied forward iteration z^(l) = gamma S z^(l-1) + Phi, l = 1..layers.

    Returns an array of shape (layers + 1, m, n) holding z^(0), ..., z^(layers); z^(0) = 0 unless
    given. By ||gamma S||_1 = gamma, ||z^(l) - z*||_1 <= gamma^l ||z^(0) - z*||_1 columnwise.
    """
    A = check_square_weight(A)
    gamma = check_gamma(gamma)
    Phi = as_matrix("Phi", Phi, shape=(A.shape[0], None))
    layers = check_positive("layers", layers, integer=True)
    check_memory(
        f"layers = {layers} (an (layers + 1) x m x n array)", 8 * (layers + 1) * Phi.size, "ask for fewer layers"
    )
    z = np.zeros_like(Phi) if z0 is None else as_matrix("z0", z0, shape=Phi.shape)
    gS = gamma * column_softmax(A)
    out = np.empty((layers + 1,) + Phi.shape)
    out[0] = z
    for layer in range(1, layers + 1):
        z = gS @ z + Phi
        out[layer] = z
    return out


def predict(A, B, Phi, *, gamma) -> np.ndarray:
    """Outputs f(x_i) = W phi(x_i) as the columns of W Phi."""
    A, B, gamma = check_model(A, B, gamma)
    Phi = as_matrix("Phi", Phi, shape=(A.shape[0], None))
    return end_to_end_weight(A, B, gamma=gamma) @ Phi


def weight_for(A, W, *, gamma) -> np.ndarray:
    """The B that realises a given shallow weight W at this A: B = W U (expressivity)."""
    A = check_square_weight(A)
    W = as_matrix("W", W, shape=(None, A.shape[0]))
    return W @ ImplicitLayer.from_weights(A, gamma=gamma).U
