"""Rate constants and the suite's Theorem 1 (THEORY.md sections 4 and 5).

    lambda(A) = lambda_min(U^{-T} U^{-1}) = 1 / ||I - gamma sigma(A)||_2^2
              >= 1 / (1 + gamma ||sigma(A)||_2)^2 >= 1 / (1 + gamma sqrt(m))^2

Theorem 1 (this suite's formalisation; the paper's own statement is not available to the
project): if ||grad L0||^2 >= 2 kappa (L0 - L*), then at every (A, B)

    ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*),

and along gradient flow L_T - L* <= (L_0 - L*) exp(-2 kappa int_0^T lambda(A_t) dt).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ._validation import check_gamma, check_positive, check_square_weight
from .model import column_softmax


def rate_constant(A, *, gamma) -> float:
    """lambda(A) = 1 / ||I - gamma sigma(A)||_2^2, the smallest eigenvalue of U^{-T} U^{-1}."""
    A = check_square_weight(A)
    gamma = check_gamma(gamma)
    return rate_constant_unchecked(A, gamma)


def rate_constant_unchecked(A: np.ndarray, gamma: float) -> float:
    U = np.eye(A.shape[0]) - gamma * column_softmax(A)
    return 1.0 / float(sla.norm(U, 2)) ** 2


def softmax_norm_rate_bound(A, *, gamma) -> float:
    """The intermediate bound 1 / (1 + gamma ||sigma(A)||_2)^2 <= lambda(A)."""
    A = check_square_weight(A)
    gamma = check_gamma(gamma)
    return 1.0 / (1.0 + gamma * float(sla.norm(column_softmax(A), 2))) ** 2


def uniform_rate_bound(m: int, *, gamma) -> float:
    """1 / (1 + gamma sqrt(m))^2, a lower bound on lambda(A) for every m x m matrix A.

    Proof: ||sigma(A)||_2 <= sqrt(||sigma(A)||_1 ||sigma(A)||_inf) <= sqrt(1 * m), and
    ||I - gamma S||_2 <= 1 + gamma ||S||_2.
    """
    m = check_positive("m", m, integer=True)
    if m > 2 ** 53:  # beyond float64's exact integers (and any matrix that fits in memory)
        raise ValueError(f"m must be an integer in [1, 2^53]; got {m!r}")
    gamma = check_gamma(gamma)
    return 1.0 / (1.0 + gamma * np.sqrt(float(m))) ** 2


def naive_rate_bound(gamma) -> float:
    """1 / (1 + gamma)^2: FALSE as a lower bound on lambda(A) in general (see counterexample)."""
    return 1.0 / (1.0 + check_gamma(gamma)) ** 2


def concentrated_weight(m: int, *, logit_gap: float = 50.0, row: int = 0) -> np.ndarray:
    """An A whose softmax columns all sit near e_row: A[row, :] = logit_gap, the rest 0.

    Then sigma(A) ~ e_row 1^T with ||sigma(A)||_2 ~ sqrt(m), which nearly attains the uniform
    bound and breaks the naive bound 1 / (1 + gamma)^2 once gamma sqrt(m) is large enough.
    """
    m = check_positive("m", m, integer=True)
    if not 0 <= row < m:
        raise ValueError(f"row must be in [0, m); got {row}")
    A = np.zeros((m, m))
    A[row, :] = logit_gap
    return A


def naive_bound_counterexample(m: int = 30, gamma: float = 0.9) -> dict:
    """Evidence that lambda(A) >= 1 / (1 + gamma)^2 fails: returns both values for the
    concentrated A (THEORY.md section 4: m = 30, gamma = 0.9 gives lambda ~ 0.041 < 0.277)."""
    A = concentrated_weight(m)
    lam = rate_constant(A, gamma=gamma)
    return {
        "m": m,
        "gamma": gamma,
        "A": A,
        "rate_constant": lam,
        "naive_bound": naive_rate_bound(gamma),
        "uniform_bound": uniform_rate_bound(m, gamma=gamma),
        "violated": lam < naive_rate_bound(gamma),
    }


def state_wise_ratio(grad_norm_sq: float, excess: float, *, kappa: float, rate: float) -> float:
    """(||dL/dA||^2 + ||dL/dB||^2) / (2 kappa lambda(A) (L - L*)); Theorem 1 says >= 1.

    Returns +inf at an optimum (excess == 0), where the inequality holds trivially.
    """
    denom = 2.0 * kappa * rate * excess
    return float("inf") if denom == 0.0 else grad_norm_sq / denom


def local_pl_estimate(problem, W=None) -> float:
    """An ESTIMATE (not a certificate) of a local PL constant for cross-entropy near W*.

    Near a minimiser, L0 - L* ~ 1/2 d^T H d and ||grad||^2 ~ d^T H^2 d along directions d in the
    range of the Hessian H = H(W*), so kappa_loc ~ lambda_min^+(H) (smallest nonzero eigenvalue,
    zero meaning below sqrt(eps) * lambda_max). It is exact only in the limit W -> W*; along a
    trajectory started far away the true local constant can be smaller.
    """
    W = problem.minimiser if W is None else W
    ev = np.linalg.eigvalsh(problem.hessian(W))
    tol = np.sqrt(np.finfo(float).eps) * ev.max()
    return float(ev[ev > tol].min())
