"""Generate the suite's figures (PNG and PDF, headless).

    python figures/make_figures.py --out DIR [--small] [--seed S] [--idx IMAGES LABELS]

1. theorem1_excess_loss     log excess loss vs time, several widths, integrated and uniform bounds
2. rate_constant            lambda(A_t) along trajectories vs 1/(1+gamma sqrt m)^2; the naive-bound
                            counterexample
3. theorem2_trust_region    solver vs -dt K g disagreement; trust-region iteration error vs dt
4. implicit_bias            DEQ-linear vs linear vs deep linear: train/test loss vs iterations on
                            synthetic m > n data and on the bundled 8x8 digits (and on local
                            MNIST-format IDX files with --idx)
5. conservation             drift of the column sums of A along training
6. tightness_vs_width       Theorem 1's tightness ratio and min_t lambda(A_t) / uniform bound against
                            the width (1 to 1024), per regime, with the 8x8 digits marked

``--small`` runs a reduced setting (used by the tests). Each figure's measured numbers are
printed, including the direction of the implicit-bias test-loss gap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import verify  # noqa: E402
from verify.campaign import json_safe  # noqa: E402
from verify.convergence import concentrated_weight, naive_rate_bound, uniform_rate_bound  # noqa: E402
from verify.gradients import DEQObjective  # noqa: E402
from verify.implicit_bias import (MODELS, load_digits_split, load_idx_dataset, split_classification,  # noqa: E402
                                  synthetic_overparameterised, train_three_models)
from verify.sampling import make_case  # noqa: E402
from verify.trust_region import check_correspondence  # noqa: E402
from verify.trust_region import trust_region_iteration  # noqa: E402

WIDTHS = {"m=2 < m_y=4 < n=8": (2, 4, 8), "m=8 > n=4": (8, 3, 4), "m=1": (1, 3, 6)}


def save(fig, out: str, name: str) -> list[str]:
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out, f"{name}.{ext}")
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _flows(small: bool, seed: int, gamma: float = 0.7):
    flows = {}
    for k, (label, (m, m_y, n)) in enumerate(WIDTHS.items()):
        case = make_case(seed + k, m, m_y, n, gamma, well_conditioned=True, a_scale=2.0)
        problem = verify.ShallowProblem(case.Phi, case.Y)
        E0 = problem.excess(verify.end_to_end_weight(case.A, case.B, gamma=gamma))
        kappa = problem.pl_constant
        T = (6 if small else 12) * np.log(10) / (2 * kappa * uniform_rate_bound(m, gamma=gamma))
        traj = verify.gradient_flow(case.A, case.B, problem, gamma=gamma, T=T, rtol=1e-10,
                                    target_excess=1e-12 * E0, num_points=200 if small else 600)
        flows[label] = (case, problem, traj)
    return flows


def figure_theorem1(out, flows, gamma=0.7):
    fig, axes = plt.subplots(1, len(flows), figsize=(4.2 * len(flows), 3.6), sharey=True)
    numbers = {}
    for ax, (label, (case, problem, traj)) in zip(np.atleast_1d(axes), flows.items()):
        kappa = problem.pl_constant
        E0 = traj.excess_loss[0]
        lam_T = np.minimum.accumulate(traj.rate)
        ax.semilogy(traj.t, traj.excess_loss, lw=2, label="observed $L_t - L^*$")
        ax.semilogy(traj.t, E0 * np.exp(-2 * kappa * traj.rate_integral), "--", label=r"integrated bound")
        ax.semilogy(traj.t, E0 * np.exp(-2 * kappa * lam_T * traj.t), ":", label=r"$\lambda_T$ bound")
        ax.semilogy(traj.t, E0 * np.exp(-2 * kappa * uniform_rate_bound(case.m, gamma=gamma) * traj.t), "-.",
                    label=r"uniform $1/(1+\gamma\sqrt{m})^2$")
        ax.set_title(label)
        ax.set_xlabel("t")
        ax.set_ylim(max(traj.excess_loss[-1] * 0.1, 1e-16), E0 * 3)
        keep = (traj.t > 0) & (traj.excess_loss > 1e-10 * E0)
        numbers[label] = float(np.min(np.log(E0 / traj.excess_loss[keep]) / (2 * kappa * traj.rate_integral[keep])))
    np.atleast_1d(axes)[0].set_ylabel("excess loss")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(rf"Theorem 1 (square loss, $\gamma$={gamma}): observed decay vs bounds")
    return save(fig, out, "theorem1_excess_loss"), {"tightness (observed/bound exponent)": numbers}


def figure_rate(out, flows, gamma=0.7):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, (case, _, traj) in flows.items():
        line, = ax1.semilogy(traj.t, traj.rate, label=f"{label}")
        ax1.axhline(uniform_rate_bound(case.m, gamma=gamma), color=line.get_color(), ls=":", lw=1)
    ax1.set_xscale("log")  # the flows' times span decades; t = 0 itself is left out of a log axis
    ax1.set_xlim(left=min(traj.t[1] for _, _, traj in flows.values()))
    ax1.set_xlabel("t (log scale)")
    ax1.set_ylabel(r"$\lambda(A_t)$ (log scale)")
    ax1.set_title(r"$\lambda(A_t)$ (solid) vs $1/(1+\gamma\sqrt{m})^2$ (dotted)")
    ax1.legend(fontsize=7)
    ms = np.arange(1, 61)
    for g in (0.5, 0.9):
        lam = [verify.rate_constant(concentrated_weight(int(m)), gamma=g) for m in ms]
        line, = ax2.semilogy(ms, lam, label=rf"$\lambda$ at concentrated $A$, $\gamma$={g}")
        ax2.semilogy(ms, [uniform_rate_bound(int(m), gamma=g) for m in ms], ":", color=line.get_color(),
                     label=r"$1/(1+\gamma\sqrt{m})^2$")
        ax2.axhline(naive_rate_bound(g), ls="--", color=line.get_color(), lw=1, label=r"naive $1/(1+\gamma)^2$ (false)")
    ce = verify.naive_bound_counterexample(30, 0.9)
    ax2.plot([30], [ce["rate_constant"]], "ko", label=f"m=30, $\\gamma$=0.9: $\\lambda$={ce['rate_constant']:.3f}")
    ax2.set_xlabel("m")
    ax2.set_title("uniform bound holds; the naive bound fails")
    ax2.legend(fontsize=6)
    return save(fig, out, "rate_constant"), {"counterexample": {"m": 30, "gamma": 0.9, "lambda": ce["rate_constant"],
                                                                "naive_bound": ce["naive_bound"]}}


def figure_theorem2(out, small: bool, seed: int):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"wspace": 0.45})
    rel, colors, conds = [], [], {}
    configs = [(3, 2, 4, "square"), (2, 4, 3, "cross_entropy"), (4, 2, 2, "square"), (1, 3, 4, "cross_entropy")]
    for k, (m, m_y, n, loss) in enumerate(configs):
        case = make_case(seed + 10 + k, m, m_y, n, 0.7, loss)
        problem = verify.ShallowProblem(case.Phi, case.Y, loss)
        traj = verify.gradient_flow(case.A, case.B, problem, gamma=0.7, T=2.0, rtol=1e-9,
                                    t_eval=np.linspace(0, 2.0, 6 if small else 21), record_parameters=True)
        obj = DEQObjective(problem, gamma=0.7)
        # K is not a multiple of I (except m = 1): its condition number along the trajectory
        conds[f"m={m}, m_y={m_y}, {loss}"] = [float(np.linalg.cond(verify.preconditioner(A, B, gamma=0.7)))
                                             for A, B in zip(traj.A_t, traj.B_t)]
        for A, B in zip(traj.A_t, traj.B_t):
            for frac in (0.1, 0.5, 0.9):
                chk = check_correspondence(obj, A, B, dt_fraction=frac)
                rel.append(max(chk.relative_error, 1e-17))
                colors.append(k)
    ax1.scatter(np.arange(len(rel)), rel, c=colors, s=10, cmap="viridis")
    ax1.set_yscale("log")
    ax1.axhline(np.finfo(float).eps, color="gray", ls=":", label="machine epsilon")
    ax1.set_xlabel("state x step fraction (4 problems, both losses)")
    ax1.set_ylabel(r"$\|v_{TR} - (-dt\,K g)\| / \|dt\,K g\|$")
    ax1.set_title("independent trust-region solver vs Euler step")
    ax1.legend(fontsize=7)
    orders = {}
    for loss in ("square", "cross_entropy"):
        case = make_case(seed + 20, 3, 2, 4, 0.6, loss, well_conditioned=True)
        problem = verify.ShallowProblem(case.Phi, case.Y, loss)
        T, N_max = 0.5, 160
        traj = verify.gradient_flow(case.A, case.B, problem, gamma=0.6, T=T, rtol=1e-12,
                                    t_eval=np.linspace(0, T, N_max + 1), record_parameters=True)
        Ns = [10, 20, 40, 80] + ([] if small else [160])
        errs = []
        for N in Ns:
            idx = np.arange(0, N_max + 1, N_max // N)
            Ws = trust_region_iteration(problem, traj.A_t[idx], traj.B_t[idx], traj.t[idx], gamma=0.6)
            errs.append(np.linalg.norm(Ws[-1] - traj.W[-1]))
        dts = T / np.array(Ns)
        ax2.loglog(dts, errs, "o-", label=loss)
        orders[loss] = float(np.polyfit(np.log(dts), np.log(errs), 1)[0])
    ax2.loglog(dts, errs[-1] * dts / dts[-1], "k:", label="slope 1")
    ax2.set_xticks(dts, [f"T/{N}" for N in Ns])  # the tried steps, instead of crowded minor log ticks
    ax2.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax2.set_xlabel("dt")
    ax2.set_ylabel(r"$\|W^{TR}_T - W_T\|$")
    ax2.set_title("trust-region iteration vs DEQ trajectory")
    ax2.legend(fontsize=7)
    cond_range = {k: [min(v), max(v)] for k, v in conds.items()}
    return save(fig, out, "theorem2_trust_region"), {"worst solver disagreement": float(max(rel)),
                                                     "order in dt": orders,
                                                     "cond(K) along trajectories [min, max]": cond_range}


#: samples the implicit-bias experiment draws from IDX files (training, test)
IDX_TRAIN, IDX_TEST = 1000, 2000


def figure_implicit_bias(out, small: bool, seed: int, idx_data=None):
    """``idx_data``: (images, labels, name) already loaded and validated by :func:`main`."""
    seeds = range(seed, seed + (2 if small else 5))
    steps = 150 if small else 3000
    datasets = [("synthetic", lambda r: synthetic_overparameterised(r)),
                ("digits", lambda r: load_digits_split(r, n_train=200, n_test=500))]
    if idx_data is not None:
        images, labels, name = idx_data
        datasets.append(("idx", lambda r: split_classification(images, labels, r, n_train=IDX_TRAIN, n_test=IDX_TEST,
                                                               name=name)))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 7), squeeze=False)
    gaps = {}
    for col, (key, make) in enumerate(datasets):
        runs = []
        for s in seeds:
            rng = np.random.default_rng(s)
            split = make(rng)
            runs.append(train_three_models(split, rng, steps=steps, record_every=max(steps // 100, 1)))
        for row, which in enumerate(("train", "test")):
            ax = axes[row, col]
            for model in MODELS:
                curves = np.array([r[model][which] for r in runs])
                it = runs[0][model]["iterations"]
                mean, lo, hi = curves.mean(0), curves.min(0), curves.max(0)
                ax.plot(it, mean, label=model.replace("_", " "))
                ax.fill_between(it, lo, hi, alpha=0.2)
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_ylabel(f"{which} loss (mean per sample)")
            ax.set_title(f"{split.name}: {which}")
        axes[0, col].legend(fontsize=7)
        final = {model: np.array([r[model]["test"][-1] for r in runs]) for model in MODELS}
        diff = final["deq"] - final["linear"]
        gaps[key] = {"test loss deq - linear (per seed)": diff.tolist(),
                     "direction": "DEQ lower" if np.all(diff < 0) else ("DEQ higher" if np.all(diff > 0) else "mixed"),
                     "final test loss mean": {k: float(v.mean()) for k, v in final.items()}}
    fig.suptitle("implicit bias: same function class, same start W_0, same step; gradient descent")
    fig.tight_layout()
    return save(fig, out, "implicit_bias"), {"implicit bias": gaps}


def figure_conservation(out, small: bool, seed: int):
    case = make_case(seed + 30, 6, 3, 10, 0.8, "cross_entropy")
    steps = 300 if small else 3000
    traj = verify.gradient_descent(case.A, case.B, case.Phi, case.Y, gamma=0.8, lr=0.05, steps=steps,
                                   loss="cross_entropy", record_every=max(steps // 200, 1))
    drift = np.abs(traj.column_sums - traj.column_sums[0]).max(axis=1)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(np.arange(len(drift)) * max(steps // 200, 1), np.maximum(drift, 1e-18), label=r"$\max_j |1^T A_t e_j - 1^T A_0 e_j|$")
    eps_level = np.finfo(float).eps * np.abs(case.A).sum(axis=0).max()
    ax.axhline(eps_level, color="gray", ls=":", label=r"$\epsilon \cdot \max_j \|A_0 e_j\|_1$")
    ax.set_xlabel("gradient-descent step")
    ax.set_ylabel("column-sum drift")
    ax.set_title("conservation law: column sums of A are invariant")
    ax.legend(fontsize=7)
    return save(fig, out, "conservation"), {"max column-sum drift": float(drift.max())}


#: widths of the tightness-vs-width figure (1 to 1024; --small stops at 16)
TIGHTNESS_WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TIGHTNESS_COLORS = {"m=1": "k", "m<m_y": "tab:green", "m<n": "tab:blue", "m>n": "tab:orange", "digits": "tab:red"}


def _tightness_configs(small: bool, seed: int, gamma: float = 0.5):
    """One flow per (width, regime): m<m_y with m_y = 10 (m < 10), m<n with n = 4m, m>n with n = m/4
    (at least 2 samples), m = 1 (its own regime: the bound is an equality there); and the 8x8
    digits on their top 32 centred principal components (m = 32, n = 1797, m_y = 10; raw pixels
    are too stiff for the flow, see verify.scale.principal_components). Square loss, as Theorem 1."""
    widths = [m for m in TIGHTNESS_WIDTHS if m <= (16 if small else 1024)]
    configs = []
    for k, m in enumerate(widths):
        base = {"seed": seed + 1000 + k, "gamma": gamma, "loss": "square", "a_scale": 1.0, "dataset": "synthetic",
                "phi_scale": 1.0}
        if m == 1:
            configs.append({**base, "regime": "m=1", "m": 1, "m_y": 3, "n": 6})
            continue
        if m < 10:
            configs.append({**base, "regime": "m<m_y", "m": m, "m_y": 10, "n": max(10, 4 * m)})
        configs.append({**base, "regime": "m<n", "m": m, "m_y": 3, "n": 4 * m})
        if m >= 8:
            configs.append({**base, "regime": "m>n", "m": m, "m_y": 3, "n": max(2, m // 4)})
    if not small:
        configs.append({"seed": seed + 2000, "gamma": gamma, "loss": "square", "a_scale": 1.0, "dataset": "digits",
                        "m": 32, "m_y": 10, "n": 1797, "pca": 32})
    return configs


def figure_tightness_width(out, small: bool, seed: int):
    """Theorem 1's tightness ratio (observed log-decay / 2 kappa int_0^t lambda, at its smallest over
    the records once 2 kappa int lambda > 0.1; 1 = attained) and min_t lambda(A_t) / (1 + gamma
    sqrt m)^-2, against the width, per regime; each point is one flow of the scale tier's
    INTEGRATED check (verify.scale.check_integrated_scale: 6 decades or the uniform-bound time,
    every record judged). Right panel also: lambda / bound at the concentrated softmax, which -> 1."""
    import time

    from verify.scale import check_integrated_scale

    rows = []
    for config in _tightness_configs(small, seed):
        started = time.perf_counter()
        result = check_integrated_scale(config)
        rows.append({"regime": config.get("regime", config["dataset"]), "m": config["m"], "n": config["n"],
                     "m_y": config["m_y"], "holds": bool(result.passed), "tightness": result.info["tightness"],
                     "lambda_ratio": result.info["lambda_ratio"], "seconds": time.perf_counter() - started})
        print(f"  tightness-vs-width: {rows[-1]}", flush=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"wspace": 0.3})
    for regime, color in TIGHTNESS_COLORS.items():
        pts = [r for r in rows if r["regime"] == regime]
        if not pts:
            continue
        real = regime == "digits"
        style = {"marker": "*" if real else "o", "ms": 13 if real else 6, "ls": "none" if real else "-",
                 "color": color, "label": "8x8 digits, 32 principal components (n=1797)" if real else regime}
        ax1.plot([r["m"] for r in pts], [r["tightness"] for r in pts], **style)
        ax2.plot([r["m"] for r in pts], [r["lambda_ratio"] for r in pts], **style)
    ms = np.array([m for m in TIGHTNESS_WIDTHS if m <= (16 if small else 1024)])
    concentrated = [verify.rate_constant(concentrated_weight(int(m)), gamma=0.5) / uniform_rate_bound(int(m), gamma=0.5)
                    for m in ms]
    ax2.plot(ms, concentrated, "k--", lw=1, label=r"concentrated softmax ($\lambda$/bound $\to$ 1)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ms, [str(m) for m in ms])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("width m (log scale)")
        ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax1.set_yscale("log")
    ax1.set_ylabel(r"observed $\log(E_0/E_t)$ / $2\kappa\int_0^t\lambda$")
    ax1.set_title(r"Theorem 1 tightness (1 = attained), $\gamma$ = 0.5")
    ax1.legend(fontsize=7)
    ax2.set_yscale("log")
    ax2.set_ylabel(r"$\min_t \lambda(A_t)\,(1+\gamma\sqrt{m})^2$")
    ax2.set_title(r"$\lambda(A_t)$ over the uniform bound (>= 1)")
    ax2.legend(fontsize=7)
    numbers = {"tightness vs width": rows,
               "lambda/bound at the concentrated softmax": dict(zip(map(int, ms), map(float, concentrated)))}
    return save(fig, out, "tightness_vs_width"), numbers


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line naming the argument and the rule, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _check_out(p, out: str) -> None:
    """--out must be (or become) a directory this process can write in; checked before any work."""
    if os.path.exists(out) and not os.path.isdir(out):
        p.error(f"--out {out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".make-figures-", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        p.error(f"--out {out} is not a writable directory ({err.strerror or err})")


def main(argv=None) -> int:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    p.add_argument("--small", action="store_true", help="reduced setting (seconds; used by the tests)")
    p.add_argument("--seed", type=int, default=0, help="seed >= 0 (numpy Generators)")
    p.add_argument("--idx", nargs=2, metavar=("IMAGES", "LABELS"),
                   help="also run the implicit-bias experiment on local MNIST-format IDX files")
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error(f"--seed must be >= 0 (a numpy Generator seed); got {args.seed}")
    # Every input is validated before the first figure: a bad --idx must not leave a partial folder.
    idx_data = None
    if args.idx:
        try:
            images, labels = load_idx_dataset(*args.idx)
        except (OSError, ValueError) as err:
            p.error(f"--idx: {err}")
        if len(labels) < IDX_TRAIN + IDX_TEST:
            p.error(f"--idx: the experiment draws {IDX_TRAIN} + {IDX_TEST} = {IDX_TRAIN + IDX_TEST} samples; "
                    f"the files hold {len(labels)}")
        idx_data = (images, labels, os.path.basename(args.idx[0]))
    _check_out(p, args.out)
    numbers, written = {}, []
    flows = _flows(args.small, args.seed)
    for make in (lambda: figure_theorem1(args.out, flows), lambda: figure_rate(args.out, flows),
                 lambda: figure_theorem2(args.out, args.small, args.seed),
                 lambda: figure_implicit_bias(args.out, args.small, args.seed, idx_data),
                 lambda: figure_conservation(args.out, args.small, args.seed),
                 lambda: figure_tightness_width(args.out, args.small, args.seed)):
        paths, nums = make()
        written += paths
        numbers.update(nums)
        print("wrote", ", ".join(os.path.basename(x) for x in paths), flush=True)
    text = numbers_json(numbers)
    with open(os.path.join(args.out, "numbers.json"), "w") as fh:
        fh.write(text)
    print(text, end="")
    return 0


def numbers_json(numbers: dict) -> str:
    """Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number, such as the tightness
    of a width whose records all sit below the resolvable floor, is written as the string "nan",
    "inf" or "-inf", as in the campaign's report (verify.campaign.json_safe)."""
    return json.dumps(json_safe(numbers), indent=2, allow_nan=False) + "\n"


if __name__ == "__main__":
    sys.exit(main())
