"""Derivations for the function-space dynamics and Theorem 1 (THEORY.md sections 4 and 5).

- The metric K: differentiate W = B U^{-1} with respect to every parameter theta = (A, B) to get
  the Jacobian J = d vec(W) / d theta. Along gradient flow of any L = L0(W),
  dL/dtheta = J^T g (chain rule, derived by differentiating L_lin = g . vec(W) with g held at
  grad L0), so d vec(W)/dt = J dtheta/dt = -J J^T g: the derived K is J J^T. It splits as
  J_B J_B^T + J_A J_A^T; the closed forms of the two pieces are compared with it exactly.
- The energy identity dL/dt = g . d vec(W)/dt = -||dL/dtheta||^2.
- K >= lambda(A) I follows from J_A J_A^T >= 0 and J_B J_B^T = (U^{-T} U^{-1}) (x) I.
- The PL inequality of the square loss and the Groenwall step of Theorem 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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


@lru_cache(maxsize=None)
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
    norm_sq = sum(x ** 2 for x in dL_dA + dL_dB)
    return DerivedMetric(m, m_y, gamma, E, B, g, J_A, J_B, dW_dt, dL_dt, norm_sq)


def closed_form_metric_terms(metric: DerivedMetric, point: dict) -> tuple[sp.Matrix, sp.Matrix]:
    """THEORY.md section 4 at a point: (U^{-T} U^{-1}) (x) I and
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
    return first, gamma ** 2 * second


# ---- Theorem 1: PL constant and the Groenwall step ------------------------------------------
def square_loss_pl_residual() -> tuple[sp.Expr, sp.Expr]:
    """For a 2 x 2 Gram matrix C = Q diag(l1, l2) Q^T (Q a rotation) and a row d = W - W*:

    ||d C||^2 - 2 kappa (1/2 d C d^T) is derived, and returned with the claimed
    sum_i l_i (l_i - kappa) c_i^2 (c = d Q); their difference simplifies to 0, and each term is
    >= 0 when every l_i is 0 or >= kappa: kappa = smallest nonzero eigenvalue is a PL constant.
    """
    t = sp.Symbol("theta", real=True)
    l1, l2, kappa = sp.symbols("l1 l2 kappa", nonnegative=True)
    d = sp.Matrix([[sp.Symbol("d1", real=True), sp.Symbol("d2", real=True)]])
    Q = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    C = Q * sp.diag(l1, l2) * Q.T
    grad = d * C  # grad L0 = (W - W*) Phi Phi^T
    derived = (grad * grad.T)[0, 0] - 2 * kappa * sp.Rational(1, 2) * (d * C * d.T)[0, 0]
    c = d * Q
    claimed = l1 * (l1 - kappa) * c[0] ** 2 + l2 * (l2 - kappa) * c[1] ** 2
    return sp.simplify(derived - claimed), claimed


def gronwall_step() -> sp.Expr:
    """d/dt [ (L(t) - L*) exp(2 kappa R(t)) ] with R' = lambda(A_t), minus
    exp(2 kappa R) (dL/dt + 2 kappa lambda (L - L*)), simplified: 0.

    With the state-wise inequality dL/dt <= -2 kappa lambda (L - L*), the bracket is <= 0, so
    (L_T - L*) exp(2 kappa R(T)) <= L_0 - L*, the integrated bound.
    """
    t = sp.Symbol("t", real=True)
    kappa, L_star = sp.symbols("kappa L_star", positive=True)
    L = sp.Function("L")(t)
    R = sp.Function("R")(t)
    lam = sp.Function("lam")(t)
    product = (L - L_star) * sp.exp(2 * kappa * R)
    derivative = sp.diff(product, t).subs(sp.Derivative(R, t), lam)
    claimed = sp.exp(2 * kappa * R) * (sp.diff(L, t) + 2 * kappa * lam * (L - L_star))
    return sp.simplify(derivative - claimed)


def uniform_bound_chain(m: int) -> sp.Expr:
    """The last link of the uniform rate bound: for a column-stochastic S (symbols), the row sums
    of S^T S ... stated as ||S||_1 = 1 and ||S||_inf <= m, so ||S||_2^2 <= ||S||_1 ||S||_inf <= m.

    Returns max over columns of the derived column sums of S minus 1, simplified (0).
    """
    E = symbol_matrix("e", m, m, positive=True)
    S = column_softmax_from_exponentials(E)
    return sp.simplify(sp.Matrix([sum(S[:, j]) - 1 for j in range(m)]))


__all__ = ["DerivedMetric", "derive_metric", "closed_form_metric_terms", "square_loss_pl_residual",
           "gronwall_step", "uniform_bound_chain", "vec", "adjugate", "leibniz_det"]
