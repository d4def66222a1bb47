"""Derivations for Theorem 2 (docs/theory.md, section 6): the loss, its Hessian, steepest descent.

The admissible step and the trust-region subproblem at the derived K and H are in
:mod:`theory.admissible_step`.

- The first-order form: solving the KKT system of min g^T v s.t. v^T K^{-1} v <= r^2 gives
  v = -r K g / sqrt(g^T K g): steepest descent in the metric K^{-1}.
- The Hessian of L0 for every registered loss (theory.losses), by differentiating L0(W) twice.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .losses import total_loss
from .symbolic_model import symbol_matrix


def _spd(size: int) -> sp.Matrix:
    """K = R R^T (R lower triangular with positive diagonal): a generic SPD matrix."""
    R = sp.Matrix(
        size,
        size,
        lambda i, j: (
            (sp.Symbol(f"r_{i}{j}", positive=True) if i == j else sp.Symbol(f"r_{i}{j}", real=True)) if i >= j else 0
        ),
    )
    return R * R.T


def claimed_steepest_descent(K: sp.Matrix, g: sp.Matrix, r) -> sp.Matrix:
    """v = -r K g / sqrt(g^T K g): the step of length r in the metric K^{-1} (docs/theory.md, section 6)."""
    return -r * K * g / sp.sqrt((g.T * K * g)[0, 0])


def steepest_descent_in_metric(size: int = 2):
    """KKT of min g^T v s.t. v^T K^{-1} v = r^2 (active), solved for v and nu > 0.

    Returns v - (-r K g / sqrt(g^T K g)), simplified, for the solution with nu > 0 (zero).
    """
    r, nu = sp.symbols("r nu", positive=True)
    K = _spd(size)
    g = sp.Matrix(sp.symbols(f"g0:{size}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{size}", real=True))
    stationarity = g + 2 * nu * K.inv() * v
    v_nu = v.xreplace(sp.solve(list(stationarity), list(v), dict=True)[0])
    constraint = sp.simplify((v_nu.T * K.inv() * v_nu)[0, 0] - r**2)
    nu_solutions = [s for s in sp.solve(constraint, nu) if s.is_positive is not False]
    claimed = claimed_steepest_descent(K, g, r)
    residuals = [(v_nu.subs(nu, s) - claimed).applyfunc(lambda x: sp.simplify(sp.factor(x))) for s in nu_solutions]
    return residuals


@cache
def derived_loss(m: int, m_y: int, n: int, loss: str):
    """L0(W) = sum_i l(W phi_i, y_i) from the definitions of the losses (docs/theory.md, section 1).

    Returns (L0, W, Phi, Y) with W, Phi, Y matrices of symbols.
    """
    W = symbol_matrix("w", m_y, m, real=True)
    Phi = symbol_matrix("p", m, n, real=True)
    Y = symbol_matrix("y", m_y, n, real=True)
    return total_loss(W * Phi, Y, loss), W, Phi, Y


@cache
def derived_hessian(m: int, m_y: int, n: int, loss: str):
    """The Hessian of L0(W) in column-major vec(W) coordinates, by differentiating L0 twice.

    Returns (H, W, Phi, Y) symbols; compare with (Phi Phi^T) (x) I (square),
    sum_i (phi_i phi_i^T) (x) (diag p_i - p_i p_i^T) (cross-entropy) or
    sum_i (phi_i phi_i^T) (x) diag((1 + r_i^2)^(-3/2)) (pseudo-Huber).
    """
    L0, W, Phi, Y = derived_loss(m, m_y, n, loss)
    w = [W[i, j] for j in range(m) for i in range(m_y)]
    return sp.hessian(L0, w), W, Phi, Y
