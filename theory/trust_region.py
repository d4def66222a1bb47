"""Derivations for Theorem 2 (docs/theory.md, section 6).

- The KKT system of min g^T v + 1/2 v^T H v s.t. v^T G v <= delta^2 is written down and solved
  for v as a function of the multiplier mu; at mu = 1 with G = K^{-1}/dt - H the solution is
  shown to simplify to -dt K g (for a generic SPD K = R R^T and PSD H = M M^T of size 2).
- The admissible step: R^T G R = I/dt - R^T H R (a congruence, derived), so G is positive
  definite iff dt < 1 / lambda_max(R^T H R) = 1 / lambda_max(K^{1/2} H K^{1/2}); in one dimension
  SymPy solves the inequality directly.
- The first-order form: solving the KKT system of min g^T v s.t. v^T K^{-1} v <= r^2 gives
  v = -r K g / sqrt(g^T K g): steepest descent in the metric K^{-1}.
- The Hessian of L0 for both losses, by differentiating L0(W) twice.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .symbolic_model import symbol_matrix


def _spd_and_psd(size: int):
    """K = R R^T (R lower triangular, positive diagonal) and H = M M^T: generic SPD and PSD."""
    R = sp.Matrix(size, size, lambda i, j: (sp.Symbol(f"r_{i}{j}", positive=True) if i == j
                                            else sp.Symbol(f"r_{i}{j}", real=True)) if i >= j else 0)
    M = symbol_matrix("q", size, size, real=True)
    return R, R * R.T, M * M.T


@lru_cache(maxsize=None)
def kkt_solution(size: int = 2):
    """Solve the stationarity condition g + H v + mu G v = 0 for v, with G = K^{-1}/dt - H.

    Returns (v(mu) at mu = 1 minus (-dt K g) simplified, v(mu), mu): the first is the zero vector.
    """
    dt, mu = sp.symbols("dt mu", positive=True)
    R, K, H = _spd_and_psd(size)
    g = sp.Matrix(sp.symbols(f"g0:{size}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{size}", real=True))
    G = K.inv() / dt - H
    stationarity = g + H * v + mu * G * v  # gradient of the Lagrangian in v
    solution = sp.solve(list(stationarity), list(v), dict=True)[0]
    v_mu = v.xreplace(solution)
    residual = (v_mu.subs(mu, 1) + dt * K * g).applyfunc(sp.simplify)
    return residual, v_mu, mu


def second_order_condition(size: int = 2) -> sp.Matrix:
    """The Hessian in v of the Lagrangian g^T v + 1/2 v^T H v + mu/2 (v^T G v - delta^2), derived
    by sympy.hessian, at mu = 1 with G = K^{-1}/dt - H, times dt K, minus I, simplified: zero.

    So the Lagrangian's Hessian at the KKT point is K^{-1}/dt, positive definite for dt > 0: with
    mu = 1 >= 0 and H + mu G > 0, the KKT point is the subproblem's global minimiser (the standard
    sufficient condition for trust-region subproblems; More and Sorensen 1983, in metric G).
    """
    dt, mu, delta = sp.symbols("dt mu delta", positive=True)
    _, K, H = _spd_and_psd(size)
    g = sp.Matrix(sp.symbols(f"g0:{size}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{size}", real=True))
    G = K.inv() / dt - H
    lagrangian = (g.T * v)[0, 0] + sp.Rational(1, 2) * (v.T * H * v)[0, 0] \
        + mu / 2 * ((v.T * G * v)[0, 0] - delta ** 2)
    hess = sp.hessian(lagrangian, list(v)).subs(mu, 1)
    return (hess * dt * K - sp.eye(size)).applyfunc(sp.simplify)


def kkt_function(size: int = 2):
    """v(mu) solved from the KKT stationarity (see :func:`kkt_solution`), lambdified: a NumPy
    function (K, H, g, dt, mu) -> v, with K = R R^T (Cholesky) and H = M M^T supplied as factors."""
    import numpy as np

    _, v_mu, mu = kkt_solution(size)
    by_name = {s.name: s for s in v_mu.free_symbols}
    dt = by_name["dt"]
    R_syms = [by_name[f"r_{i}{j}"] for i in range(size) for j in range(i + 1)]
    M_syms = [by_name[f"q_{i}{j}"] for i in range(size) for j in range(size)]
    g_syms = [by_name[f"g{i}"] for i in range(size)]
    f = sp.lambdify(R_syms + M_syms + g_syms + [dt, mu], v_mu, modules="numpy", cse=True)

    def evaluate(K, H, g, dt_value, mu_value):
        R = np.linalg.cholesky(K)
        w, V = np.linalg.eigh(H)
        M = V * np.sqrt(np.clip(w, 0.0, None))  # H = M M^T (H positive semidefinite)
        args = [R[i, j] for i in range(size) for j in range(i + 1)] + list(M.ravel()) + list(g)
        return np.asarray(f(*args, dt_value, mu_value), dtype=float).ravel()

    return evaluate


def congruence_residual(size: int = 2) -> sp.Matrix:
    """R^T G R - (I/dt - R^T H R), simplified (zero matrix)."""
    dt = sp.Symbol("dt", positive=True)
    R, K, H = _spd_and_psd(size)
    G = K.inv() / dt - H
    return (R.T * G * R - (sp.eye(size) / dt - R.T * H * R)).applyfunc(sp.simplify)


def scalar_step_condition():
    """In one dimension G = 1/(k dt) - h; SymPy solves G > 0 for dt (k, h > 0): dt < 1/(h k)."""
    dt, k, h = sp.symbols("dt k h", positive=True)
    condition = sp.solve_univariate_inequality(1 / (k * dt) - h > 0, dt, relational=True)
    return condition, dt, k, h


def steepest_descent_in_metric(size: int = 2):
    """KKT of min g^T v s.t. v^T K^{-1} v = r^2 (active), solved for v and nu > 0.

    Returns v - (-r K g / sqrt(g^T K g)), simplified, for the solution with nu > 0 (zero).
    """
    r, nu = sp.symbols("r nu", positive=True)
    _, K, _ = _spd_and_psd(size)
    g = sp.Matrix(sp.symbols(f"g0:{size}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{size}", real=True))
    stationarity = g + 2 * nu * K.inv() * v
    v_nu = v.xreplace(sp.solve(list(stationarity), list(v), dict=True)[0])
    constraint = sp.simplify((v_nu.T * K.inv() * v_nu)[0, 0] - r ** 2)
    nu_solutions = [s for s in sp.solve(constraint, nu) if s.is_positive is not False]
    gKg = (g.T * K * g)[0, 0]
    claimed = -r * K * g / sp.sqrt(gKg)
    residuals = [(v_nu.subs(nu, s) - claimed).applyfunc(lambda x: sp.simplify(sp.factor(x))) for s in nu_solutions]
    return residuals


@lru_cache(maxsize=None)
def derived_hessian(m: int, m_y: int, n: int, loss: str):
    """The Hessian of L0(W) in column-major vec(W) coordinates, by differentiating L0 twice.

    Returns (H, W, Phi, Y) symbols; compare with (Phi Phi^T) (x) I (square) or
    sum_i (phi_i phi_i^T) (x) (diag p_i - p_i p_i^T) (cross-entropy).
    """
    W = symbol_matrix("w", m_y, m, real=True)
    Phi = symbol_matrix("p", m, n, real=True)
    Y = symbol_matrix("y", m_y, n, real=True)
    Q = W * Phi
    if loss == "square":
        L0 = sp.Rational(1, 2) * sum((Q[k, i] - Y[k, i]) ** 2 for k in range(m_y) for i in range(n))
    else:
        L0 = sum(-sum(Y[k, i] * (Q[k, i] - sp.log(sum(sp.exp(Q[r, i]) for r in range(m_y))))
                      for k in range(m_y)) for i in range(n))
    w = [W[i, j] for j in range(m) for i in range(m_y)]
    return sp.hessian(L0, w), W, Phi, Y
