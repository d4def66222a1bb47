"""Benchmarks of the numerical core (medians of repeated timings; `make bench`).

    python benchmarks/bench.py [--quick] [--with-suite] [--json PATH]

1. gradient evaluation against the linear-algebra floor, m in {64, 256, 1024}, n in {1e3, 1e5},
   m_y = 10, square loss (cached statistics; n-independent) and cross-entropy (through W);
   floor = softmax of A + LU of U + the two m_y-column solves + the unavoidable products
   (square: W (Phi Phi^T) and W^T dL/dB; cross-entropy: W Phi, one exp per output, G Phi^T
   and W^T dL/dB).
2. the implicit gradient against the usual DEQ practice: fixed-point (Neumann) forward and
   adjoint iterations to 1e-12.
3. batched evaluation against a Python loop, k = 256 configurations with m = 4.
4. dynamics at the floor (square loss, m in {64, 256, 1024}, m_y = 10, n = 1e4): the marginal
   cost of one gradient-descent step (records off) and of one gradient-flow right-hand side,
   each against one gradient (DEQObjective.evaluate, the floor; target 1.5); the flow's whole
   marginal cost per right-hand-side evaluation (step control, DOP853's dense output and the
   rate quadrature included; no target); the n-independence of a step (n = 1e5 against
   n = 1e3, the same Phi Phi^T; target ~1).
5. setup: ShallowProblem(Phi, Y) (square loss) at n = 1e5 against one Gram product Phi Phi^T
   (target 5), with kappa (pl_constant) and, for ill-conditioned Phi, the Householder fallback.
6. with --with-suite: wall time of the quick campaign and of the default test run.

Timings are wall-clock medians on this machine; they are measurements, not test assertions.
Each row of 1, 4 and 5 is timed twice: with the BLAS default threads and with one BLAS thread
(threadpoolctl); the load average is printed before and after. NumPy and SciPy wheels each
ship their own OpenBLAS; on two cores their idle threads spin while the other library works,
which slows alternating calls (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import timeit

import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scipy import integrate  # noqa: E402

import verify  # noqa: E402
from verify.batched import batched_loss_and_grad  # noqa: E402
from verify.gradients import DEQObjective  # noqa: E402
from verify.model import column_softmax  # noqa: E402


def median_time(fn, repeat=7, number=None, statistic=np.median):
    """``statistic`` (default the median) of ``repeat`` timings of ``number`` calls, per call."""
    fn()  # warm-up
    if number is None:
        t = timeit.timeit(fn, number=1)
        number = max(1, int(0.2 / max(t, 1e-6)))
    return float(statistic(timeit.repeat(fn, repeat=repeat, number=number))) / number


def floor_time(A, B, gamma, problem, loss):
    """The operations any implementation of the gradient must perform."""
    m = A.shape[0]
    S = column_softmax(A)
    U = np.eye(m) - gamma * S
    lu = sla.lu_factor(U)
    W = sla.lu_solve(lu, B.T, trans=1).T
    gram = problem.gram if loss == "square" else None
    Phi = problem.Phi
    dB = W.copy()

    def square():
        S = column_softmax(A)
        lu = sla.lu_factor(np.eye(m) - gamma * S)
        W = sla.lu_solve(lu, B.T, trans=1).T
        G = W @ gram
        sla.lu_solve(lu, G.T)
        W.T @ dB

    def cross_entropy():
        S = column_softmax(A)
        lu = sla.lu_factor(np.eye(m) - gamma * S)
        W = sla.lu_solve(lu, B.T, trans=1).T
        Q = W @ Phi
        np.exp(Q)  # one exponential per output is unavoidable for the softmax
        G = Q @ Phi.T
        sla.lu_solve(lu, G.T)
        W.T @ dB

    return median_time(square if loss == "square" else cross_entropy)


def bench_gradient(quick: bool):
    rows = []
    ms = (64, 256) if quick else (64, 256, 1024)
    ns = (1000, 100_000)
    m_y, gamma = 10, 0.9
    for m in ms:
        for n in ns:
            rng = np.random.default_rng(m + n)
            A = rng.standard_normal((m, m))
            B = rng.standard_normal((m_y, m))
            Phi = rng.standard_normal((m, n)) / np.sqrt(n)
            for loss in ("square", "cross_entropy"):
                Y = rng.standard_normal((m_y, n)) if loss == "square" else np.eye(m_y)[:, rng.integers(0, m_y, n)]
                t0 = time.perf_counter()
                problem = verify.ShallowProblem(Phi, Y, loss)
                setup = time.perf_counter() - t0
                objective = DEQObjective(problem, gamma=gamma)
                for threads in ("default", 1):
                    with threadpool_limits(limits=None if threads == "default" else threads, user_api="blas"):
                        t_grad = median_time(lambda: objective.evaluate(A, B, with_excess=False))
                        t_floor = floor_time(A, B, gamma, problem, loss)
                    rows.append(
                        {
                            "m": m,
                            "n": n,
                            "loss": loss,
                            "blas_threads": threads,
                            "gradient_s": t_grad,
                            "floor_s": t_floor,
                            "ratio_to_floor": t_grad / t_floor,
                            "one_time_setup_s": setup,
                        }
                    )
                    print(
                        f"  gradient m={m:5d} n={n:6d} {loss:13s} threads={threads!s:7s}: {t_grad * 1e3:9.3f} ms, "
                        f"floor {t_floor * 1e3:9.3f} ms, ratio {t_grad / t_floor:5.2f} (setup {setup:.2f} s)",
                        flush=True,
                    )
    return rows


def neumann_gradient(A, B, Phi, Y, gamma, tol=1e-12, max_iter=100_000):
    """The usual DEQ practice: fixed-point forward for Z, fixed-point adjoint, then gradients."""
    S = column_softmax(A)
    gS = gamma * S
    Z = Phi.copy()
    for _ in range(max_iter):
        Z_new = gS @ Z + Phi
        if np.abs(Z_new - Z).max() <= tol * np.abs(Z_new).max():
            Z = Z_new
            break
        Z = Z_new
    G = B @ Z - Y
    rhs = B.T @ G
    V = rhs.copy()  # V = U^{-T} B^T G by V <- gamma S^T V + B^T G
    for _ in range(max_iter):
        V_new = gS.T @ V + rhs
        if np.abs(V_new - V).max() <= tol * np.abs(V_new).max():
            V = V_new
            break
        V = V_new
    dB = G @ Z.T
    Gamma = gamma * V @ Z.T
    SG = S * Gamma
    return SG - S * SG.sum(axis=0, keepdims=True), dB


def bench_neumann(quick: bool):
    rows = []
    for m, n, gamma in [(64, 1000, 0.9)] if quick else [(64, 1000, 0.9), (256, 1000, 0.9), (256, 1000, 0.5)]:
        rng = np.random.default_rng(m)
        A, B = rng.standard_normal((m, m)), rng.standard_normal((10, m))
        Phi, Y = rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal((10, n))
        dA_ref, dB_ref = neumann_gradient(A, B, Phi, Y, gamma)
        _, dA, dB = verify.loss_and_grad(A, B, Phi, Y, gamma=gamma)
        agree = float(max(np.abs(dA - dA_ref).max() / np.abs(dA).max(), np.abs(dB - dB_ref).max() / np.abs(dB).max()))
        t_fp = median_time(lambda: neumann_gradient(A, B, Phi, Y, gamma), repeat=5)
        t_imp = median_time(lambda: verify.loss_and_grad(A, B, Phi, Y, gamma=gamma))
        rows.append(
            {
                "m": m,
                "n": n,
                "gamma": gamma,
                "fixed_point_s": t_fp,
                "implicit_s": t_imp,
                "speedup": t_fp / t_imp,
                "relative_agreement": agree,
            }
        )
        print(
            f"  neumann m={m} n={n} gamma={gamma}: fixed point {t_fp * 1e3:.2f} ms, implicit {t_imp * 1e3:.3f} ms, "
            f"speed-up {t_fp / t_imp:.1f}x (agree {agree:.1e})",
            flush=True,
        )
    return rows


def bench_batched():
    k, m, m_y, n = 256, 4, 3, 8
    rng = np.random.default_rng(0)
    A = rng.standard_normal((k, m, m))
    B = rng.standard_normal((k, m_y, m))
    Phi = rng.standard_normal((k, m, n))
    Y = rng.standard_normal((k, m_y, n))
    gammas = rng.uniform(0.1, 0.9, k)
    t_batch = median_time(lambda: batched_loss_and_grad(A, B, Phi, Y, gammas))
    t_loop = median_time(lambda: [verify.loss_and_grad(A[i], B[i], Phi[i], Y[i], gamma=gammas[i]) for i in range(k)])
    print(
        f"  batched k={k} m={m}: loop {t_loop * 1e3:.2f} ms, batched {t_batch * 1e3:.3f} ms, "
        f"speed-up {t_loop / t_batch:.1f}x",
        flush=True,
    )
    return {"k": k, "m": m, "loop_s": t_loop, "batched_s": t_batch, "speedup": t_loop / t_batch}


# ---- 4. dynamics at the floor -------------------------------------------------------------------
STEP_TARGET = 1.5
#: a descent step with the per-step lambda(A) at m <= 96 (the tracker's Lanczos is a larger share
#: of a small gradient), and a step without it (track_rate=False) at every width
SMALL_STEP_TARGET, UNTRACKED_STEP_TARGET = 2.0, 1.2
SETUP_TARGET = 5.0


class _CaptureRhs(integrate.RK45):
    """An OdeSolver that keeps gradient_flow's right-hand side and stops at once: the bench times
    the real closure, not a copy of it."""

    captured = None

    def __init__(self, fun, t0, y0, t_bound, **kwargs):
        _CaptureRhs.captured = (fun, y0)
        super().__init__(fun, t0, y0, t_bound, **kwargs)
        self.status = "finished"


def _problem(m, n, m_y, seed):
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((m, n)) / np.sqrt(n)
    Y = rng.standard_normal((m_y, n)) / np.sqrt(n)
    return rng, verify.ShallowProblem(Phi, Y)


def _descent_rate(problem, A, gamma):
    """lr = 0.1 / (||Phi Phi^T||_2 ||U_0^{-1}||_2^2): a tenth of the stability limit of the
    linearised step in B alone (K >= U^{-T} U^{-1}), a small but not tiny step."""
    U = np.eye(A.shape[0]) - gamma * column_softmax(A)
    return 0.1 / (np.linalg.norm(problem.gram, 2) / sla.svdvals(U)[-1] ** 2)


def min_time(fn, repeat=7, number=None):
    """The fastest of ``repeat`` timings (timeit's advice for a cost: other processes only add
    time). Used for the dynamics ratios, whose numerator is a difference of two runs: medians of
    three runs on a shared machine moved the step/gradient ratio by +-30% between two runs."""
    return median_time(fn, repeat=repeat, number=number, statistic=min)


#: wall time aimed at by the marginal-step runs (steps = this / one gradient, within STEP_RANGE),
#: about 2x the fixed cost of a run at m = 1024 (the first record's dense lambda: SVD, eigh, ~0.7 s),
#: so that the difference of the long and short runs is far above their set-up noise
STEP_BUDGET_S, STEP_RANGE = 1.5, (10, 400)


def marginal_steps(t_gradient: float) -> int:
    return int(np.clip(round(STEP_BUDGET_S / t_gradient), *STEP_RANGE))


def _marginal_step(problem, A, B, gamma, lr, steps, track_rate=True):
    """(time of steps + 2 descent steps - time of 2 steps) / steps, records off (the tracker's
    cold start and the first record cancel)."""

    def run(k):
        return lambda: verify.gradient_descent(
            A, B, problem, gamma=gamma, lr=lr, steps=k, record_every=10**9, track_rate=track_rate
        )

    short, long_ = min_time(run(2), repeat=5, number=1), min_time(run(2 + steps), repeat=5, number=1)
    return max(long_ - short, 0.0) / steps


def _marginal_flow(problem, A, B, gamma, T):
    """(time, right-hand-side evaluations) of a flow to 2T minus those of a flow to T, records
    off (num_points = 2): the whole cost per evaluation once the run is under way (step control,
    DOP853's dense output, the rate quadrature), without the first record's cold start."""
    runs = {}
    for end in (T, 2 * T):
        t0 = time.perf_counter()
        flow = verify.gradient_flow(A, B, problem, gamma=gamma, T=end, rtol=1e-10, num_points=2)
        runs[end] = (time.perf_counter() - t0, flow.info["nfev"], flow.info["quadrature_nodes"])
    (t1, n1, q1), (t2, n2, q2) = runs[T], runs[2 * T]
    return (t2 - t1) / max(n2 - n1, 1), n2 - n1, q2 - q1


def bench_dynamics(quick: bool):
    rows = []
    m_y, gamma = 10, 0.9
    for m in (64, 256) if quick else (64, 256, 1024):
        rng, problem = _problem(m, 10_000, m_y, m)
        A = rng.standard_normal((m, m))
        B = rng.standard_normal((m_y, m)) / np.sqrt(m)
        objective = DEQObjective(problem, gamma=gamma)
        lr = _descent_rate(problem, A, gamma)
        verify.gradient_flow(A, B, problem, gamma=gamma, T=1e-9, num_points=2, method=_CaptureRhs)
        rhs, y0 = _CaptureRhs.captured
        # n-independence: the n = 1e5 data are the n = 1e3 data repeated 100 times (scaled by 1/10),
        # so Phi Phi^T, Y Phi^T and the trajectories are the same; only n differs
        near = _problem(m, 1000, m_y, m)[1]
        far = None
        if m <= 256:  # (m = 1024: Phi alone would be 0.8 GB)
            far = verify.ShallowProblem(np.tile(near.Phi, 100) / 10, np.tile(near.Y, 100) / 10)
        for threads in ("default", 1):
            with threadpool_limits(limits=None if threads == "default" else threads, user_api="blas"):
                t_grad = min_time(lambda: objective.evaluate(A, B, with_excess=False))
                t_rhs = min_time(lambda: rhs(0.0, y0))
                steps = marginal_steps(t_grad)
                t_step = _marginal_step(problem, A, B, gamma, lr, steps)
                t_bare = _marginal_step(problem, A, B, gamma, lr, steps, track_rate=False)
                t_flow, flow_nfev, flow_nodes = _marginal_flow(problem, A, B, gamma, 50 * lr)
                row = {
                    "m": m,
                    "n": 10_000,
                    "blas_threads": threads,
                    "gradient_s": t_grad,
                    "rhs_s": t_rhs,
                    "step_s": t_step,
                    "lr": lr,
                    "step_over_gradient": t_step / t_grad,
                    "untracked_step_over_gradient": t_bare / t_grad,
                    "rhs_over_gradient": t_rhs / t_grad,
                    "flow_marginal_nfev": flow_nfev,
                    "flow_marginal_quadrature_nodes": flow_nodes,
                    "flow_s_per_rhs_over_gradient": t_flow / t_grad,
                }
                if far is not None:
                    lr_near = _descent_rate(near, A, gamma)
                    step_near = _marginal_step(near, A, B, gamma, lr_near, steps)
                    step_far = _marginal_step(far, A, B, gamma, lr_near, steps)
                    row.update(step_n1e3_s=step_near, step_n1e5_s=step_far, step_n_ratio=step_far / step_near)
            rows.append(row)
            extra = f", step n=1e5 / n=1e3 {row['step_n_ratio']:.2f}" if "step_n_ratio" in row else ""
            print(
                f"  dynamics m={m:5d} threads={threads!s:7s}: gradient {t_grad * 1e3:8.3f} ms, step / gradient "
                f"{row['step_over_gradient']:5.2f}, RHS / gradient {row['rhs_over_gradient']:5.2f}, flow per RHS / "
                f"gradient {row['flow_s_per_rhs_over_gradient']:5.2f} ({flow_nfev} RHS, {flow_nodes} quadrature "
                f"nodes){extra}",
                flush=True,
            )
    return rows


# ---- 5. setup ------------------------------------------------------------------------------------
def bench_setup(quick: bool):
    rows = []
    n, m_y = 100_000, 10
    cases = [(64, False), (256, False)] + ([] if quick else [(1024, False), (256, True)])
    for m, ill in cases:
        rng = np.random.default_rng(m)
        Phi = rng.standard_normal((m, n)) / np.sqrt(n)
        if ill:  # singular values over 12 decades: Cholesky of Phi Phi^T breaks down
            Q1 = np.linalg.qr(rng.standard_normal((m, m)))[0]
            Phi = (Q1 * np.logspace(0, -12, m)) @ np.linalg.qr(rng.standard_normal((n, m)))[0].T
        Y = rng.standard_normal((m_y, n))
        for threads in ("default", 1):
            with threadpool_limits(limits=None if threads == "default" else threads, user_api="blas"):
                t_gram = median_time(lambda: Phi @ Phi.T, repeat=5, number=1)
                t_setup = median_time(lambda: verify.ShallowProblem(Phi, Y), repeat=3, number=1)
                problem = verify.ShallowProblem(Phi, Y)
                t0 = time.perf_counter()
                problem.pl_constant
                t_kappa = time.perf_counter() - t0
            row = {
                "m": m,
                "n": n,
                "ill_conditioned": ill,
                "blas_threads": threads,
                "gram_s": t_gram,
                "setup_s": t_setup,
                "kappa_s": t_kappa,
                "factorization": problem.factorization,
                "setup_over_gram": t_setup / t_gram,
                "setup_and_kappa_over_gram": (t_setup + t_kappa) / t_gram,
            }
            rows.append(row)
            print(
                f"  setup m={m:5d} n={n} {'ill-conditioned ' if ill else ''}threads={threads!s:7s}: Gram "
                f"{t_gram * 1e3:8.1f} ms, setup / Gram {row['setup_over_gram']:5.2f} ({problem.factorization}), "
                f"with kappa {row['setup_and_kappa_over_gram']:5.2f}",
                flush=True,
            )
    return rows


def bench_suite():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for name, cmd in (
        ("quick_campaign_s", [sys.executable, "-m", "verify", "--quick"]),
        ("default_test_run_s", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
    ):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
        out[name] = time.perf_counter() - t0
        print(f"  {name}: {out[name]:.1f} s", flush=True)
    return out


def _against(value: float, target: float) -> str:
    return f"{value:.2f} (target <= {target:g}: {'met' if value <= target else 'NOT met'})"


def print_summary(results):
    from rich.console import Console
    from rich.table import Table

    table = Table(title="deq-verify benchmarks (medians)")
    for col in ("benchmark", "setting", "result"):
        table.add_column(col)
    for r in results.get("gradient", []):
        table.add_row(
            "gradient / floor",
            f"m={r['m']} n={r['n']} {r['loss']} threads={r['blas_threads']}",
            f"{r['gradient_s'] * 1e3:.2f} ms / {r['floor_s'] * 1e3:.2f} ms = {r['ratio_to_floor']:.2f}",
        )
    by = {(r["m"], r["loss"], r["blas_threads"], r["n"]): r["gradient_s"] for r in results.get("gradient", [])}
    for (m, loss, th, n), t in sorted(by.items(), key=str):
        if loss == "square" and n == 100_000 and (m, loss, th, 1000) in by:
            table.add_row("n = 1e5 vs n = 1e3", f"m={m} square threads={th}", f"{t / by[(m, loss, th, 1000)]:.2f}")
    for r in results.get("dynamics", []):
        setting = f"m={r['m']} n={r['n']} threads={r['blas_threads']}"
        table.add_row(
            "descent step / gradient",
            setting,
            _against(r["step_over_gradient"], SMALL_STEP_TARGET if r["m"] <= 96 else STEP_TARGET),
        )
        table.add_row(
            "step without lambda / gradient",
            setting,
            _against(r["untracked_step_over_gradient"], UNTRACKED_STEP_TARGET),
        )
        table.add_row("flow RHS / gradient", setting, _against(r["rhs_over_gradient"], STEP_TARGET))
        table.add_row(
            "flow time per RHS / gradient",
            setting + " (quadrature, dense output)",
            f"{r['flow_s_per_rhs_over_gradient']:.2f} (no target)",
        )
        if "step_n_ratio" in r:
            table.add_row(
                "step, n = 1e5 / n = 1e3",
                f"m={r['m']} threads={r['blas_threads']}",
                f"{r['step_n_ratio']:.2f} (target ~1)",
            )
    for r in results.get("setup", []):
        setting = f"m={r['m']} n={r['n']}{' ill-cond.' if r['ill_conditioned'] else ''} threads={r['blas_threads']}"
        table.add_row("setup / Gram", f"{setting} ({r['factorization']})", _against(r["setup_over_gram"], SETUP_TARGET))
        table.add_row("setup + kappa / Gram", setting, f"{r['setup_and_kappa_over_gram']:.2f}")
    for r in results.get("neumann", []):
        table.add_row("implicit vs fixed point", f"m={r['m']} n={r['n']} gamma={r['gamma']}", f"{r['speedup']:.1f}x")
    if "batched" in results:
        b = results["batched"]
        table.add_row("batched vs loop", f"k={b['k']} m={b['m']}", f"{b['speedup']:.1f}x")
    for k, v in results.get("suite", {}).items():
        table.add_row(k, "", f"{v:.1f} s")
    Console(width=130).print(table)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip m = 1024 and the larger Neumann cases")
    p.add_argument("--with-suite", action="store_true", help="also time the quick campaign and the default test run")
    p.add_argument("--only", help="comma-separated sections to run: gradient,neumann,batched,dynamics,setup")
    p.add_argument("--json", help="write results as JSON")
    args = p.parse_args(argv)
    try:
        from threadpoolctl import threadpool_info

        blas = [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]
    except ImportError:  # pragma: no cover
        blas = "unknown"
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.machine(),
        "blas": blas,
    }
    machine["load_average_before"] = os.getloadavg()
    print(f"machine: {machine}")
    results = {"machine": machine}
    sections = {"gradient", "neumann", "batched", "dynamics", "setup"}
    if args.only is not None:
        sections = set(args.only.split(","))
    if "gradient" in sections:
        print("1. gradient evaluation vs floor")
        results["gradient"] = bench_gradient(args.quick)
    if "neumann" in sections:
        print("2. implicit vs fixed-point (Neumann) forward + adjoint to 1e-12")
        results["neumann"] = bench_neumann(args.quick)
    if "batched" in sections:
        print("3. batched vs Python loop")
        results["batched"] = bench_batched()
    if "dynamics" in sections:
        print("4. dynamics: descent step and flow right-hand side vs one gradient")
        results["dynamics"] = bench_dynamics(args.quick)
    if "setup" in sections:
        print("5. setup vs one Gram product")
        results["setup"] = bench_setup(args.quick)
    if args.with_suite:
        print("6. suite wall times")
        results["suite"] = bench_suite()
    results["load_average_after"] = os.getloadavg()
    print(f"load average after: {results['load_average_after']}")
    print_summary(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
