"""Draw the six figures from the results of figures/figure_tasks.py (no computation beyond
arithmetic on those results); each function returns the written paths and the figure's numbers.

The numbers are what the figure shows, computed from the results here (never typed in): the
tightness ratios, the naive-bound counterexample and the widths where that bound fails, the
solver disagreement and the order in dt, the per-seed implicit-bias gaps and their direction,
the column-sum drift, and the tightness and lambda ratios per width.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from verify.convergence import naive_bound_counterexample, uniform_rate_bound  # noqa: E402
from verify.implicit_bias import MODELS  # noqa: E402

#: width and gamma of the naive-bound counterexample (docs/theory.md, section 4)
COUNTEREXAMPLE = (30, 0.9)


def save(fig, out: str, name: str) -> list[str]:
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out, f"{name}.{ext}")
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


# ---- 1. Theorem 1 -------------------------------------------------------------------------------
def theorem1(out: str, flows: list[dict]):
    """Per flow: L_t - L* against E_0 exp(-2 kappa int_0^t lambda) (integrated bound),
    E_0 exp(-2 kappa lambda_T t) (lambda_T = min_{s<=t} lambda) and the uniform bound. The number
    is the tightness min_t log(E_0/E_t) / (2 kappa int_0^t lambda) over the records above 1e-10 E_0."""
    gamma = flows[0]["gamma"]
    fig, axes = plt.subplots(1, len(flows), figsize=(4.2 * len(flows), 3.6), sharey=True)
    numbers = {}
    for ax, f in zip(np.atleast_1d(axes), flows):
        t, E, r, kappa = f["t"], f["excess"], f["rate_integral"], f["kappa"]
        E0 = E[0]
        lam_T = np.minimum.accumulate(f["rate"])
        ax.semilogy(t, E, lw=2, label="observed $L_t - L^*$")
        ax.semilogy(t, E0 * np.exp(-2 * kappa * r), "--", label=r"integrated bound")
        ax.semilogy(t, E0 * np.exp(-2 * kappa * lam_T * t), ":", label=r"$\lambda_T$ bound")
        ax.semilogy(
            t,
            E0 * np.exp(-2 * kappa * uniform_rate_bound(f["m"], gamma=gamma) * t),
            "-.",
            label=r"uniform $1/(1+\gamma\sqrt{m})^2$",
        )
        ax.set_title(f["label"])
        ax.set_xlabel("t")
        ax.set_ylim(max(E[-1] * 0.1, 1e-16), E0 * 3)
        keep = (t > 0) & (E > 1e-10 * E0)
        numbers[f["label"]] = float(np.min(np.log(E0 / E[keep]) / (2 * kappa * r[keep])))
    np.atleast_1d(axes)[0].set_ylabel("excess loss")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(rf"Theorem 1 (square loss, $\gamma$={gamma}): observed decay vs bounds", y=1.02)
    return save(fig, out, "theorem1_excess_loss"), {"tightness (observed/bound exponent)": numbers}


# ---- 2. the rate constant -----------------------------------------------------------------------
def rate_constant(out: str, flows: list[dict], rates: dict):
    """(a) lambda(A_t) along the flows against 1/(1 + gamma sqrt m)^2; (b) lambda at the
    concentrated softmax for m >= 2 with both bounds; (c) the same as ratios to the bounds, where
    the naive bound fails wherever lambda (1 + gamma)^2 < 1 (shaded). m = 1 (lambda = (1 - gamma)^-2:
    4 and 100) is left off (b) and (c): on a shared log axis it squashes the failing region."""
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15.5, 4.0), gridspec_kw={"wspace": 0.3})
    for f in flows:
        (line,) = ax1.semilogy(f["t"], f["rate"], label=f["label"])
        ax1.axhline(uniform_rate_bound(f["m"], gamma=f["gamma"]), color=line.get_color(), ls=":", lw=1)
    ax1.set_xscale("log")  # the flows' times span decades; t = 0 itself is left out of a log axis
    ax1.set_xlim(left=min(f["t"][1] for f in flows))
    ax1.set_xlabel("t (log scale)")
    ax1.set_ylabel(r"$\lambda(A_t)$ (log scale)")
    ax1.set_title(r"(a) $\lambda(A_t)$ (solid) vs $1/(1+\gamma\sqrt{m})^2$ (dotted)", fontsize=10)
    ax1.legend(fontsize=7)
    ce_m, ce_gamma = COUNTEREXAMPLE
    ce = naive_bound_counterexample(ce_m, ce_gamma)
    failing, at_one = {}, {}
    for g, curve in rates.items():
        ms, lam, uniform, naive = curve["m"], curve["lambda"], curve["uniform"], curve["naive"]
        at_one[g] = float(lam[ms == 1][0]) if np.any(ms == 1) else None
        shown = ms >= 2
        (line,) = ax2.semilogy(ms[shown], lam[shown], label=rf"$\lambda$ at concentrated $A$, $\gamma$={g}")
        c = line.get_color()
        ax2.semilogy(ms[shown], uniform[shown], ":", color=c, label=r"$1/(1+\gamma\sqrt{m})^2$")
        ax2.axhline(naive, ls="--", color=c, lw=1, label=r"$1/(1+\gamma)^2$: needs $\|\sigma(A)\|_2 \leq 1$ (false)")
        ax3.semilogy(ms[shown], lam[shown] / naive, color=c, label=rf"$\lambda\,(1+\gamma)^2$, $\gamma$={g}")
        ax3.semilogy(
            ms[shown],
            lam[shown] / uniform[shown],
            ":",
            color=c,
            label=rf"$\lambda\,(1+\gamma\sqrt{{m}})^2$, $\gamma$={g}",
        )
        bad = ms[lam < naive]
        failing[g] = {
            "widths checked": f"{int(ms.min())}-{int(ms.max())}",
            "fails at": len(bad),
            "first failing m": int(bad.min()) if bad.size else None,
            "min lambda/uniform bound": float(np.min(lam / uniform)),
        }
    ax2.plot(
        [ce_m],
        [ce["rate_constant"]],
        "ko",
        label=rf"m={ce_m}, $\gamma$={ce_gamma}: $\lambda$={ce['rate_constant']:.3f} < {ce['naive_bound']:.3f}",
    )
    ax2.set_xlabel("m")
    ax2.set_ylabel(r"$\lambda(A)$ (log scale)")
    notes = ", ".join(f"{v:g}" for v in at_one.values() if v is not None)
    ax2.set_title(
        r"(b) $\lambda$ at the concentrated softmax, $m \geq 2$"
        + (f"\n(m = 1: $\\lambda$ = {notes}, off this axis)" if notes else ""),
        fontsize=10,
    )
    ax2.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # off the curves
    ymin, ymax = ax3.get_ylim()
    ax3.axhspan(ymin, 1.0, color="tab:red", alpha=0.08)
    ax3.axhline(1.0, color="k", lw=1)
    ax3.text(0.97, 0.04, "below 1: bound violated", transform=ax3.transAxes, ha="right", fontsize=8, color="tab:red")
    ax3.set_ylim(ymin, ymax)
    ax3.plot(
        [ce_m], [ce["rate_constant"] / ce["naive_bound"]], "ko", label=rf"counterexample m={ce_m}, $\gamma$={ce_gamma}"
    )
    ax3.set_xlabel("m")
    ax3.set_ylabel(r"$\lambda$ / bound (log scale)")
    ax3.set_title(
        "(c) the uniform bound holds (dotted >= 1); dropping\n"
        r"the $\sqrt{m}$ ($\|\sigma(A)\|_2 \leq 1$ assumed) fails (solid < 1)",
        fontsize=10,
    )
    ax3.legend(fontsize=6, loc="upper right")
    numbers = {
        "counterexample": {
            "m": ce_m,
            "gamma": ce_gamma,
            "lambda": ce["rate_constant"],
            "naive_bound": ce["naive_bound"],
            "uniform_bound": ce["uniform_bound"],
        },
        "naive bound at the concentrated softmax": {str(g): v for g, v in failing.items()},
    }
    return save(fig, out, "rate_constant"), numbers


# ---- 3. Theorem 2 -------------------------------------------------------------------------------
def theorem2(out: str, states: list[dict], orders: list[dict]):
    """(a) the independent trust-region solver against -dt K g at every recorded state and step
    fraction; (b) the trust-region iteration's error at T against the DEQ trajectory vs dt."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"wspace": 0.45})
    rel = np.concatenate([s["relative_error"] for s in states])
    colors = np.concatenate([np.full(len(s["relative_error"]), k) for k, s in enumerate(states)])
    ax1.scatter(np.arange(len(rel)), np.maximum(rel, 1e-17), c=colors, s=10, cmap="viridis")  # 0 on a log axis
    ax1.set_yscale("log")
    ax1.axhline(np.finfo(float).eps, color="gray", ls=":", label="machine epsilon")
    ax1.set_xlabel(f"state x step fraction ({len(states)} problems, both losses)")
    ax1.set_ylabel(r"$\|v_{TR} - (-dt\,K g)\| / \|dt\,K g\|$")
    ax1.set_title("independent trust-region solver vs Euler step")
    ax1.legend(fontsize=7)
    order = {}
    for o in orders:
        dts = o["T"] / np.array(o["steps"])
        ax2.loglog(dts, o["errors"], "o-", label=o["loss"])
        order[o["loss"]] = float(np.polyfit(np.log(dts), np.log(o["errors"]), 1)[0])
    last = orders[-1]
    dts = last["T"] / np.array(last["steps"])
    ax2.loglog(dts, last["errors"][-1] * dts / dts[-1], "k:", label="slope 1")
    ax2.set_xticks(dts, [f"T/{N}" for N in last["steps"]])  # the tried steps, not crowded minor log ticks
    ax2.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax2.set_xlabel("dt")
    ax2.set_ylabel(r"$\|W^{TR}_T - W_T\|$")
    ax2.set_title("trust-region iteration vs DEQ trajectory")
    ax2.legend(fontsize=7)
    return save(fig, out, "theorem2_trust_region"), {
        "worst solver disagreement": float(rel.max()),
        "order in dt": order,
        "cond(K) along trajectories [min, max]": {s["label"]: [min(s["cond"]), max(s["cond"])] for s in states},
    }


# ---- 4. implicit bias ---------------------------------------------------------------------------
def _direction(diff: np.ndarray) -> str:
    return "DEQ lower" if np.all(diff < 0) else ("DEQ higher" if np.all(diff > 0) else "mixed")


def _paired_panel(ax, runs: list[dict], other: str) -> np.ndarray:
    """Per seed, DEQ minus ``other`` test loss along training (same split, W_0, step) on a
    symmetric-log axis with a zero line; returns the final gaps."""
    paths = np.array([r["deq"]["test"] - r[other]["test"] for r in runs])
    diff = paths[:, -1]
    it = runs[0]["deq"]["iterations"]
    for run, path in zip(runs, paths):
        (line,) = ax.plot(it, path, lw=1.2, label=f"seed {run['seed']}: {path[-1]:+.2g}")
        ax.plot(it[-1], path[-1], "o", color=line.get_color())
    ax.axhline(0.0, color="k", lw=1)
    finite = np.abs(paths[np.isfinite(paths) & (paths != 0)])
    # linear within the smallest final gap's decade, logarithmic beyond: every seed's sign stays visible
    floor = np.abs(diff[np.isfinite(diff) & (diff != 0)])
    linthresh = 10 ** np.floor(np.log10(floor.min())) if floor.size else (finite.min() if finite.size else 1e-12)
    ax.set_yscale("symlog", linthresh=linthresh)
    if finite.size:  # room above the largest gap's marker (symlog autoscaling leaves none)
        ax.set_ylim(-3 * finite.max() if np.any(paths < 0) else -linthresh, 3 * finite.max())
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"test loss: DEQ $-$ {other.replace('_', ' ')}")
    higher = int(np.sum(diff > 0))
    ax.set_title(
        f"paired per seed vs {other.replace('_', ' ')}: DEQ higher on {higher} of {len(diff)} seeds", fontsize=9
    )
    ax.legend(fontsize=6)
    return diff


def implicit_bias(out: str, datasets: dict[str, list[dict]]):
    """Per data set (columns): train and test loss (mean over seeds, min-max band) of the three
    models; and, since the curves overlap at that scale, the paired differences DEQ minus linear
    and DEQ minus deep linear test loss of each seed along training (same split, same W_0, same
    step): above zero the DEQ generalises worse than that model on that seed."""
    others = [model for model in MODELS if model != "deq"]
    fig, axes = plt.subplots(2 + len(others), len(datasets), figsize=(5.2 * len(datasets), 13), squeeze=False)
    gaps = {}
    for col, (key, runs) in enumerate(datasets.items()):
        name = runs[0]["name"]
        for row, which in enumerate(("train", "test")):
            ax = axes[row, col]
            for model in MODELS:
                curves = np.array([r[model][which] for r in runs])
                ax.plot(runs[0][model]["iterations"], curves.mean(0), label=model.replace("_", " "))
                ax.fill_between(runs[0][model]["iterations"], curves.min(0), curves.max(0), alpha=0.2)
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_ylabel(f"{which} loss (mean per sample)")
            ax.set_title(f"{name}: {which}")
        axes[0, col].legend(fontsize=7)
        final = {model: np.array([r[model]["test"][-1] for r in runs]) for model in MODELS}
        gaps[key] = {"final test loss mean": {k: float(v.mean()) for k, v in final.items()}}
        for row, other in enumerate(others, start=2):
            diff = _paired_panel(axes[row, col], runs, other)
            higher = int(np.sum(diff > 0))
            # the DEQ - linear keys keep their names (numbers.json readers); the deep-linear ones are suffixed
            suffix = "" if other == "linear" else f" vs {other}"
            gaps[key].update(
                {
                    f"test loss deq - {other} (per seed)": diff.tolist(),
                    "direction" + suffix: _direction(diff),
                    "DEQ higher on" + suffix: f"{higher} of {len(diff)} seeds",
                }
            )
    fig.suptitle("implicit bias: same function class, same start W_0, same step; gradient descent")
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # the suptitle clear of the top row's titles
    return save(fig, out, "implicit_bias"), {"implicit bias": gaps}


# ---- 5. conservation ----------------------------------------------------------------------------
def conservation(out: str, result: dict):
    """max_j |1^T A_t e_j - 1^T A_0 e_j| along gradient descent against the rounding of one step
    (eps max_j ||A_0 e_j||_1) and its accumulation over t steps (t times that): the column sums
    move by rounding only, never by the gradient's drift (lr ||dL/dA|| per step)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps, level = result["step"], result["eps_level"]
    ax.semilogy(steps, np.maximum(result["drift"], 1e-18), label=r"$\max_j |1^T A_t e_j - 1^T A_0 e_j|$")
    ax.axhline(level, color="gray", ls=":", label=r"one step's rounding $\epsilon \max_j \|A_0 e_j\|_1$")
    ax.semilogy(steps[1:], steps[1:] * level, color="gray", ls="--", label="t steps of rounding")
    ax.set_xlabel("gradient-descent step t")
    ax.set_ylabel("column-sum drift")
    ax.set_title("conservation: column sums of A move by rounding only", fontsize=10)
    ax.legend(fontsize=7)
    return save(fig, out, "conservation"), {
        "max column-sum drift": float(result["drift"].max()),
        "rounding level eps max_j ||A_0 e_j||_1": level,
    }


# ---- 6. tightness across widths -----------------------------------------------------------------
TIGHTNESS_COLORS = {"m=1": "k", "m<m_y": "tab:green", "m<n": "tab:blue", "m>n": "tab:orange", "digits": "tab:red"}


def tightness_width(out: str, rows: list[dict], concentrated: dict, gamma: float):
    """Theorem 1's tightness ratio (observed log-decay / 2 kappa int_0^t lambda, at its smallest
    over the records once 2 kappa int lambda > 0.1; 1 = attained) and min_t lambda(A_t) /
    (1 + gamma sqrt m)^-2 against the width, per regime; each point is one flow of the scale
    tier's INTEGRATED check. Right panel also: lambda / bound at the concentrated softmax, -> 1."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw={"wspace": 0.3})
    for regime, color in TIGHTNESS_COLORS.items():
        pts = [r for r in rows if r["regime"] == regime]
        if not pts:
            continue
        real = regime == "digits"
        style = {
            "marker": "*" if real else "o",
            "ms": 13 if real else 6,
            "ls": "none" if real else "-",
            "color": color,
            "label": "8x8 digits, 32 principal components (n=1797)" if real else regime,
        }
        ax1.plot([r["m"] for r in pts], [r["tightness"] for r in pts], **style)
        ax2.plot([r["m"] for r in pts], [r["lambda_ratio"] for r in pts], **style)
    ms, ratio = concentrated["m"], concentrated["lambda"] / concentrated["uniform"]
    ax2.plot(ms, ratio, "k--", lw=1, label=r"concentrated softmax ($\lambda$/bound $\to$ 1)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ms, [str(m) for m in ms])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("width m (log scale)")
        ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax1.set_yscale("log")
    ax1.set_ylabel(r"observed $\log(E_0/E_t)$ / $2\kappa\int_0^t\lambda$")
    ax1.set_title(rf"Theorem 1 tightness (1 = attained), $\gamma$ = {gamma}")
    ax1.legend(fontsize=7)
    ax2.set_yscale("log")
    ax2.set_ylabel(r"$\min_t \lambda(A_t)\,(1+\gamma\sqrt{m})^2$")
    ax2.set_title(r"$\lambda(A_t)$ over the uniform bound (>= 1)")
    ax2.legend(fontsize=7)
    numbers = {
        "tightness vs width": rows,
        "lambda/bound at the concentrated softmax": dict(zip(map(int, ms), map(float, ratio))),
    }
    return save(fig, out, "tightness_vs_width"), numbers
