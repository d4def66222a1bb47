"""Derivations for the function-space dynamics and Theorem 1 (docs/theory.md, sections 4 and 5).

- The metric K: differentiate W = B U^{-1} with respect to every parameter theta = (A, B) to get
  the Jacobian J = d vec(W) / d theta. Along gradient flow of any L = L0(W),
  dL/dtheta = J^T g (chain rule, derived by differentiating L_lin = g . vec(W) with g held at
  grad L0), so d vec(W)/dt = J dtheta/dt = -J J^T g: the derived K is J J^T. It splits as
  J_B J_B^T + J_A J_A^T; the closed forms of the two pieces are compared with it exactly.
- The energy identity dL/dt = g . d vec(W)/dt = -||dL/dtheta||^2.
- K >= lambda(A) I follows from J_A J_A^T >= 0 and J_B J_B^T = (U^{-T} U^{-1}) (x) I.
- The comparison ODE of Theorem 1 solved by dsolve. The PL inequality is derived in
  :mod:`theory.pl_inequality`, the uniform rate bound in :mod:`theory.uniform_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from .symbolic_model import adjugate, build, column_softmax_from_exponentials, leibniz_det, symbol_matrix


def vec(M: sp.Matrix) -> sp.Matrix:
    """Column-major vectorisation (the convention of K)."""
    return sp.Matrix([M[i, j] for j in range(M.cols) for i in range(M.rows)])


@dataclass(frozen=True)
class DerivedMetric:
    m: int
    m_y: int
    gamma: sp.Symbol
    E: sp.Matrix
    B: sp.Matrix
    g: sp.Matrix  # symbols for grad L0(W), m_y x m
    J_A: sp.Matrix  # d vec(W) / d vec(A), via d/dA_ij = e_ij d/de_ij
    J_B: sp.Matrix
    dW_dt: sp.Matrix  # vec(dW/dt) along the flow of L_lin, derived
    dL_dt: sp.Expr  # g . vec(dW/dt)
    param_grad_norm_sq: sp.Expr  # ||dL/dA||^2 + ||dL/dB||^2 of L_lin

    @property
    def K(self) -> sp.Matrix:
        return self.J_A * self.J_A.T + self.J_B * self.J_B.T

    def K_at(self, point: dict) -> sp.Matrix:
        """K = J_A J_A^T + J_B J_B^T with the Jacobians evaluated at ``point`` first (exact, fast)."""
        J_A, J_B = self.J_A.xreplace(point), self.J_B.xreplace(point)
        return J_A * J_A.T + J_B * J_B.T


@cache
def derive_metric(m: int, m_y: int) -> DerivedMetric:
    """Differentiate W = B U^{-1} along the gradient flow of L = L0(W) (g = grad L0(W))."""
    model = build(m, m_y, 1, "square")
    E, B, gamma = model.E, model.B, model.gamma
    W = model.W
    g = symbol_matrix("g", m_y, m, real=True)
    w = vec(W)
    b_params = [B[i, j] for j in range(m) for i in range(m_y)]
    J_A = sp.Matrix.hstack(*[E[i, j] * w.diff(E[i, j]) for j in range(m) for i in range(m)])
    J_B = sp.Matrix.hstack(*[w.diff(b) for b in b_params])
    # L_lin = g . vec(W): its parameter gradient is what the flow follows when grad L0(W) = g.
    L_lin = (vec(g).T * w)[0, 0]
    dL_dA = [E[i, j] * sp.diff(L_lin, E[i, j]) for j in range(m) for i in range(m)]
    dL_dB = [sp.diff(L_lin, b) for b in b_params]
    theta_dot = sp.Matrix([-x for x in dL_dA + dL_dB])
    dW_dt = sp.Matrix.hstack(J_A, J_B) * theta_dot
    dL_dt = (vec(g).T * dW_dt)[0, 0]
    norm_sq = sum(x**2 for x in dL_dA + dL_dB)
    return DerivedMetric(m, m_y, gamma, E, B, g, J_A, J_B, dW_dt, dL_dt, norm_sq)


def closed_form_metric_terms(metric: DerivedMetric, point: dict) -> tuple[sp.Matrix, sp.Matrix]:
    """docs/theory.md, section 4 at a point: (U^{-T} U^{-1}) (x) I and
    gamma^2 sum_j (U^{-T} e_j e_j^T U^{-1}) (x) (W J_j^2 W^T)."""
    m, m_y = metric.m, metric.m_y
    gamma = point[metric.gamma]
    E, B = metric.E.xreplace(point), metric.B.xreplace(point)
    S = column_softmax_from_exponentials(E)
    Uinv = (sp.eye(m) - gamma * S).inv()
    W = B * Uinv
    first = sp.kronecker_product(Uinv.T * Uinv, sp.eye(m_y))
    second = sp.zeros(m * m_y, m * m_y)
    for j in range(m):
        s = S[:, j]
        Jj = sp.diag(*s) - s * s.T
        v = Uinv.T[:, j]
        second += sp.kronecker_product(v * v.T, W * Jj * Jj * W.T)
    return first, gamma**2 * second


# ---- Theorem 1: the comparison ODE ----------------------------------------------------------
def claimed_comparison_solution(E0, kappa, lam, t, s) -> sp.Expr:
    """E(t) = E_0 exp(-2 kappa int_0^t lambda(s) ds) (docs/theory.md, section 5)."""
    return E0 * sp.exp(-2 * kappa * sp.Integral(lam(s), (s, 0, t)))


def comparison_ode():
    """Solve the comparison ODE dE/dt = -2 kappa lambda(t) E with sympy.dsolve.

    dsolve returns E = C1 exp(-2 kappa int lambda dt); the claimed solution through E(0) = E_0 is
    E_0 exp(-2 kappa int_0^t lambda(s) ds). Returns (d/dt of their ratio, claimed(0) - E_0), both
    0 after simplification: the ratio is constant, so the claimed function is the solution.

    The integrated bound then follows by the comparison principle (proof on paper, not SymPy):
    the state-wise inequality gives dE/dt <= -2 kappa lambda(A_t) E for E = L - L*, so
    d/dt [E exp(2 kappa R)] = exp(2 kappa R) (dE/dt + 2 kappa lambda E) <= 0 with R' = lambda,
    hence E_T <= E_0 exp(-2 kappa int_0^T lambda(A_t) dt).
    """
    t, s = sp.symbols("t s", real=True)
    kappa, E0 = sp.symbols("kappa E_0", positive=True)
    E, lam = sp.Function("E"), sp.Function("lam")
    general = sp.dsolve(sp.Eq(E(t).diff(t), -2 * kappa * lam(t) * E(t)), E(t)).rhs
    claimed = claimed_comparison_solution(E0, kappa, lam, t, s)
    return sp.simplify(sp.diff(general / claimed, t)), sp.simplify(claimed.subs(t, 0).doit() - E0)


def metric_function(m: int, m_y: int):
    """The derived K = J J^T lambdified: a NumPy function (A, B, gamma) -> K (column-major vec)."""
    import numpy as np

    D = derive_metric(m, m_y)
    f = sp.lambdify([D.gamma] + list(D.E) + list(D.B), D.K, modules="numpy", cse=True)

    def evaluate(A, B, gamma):
        # sigma is invariant under a shift of each column of A: shift by the column max (no overflow)
        E = np.exp(A - A.max(axis=0))
        return np.asarray(f(gamma, *E.ravel(), *B.ravel()), dtype=float)

    return evaluate


__all__ = [
    "DerivedMetric",
    "derive_metric",
    "closed_form_metric_terms",
    "comparison_ode",
    "metric_function",
    "vec",
    "adjugate",
    "leibniz_det",
]
