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
    gamma = check_gamma(gamma)
    return 1.0 / (1.0 + gamma * np.sqrt(m)) ** 2


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


# ---- bounds along a recorded trajectory -------------------------------------------------------
#: Global ODE error relative to the local tolerance: for these dissipative flows the measured
#: amplification stays below 10^2; 10^3 leaves a margin and still resolves a violation of 1e-6.
GLOBAL_ERROR_FACTOR = 1e3


def flow_weight_error(traj, *, gamma: float) -> float:
    """An a-priori estimate of the error in W_t caused by the ODE tolerance.

    The state error is at most GLOBAL_ERROR_FACTOR (atol + rtol max|theta|) per entry; W moves by
    at most ||dW/dtheta|| <= ||U^{-1}||_2 (1 + gamma ||W||_2 / 2) times it (the softmax Jacobian
    has norm <= 1/2), and ||U^{-1}||_2 <= sqrt(m) ||U^{-1}||_1 <= sqrt(m) / (1 - gamma).
    """
    rtol, atol = traj.info["rtol"], traj.info["atol"]
    m = traj.A.shape[0]
    theta_max = max(np.abs(traj.A).max(), np.abs(traj.B).max(), 1.0)
    n_params = traj.A.size + traj.B.size
    W_norm = max(np.linalg.norm(W, 2) for W in traj.W)
    deriv = np.sqrt(m) / (1 - gamma) * (1 + 0.5 * gamma * W_norm)
    return GLOBAL_ERROR_FACTOR * (atol + rtol * theta_max) * np.sqrt(n_params) * deriv


def trajectory_bound_report(traj, *, kappa: float, rtol: float | None = None,
                            weight_error: float = 0.0, curvature: float = 0.0,
                            max_slack: float = 0.05) -> dict:
    """Compare a trajectory with the integrated and the lambda_T bounds of Theorem 1.

    Works in logarithms: the integrated bound says D_int(t) = log(E_0 / E_t) - 2 kappa r_t >= 0
    (r_t = int_0^t lambda(A_s) ds); the lambda_T bound says D_T(t) = log(E_0 / E_t) - 2 kappa
    min_{s<=t} lambda(A_s) t >= 0. The ODE error permits a deficit of

        slack(t) = GLOBAL_ERROR_FACTOR rtol (1 + 2 kappa r_t)     (relative error of r_t)
                 + sqrt(2 curvature / E_t) weight_error           (relative error of E_t)

    where ``weight_error`` bounds ||W_t^num - W_t|| (see :func:`flow_weight_error`) and
    ``curvature`` is lambda_max of the Hessian (E = 1/2 ||D R^T||^2 moves by at most
    sqrt(2 E curvature) ||delta W``). Also reports tightness: min_t log(E_0/E_t) / (2 kappa r_t)
    (1 = the bound is attained). Records whose slack exceeds ``max_slack`` (E_t so small that
    the ODE error could hide a violation) are not checked; ``resolved_decay`` is the largest
    log(E_0 / E_t) that was checked. Records with E_t = 0 are skipped. For gradient
    descent pass rtol=None: the slack is then 1e-12 relative (exact up to rounding).
    """
    E = np.asarray(traj.excess_loss, dtype=float)
    t = np.asarray(traj.t, dtype=float)
    r = np.asarray(traj.rate_integral, dtype=float)
    lam_T = np.minimum.accumulate(np.asarray(traj.rate, dtype=float))
    keep = (t > 0) & (E > 0)
    if E[0] <= 0 or not np.any(keep):
        return {"holds": True, "worst_deficit_integrated": 0.0, "worst_deficit_uniform": 0.0,
                "tightness": float("inf"), "checked": 0}
    base = (GLOBAL_ERROR_FACTOR * rtol if rtol is not None else 1e-12) * (1 + 2 * kappa * r)
    with np.errstate(divide="ignore"):
        slack_all = base + np.sqrt(2 * curvature / np.where(E > 0, E, np.inf)) * weight_error
    keep &= slack_all <= max_slack
    if not np.any(keep):
        return {"holds": True, "worst_deficit_integrated": 0.0, "worst_deficit_uniform": 0.0,
                "tightness": float("inf"), "checked": 0, "resolved_decay": 0.0, "max_slack": 0.0}
    observed = np.log(E[0] / E[keep])
    slack = slack_all[keep]
    deficit_int = 2 * kappa * r[keep] - observed - slack
    deficit_uni = 2 * kappa * lam_T[keep] * t[keep] - observed - slack
    return {
        "holds": bool(np.all(deficit_int <= 0) and np.all(deficit_uni <= 0)),
        "worst_deficit_integrated": float(np.max(deficit_int + slack)),
        "worst_deficit_uniform": float(np.max(deficit_uni + slack)),
        "max_slack": float(np.max(slack)),
        "resolved_decay": float(np.max(observed)),
        "tightness": float(np.min(observed / (2 * kappa * r[keep]))),
        "checked": int(np.sum(keep)),
    }


def flow_to_target(problem, A0, B0, *, gamma: float, decades: float = 10.0, rtol: float = 1e-12):
    """Gradient flow of the square loss until L - L* = 10^-decades (L_0 - L*) (terminal event).

    The uniform bound guarantees E_T <= E_0 exp(-2 kappa T / (1 + gamma sqrt m)^2); T is chosen
    to cover the target decrease (x 1.01). Records sit on a linear and a geometric time grid,
    since the run may stop long before T. Returns (trajectory, E_0); the trajectory is None when
    the start is already optimal (E_0 = 0).
    """
    from .dynamics import gradient_flow
    from .model import ImplicitLayer

    kappa = problem.pl_constant
    E0 = problem.excess(ImplicitLayer.from_weights(A0, gamma=gamma).end_to_end_weight(B0))
    if E0 == 0:
        return None, E0
    T = decades * np.log(10) / (2 * kappa * uniform_rate_bound(A0.shape[0], gamma=gamma)) * 1.01
    t_eval = np.unique(np.concatenate([np.linspace(0, T, 300), np.geomspace(T * 1e-6, T, 300)]))
    traj = gradient_flow(A0, B0, problem, gamma=gamma, T=T, rtol=rtol, target_excess=10 ** (-decades) * E0,
                         t_eval=t_eval)
    return traj, E0


def flow_bound_report(traj, problem, *, gamma: float, rtol: float, required_decades: float = 6.0,
                      max_slack: float = 0.05) -> dict:
    """:func:`trajectory_bound_report` with the flow's a-priori weight error and curvature, plus
    ``resolution_ok``: the checked records cover ``required_decades`` of decay, unless the start
    itself lies within that many decades of the excess the ODE error can resolve
    (slack = max_slack <=> E = 2 curvature (weight_error / max_slack)^2), e.g. near the optimum.
    """
    weight_error = flow_weight_error(traj, gamma=gamma)
    curvature = float(np.linalg.norm(problem.gram, 2))
    report = trajectory_bound_report(traj, kappa=problem.pl_constant, rtol=rtol, weight_error=weight_error,
                                     curvature=curvature, max_slack=max_slack)
    resolvable = 2 * curvature * (weight_error / max_slack) ** 2
    report["resolution_ok"] = bool(traj.excess_loss[0] <= 10 ** required_decades * resolvable
                                   or report["resolved_decay"] >= required_decades * np.log(10))
    return report
