"""A fully symbolic small DEQ-linear model, built from its definition only.

Entries are symbols: e_ij = exp(A_ij) (positive symbols, so that sigma(A) = e / colsum(e) and the
whole square-loss model is a rational function), B, Phi, Y and gamma. Nothing here states a
gradient: the derivations in :mod:`theory.gradients` and :mod:`theory.dynamics` obtain them by
differentiating the scalar loss built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import permutations

import numpy as np
import sympy as sp
from sympy.combinatorics import Permutation

from .losses import symbolic_loss, total_loss


def symbol_matrix(prefix: str, rows: int, cols: int, **assumptions) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{prefix}_{i}{j}", **assumptions))


@dataclass(frozen=True)
class SymbolicDEQ:
    """Symbols and the model expressions for sizes (m, m_y, n) and one loss."""

    m: int
    m_y: int
    n: int
    loss: str
    gamma: sp.Symbol
    E: sp.Matrix  # e_ij = exp(A_ij) > 0
    B: sp.Matrix
    Phi: sp.Matrix
    Y: sp.Matrix
    S: sp.Matrix
    U: sp.Matrix
    W: sp.Matrix
    L: sp.Expr

    @property
    def parameter_symbols(self) -> list[sp.Symbol]:
        return list(self.E) + list(self.B)

    @property
    def all_symbols(self) -> list[sp.Symbol]:
        return [self.gamma] + list(self.E) + list(self.B) + list(self.Phi) + list(self.Y)


def column_softmax_from_exponentials(E: sp.Matrix) -> sp.Matrix:
    """sigma(A)_ij = e_ij / sum_k e_kj: the definition of the column softmax."""
    col_sums = [sum(E[:, j]) for j in range(E.cols)]
    return sp.Matrix(E.rows, E.cols, lambda i, j: E[i, j] / col_sums[j])


def leibniz_det(M: sp.Matrix) -> sp.Expr:
    """det M = sum over permutations p of sign(p) prod_i M[i, p(i)], unsimplified.

    SymPy's own det simplifies its result, which takes minutes on a 3 x 3 matrix of rational
    functions; the small sizes used here need no simplification.
    """
    n = M.rows
    if n == 0:
        return sp.Integer(1)
    total = sp.Integer(0)
    for perm in permutations(range(n)):
        sign = Permutation(list(perm)).signature()
        total += sign * sp.Mul(*[M[i, perm[i]] for i in range(n)])
    return total


def adjugate(M: sp.Matrix) -> sp.Matrix:
    """adj(M)_ij = (-1)^(i+j) det(M with row j and column i removed)."""
    n = M.rows
    return sp.Matrix(n, n, lambda i, j: (-1) ** (i + j) * leibniz_det(M.minor_submatrix(j, i)))


@cache
def build(m: int, m_y: int, n: int, loss: str = "square") -> SymbolicDEQ:
    """The scalar loss L(A, B) = sum_i l(B (I - gamma sigma(A))^{-1} phi_i, y_i), symbolically."""
    symbolic_loss(loss)  # an unknown name is refused there, listing the registered losses
    gamma = sp.Symbol("gamma", positive=True)
    E = symbol_matrix("e", m, m, positive=True)
    B = symbol_matrix("b", m_y, m, real=True)
    Phi = symbol_matrix("p", m, n, real=True)
    Y = symbol_matrix("y", m_y, n, real=True)
    S = column_softmax_from_exponentials(E)
    U = sp.eye(m) - gamma * S
    # The inverse comes from the adjugate formula: exact, and a rational function of the symbols.
    W = B * adjugate(U) / leibniz_det(U)
    Q = W * Phi
    L = total_loss(Q, Y, loss)
    return SymbolicDEQ(m, m_y, n, loss, gamma, E, B, Phi, Y, S, U, W, L)


# ---- numeric points ----------------------------------------------------------------------
def random_rational_point(model: SymbolicDEQ, rng: np.random.Generator, *, denominator: int = 16) -> dict:
    """Exact rational values for every symbol (e_ij > 0, gamma in (0, 1), one-hot Y for a loss with
    one-hot targets)."""

    def rat(low, high):
        return sp.Rational(int(rng.integers(low * denominator, high * denominator)), denominator)

    point = {model.gamma: sp.Rational(int(rng.integers(1, denominator)), denominator)}
    for s in model.E:
        point[s] = rat(1, 4)
    for s in list(model.B) + list(model.Phi):
        point[s] = rat(-2, 2)
    if symbolic_loss(model.loss).targets == "real":
        for s in model.Y:
            point[s] = rat(-2, 2)
    else:
        labels = rng.integers(0, model.m_y, model.n)
        for k in range(model.m_y):
            for i in range(model.n):
                point[model.Y[k, i]] = sp.Integer(int(labels[i] == k))
    return point


def numeric_point(
    model: SymbolicDEQ, A: np.ndarray, B: np.ndarray, Phi: np.ndarray, Y: np.ndarray, gamma: float
) -> list:
    """Arguments, in ``model.all_symbols`` order, for lambdified functions at float data."""
    return [gamma] + list(np.exp(A).ravel()) + list(B.ravel()) + list(Phi.ravel()) + list(Y.ravel())


def to_fraction(x) -> Fraction:
    r = sp.Rational(x)
    return Fraction(int(r.p), int(r.q))
