"""Theorem 2: gradient flow of the implicit layer as a trust-region Newton method on the shallow
model (docs/theory.md, section 6; this suite's formalisation).

For a step dt > 0 with G_dt = K^{-1}/dt - H positive definite (dt < 1/lambda_max(K^{1/2} H K^{1/2})),
the Euler step v* = -dt K g of the flow in function space solves

    min_v  g^T v + 1/2 v^T H v   subject to   v^T G_dt v <= delta^2,   delta = ||v*||_{G_dt},

with Lagrange multiplier 1. The solver here, :func:`solve_trust_region`, is the More-Sorensen
method: it is given (g, H, G, delta) only and knows nothing of K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .dynamics import preconditioner_from_layer, vec

EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class TrustRegionSolution:
    """v (the minimiser), multiplier (the KKT multiplier mu of the constraint), iterations,
    and ``boundary`` (True when the constraint is active)."""

    v: np.ndarray
    multiplier: float
    iterations: int
    boundary: bool


def solve_trust_region(
    g: np.ndarray, H: np.ndarray, G: np.ndarray, delta: float, *, tol: float = 1e-12, max_iter: int = 200
) -> TrustRegionSolution:
    """More-Sorensen for min g^T v + 1/2 v^T H v s.t. v^T G v <= delta^2 (G SPD, H symmetric).

    With G = L L^T and w = L^T v the problem becomes the Euclidean one with g~ = L^{-1} g and
    H~ = L^{-1} H L^{-T}. The multiplier mu >= max(0, -lambda_min(H~)) solves the secular equation
    phi(mu) = 1/delta - 1/||w(mu)|| = 0, w(mu) = -(H~ + mu I)^{-1} g~, by safeguarded Newton steps
    (each one Cholesky factorisation); stop when | ||w|| - delta | <= tol * delta. The hard case
    (g~ orthogonal to the lowest eigenvector of an indefinite H~) does not arise for the convex
    shallow losses here and is reported by an error rather than handled.
    """
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a finite number > 0; got {delta!r}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1); got {tol!r}")
    try:
        L = sla.cholesky(G, lower=True)
    except sla.LinAlgError as err:
        raise ValueError("G (the trust-region metric) must be symmetric positive definite") from err
    g_t = sla.solve_triangular(L, g, lower=True)
    H_t = sla.solve_triangular(L, sla.solve_triangular(L, H, lower=True).T, lower=True)
    H_t = 0.5 * (H_t + H_t.T)
    n = len(g)
    lam_min = float(sla.eigh(H_t, eigvals_only=True, subset_by_index=[0, 0])[0])
    identity = np.eye(n)

    def step(mu):
        c = sla.cho_factor(H_t + mu * identity, lower=True)
        w = -sla.cho_solve(c, g_t)
        return c, w

    def back(w):
        return sla.solve_triangular(L.T, w, lower=False)

    # Interior solution: H~ positive definite and the Newton step inside the region.
    # (lambda_min is computed to ~n eps ||H~||; below that H~ is treated as singular.)
    if lam_min > 10 * n * EPS * np.abs(H_t).max():
        _, w = step(0.0)
        if np.linalg.norm(w) <= delta * (1 + tol):
            return TrustRegionSolution(back(w), 0.0, 0, False)
    mu_low = max(0.0, -lam_min)
    # ||w(mu)|| <= ||g~|| / (mu - mu_low), so the root lies at or below mu_low + ||g~|| / delta.
    mu = mu_low + np.linalg.norm(g_t) / delta
    for it in range(1, max_iter + 1):
        c, w = step(mu)
        w_norm = np.linalg.norm(w)
        if abs(w_norm - delta) <= tol * delta:
            return TrustRegionSolution(back(w), mu, it, True)
        # Newton on phi(mu) = 1/delta - 1/||w||: phi' = -(w^T (H~+mu I)^{-1} w) / ||w||^3.
        q = sla.cho_solve(c, w)
        mu_new = mu + (w_norm / delta - 1.0) * w_norm**2 / float(w @ q)
        if mu_new <= mu_low:  # safeguard: stay where H~ + mu I is positive definite
            mu_new = 0.5 * (mu + mu_low)
        mu = mu_new
    raise RuntimeError(f"More-Sorensen did not reach tol={tol} in {max_iter} iterations (hard case?)")


# ---- the correspondence at a DEQ state ------------------------------------------------------
def admissible_step_bound(K: np.ndarray, H: np.ndarray) -> float:
    """1 / lambda_max(K^{1/2} H K^{1/2}): G_dt is positive definite exactly for dt below it.

    lambda(K^{1/2} H K^{1/2}) = lambda(R^T H R) for the Cholesky factor K = R R^T (similar
    matrices). Returns inf when H = 0.
    """
    R = sla.cholesky(K, lower=True)
    top = float(sla.eigh(R.T @ H @ R, eigvals_only=True)[-1])
    return float("inf") if top <= 0 else 1.0 / top


def trust_region_metric(K: np.ndarray, H: np.ndarray, dt: float) -> np.ndarray:
    """G_dt = K^{-1}/dt - H (K^{-1} by Cholesky solves, symmetrised against rounding)."""
    c = sla.cho_factor(K)
    G = sla.cho_solve(c, np.eye(K.shape[0])) / dt - H
    return 0.5 * (G + G.T)


def frozen_A_preconditioner(layer, m_y: int) -> np.ndarray:
    """With A frozen only B moves and vec(dW/dt) = -((U^{-T} U^{-1}) (x) I) g: a FIXED
    preconditioner (the first term of K alone)."""
    V = layer.solve_transposed(np.eye(layer.m))
    return np.kron(V @ V.T, np.eye(m_y))


def trust_region_iteration(
    problem, A_path: np.ndarray, B_path: np.ndarray, times: np.ndarray, *, gamma: float, tol: float = 1e-13
) -> np.ndarray:
    """The discrete trust-region Newton method on the shallow model with metric from the
    co-evolving DEQ state: W_{k+1} = W_k + v_k, v_k solving the subproblem at W_k with
    G_k = K(A_{t_k}, B_{t_k})^{-1}/dt_k - H(W_k) and delta_k = ||dt_k K g(W_k)||_{G_k}.

    Returns the iterates W_k (len(times) x m_y x m). As dt -> 0 they follow the DEQ trajectory
    W_t with first-order error (Euler).
    """
    from .model import ImplicitLayer

    W = ImplicitLayer.from_weights(A_path[0], gamma=gamma).end_to_end_weight(B_path[0])
    out = [W]
    for k in range(len(times) - 1):
        dt = float(times[k + 1] - times[k])
        layer = ImplicitLayer.from_weights(A_path[k], gamma=gamma, validate=False)
        K = preconditioner_from_layer(layer, layer.end_to_end_weight(B_path[k]))
        H = problem.hessian(W)
        g = vec(problem.gradient(W))
        if dt >= admissible_step_bound(K, H):
            raise ValueError(f"step {k}: dt={dt} exceeds the admissible bound; G is not positive definite")
        G = trust_region_metric(K, H, dt)
        v_ref = -dt * (K @ g)  # only to set the radius delta_k; the solver is not told v_ref
        delta = float(np.sqrt(v_ref @ G @ v_ref))
        if delta == 0.0:
            out.append(W)
            continue
        v = solve_trust_region(g, H, G, delta, tol=tol).v
        W = W + v.reshape(W.shape, order="F")
        out.append(W)
    return np.array(out)


# ---- the correspondence at one state (the figures and the property tests) -------------------------
@dataclass(frozen=True)
class CorrespondenceCheck:
    dt: float
    step_bound: float
    euler_step: np.ndarray  # -dt K g
    solver_step: np.ndarray
    multiplier: float
    relative_error: float
    tolerance: float  # what the solver's tol permits, see check_correspondence

    @property
    def holds(self) -> bool:
        return self.relative_error <= self.tolerance and abs(self.multiplier - 1.0) <= self.tolerance


def check_correspondence(
    objective, A: np.ndarray, B: np.ndarray, *, dt_fraction: float = 0.5, tol: float = 1e-12
) -> CorrespondenceCheck:
    """At state (A, B): the independent trust-region solution against -dt K g.

    dt = dt_fraction * (admissible bound). The solver stops when ||w|| matches delta to a relative
    tol; the solution then has relative error about tol * cond(H~ + I) (the secular equation's
    sensitivity), plus rounding of order cond(K^{-1}/dt) eps from forming G.
    """
    problem = objective.problem
    st = objective.evaluate(A, B, with_excess=False)
    K = preconditioner_from_layer(st.layer, st.W)
    H = problem.hessian(st.W)
    g = vec(st.grad_L0)
    bound = admissible_step_bound(K, H)
    dt = dt_fraction * (bound if np.isfinite(bound) else 1.0)
    G = trust_region_metric(K, H, dt)
    v_star = -dt * (K @ g)
    delta = float(np.sqrt(v_star @ G @ v_star))
    sol = solve_trust_region(g, H, G, delta, tol=tol)
    rel = float(np.linalg.norm(sol.v - v_star) / np.linalg.norm(v_star)) if np.any(v_star) else 0.0
    cond = np.linalg.cond(K / dt)  # = cond(H + G) = cond(K^{-1}/dt)
    tolerance = 10 * cond * (tol + 100 * K.shape[0] * EPS)
    return CorrespondenceCheck(dt, bound, v_star, sol.v, sol.multiplier, rel, tolerance)
