"""Decisions shared by the checks of every tier (default, scale), the figures and the tests: the
order-of-convergence decision, the stiffness threshold of the ODE method choice, the digests of the
report, and the one judge of Theorem 1 along a recorded trajectory (:func:`theorem1_verdict`).

Kept outside :mod:`verify.claims` so that the scale tier's checks (:mod:`verify.scale`), which the
claims register, can use them without importing the registry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .rounding import ode_state_error, weight_sensitivity

#: above this stiffness ratio (fastest / slowest rate of the linearised flow) an explicit
#: Runge-Kutta method needs ~1e5 or more steps; LSODA switches to BDF there
STIFF_RATIO = 1e3


def order_of_convergence(errors_at: Callable[[int], float], N0: int, *, max_doublings: int, floor: float) -> dict:
    """Decide whether errors e(N) (N steps of size T/N) are first order in the step.

    Error model: e = C1 dt + C2 dt^2 + O(dt^3) with C1 != 0. The observed order
    p_k = log2(e(N_k)/e(2 N_k)) then deviates from 1 by d_k ~ C2 dt_k / (2 ln 2 C1), which halves
    per halving, so the Richardson extrapolate 2 p_{k+1} - p_k = 1 + O(dt^2). Accept when the
    extrapolate lies within a quarter of |p_{k+1} - p_k| (+ 0.02) of 1 and the deviations
    shrink; otherwise halve dt again (the run is extended), up to ``max_doublings``; errors below
    ``floor`` (the reference's own error) cannot be measured and end the refinement as a failure
    unless a decision was reached before.
    """
    Ns = [N0, 2 * N0, 4 * N0]
    errors = [errors_at(N) for N in Ns]
    while True:
        orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        p_prev, p_last = orders[-2], orders[-1]
        extrapolated = 2 * p_last - p_prev
        settled = (
            abs(extrapolated - 1) <= 0.25 * abs(p_last - p_prev) + 0.02 and abs(p_last - 1) <= abs(p_prev - 1) + 0.02
        )
        if settled and np.all(np.array(errors) > floor):
            return {"passed": True, "orders": orders, "extrapolated": float(extrapolated), "N": Ns}
        if len(Ns) - 3 >= max_doublings or errors[-1] <= floor:
            return {
                "passed": False,
                "orders": orders,
                "extrapolated": float(extrapolated),
                "N": Ns,
                "reason": "error floor reached" if errors[-1] <= floor else "order not settled at the finest step",
            }
        Ns.append(2 * Ns[-1])
        errors.append(errors_at(Ns[-1]))


def _stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"count": 0}
    return {"count": int(len(v)), "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def tightness_by_regime(records: list[dict]) -> dict:
    """Theorem 1's tightness ratio (observed log-decay / 2 kappa int lambda; 1 = the bound is
    attained) per width regime, and for the flows with ill-conditioned features."""
    out = {}
    for regime in ("m<m_y", "m<n", "m>n", "m=1"):
        out[regime] = _stats(r["info"].get("tightness") for r in records if r["config"].get("regime") == regime)
    out["spread features"] = _stats(r["info"].get("tightness") for r in records if r["config"].get("spread"))
    for dataset in ("digits", "idx"):  # real data (the scale tier)
        if any(r["config"].get("dataset") == dataset for r in records):
            out[dataset] = _stats(r["info"].get("tightness") for r in records if r["config"].get("dataset") == dataset)
    return out


def ratio_at_concentrated(records: list[dict]) -> dict:
    """lambda(A) / (1 + gamma sqrt m)^-2 at the concentrated softmax, by width (-> 1 as m grows)."""
    out = {}
    for r in records:
        if r["config"].get("concentrated"):
            out.setdefault(f"m={r['config']['m']}", []).append(r["info"].get("ratio_to_bound"))
    return {k: _stats(v) for k, v in sorted(out.items(), key=lambda kv: int(kv[0][2:]))}


def asymptotic_rate_ratio(records: list[dict]) -> dict:
    """Observed late decay rate / the linearised rate 2 mu_min (1 = the linearisation's slowest mode)."""
    return {"observed / (2 mu_min)": _stats(r["info"].get("asymptotic_ratio") for r in records)}


# ---- Theorem 1 along a recorded trajectory: the one judge of every tier, the figures and the tests --------
#: records whose ODE slack exceeds this are not judged (E_t too small for the ODE error to resolve)
MAX_SLACK = 0.05


def ode_slack(
    E: np.ndarray, r: np.ndarray, *, kappa: float, rtol: float | None, weight_error: float, curvature: float
) -> np.ndarray:
    """The relative deficit the ODE error permits at each record of a flow:

        slack(t) = ODE_GLOBAL_ERROR_FACTOR rtol (1 + 2 kappa r_t)     (relative error of r_t)
                 + sqrt(2 curvature / E_t) weight_error            (relative error of E_t)

    E_t = 1/2 ||(W_t - W*) R^T||^2 moves by at most sqrt(2 E_t curvature) ||delta W|| for an error
    delta W <= ``weight_error`` in W_t (``curvature`` = lambda_max(Phi Phi^T)). ``rtol`` is the
    tolerance the caller asked of the integrator (never read back from it); None for gradient
    descent, whose records are exact up to rounding (1e-12 relative)."""
    from .rounding import ODE_GLOBAL_ERROR_FACTOR

    base = (ODE_GLOBAL_ERROR_FACTOR * rtol if rtol is not None else 1e-12) * (1 + 2 * kappa * np.asarray(r))
    with np.errstate(divide="ignore"):
        return base + np.sqrt(2 * curvature / np.where(E > 0, E, np.inf)) * weight_error


def theorem1_verdict(
    t, E, r, lam, *, kappa: float, slack, attained: bool = False, lambda_T: bool = True, max_slack: float = MAX_SLACK
) -> tuple[list, dict]:
    """Judge Theorem 1 on the records of one trajectory (docs/theory.md, section 5): with
    E_t = L_t - L* (E_0 at t = 0), r_t = int_0^t lambda(A_s) ds and lambda_T = min_{s<=t} lambda(A_s),

        integrated:  log(E_0 / E_t) >= 2 kappa r_t,        lambda_T:  log(E_0 / E_t) >= 2 kappa lambda_T t,

    at every record whose ODE ``slack`` (:func:`ode_slack`) is at most ``max_slack``, each as the
    relative slack E_bound / E_t - 1 allowed down to -expm1(slack); with ``attained`` (m = 1, where
    K = lambda I) also the equality log(E_0/E_t) = 2 kappa r_t; and the excess monotone up to twice
    the slack. Returns (measurements, info) with info's ``keep`` (records judged), ``tightness``
    min log(E_0/E_t) / (2 kappa r_t) over records where 2 kappa r_t > 0.1 (1 = attained), and
    ``resolved`` the largest log(E_0 / E_t) judged."""
    from .results import INEQUALITY, Measurement, condition, equal

    t, E, r, lam, slack = (np.asarray(x, dtype=float) for x in (t, E, r, lam, slack))
    keep = (t > 0) & (E > 0) & (slack <= max_slack)
    info = {"keep": keep, "tightness": float("nan"), "resolved": 0.0}
    if E[0] <= 0 or not np.any(keep):
        return [condition("some record resolvable by the ODE tolerance", False)], info
    observed = np.log(E[0] / E[keep])
    predicted_int = 2 * kappa * r[keep]
    tol_rel = np.expm1(slack[keep])

    def worst(name, predicted):
        raw = np.expm1(observed - predicted)  # E_bound / E_t - 1
        k = int(np.argmin(raw + tol_rel))
        return Measurement(name, INEQUALITY, float(raw[k]), float(tol_rel[k]))

    meas = [worst("integrated bound at every record (worst)", predicted_int)]
    if lambda_T:
        lam_T = np.minimum.accumulate(lam)
        meas.append(worst("lambda_T bound at every record (worst)", 2 * kappa * lam_T[keep] * t[keep]))
        # lambda_T's definition, checked exactly (the bound is attained only where lambda is constant,
        # so a wrong reduction, e.g. a running max, would otherwise pass wherever lambda varies)
        meas.append(
            condition(
                "lambda_T = min_{s<=t} lambda(A_s): <= lambda at every record, = the overall min at the end",
                bool(np.all(lam_T <= lam) and lam_T[-1] == np.min(lam)),
            )
        )
    if attained:  # K = lambda I and kappa = Phi Phi^T: dE/dt = -2 kappa lambda E exactly
        dev = np.abs(np.expm1(observed - predicted_int))
        k = int(np.argmax(dev / tol_rel))
        meas.append(
            equal("m = 1: log(E_0/E_t) = 2 kappa int lambda (bound attained)", float(dev[k]), float(tol_rel[k]))
        )
    E_keep = E[keep]
    rises = E_keep[1:] / E_keep[:-1] - 1
    meas.append(
        Measurement(
            "monotone excess (worst rise)",
            INEQUALITY,
            float(-np.max(rises)) if len(rises) else 0.0,
            float(np.max(tol_rel)) * 2,
        )
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        meaningful = predicted_int > 0.1
        if np.any(meaningful):
            info["tightness"] = float(np.min(observed[meaningful] / predicted_int[meaningful]))
    info["resolved"] = float(np.max(observed))
    return meas, info


# ---- the same judge on a trajectory's own records (the figures and the property tests) ------------------
def flow_weight_error(traj, *, gamma: float, rtol: float, atol: float) -> float:
    """An a-priori bound on the error in W_t caused by the ODE tolerances ``rtol``, ``atol`` the
    caller asked for (:func:`verify.rounding.ode_state_error` on the parameters, times the
    sensitivity of W = B U^{-1} to them, :func:`verify.rounding.weight_sensitivity`)."""
    theta_max = max(np.abs(traj.A).max(), np.abs(traj.B).max(), 1.0)
    W_norm = max(np.linalg.norm(W) for W in traj.W)
    return ode_state_error(rtol, atol, theta_max, traj.A.size + traj.B.size) * weight_sensitivity(
        traj.A.shape[0], gamma, W_norm
    )


def trajectory_bound_report(
    traj,
    *,
    kappa: float,
    rtol: float | None = None,
    weight_error: float = 0.0,
    curvature: float = 0.0,
    max_slack: float = MAX_SLACK,
) -> dict:
    """Theorem 1 on a trajectory's records, judged by :func:`verify.judging.theorem1_verdict` (the
    campaign's judge) with the ODE slack of :func:`verify.judging.ode_slack`; the trajectory's own
    excess, lambda and rate integral are used (the campaign uses the reference's). For gradient
    descent pass rtol=None. Returns ``holds``, ``tightness`` (min log(E_0/E_t) / (2 kappa r_t); 1 =
    attained), ``resolved_decay`` (the largest log(E_0 / E_t) judged), ``checked`` (records
    judged) and the measurements."""
    E = np.asarray(traj.excess_loss, dtype=float)
    r = np.asarray(traj.rate_integral, dtype=float)
    if E[0] <= 0:
        return {"holds": True, "tightness": float("inf"), "checked": 0, "resolved_decay": 0.0, "measurements": []}
    slack = ode_slack(E, r, kappa=kappa, rtol=rtol, weight_error=weight_error, curvature=curvature)
    meas, info = theorem1_verdict(traj.t, E, r, traj.rate, kappa=kappa, slack=slack, max_slack=max_slack)
    checked = int(np.sum(info["keep"]))
    return {
        "holds": checked == 0 or all(m.holds for m in meas),
        "tightness": info["tightness"],
        "checked": checked,
        "resolved_decay": info["resolved"],
        "measurements": [m.as_dict() for m in meas],
    }


def flow_to_target(problem, A0, B0, *, gamma: float, decades: float = 10.0, rtol: float = 1e-12):
    """Gradient flow of the square loss until L - L* = 10^-decades (L_0 - L*) (terminal event).

    The uniform bound guarantees E_T <= E_0 exp(-2 kappa T / (1 + gamma sqrt m)^2); T is chosen
    to cover the target decrease (x 1.01). Records sit on a linear and a geometric time grid,
    since the run may stop long before T. Returns (trajectory, E_0); the trajectory is None when
    the start is already optimal (E_0 = 0).
    """
    from .convergence import uniform_rate_bound
    from .dynamics import gradient_flow
    from .model import ImplicitLayer

    kappa = problem.pl_constant
    E0 = problem.excess(ImplicitLayer.from_weights(A0, gamma=gamma).end_to_end_weight(B0))
    if E0 == 0:
        return None, E0
    T = decades * np.log(10) / (2 * kappa * uniform_rate_bound(A0.shape[0], gamma=gamma)) * 1.01
    t_eval = np.unique(np.concatenate([np.linspace(0, T, 300), np.geomspace(T * 1e-6, T, 300)]))
    traj = gradient_flow(
        A0, B0, problem, gamma=gamma, T=T, rtol=rtol, target_excess=10 ** (-decades) * E0, t_eval=t_eval
    )
    return traj, E0


def flow_bound_report(
    traj,
    problem,
    *,
    gamma: float,
    rtol: float,
    atol: float | None = None,
    required_decades: float = 6.0,
    max_slack: float = MAX_SLACK,
) -> dict:
    """:func:`trajectory_bound_report` with the flow's a-priori weight error (for the tolerances
    ``rtol`` and ``atol``, default 1e-2 rtol, that the caller asked of :func:`gradient_flow`) and
    curvature, plus ``resolution_ok``: the checked records cover ``required_decades`` of decay,
    unless the start itself lies within that many decades of the excess the ODE error can resolve
    (slack = max_slack <=> E = 2 curvature (weight_error / max_slack)^2), e.g. near the optimum.
    """
    weight_error = flow_weight_error(traj, gamma=gamma, rtol=rtol, atol=1e-2 * rtol if atol is None else atol)
    curvature = float(np.linalg.norm(problem.gram, 2))
    report = trajectory_bound_report(
        traj, kappa=problem.pl_constant, rtol=rtol, weight_error=weight_error, curvature=curvature, max_slack=max_slack
    )
    resolvable = 2 * curvature * (weight_error / max_slack) ** 2
    report["resolution_ok"] = bool(
        traj.excess_loss[0] <= 10**required_decades * resolvable
        or report["resolved_decay"] >= required_decades * np.log(10)
    )
    return report
