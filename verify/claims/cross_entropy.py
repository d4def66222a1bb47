"""The cross-entropy regime (docs/theory.md, section 5): linear convergence on non-separable data
(with an estimated local PL constant), sublinear decay on separable data."""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from ..convergence import local_pl_estimate
from ..dynamics import gradient_flow
from ..judging import asymptotic_rate_ratio
from ..losses import ShallowProblem
from ..results import DERIVED, EPS, INEQUALITY, PAPER, Measurement, at_least, condition, equal, outcome
from ._shared import case_of, ode_method, sampler
from .spec import ClaimSpec, Tier


def check_cross_entropy_linear(config):
    """Cross-entropy on non-separable data (true by construction): L* attained (core against the
    reference Newton solve), monotone decay and linear convergence to L*. kappa is an ESTIMATE
    (smallest nonzero Hessian eigenvalue at W*), compared with the reference. The linear-rate
    check is one-sided: the late decay rate is at least half the rate 2 mu_min of the dynamics
    linearised at the end (mu_min the smallest nonzero eigenvalue of H^{1/2} K H^{1/2}), and
    mu_min >= lambda_min(K) kappa_est; the ratio observed / 2 mu_min is reported."""
    c = case_of(config)
    problem = ShallowProblem(c.Phi, c.Y, "cross_entropy")
    L_star_ref, W_star_ref = ref.cross_entropy_minimiser(c.Phi, c.Y)
    H_star = ref.shallow_hessian(W_star_ref, c.Phi, c.Y, "cross_entropy")
    ev = np.linalg.eigvalsh(H_star)
    kappa_ref = float(ev[ev > np.sqrt(EPS) * ev.max()].min())
    kappa_est = local_pl_estimate(problem)
    meas = [
        condition("non-separable detected (true by construction)", problem.separability.status == "non-separable"),
        # both solves stop at a Newton decrement of 64 eps L*: |L - L*| <= that, each
        equal(
            "L* = reference Newton solve",
            abs(problem.optimal_loss - L_star_ref),
            2 * 64 * EPS * max(1.0, L_star_ref) + 4 * c.n * c.m_y * EPS * L_star_ref,
        ),
        # eigenvalues to size eps ||H|| (eigh), and H at the two minimisers, which agree to
        # sqrt(2 * 64 eps L* / kappa) (the excess is quadratic): H moves by ||Phi||^2 / 4 times that
        equal(
            "kappa_est = reference (Hessian at the reference W*)",
            abs(kappa_est - kappa_ref),
            2 * H_star.shape[0] * EPS * ev.max()
            + 0.25 * float(np.linalg.norm(c.Phi, 2)) ** 3 * np.sqrt(2 * 64 * EPS * max(1.0, L_star_ref) / kappa_ref),
        ),
    ]
    E0 = problem.value(ref.end_to_end_weight(c.A, c.B, c.gamma)) - L_star_ref
    # the excess L0 - L* cancels: its absolute rounding is about 4 n m_y eps L0 (n log-sum-exps of
    # m_y terms); records are fitted only 100x above it (1% relative error at worst)
    floor = 100 * 4 * c.n * c.m_y * EPS * (L_star_ref + E0)
    target = max(1e-8 * E0, floor)
    T = 30.0 / (kappa_ref / (1 + c.gamma * np.sqrt(c.m)) ** 2)
    method = ode_method(c, kappa_ref / (1 + c.gamma * np.sqrt(c.m)) ** 2, H_star)
    for _attempt in range(4):  # a flow that has not reached the target is extended, never passed
        traj = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=T, target_excess=target, num_points=50, method=method)
        if traj.event_time is not None:
            break
        T *= 4
    reached = traj.event_time is not None
    if reached:  # again, with the records spread over [0, event time]
        traj = gradient_flow(
            c.A,
            c.B,
            problem,
            gamma=c.gamma,
            T=traj.event_time,
            method=method,
            t_eval=np.linspace(0.0, traj.event_time, 400),
            record_parameters=True,
        )
    tail = (traj.excess_loss < 1e-3 * E0) & (traj.excess_loss > floor)
    meas.append(condition("reached L* + 1e-8 (L_0 - L*) (extended up to 64x the estimated time)", reached))
    meas.append(condition("at least 8 tail records above the rounding floor", tail.sum() >= 8))
    rises = np.diff(traj.loss) / traj.loss[0]
    meas.append(Measurement("monotone loss (worst rise / L_0)", INEQUALITY, float(-np.max(rises)), 1e-9))
    if tail.sum() < 8:
        return outcome(meas, "could not measure a tail slope")
    slope = float(np.polyfit(traj.t[tail], np.log(traj.excess_loss[tail]), 1)[0])
    J = ref.weight_jacobian(traj.A_t[-1], traj.B_t[-1], c.gamma)
    K_end = J @ J.T
    w, V = np.linalg.eigh(H_star)
    root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    mu = np.linalg.eigvalsh(root @ K_end @ root)
    mu_min = float(mu[mu > np.sqrt(EPS) * mu.max()].min())
    lam_K = float(np.linalg.eigvalsh(K_end)[0])
    meas.append(at_least("late decay rate >= mu_min (half the linearised rate 2 mu_min)", -slope, mu_min))
    meas.append(at_least("mu_min >= lambda_min(K) kappa_est", mu_min, lam_K * kappa_ref, 1e-8))
    return outcome(
        meas,
        f"kappa ESTIMATE {kappa_ref:.3g}; tail slope {slope:.4g} = {-slope / (2 * mu_min):.3f} x (-2 mu_min)",
        asymptotic_ratio=-slope / (2 * mu_min),
    )


#: horizons tried, in multiples of 2000 time units: a run still in its transient at the end of one
#: (the last doubling's log-drop >= 1.5 x the previous one's) is extended to the next
SEPARABLE_EXTENSIONS = (1, 4, 16, 64)


def check_cross_entropy_separable(config):
    """Separable data (labels = sign of the first feature): L* = 0 is not attained; the excess
    decays sublinearly. The log-log slope band (-1.5, -0.5) around the t^-1 decay of linear
    models is an empirical band, not a derived tolerance.

    Sublinear is judged on the last two doublings of time before the horizon T: log E drops by
    about the same amount over each (a power law) instead of twice as much (a linear rate,
    E ~ exp(-c t)); the drop over the last must be below 1.5x the one before. A run can still be
    in its transient at T = 2000 units (seed 36 of the campaign: the drops grew by 1.8x there), so
    the horizon is extended (SEPARABLE_EXTENSIONS) until the tail is measured; a linear rate keeps
    the ratio at 2 at every horizon and fails at the last."""
    rng = np.random.default_rng(config["seed"])
    m = config["m"]
    scale = config.get("phi_scale", 1.0)
    Phi = rng.standard_normal((m, 6)) * scale
    Y = np.eye(2)[:, (Phi[0] > 0).astype(int)]
    problem = ShallowProblem(Phi, Y, "cross_entropy")
    A0, B0 = rng.standard_normal((m, m)), rng.standard_normal((2, m))
    # time runs like 1 / scale^2 (the gradient is quadratic in Phi): the window scales with it
    unit = 1.0 / scale**2
    for extension in SEPARABLE_EXTENSIONS:
        T = 2000.0 * unit * extension
        traj = gradient_flow(
            A0,
            B0,
            problem,
            gamma=config["gamma"],
            T=T,
            rtol=1e-8,
            t_eval=np.geomspace(unit, T, 50 + 10 * int(np.log2(extension))),
        )
        logE = np.interp(np.log([T / 8, T / 4, T / 2, T]), np.log(traj.t), np.log(traj.excess_loss))
        drop_prev, drop_last = logE[1] - logE[2], logE[2] - logE[3]
        if drop_last < 1.5 * drop_prev:
            break
    late = traj.t > 100 * unit
    slope = float(np.polyfit(np.log(traj.t[late]), np.log(traj.excess_loss[late]), 1)[0])
    rises = np.diff(traj.loss) / traj.loss[0]
    return outcome(
        [
            condition("separable detected (true by construction)", problem.separability.status == "separable"),
            equal("L* = 0", abs(problem.optimal_loss), 0.0),
            Measurement("monotone loss (worst rise / L_0)", INEQUALITY, float(-np.max(rises)), 1e-6),
            condition("still decreasing at the end (E_T < E_{T/2})", drop_last > 0),
            at_least(
                "sublinear: the last time-doubling's log-drop < 1.5 x the previous one's", 1.5 * drop_prev, drop_last
            ),
        ],
        f"L* = 0 not attained; excess ~ t^{slope:.2f} on [100, {T / unit:g}] time units",
        horizon=T / unit,
    )


SPECS = [
    ClaimSpec(
        id="CE-LINEAR",
        theorem="cross-entropy",
        provenance=PAPER,
        symbolic="not applicable",
        statement="cross-entropy, non-separable data: monotone, linear convergence to the attained L* "
        "(kappa is an ESTIMATE; the rate check is one-sided)",
        default=Tier(
            sample=sampler(
                losses=("cross_entropy",), gamma=(0.05, 0.9), max_dim=4, scales=(-0.5, 0.5), non_separable=True
            ),
            check=check_cross_entropy_linear,
            quick=6,
            thorough=300,
            digest=asymptotic_rate_ratio,
        ),
    ),
    ClaimSpec(
        id="CE-SEPARABLE",
        theorem="cross-entropy",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="cross-entropy, separable data: L* = 0 is not attained; the decay is sublinear",
        default=Tier(
            sample=sampler(losses=("cross_entropy",), gamma=(0.2, 0.95), max_dim=5, m1_every=None, scales=(-0.5, 0.5)),
            check=check_cross_entropy_separable,
            quick=2,
            thorough=20,
        ),
    ),
]
