"""Derivations of the softmax Jacobian, dL/dB, dL/dA and the conservation law (docs/theory.md, section 3).

Each result is obtained by differentiating the symbolic model of :mod:`theory.symbolic_model`;
the closed forms appear only in the ``closed_form_*`` functions, which the derivations are
compared with (exactly, in rational arithmetic, or at 50 significant digits for cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from .losses import output_gradient
from .symbolic_model import SymbolicDEQ, build, column_softmax_from_exponentials, symbol_matrix


# ---- softmax Jacobian and the conservation law -------------------------------------------
def closed_form_softmax_jacobian(s: sp.Matrix) -> sp.Matrix:
    """J = diag(s) - s s^T (docs/theory.md, section 3)."""
    return sp.diag(*s) - s * s.T


def softmax_jacobian_residual(m: int) -> sp.Matrix:
    """d sigma(a)/d a computed by SymPy, minus diag(s) - s s^T, simplified (zero matrix if true)."""
    a = sp.Matrix(sp.symbols(f"a0:{m}", real=True))
    exps = a.applyfunc(sp.exp)
    s = exps / sum(exps)
    derived = s.jacobian(a)
    return (derived - closed_form_softmax_jacobian(s)).applyfunc(sp.simplify)


def column_scaling_residual(m: int) -> sp.Matrix:
    """R_kj = sum_i e_ij d sigma_kj / d e_ij, simplified.

    Since dL/dA_ij = e_ij dL/de_ij and L depends on e only through sigma, the column sum
    sum_i dL/dA_ij = sum_k (dL/dsigma_kj) R_kj. R = 0 (sigma is homogeneous of degree 0 in each
    column of e) therefore proves 1^T dL/dA = 0 for every loss.
    """
    E = symbol_matrix("e", m, m, positive=True)
    S = column_softmax_from_exponentials(E)
    R = sp.Matrix(m, m, lambda k, j: sum(E[i, j] * sp.diff(S[k, j], E[i, j]) for i in range(m)))
    return R.applyfunc(sp.simplify)


# ---- gradients of the loss -----------------------------------------------------------------
@dataclass(frozen=True)
class DerivedGradients:
    model: SymbolicDEQ
    dA: sp.Matrix  # dL/dA_ij = e_ij dL/de_ij  (chain rule through e = exp(A))
    dB: sp.Matrix

    def numeric(self):
        """A NumPy function (A, B, Phi, Y, gamma) -> (L, dA, dB) of the derived expressions
        (float64: exp(A) may overflow and log-sum-exp may cancel; see :meth:`high_precision`)."""
        model = self.model
        f = sp.lambdify(model.all_symbols, [model.L, self.dA, self.dB], modules="numpy", cse=True)

        def evaluate(A, B, Phi, Y, gamma):
            args = [gamma] + list(np.exp(A).ravel()) + list(B.ravel()) + list(Phi.ravel()) + list(Y.ravel())
            L, dA, dB = f(*args)
            return float(L), np.asarray(dA, dtype=float), np.asarray(dB, dtype=float)

        return evaluate

    def high_precision(self, digits: tuple[int, ...] = (40, 80, 160, 320, 640, 1280, 2560)):
        """A function (A, B, Phi, Y, gamma) -> (L, dA, dB, digits) evaluating the derived
        expressions in mpmath: the float64 inputs are exact binary numbers, exp(A_ij) and every
        operation are carried at ``digits`` significant digits (no overflow: mpmath's exponent
        range is unbounded). Two consecutive precisions must agree to 1e-20 relative to each
        group's largest entry (L; dA; dB), else the next is tried; a saturated output softmax can
        need hundreds of digits (its gradient is e^-|q| against terms of order 1)."""
        import mpmath

        model = self.model
        m, m_y = model.m, model.m_y
        f = sp.lambdify(model.all_symbols, [model.L, self.dA, self.dB], modules="mpmath", cse=True)

        def at(precision, A, B, Phi, Y, gamma):
            with mpmath.workdps(precision):
                args = (
                    [mpmath.mpf(float(gamma))]
                    + [mpmath.exp(mpmath.mpf(float(a))) for a in A.ravel()]
                    + [mpmath.mpf(float(x)) for x in list(B.ravel()) + list(Phi.ravel()) + list(Y.ravel())]
                )
                L, dA, dB = f(*args)
                return [[L], list(dA), list(dB)]

        def settled(current, previous, precision) -> bool:
            with mpmath.workdps(precision):
                for cur, prev in zip(current, previous):
                    scale = max(abs(x) for x in cur)
                    if max(abs(x - y) for x, y in zip(cur, prev)) > mpmath.mpf(10) ** -20 * scale:
                        return False
            return True

        def evaluate(A, B, Phi, Y, gamma):
            previous = at(digits[0], A, B, Phi, Y, gamma)
            for precision in digits[1:]:
                current = at(precision, A, B, Phi, Y, gamma)
                if settled(current, previous, precision):
                    L, dA, dB = ([float(x) for x in group] for group in current)
                    return L[0], np.array(dA).reshape(m, m), np.array(dB).reshape(m_y, m), precision
                previous = current
            raise ArithmeticError(f"the derivation did not settle at {digits[-1]} digits")

        return evaluate

    def at(self, point: dict) -> tuple[sp.Matrix, sp.Matrix]:
        """The derived gradients evaluated exactly at a rational point (square loss)."""
        return self.dA.xreplace(point), self.dB.xreplace(point)


@cache
def derive_gradients(m: int, m_y: int, n: int, loss: str = "square") -> DerivedGradients:
    """Differentiate the scalar symbolic loss with respect to every entry of A and B."""
    model = build(m, m_y, n, loss)
    dB = sp.Matrix(m_y, m, lambda i, j: sp.diff(model.L, model.B[i, j]))
    dA = sp.Matrix(m, m, lambda i, j: model.E[i, j] * sp.diff(model.L, model.E[i, j]))
    return DerivedGradients(model, dA, dB)


def closed_form_gradients(model: SymbolicDEQ, point: dict) -> tuple[sp.Matrix, sp.Matrix]:
    """docs/theory.md, section 3 evaluated at a point (exact rationals for the square loss; sympy
    Floats where exp or sqrt enter):

    dL/dB = G Phi^T U^{-T},  Gamma = gamma W^T dL/dB,  dL/dA = S o (Gamma - 1 1^T (S o Gamma)).
    """
    sub = lambda M: M.xreplace(point)  # noqa: E731
    gamma = point[model.gamma]
    E, B, Phi, Y = sub(model.E), sub(model.B), sub(model.Phi), sub(model.Y)
    S = column_softmax_from_exponentials(E)
    U = sp.eye(model.m) - gamma * S
    W = B * U.inv()
    Q = W * Phi
    G = output_gradient(Q, Y, model.loss)  # the closed form of dL/dQ (theory.losses)
    dB = G * Phi.T * U.inv().T
    Gamma = gamma * W.T * dB
    SG = S.multiply_elementwise(Gamma)
    ones = sp.ones(model.m, 1)
    dA = S.multiply_elementwise(Gamma - ones * (ones.T * SG))
    return dA, dB


def max_abs_difference(X: sp.Matrix, Y: sp.Matrix, digits: int = 50) -> sp.Float:
    """max |X - Y| entrywise, evaluated at ``digits`` significant digits (exact 0 stays 0)."""
    D = (X - Y).applyfunc(lambda x: sp.N(x, digits))
    return max((abs(d) for d in D), default=sp.Integer(0))
