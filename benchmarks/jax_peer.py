"""A peer run: the project's gradient, descent step and flow right-hand side against JAX's jit-compiled
reverse-mode autodiff of the same loss, on the same CPU and sizes (optional; skipped without JAX).

    python benchmarks/jax_peer.py [--quick] [--json PATH]      (make bench-jax)

The loss is the square loss of docs/theory.md, section 1,

    L(A, B) = 1/2 ||B (I - gamma sigma(A))^{-1} Phi - Y||_F^2,

with m in {64, 256, 1024}, m_y = 10, n = 10^4, gamma = 0.9. JAX differentiates it as written
(jnp.linalg.solve, the column softmax, the product with Phi; float64 enabled). The project's side
is what its dynamics call: DEQObjective.evaluate (cached Phi Phi^T and Y Phi^T, so its cost does
not grow with n), a marginal gradient-descent step (records off) and gradient_flow's own
right-hand side. Each ratio is JAX time / project time (> 1: the project is faster), timed with
the BLAS default threads and with one thread (XLA_FLAGS restricts XLA's CPU threads in a
subprocess, threadpoolctl the OpenBLAS ones). Medians of repeated runs after a warm-up (JAX's
compile time excluded). Measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def run_sizes(ms, threads) -> list[dict]:
    import jax
    import jax.numpy as jnp
    from bench import _CaptureRhs, _descent_rate, _marginal_step, _problem, median_time
    from threadpoolctl import threadpool_limits

    import verify
    from verify.gradients import DEQObjective

    jax.config.update("jax_enable_x64", True)
    m_y, n, gamma = 10, 10_000, 0.9

    def loss(A, B, Phi, Y):
        S = jax.nn.softmax(A, axis=0)
        Z = jnp.linalg.solve(jnp.eye(A.shape[0]) - gamma * S, Phi)
        R = B @ Z - Y
        return 0.5 * jnp.sum(R * R)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))

    rows = []
    for m in ms:
        rng, problem = _problem(m, n, m_y, m)
        A = rng.standard_normal((m, m))
        B = rng.standard_normal((m_y, m)) / np.sqrt(m)
        lr = _descent_rate(problem, A, gamma)

        @jax.jit
        def step(A, B, Phi, Y, lr=lr):
            gA, gB = jax.grad(loss, argnums=(0, 1))(A, B, Phi, Y)
            return A - lr * gA, B - lr * gB

        @jax.jit
        def rhs_jax(y, Phi, Y, m=m):
            A, B = y[: m * m].reshape(m, m), y[m * m :].reshape(m_y, m)
            gA, gB = jax.grad(loss, argnums=(0, 1))(A, B, Phi, Y)
            return -jnp.concatenate([gA.ravel(), gB.ravel()])

        Aj, Bj, Phij, Yj = (jnp.asarray(x) for x in (A, B, problem.Phi, problem.Y))
        yj = jnp.concatenate([Aj.ravel(), Bj.ravel()])
        # the same gradient, or the comparison means nothing
        gA, gB = grad(Aj, Bj, Phij, Yj)
        ours = DEQObjective(problem, gamma=gamma).evaluate(A, B, with_excess=False)
        dA, dB = ours.dA, ours.dB
        agree = max(
            float(np.max(np.abs(np.asarray(gA) - dA)) / np.max(np.abs(dA))),
            float(np.max(np.abs(np.asarray(gB) - dB)) / np.max(np.abs(dB))),
        )

        objective = DEQObjective(problem, gamma=gamma)
        verify.gradient_flow(A, B, problem, gamma=gamma, T=1e-9, num_points=2, method=_CaptureRhs)
        rhs, y0 = _CaptureRhs.captured
        with threadpool_limits(limits=None if threads == "default" else 1, user_api="blas"):
            t_grad = median_time(lambda: objective.evaluate(A, B, with_excess=False))
            t_step = _marginal_step(problem, A, B, gamma, lr, 10 if m >= 1024 else 40)
            t_rhs = median_time(lambda: rhs(0.0, y0))
            j_grad = median_time(lambda: jax.block_until_ready(grad(Aj, Bj, Phij, Yj)))
            j_step = median_time(lambda: jax.block_until_ready(step(Aj, Bj, Phij, Yj)))
            j_rhs = median_time(lambda: jax.block_until_ready(rhs_jax(yj, Phij, Yj)))
        row = {
            "m": m,
            "n": n,
            "m_y": m_y,
            "blas_threads": threads,
            "gradient_relative_difference": agree,
            "project_gradient_s": t_grad,
            "jax_gradient_s": j_grad,
            "gradient_ratio": j_grad / t_grad,
            "project_step_s": t_step,
            "jax_step_s": j_step,
            "step_ratio": j_step / t_step,
            "project_rhs_s": t_rhs,
            "jax_rhs_s": j_rhs,
            "rhs_ratio": j_rhs / t_rhs,
        }
        print(
            f"  m={m:5d} threads={threads!s:7s}: JAX / project: gradient {row['gradient_ratio']:6.1f}, "
            f"descent step {row['step_ratio']:6.1f}, flow RHS {row['rhs_ratio']:6.1f} "
            f"(gradients agree to {agree:.1e})",
            flush=True,
        )
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="m in {64, 256} only")
    p.add_argument("--json", help="write the rows as JSON")
    p.add_argument("--threads", choices=("default", "1"), help=argparse.SUPPRESS)  # the subprocess's setting
    args = p.parse_args(argv)
    if not _jax_available():
        print("jax_peer: skipped (JAX is not installed; `pip install 'jax[cpu]'` to run it)")
        return 0
    ms = (64, 256) if args.quick else (64, 256, 1024)
    if args.threads is not None:  # one setting, in this process (XLA reads XLA_FLAGS at import)
        print(json.dumps(run_sizes(ms, args.threads if args.threads == "default" else 1)))
        return 0
    rows = []
    for threads in ("default", "1"):
        env = dict(os.environ)
        if threads == "1":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + ONE_THREAD_XLA).strip()
        out = subprocess.run(
            [sys.executable, __file__, "--threads", threads] + (["--quick"] if args.quick else []),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        lines = out.stdout.strip().splitlines()
        print("\n".join(lines[:-1]), flush=True)
        rows.extend(json.loads(lines[-1]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
