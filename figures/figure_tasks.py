"""The figures' computations, as independent tasks for worker processes.

Each task is a module-level function of plain arguments (seeds, sizes, a data split) that
returns plain data (arrays, floats, dicts): the figure script (figures/make_figures.py) sends
them to the campaign's executor (verify.executors) and draws from what comes back. Nothing here
draws. Every number a figure shows or writes to numbers.json is computed here or from what these
tasks return.

    flow                 gradient flow of one case (Theorem 1's excess-loss figure and the rate
                         figure share these: docs/theory.md, sections 3-4)
    concentrated_rates   lambda(A) at the concentrated softmax, m = 1..60, and the naive and
                         uniform bounds (docs/theory.md, section 4)
    correspondence       the trust-region solver vs -dt K g along one flow (section 5)
    trust_region_order   the trust-region iteration's error against the DEQ trajectory vs dt
    implicit_bias_run    one seed of the implicit-bias experiment (section 7)
    conservation         the column sums of A along gradient descent (section 6)
    tightness_row        one flow of the scale tier's INTEGRATED check (tightness vs width)
"""

from __future__ import annotations

import time

import numpy as np

import verify
from verify.convergence import concentrated_weight, naive_rate_bound, uniform_rate_bound
from verify.gradients import DEQObjective
from verify.implicit_bias import MODELS, train_three_models
from verify.sampling import make_case
from verify.trust_region import check_correspondence, trust_region_iteration


def timed(task, *args):
    """Run ``task(*args)`` in the worker; returns (result, CPU seconds of the worker process) so
    the script can report each figure's compute time (the sum over its tasks) apart from the wall
    time, and unaffected by other processes sharing the cores."""
    start = time.process_time()
    result = task(*args)
    return result, time.process_time() - start


# ---- figures 1 and 2: Theorem 1 and the rate constant ------------------------------------------
def flow(label: str, m: int, m_y: int, n: int, seed: int, gamma: float, decades: int, num_points: int) -> dict:
    """Gradient flow of a well-conditioned square-loss case for the time the uniform bound
    1/(1 + gamma sqrt m)^2 needs to fall ``decades`` decades (or until L - L* = 1e-12 (L_0 - L*)).
    Returns the records the two figures draw: t, L_t - L*, lambda(A_t), int_0^t lambda, and kappa."""
    case = make_case(seed, m, m_y, n, gamma, well_conditioned=True, a_scale=2.0)
    problem = verify.ShallowProblem(case.Phi, case.Y)
    E0 = problem.excess(verify.end_to_end_weight(case.A, case.B, gamma=gamma))
    kappa = problem.pl_constant
    T = decades * np.log(10) / (2 * kappa * uniform_rate_bound(m, gamma=gamma))
    traj = verify.gradient_flow(
        case.A, case.B, problem, gamma=gamma, T=T, rtol=1e-10, target_excess=1e-12 * E0, num_points=num_points
    )
    return {
        "label": label,
        "m": m,
        "gamma": gamma,
        "kappa": float(kappa),
        "t": traj.t,
        "excess": traj.excess_loss,
        "rate": traj.rate,
        "rate_integral": traj.rate_integral,
    }


def concentrated_rates(widths, gammas) -> dict:
    """lambda(A) at the concentrated softmax (verify.convergence.concentrated_weight) per width
    and gamma, with the uniform bound 1/(1 + gamma sqrt m)^2 and the naive 1/(1 + gamma)^2."""
    out = {}
    for g in gammas:
        out[g] = {
            "m": np.asarray(widths),
            "lambda": np.array([verify.rate_constant(concentrated_weight(int(m)), gamma=g) for m in widths]),
            "uniform": np.array([uniform_rate_bound(int(m), gamma=g) for m in widths]),
            "naive": naive_rate_bound(g),
        }
    return out


# ---- figure 3: Theorem 2 ------------------------------------------------------------------------
def correspondence(seed: int, m: int, m_y: int, n: int, loss: str, records: int) -> dict:
    """Along a flow (gamma = 0.7, T = 2): at each record and step fractions 0.1, 0.5, 0.9 of the
    admissible bound, ||v_TR - (-dt K g)|| / ||dt K g||; and cond(K) at each record."""
    case = make_case(seed, m, m_y, n, 0.7, loss)
    problem = verify.ShallowProblem(case.Phi, case.Y, loss)
    traj = verify.gradient_flow(
        case.A,
        case.B,
        problem,
        gamma=0.7,
        T=2.0,
        rtol=1e-9,
        t_eval=np.linspace(0, 2.0, records),
        record_parameters=True,
    )
    obj = DEQObjective(problem, gamma=0.7)
    conds = [float(np.linalg.cond(verify.preconditioner(A, B, gamma=0.7))) for A, B in zip(traj.A_t, traj.B_t)]
    rel = [
        check_correspondence(obj, A, B, dt_fraction=frac).relative_error
        for A, B in zip(traj.A_t, traj.B_t)
        for frac in (0.1, 0.5, 0.9)
    ]
    return {"label": f"m={m}, m_y={m_y}, {loss}", "relative_error": np.array(rel), "cond": conds}


def trust_region_order(seed: int, loss: str, steps: list[int]) -> dict:
    """||W^TR_T - W_T|| for the trust-region iteration on the grids T/N (N in ``steps``, each
    dividing the finest), against the flow recorded on the finest grid (gamma = 0.6, T = 0.5)."""
    case = make_case(seed, 3, 2, 4, 0.6, loss, well_conditioned=True)
    problem = verify.ShallowProblem(case.Phi, case.Y, loss)
    T, N_max = 0.5, max(steps)
    traj = verify.gradient_flow(
        case.A, case.B, problem, gamma=0.6, T=T, rtol=1e-12, t_eval=np.linspace(0, T, N_max + 1), record_parameters=True
    )
    errs = []
    for N in steps:
        idx = np.arange(0, N_max + 1, N_max // N)
        Ws = trust_region_iteration(problem, traj.A_t[idx], traj.B_t[idx], traj.t[idx], gamma=0.6)
        errs.append(float(np.linalg.norm(Ws[-1] - traj.W[-1])))
    return {"loss": loss, "T": T, "steps": list(steps), "errors": errs}


# ---- figure 4: implicit bias --------------------------------------------------------------------
def implicit_bias_run(split, rng: np.random.Generator, steps: int, seed: int) -> dict:
    """One seed: the three models trained from the same W_0 (verify.implicit_bias.train_three_models),
    ``rng`` continuing the generator that drew ``split``. Returns per model the iterations and the
    train and test losses (mean per sample)."""
    out = train_three_models(split, rng, steps=steps, record_every=max(steps // 100, 1))
    return {
        "name": split.name,
        "seed": seed,
        **{model: {k: out[model][k] for k in ("iterations", "train", "test")} for model in MODELS},
    }


# ---- figure 5: conservation ---------------------------------------------------------------------
def conservation(seed: int, steps: int) -> dict:
    """max_j |1^T A_t e_j - 1^T A_0 e_j| along gradient descent (cross-entropy, m = 6, gamma = 0.8),
    and the rounding level eps max_j ||A_0 e_j||_1 it is drawn against."""
    case = make_case(seed, 6, 3, 10, 0.8, "cross_entropy")
    every = max(steps // 200, 1)
    traj = verify.gradient_descent(
        case.A, case.B, case.Phi, case.Y, gamma=0.8, lr=0.05, steps=steps, loss="cross_entropy", record_every=every
    )
    drift = np.abs(traj.column_sums - traj.column_sums[0]).max(axis=1)
    return {
        "step": np.arange(len(drift)) * every,
        "drift": drift,
        "eps_level": float(np.finfo(float).eps * np.abs(case.A).sum(axis=0).max()),
    }


# ---- figure 6: tightness across widths ----------------------------------------------------------
def tightness_row(config: dict) -> dict:
    """One flow of the scale tier's INTEGRATED check (verify.scale.check_integrated_scale: 6
    decades or the uniform-bound time, every record judged): whether it holds, Theorem 1's
    tightness ratio and min_t lambda(A_t) (1 + gamma sqrt m)^2."""
    from verify.scale import check_integrated_scale

    result = check_integrated_scale(config)
    return {
        "regime": config.get("regime", config["dataset"]),
        "m": config["m"],
        "n": config["n"],
        "m_y": config["m_y"],
        "holds": bool(result.passed),
        "tightness": result.info["tightness"],
        "lambda_ratio": result.info["lambda_ratio"],
    }
