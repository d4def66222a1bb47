"""The Polyak-Lojasiewicz inequality of the square loss, derived in SymPy (docs/theory.md, section 5).

**General 2 x 2 form.** C = Phi Phi^T = Q diag(l1, l2) Q^T (Q the Cayley rotation
[[1 - t^2, -2t], [2t, 1 - t^2]] / (1 + t^2), rational in t, every rotation but pi), d = W - W* a row.
:func:`pl_derivation` differentiates the excess E(W) = 1/2 d C d^T (L0(W) - L* for the square loss,
derived at the instances below) to get grad L0 = dE/dW, and shows exactly

    ||grad||^2 - 2 kappa E = sum_i l_i (l_i - kappa) c_i^2,     c = d Q,  Q^T Q = I.

With kappa = :func:`pl_constant` (the smallest nonzero eigenvalue) and the eigenvalues written as
l = (k, k + p) or (0, k) (k > 0, p >= 0: every ordered pair with at most one zero), SymPy's
``is_nonnegative`` decides the right-hand side is >= 0 for every c; for kappa' = kappa + q (q > 0)
it exhibits a negative value (c on the eigenvector of the smallest nonzero eigenvalue): no larger
constant is implied. Any size and m_y > 1: the same identity in eigen-coordinates, row by row
(proof on paper).

**Instances.** :func:`pl_instance` at a rational Phi (m x n, m > n: a zero eigenvalue and non-unique
minimisers; m < n: L* > 0; rank < min(m, n): a zero eigenvalue the core must recognise as zero in
floating point): L* = L0(W*) at a least-squares W* (gradient 0 and Hessian C >= 0,
decided: a global minimum), the identity ||grad L0||^2 - 2 kappa (L0 - L*) = d (C^2 - kappa C) d^T
derived from L0 itself, kappa = pl_constant(C) exactly (an algebraic number), and C^2 - kappa C
PSD at a rational kappa just below, not PSD just above. kappa is compared with the numerical core
in verify/claims/symbolic.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .exact import is_positive_semidefinite, is_zero, rational_bracket

#: how far (relative) the rational constants of an instance sit below and above kappa
KAPPA_GAP = sp.Rational(1, 10**9)


def pl_constant(eigenvalues) -> sp.Expr:
    """The claimed PL constant of the square loss: the smallest nonzero eigenvalue of Phi Phi^T."""
    nonzero = [lam for lam in eigenvalues if lam.is_zero is not True]
    if not nonzero:
        raise ValueError("eigenvalues must contain a nonzero value (Phi = 0 has no PL constant)")
    return sp.Min(*nonzero)


def square_loss_excess(d: sp.Matrix, C: sp.Matrix) -> sp.Expr:
    """L0(W) - L* = 1/2 d C d^T, d = W - W* (docs/theory.md, section 3; derived at the instances)."""
    return sp.Rational(1, 2) * (d * C * d.T)[0, 0]


def pl_derivation() -> dict[str, bool]:
    """The general 2 x 2 derivation of the module docstring; values are decided truth values."""
    t = sp.Symbol("t", real=True)
    l1, l2, kappa = sp.symbols("l1 l2 kappa", nonnegative=True)
    W = sp.Matrix([sp.symbols("w0 w1", real=True)])
    W_star = sp.Matrix([sp.symbols("ws0 ws1", real=True)])
    Q = sp.Matrix([[1 - t**2, -2 * t], [2 * t, 1 - t**2]]) / (1 + t**2)
    C = Q * sp.diag(l1, l2) * Q.T
    d = W - W_star
    excess = square_loss_excess(d, C)
    grad = sp.Matrix([[sp.diff(excess, w) for w in W]])
    facts = {
        "Q^T Q = I (Cayley rotation)": is_zero((Q.T * Q - sp.eye(2)).applyfunc(sp.cancel)),
        "grad E = d C (derived by differentiating the excess)": is_zero((grad - d * C).applyfunc(sp.expand)),
    }
    c = d * Q
    claimed = l1 * (l1 - kappa) * c[0] ** 2 + l2 * (l2 - kappa) * c[1] ** 2
    residual = sp.cancel((grad * grad.T)[0, 0] - 2 * kappa * excess - claimed)
    facts["||grad||^2 - 2 kappa E = sum_i l_i (l_i - kappa) c_i^2"] = residual == 0

    # c = d Q is a bijection of the plane (Q invertible), so the form is judged for free c_i
    c1, c2 = sp.symbols("c1 c2", real=True)
    k, q = sp.symbols("k q", positive=True)
    p = sp.Symbol("p", nonnegative=True)
    form = lambda lams, kap, cs: sum(lam * (lam - kap) * ci**2 for lam, ci in zip(lams, cs))  # noqa: E731
    for label, lams, worst in (
        ("both eigenvalues nonzero", (k, k + p), (1, 0)),
        ("one eigenvalue zero", (sp.Integer(0), k), (0, 1)),
    ):
        kap = pl_constant(lams)
        facts[f"{label}: sum_i l_i (l_i - kappa) c_i^2 >= 0 for every c"] = (
            form(lams, kap, (c1, c2)).is_nonnegative is True
        )
        facts[f"{label}: kappa + q (q > 0) gives a negative value"] = form(lams, kap + q, worst).is_negative is True
    return facts


@dataclass(frozen=True)
class PLInstance:
    """kappa at a rational Phi (m x n), with the decided facts; ``kappa_lo`` < kappa < ``kappa_hi``."""

    Phi: sp.Matrix
    Y: sp.Matrix
    kappa: sp.Expr
    kappa_lo: sp.Rational
    kappa_hi: sp.Rational
    facts: dict = field(default_factory=dict)


def _rational_matrix(rng: np.random.Generator, rows: int, cols: int, denominator: int = 16) -> sp.Matrix:
    return sp.Matrix(
        rows, cols, lambda i, j: sp.Rational(int(rng.integers(-2 * denominator, 2 * denominator + 1)), denominator)
    )


def gram_spectrum(C: sp.Matrix) -> tuple[int, sp.Poly, list]:
    """The eigenvalues of a symmetric rational C, exactly: (number of zero eigenvalues, the
    characteristic polynomial with its zero roots divided out, all eigenvalues ascending with the
    nonzero ones as CRootOf objects, exact real algebraic numbers)."""
    x = sp.Symbol("x")
    poly = sp.Poly(C.charpoly(x).as_expr(), x)
    zeros = 0
    while poly.eval(0) == 0:
        poly = sp.Poly(sp.quo(poly.as_expr(), x), x)
        zeros += 1
    return zeros, poly, [sp.Integer(0)] * zeros + list(poly.all_roots())


def pl_instance(m: int, n: int, rng: np.random.Generator, rank: int | None = None) -> PLInstance:
    """See the module docstring; m_y = 1 (the rows of W are independent). ``rank`` < min(m, n)
    builds Phi = X Z (X m x rank, Z rank x n): a zero eigenvalue that no shape forces."""
    rank = min(m, n) if rank is None else rank
    if not 1 <= rank <= min(m, n):
        raise ValueError(f"rank must lie in [1, min(m, n)] = [1, {min(m, n)}]; got {rank}")
    for _ in range(20):
        Phi = (
            _rational_matrix(rng, m, rank) * _rational_matrix(rng, rank, n)
            if rank < min(m, n)
            else _rational_matrix(rng, m, n)
        )
        if Phi.rank() == rank:
            break
    else:  # pragma: no cover - twenty rational draws of too small a rank in a row
        raise ArithmeticError(f"no Phi of rank {rank} drawn")
    Y = _rational_matrix(rng, 1, n)
    W = sp.Matrix([sp.symbols(f"w0:{m}", real=True)])
    # L0 as a polynomial in W (rational coefficients): differentiation in the polynomial ring
    L0_poly = sp.Poly(sp.Rational(1, 2) * sum(r**2 for r in (W * Phi - Y)), *W)
    L0 = L0_poly.as_expr()
    grad = sp.Matrix([[L0_poly.diff(w).as_expr() for w in W]])
    C = Phi * Phi.T
    W_star = Y * Phi.pinv()
    at_star = dict(zip(W, W_star))
    hessian = sp.Matrix(m, m, lambda i, j: L0_poly.diff(W[i]).diff(W[j]).as_expr())
    L_star = L0.xreplace(at_star)
    facts = {
        "grad L0(W*) = 0 at the least-squares W*": is_zero(grad.xreplace(at_star)),
        "Hessian of L0 = C >= 0: L* = L0(W*) (convex)": hessian == C and is_positive_semidefinite(C),
    }
    kappa_sym = sp.Symbol("kappa")
    d = W - W_star
    identity = (grad * grad.T)[0, 0] - 2 * kappa_sym * (L0 - L_star) - (d * (C * C - kappa_sym * C) * d.T)[0, 0]
    facts["||grad L0||^2 - 2 kappa (L0 - L*) = d (C^2 - kappa C) d^T"] = sp.expand(identity) == 0

    zeros, reduced, eigenvalues = gram_spectrum(C)
    kappa = pl_constant(eigenvalues)
    lo, hi = rational_bracket(kappa, KAPPA_GAP)
    # the nonzero eigenvalues are the roots of the reduced polynomial, all > 0 (C >= 0): the only
    # root in [lo, hi] with none in [0, lo] is the smallest nonzero eigenvalue
    facts["smallest nonzero eigenvalue of C in (kappa_lo, kappa_hi) (Sturm)"] = (
        zeros == m - rank
        and 0 < lo
        and reduced.eval(lo) != 0
        and reduced.eval(hi) != 0
        and reduced.count_roots(0, lo) == 0
        and reduced.count_roots(lo, hi) == 1
    )
    facts["C^2 - kappa_lo C >= 0: PL holds just below kappa"] = is_positive_semidefinite(C * C - lo * C)
    facts["C^2 - kappa_hi C not >= 0: PL fails just above kappa"] = not is_positive_semidefinite(C * C - hi * C)
    return PLInstance(Phi, Y, kappa, lo, hi, facts)


__all__ = ["pl_constant", "pl_derivation", "PLInstance", "pl_instance", "gram_spectrum", "KAPPA_GAP"]
