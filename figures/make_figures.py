"""Generate the suite's figures (PNG and PDF, headless).

    python figures/make_figures.py --out DIR [--small] [--seed S] [--idx IMAGES LABELS]
                                   [--workers N] [--max-width M]

1. theorem1_excess_loss     log excess loss vs time, several widths, integrated and uniform bounds
2. rate_constant            lambda(A_t) along trajectories vs 1/(1+gamma sqrt m)^2; lambda at the
                            concentrated softmax, and as ratios to the bounds: the counterexample
                            to 1/(1+gamma)^2 (the bound if ||sigma(A)||_2 <= 1 is assumed)
3. theorem2_trust_region    solver vs -dt K g disagreement; trust-region iteration error vs dt
4. implicit_bias            DEQ-linear vs linear vs deep linear: train/test loss vs iterations on
                            synthetic m > n data and on the bundled 8x8 digits (and on local
                            MNIST-format IDX files with --idx); per-seed paired test-loss gaps,
                            DEQ minus linear and DEQ minus deep linear
5. conservation             drift of the column sums of A along training, against rounding
6. tightness_vs_width       Theorem 1's tightness ratio and min_t lambda(A_t) / uniform bound against
                            the width (1 to --max-width, default 128), per regime, with the 8x8
                            digits marked

The computations are independent tasks (figures/figure_tasks.py) run on the campaign's executor
(verify.executors.make_backend: --workers spawned processes, one BLAS thread each), the longest
first; a figure is drawn (figures/figure_drawing.py) as soon as its own tasks are done, while the
workers go on. Figures 1 and 2 share their flows. A progress bar (on stderr) shows which figure
is computing or being drawn; each figure's compute and drawing CPU seconds and the total wall
duration are printed at the end.

``--small`` runs a reduced setting (used by the tests). Each figure's measured numbers are
printed and written to numbers.json (strict JSON), including the direction of the
implicit-bias test-loss gap.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # figure_tasks, figure_drawing; the project (also in workers)

import figure_drawing as drawing  # noqa: E402
import figure_tasks as tasks  # noqa: E402
import numpy as np  # noqa: E402

from verify import implicit_bias  # noqa: E402
from verify.campaign import json_safe  # noqa: E402
from verify.executors import available_cores, make_backend  # noqa: E402

#: the flows shared by figures 1 and 2: label -> (m, m_y, n)
WIDTHS = {"m=2 < m_y=4 < n=8": (2, 4, 8), "m=8 > n=4": (8, 3, 4), "m=1": (1, 3, 6)}
#: widths of the tightness-vs-width figure: powers of 2 from 1 to --max-width (--small: 16)
TIGHTNESS_MAX_WIDTHS = (16, 32, 64, 128, 256, 512, 1024)
DEFAULT_MAX_WIDTH = 128  # 256 adds about 25 CPU-seconds: beyond `make figures`' minute on 2 cores
TIGHTNESS_GAMMA = 0.5
#: samples the implicit-bias experiment draws from IDX files (training, test)
IDX_TRAIN, IDX_TEST = 1000, 2000


class Job(NamedTuple):
    function: Callable
    args: tuple
    cost: float  # CPU seconds on one core, as measured (roughly): only to start the longest jobs first


class Figure(NamedTuple):
    name: str
    keys: list  # the jobs it is drawn from
    draw: Callable  # draw(out, results) -> (paths, numbers)


def _tightness_configs(small: bool, seed: int, max_width: int, gamma: float = TIGHTNESS_GAMMA):
    """One flow per (width, regime): m<m_y with m_y = 10 (m < 10), m<n with n = 4m, m>n with n = m/4
    (at least 2 samples), m = 1 (its own regime: the bound is an equality there); and the 8x8
    digits on their top 32 centred principal components (m = 32, n = 1797, m_y = 10; raw pixels
    are too stiff for the flow, see verify.scale_data.principal_components). Square loss, as Theorem 1.
    The seed of width 2^k is seed + 1000 + k whatever the largest width."""
    widths = [2**k for k in range(11) if 2**k <= (16 if small else max_width)]
    configs = []
    for k, m in enumerate(widths):
        base = {
            "seed": seed + 1000 + k,
            "gamma": gamma,
            "loss": "square",
            "a_scale": 1.0,
            "dataset": "synthetic",
            "phi_scale": 1.0,
        }
        if m == 1:
            configs.append({**base, "regime": "m=1", "m": 1, "m_y": 3, "n": 6})
            continue
        if m < 10:
            configs.append({**base, "regime": "m<m_y", "m": m, "m_y": 10, "n": max(10, 4 * m)})
        configs.append({**base, "regime": "m<n", "m": m, "m_y": 3, "n": 4 * m})
        if m >= 8:
            configs.append({**base, "regime": "m>n", "m": m, "m_y": 3, "n": max(2, m // 4)})
    if not small:
        configs.append(
            {
                "seed": seed + 2000,
                "gamma": gamma,
                "loss": "square",
                "a_scale": 1.0,
                "dataset": "digits",
                "m": 32,
                "m_y": 10,
                "n": 1797,
                "pca": 32,
            }
        )
    return widths, configs


def _tightness_cost(config: dict) -> float:
    """CPU seconds of one INTEGRATED flow, as measured on one core (m <= 32: 0.5 s, m = 128: 2.5-3 s,
    256: 10-12 s; the digits' n = 1797 flow: 3 s)."""
    if config.get("dataset") == "digits":
        return 3.0
    return 0.4 + 11.0 * (config["m"] / 256) ** 2.5


def plan(small: bool, seed: int, max_width: int, idx_data=None) -> tuple[dict, list[Figure]]:
    """The jobs (key -> Job) and the figures drawn from them."""
    jobs: dict[tuple, Job] = {}
    decades, points = (6, 200) if small else (12, 600)
    for k, (label, (m, m_y, n)) in enumerate(WIDTHS.items()):
        jobs["flow", label] = Job(tasks.flow, (label, m, m_y, n, seed + k, 0.7, decades, points), 0.3)
    jobs["rates",] = Job(tasks.concentrated_rates, (list(range(1, 61)), (0.5, 0.9)), 0.05)
    flow_keys = [("flow", label) for label in WIDTHS]

    configs = [(3, 2, 4, "square"), (2, 4, 3, "cross_entropy"), (4, 2, 2, "square"), (1, 3, 4, "cross_entropy")]
    for k, (m, m_y, n, loss) in enumerate(configs):
        records = 6 if small else 21
        jobs["correspondence", k] = Job(tasks.correspondence, (seed + 10 + k, m, m_y, n, loss, records), 0.3)
    grids = [10, 20, 40, 80] + ([] if small else [160])
    for loss in ("square", "cross_entropy"):
        jobs["order", loss] = Job(tasks.trust_region_order, (seed + 20, loss, grids), 0.9)

    seeds = range(seed, seed + (2 if small else 5))
    steps = 150 if small else 3000
    datasets = {
        "synthetic": (lambda r: implicit_bias.synthetic_overparameterised(r), 1.0),
        "digits": (lambda r: implicit_bias.load_digits_split(r, n_train=200, n_test=500), 4.2),
    }
    if idx_data is not None:
        images, labels, name = idx_data
        datasets["idx"] = (
            lambda r: implicit_bias.split_classification(
                images, labels, r, n_train=IDX_TRAIN, n_test=IDX_TEST, name=name
            ),
            30.0,
        )
    for key, (make, cost) in datasets.items():
        for s in seeds:
            rng = np.random.default_rng(s)
            split = make(rng)  # drawn here, trained in a worker: the generator goes on from the split's draws
            jobs["implicit_bias", key, s] = Job(tasks.implicit_bias_run, (split, rng, steps, s), cost * steps / 3000)

    jobs["conservation",] = Job(tasks.conservation, (seed + 30, 300 if small else 3000), 1.7)

    widths, tightness = _tightness_configs(small, seed, max_width)
    for k, config in enumerate(tightness):
        jobs["tightness", k] = Job(tasks.tightness_row, (config,), _tightness_cost(config))
    jobs["tightness rates",] = Job(tasks.concentrated_rates, (widths, (TIGHTNESS_GAMMA,)), 0.05)

    def by_prefix(results, prefix):
        return [results[k] for k in jobs if k[0] == prefix]

    def implicit(results):
        return {key: [results["implicit_bias", key, s] for s in seeds] for key in datasets}

    figures = [
        Figure("theorem1_excess_loss", flow_keys, lambda out, r: drawing.theorem1(out, [r[k] for k in flow_keys])),
        Figure(
            "rate_constant",
            flow_keys + [("rates",)],
            lambda out, r: drawing.rate_constant(out, [r[k] for k in flow_keys], r["rates",]),
        ),
        Figure(
            "theorem2_trust_region",
            [k for k in jobs if k[0] in ("correspondence", "order")],
            lambda out, r: drawing.theorem2(out, by_prefix(r, "correspondence"), by_prefix(r, "order")),
        ),
        Figure(
            "implicit_bias",
            [k for k in jobs if k[0] == "implicit_bias"],
            lambda out, r: drawing.implicit_bias(out, implicit(r)),
        ),
        Figure("conservation", [("conservation",)], lambda out, r: drawing.conservation(out, r["conservation",])),
        Figure(
            "tightness_vs_width",
            [k for k in jobs if k[0] in ("tightness", "tightness rates")],
            lambda out, r: drawing.tightness_width(
                out, by_prefix(r, "tightness"), r["tightness rates",][TIGHTNESS_GAMMA], TIGHTNESS_GAMMA
            ),
        ),
    ]
    return jobs, figures


def numbers_json(numbers: dict) -> str:
    """Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number, such as the tightness
    of a width whose records all sit below the resolvable floor, is written as the string "nan",
    "inf" or "-inf", as in the campaign's report (verify.campaign.json_safe)."""
    return json.dumps(json_safe(numbers), indent=2, allow_nan=False) + "\n"


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def run(jobs: dict, figures: list[Figure], out: str, workers: int) -> tuple[dict, list[dict]]:
    """Run the jobs on ``workers`` processes, longest first; draw each figure once its jobs are
    done. Returns the numbers (in figure order) and a timing row per figure."""
    started = time.perf_counter()
    results, seconds, timing, numbers = {}, {}, {}, {}
    backend = make_backend(workers, blas_threads=1)
    cancel = True
    try:
        pending = {
            backend.executor.submit(tasks.timed, job.function, *job.args): key
            for key, job in sorted(jobs.items(), key=lambda kv: -kv[1].cost)
        }
        with _progress() as progress:
            rows = {f.name: progress.add_task(f"{f.name}: computing", total=len(f.keys) + 1) for f in figures}
            waiting = list(figures)
            for future in cf.as_completed(pending):
                key = pending[future]
                results[key], seconds[key] = future.result()
                for f in figures:
                    if key in f.keys:
                        progress.advance(rows[f.name])
                for f in [f for f in waiting if all(k in results for k in f.keys)]:
                    waiting.remove(f)
                    progress.update(rows[f.name], description=f"{f.name}: drawing")
                    drawn = time.process_time()
                    paths, numbers[f.name] = f.draw(out, results)
                    draw_cpu, done = time.process_time() - drawn, time.perf_counter()
                    timing[f.name] = {
                        "figure": f.name,
                        "jobs": len(f.keys),
                        "compute s": sum(seconds[k] for k in f.keys),
                        "draw s": draw_cpu,
                        "written at s": done - started,
                    }
                    progress.update(rows[f.name], description=f"{f.name}: done", advance=1)
                    progress.console.print(
                        f"wrote {', '.join(os.path.basename(p) for p in paths)} ({done - started:.1f} s)",
                        highlight=False,
                    )
        cancel = False
    finally:
        backend.close(cancel=cancel)
    merged = {}
    for f in figures:
        merged.update(numbers[f.name])
    return merged, [timing[f.name] for f in figures]


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
    started = time.perf_counter()
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "output"))
    p.add_argument("--small", action="store_true", help="reduced setting (seconds; used by the tests)")
    p.add_argument("--seed", type=int, default=0, help="seed >= 0 (numpy Generators)")
    p.add_argument(
        "--idx",
        nargs=2,
        metavar=("IMAGES", "LABELS"),
        help="also run the implicit-bias experiment on local MNIST-format IDX files",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes, one BLAS thread each (default: the cores available, {available_cores()})",
    )
    p.add_argument(
        "--max-width",
        type=int,
        default=DEFAULT_MAX_WIDTH,
        choices=TIGHTNESS_MAX_WIDTHS,
        metavar="M",
        help=f"largest width of the tightness-vs-width figure, a power of 2 in 16-1024 (default "
        f"{DEFAULT_MAX_WIDTH}; 1024 adds about 6 CPU-minutes; --small: 16)",
    )
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error(f"--seed must be >= 0 (a numpy Generator seed); got {args.seed}")
    if args.workers is not None and args.workers < 1:
        p.error(f"--workers must be >= 1; got {args.workers}")
    # Every input is validated before the first figure: a bad --idx must not leave a partial folder.
    idx_data = None
    if args.idx:
        try:
            images, labels = implicit_bias.load_idx_dataset(*args.idx)
        except (OSError, ValueError) as err:
            p.error(f"--idx: {err}")
        if len(labels) < IDX_TRAIN + IDX_TEST:
            p.error(
                f"--idx: the experiment draws {IDX_TRAIN} + {IDX_TEST} = {IDX_TRAIN + IDX_TEST} samples; "
                f"the files hold {len(labels)}"
            )
        idx_data = (images, labels, os.path.basename(args.idx[0]))
    _check_out(p, args.out)
    jobs, figures = plan(args.small, args.seed, args.max_width, idx_data)
    workers = args.workers or available_cores()
    numbers, timing = run(jobs, figures, args.out, workers)
    for row in numbers.get("tightness vs width", []):
        print(f"  tightness-vs-width: {row}")
    text = numbers_json(numbers)
    with open(os.path.join(args.out, "numbers.json"), "w") as fh:
        fh.write(text)
    print(text, end="")
    print(f"{'figure':<24}{'jobs':>6}{'compute CPU s':>15}{'draw CPU s':>12}{'written at s':>14}")
    for row in timing:
        print(
            f"{row['figure']:<24}{row['jobs']:>6}{row['compute s']:>15.1f}{row['draw s']:>12.1f}"
            f"{row['written at s']:>14.1f}"
        )
    print(
        f"total {time.perf_counter() - started:.1f} s on {workers} worker process(es) "
        f"({sum(r['compute s'] + r['draw s'] for r in timing):.1f} CPU s in the figures' tasks and drawing; "
        "compute: the figure's tasks summed over workers, figures 1 and 2 share their flows; written at: "
        "wall seconds since the start)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
