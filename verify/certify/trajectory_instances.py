"""The instances of the trajectory certificates' plan entries (:mod:`verify.certify.trajectory_plan`,
whose docstring lists them), rebuilt from a configuration alone, and the step sizes and horizons
placed on them with the float64 reference (verify.reference), never with a certificate."""

from __future__ import annotations

import numpy as np

from .. import reference as R
from ..sampling import make_case
from .descent import descent_run, float_gradient
from .instances import exact_tight_case

#: the curvature's central-difference step, relative to lr (truncation ~1e-8 relative, rounding ~1e-11)
CURVATURE_STEP = 1e-4


def width_one_case(seed: int, m_y: int, n: int):
    rng = np.random.default_rng([seed, 11])
    return (
        np.zeros((1, 1)),
        rng.standard_normal((m_y, 1)),
        rng.standard_normal((1, n)) / np.sqrt(n),
        rng.standard_normal((m_y, n)),
    )


def build(config: dict):
    """(A, B, Phi, Y) of a configuration (NONCONVEX: (A1, B1, A2, B2, Phi, Y))."""
    kind, seed = config["instance"], config.get("seed", 0)
    if kind == "width-one":
        return width_one_case(seed, config["m_y"], config["n"])
    if kind == "exact-tight":
        return exact_tight_case(seed, config["m"], config["m_y"], config["gamma"])
    c = make_case(
        seed, config["m"], config["m_y"], config["n"], config["gamma"], well_conditioned=config["claim"] == "INTEGRATED"
    )
    if kind == "minimisers":
        rng = np.random.default_rng([seed, 12])
        W_star = R.least_squares(c.Phi, c.Y)[1]
        A1, A2 = (3.0 * rng.standard_normal((c.m, c.m)) for _ in range(2))
        return (A1, W_star @ R.implicit_matrix(A1, c.gamma), A2, W_star @ R.implicit_matrix(A2, c.gamma), c.Phi, c.Y)
    return c.A, c.B, c.Phi, c.Y


def reference_curvature(A, B, Phi, Y, gamma, dA, dB, s: float, delta: float) -> float:
    """phi''(s) / ||g||^2, phi(s) = L(theta - s g), by central differences of the reference's
    complex-step directional derivative."""

    def slope(x):
        return R.directional_derivative(A - x * dA, B - x * dB, Phi, Y, gamma, "square", -dA, -dB)

    return (slope(s + delta) - slope(s - delta)) / (2 * delta) / (np.sum(dA * dA) + np.sum(dB * dB))


def place_step(A0, B0, Phi, Y, gamma: float, steps: int, lr_factor: float) -> tuple[float, float]:
    """(lr, lr M) with lr M ~ lr_factor, M the largest reference curvature along the run (module
    docstring). Below the bound (lr_factor < 1) lr only decreases, until lr M <= lr_factor (1 + 1e-3).
    Above it (a canary) lr M must reach lr_factor and stay within a tenth of the excess above it,
    [lr_factor, lr_factor + (lr_factor - 1) / 10]: lr is scaled to put lr M at the window's middle
    until an lr below and one above the window are known, then bisected (geometrically) between
    them, since M grows with lr and a fixed-point iteration can cycle or creep up to the edge. Where lr M jumps over the
    window, the smallest lr found above it is returned (with its larger lr M)."""
    P, YP = Phi @ Phi.T, Y @ Phi.T

    def curvature_ratio(lr):
        As, Bs = descent_run(A0, B0, Phi, Y, gamma, lr, steps)
        top = 0.0
        for A, B in zip(As[:-1], Bs[:-1]):
            dA, dB = float_gradient(A, B, P, YP, gamma)
            for s in (0.0, 0.5 * lr, lr):
                top = max(top, reference_curvature(A, B, Phi, Y, gamma, dA, dB, s, CURVATURE_STEP * lr))
        return top

    dA, dB = float_gradient(A0, B0, P, YP, gamma)
    lr = lr_factor / reference_curvature(A0, B0, Phi, Y, gamma, dA, dB, 0.0, 1e-6)
    below = above = None  # (lr, lr M) with lr M under / over the window (canaries)
    window = lr_factor + 0.1 * (lr_factor - 1)
    for _ in range(60):
        top = curvature_ratio(lr)
        ratio = lr * top
        if lr_factor < 1:
            if abs(lr_factor / top / lr - 1) < 1e-3 or ratio <= lr_factor * (1 + 1e-3):
                return float(lr), float(ratio)
            lr = min(lr_factor / top, 0.9 * lr)
            continue
        if lr_factor <= ratio <= window:
            return float(lr), float(ratio)
        if ratio < lr_factor:
            below = (lr, ratio) if below is None or lr > below[0] else below
        else:
            above = (lr, ratio) if above is None or lr < above[0] else above
        if below is not None and above is not None:
            if above[0] / below[0] - 1 < 1e-9:
                return float(above[0]), float(above[1])
            lr = float(np.sqrt(below[0] * above[0]))
        else:  # aim at the window's middle: M grows with lr, so a geometric mean can creep up to its edge
            lr = float(lr * (lr_factor + 0.05 * (lr_factor - 1)) / ratio)
    raise ValueError(f"no step size with lr M = {lr_factor} found along this run (last lr M = {lr * top:.3g})")


def place_horizon(A0, B0, Phi, Y, gamma: float, decades: float) -> float:
    """The time at which a float64 flow (DOP853, rtol 1e-10) reaches E = 10^-decades E_0, the excess
    from the reference (a horizon, not a bound: the certificate proves what holds up to it)."""
    from scipy.integrate import solve_ivp

    m, m_y = A0.shape[0], B0.shape[0]
    P, YP = Phi @ Phi.T, Y @ Phi.T
    E0 = R.square_excess(R.end_to_end_weight(A0, B0, gamma), Phi, Y)

    def field(_, x):
        dA, dB = float_gradient(x[: m * m].reshape(m, m), x[m * m :].reshape(m_y, m), P, YP, gamma)
        return -np.concatenate([dA.ravel(), dB.ravel()])

    def reached(_, x):
        E = R.square_excess(R.end_to_end_weight(x[: m * m].reshape(m, m), x[m * m :].reshape(m_y, m), gamma), Phi, Y)
        return np.log10(E / E0) + decades

    reached.terminal = True
    x0 = np.concatenate([A0.ravel(), B0.ravel()])
    sol = solve_ivp(field, (0.0, 1e4), x0, method="DOP853", rtol=1e-10, atol=1e-12, events=reached)
    return float(sol.t_events[0][0]) if len(sol.t_events[0]) else float(sol.t[-1])
