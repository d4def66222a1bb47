"""Exact decisions on small rational matrices and real algebraic numbers (shared by the derivations).

Every function returns a truth value that SymPy decides in exact arithmetic (rationals, or root
counts of a polynomial with rational coefficients by Sturm sequences); nothing is rounded.
"""

from __future__ import annotations

from itertools import combinations

import sympy as sp


def is_zero(x) -> bool:
    """True when ``x`` (a number, expression or matrix) is exactly 0 as given (no simplification)."""
    if isinstance(x, sp.MatrixBase):
        return all(entry == 0 for entry in x)
    return x == 0


def _check_symmetric_rational(X: sp.Matrix, name: str) -> None:
    if X.rows != X.cols or X != X.T:
        raise ValueError(f"{name} must be a symmetric square matrix")
    if not all(entry.is_Rational for entry in X):
        raise ValueError(f"{name} must have rational entries (exact decisions only)")


def definiteness_witness(X: sp.Matrix) -> tuple[bool, sp.Matrix | None]:
    """Decide X > 0 for a symmetric rational X by symmetric elimination in exact arithmetic.

    After k steps X = L_k diag(d_1..d_k, S_k) L_k^T (L_k unit lower triangular, S_k the Schur
    complement). X > 0 iff every pivot d_j > 0 (Sylvester's criterion: the leading principal
    minors are the products of the pivots). At the first pivot d = S_k[0, 0] <= 0 the vector
    x = L_k^{-T} e_k has x^T X x = d <= 0; returns (False, x), else (True, None).
    """
    _check_symmetric_rational(X, "X")
    size = X.rows
    S, L = X.as_mutable(), sp.eye(size).as_mutable()
    for k in range(size):
        pivot = S[k, k]
        if pivot <= 0:
            e = sp.zeros(size, 1)
            e[k] = 1
            x = L.T.upper_triangular_solve(e)
            if (x.T * X * x)[0, 0] != pivot:  # the witness is checked, not trusted
                raise ArithmeticError("elimination witness inconsistent")
            return False, x
        for i in range(k + 1, size):
            L[i, k] = S[i, k] / pivot
        for i in range(k + 1, size):
            for j in range(k + 1, size):
                S[i, j] -= L[i, k] * S[k, j]
    return True, None


def is_positive_definite(X: sp.Matrix) -> bool:
    """X > 0, decided exactly (see :func:`definiteness_witness`)."""
    return definiteness_witness(X)[0]


def is_positive_semidefinite(X: sp.Matrix) -> bool:
    """X >= 0, decided exactly: every principal minor (not only the leading ones) is >= 0."""
    _check_symmetric_rational(X, "X")
    size = X.rows
    return all(
        X.extract(list(idx), list(idx)).det() >= 0 for k in range(1, size + 1) for idx in combinations(range(size), k)
    )


def rational_bracket(value, relative_gap: sp.Rational) -> tuple[sp.Rational, sp.Rational]:
    """Rationals lo < hi with hi / lo - 1 about 2 ``relative_gap`` around a 40-digit approximation
    of the nonzero real ``value``.

    Nothing is claimed about ``value`` here: the callers *decide* where a root lies with
    :meth:`sympy.Poly.count_roots` (Sturm sequences, exact) on [lo, hi] and outside it.
    """
    approx = sp.Rational(str(sp.N(value, 40)))
    if approx == 0:
        raise ValueError("value must be nonzero")
    lo, hi = sorted([approx * (1 - relative_gap), approx * (1 + relative_gap)])
    return lo, hi
