"""Decisions shared by the checks of every tier (default, scale, figures): the order-of-convergence
decision, the stiffness threshold of the ODE method choice, and the digests of the report.

Kept outside :mod:`verify.claims` so that the scale tier's checks (:mod:`verify.scale`), which the
claims register, can use them without importing the registry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
        settled = abs(extrapolated - 1) <= 0.25 * abs(p_last - p_prev) + 0.02 and abs(p_last - 1) <= abs(p_prev - 1) + 0.02
        if settled and np.all(np.array(errors) > floor):
            return {"passed": True, "orders": orders, "extrapolated": float(extrapolated), "N": Ns}
        if len(Ns) - 3 >= max_doublings or errors[-1] <= floor:
            return {"passed": False, "orders": orders, "extrapolated": float(extrapolated), "N": Ns,
                    "reason": "error floor reached" if errors[-1] <= floor else "order not settled at the finest step"}
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
