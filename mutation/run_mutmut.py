"""``make mutation``: mutation testing of the formula modules, judged by the campaign alone.

mutmut (2.x, which accepts any command as the test runner) mutates the formula modules
(FORMULA_MODULES: the core, the batched path, the implicit-bias experiment, the scale tier, the
certificates and the SymPy derivations) one change at a time (operators,
numbers, names, keywords, arguments, strings; f-strings are skipped: they are error messages)
and runs

    python -m verify --fail-fast [--count COUNT] --seed 0

(the quick campaign unless --count is given) on each mutant: a mutant is killed when the
campaign exits non-zero. The work happens in a copy
of the project (``.mutation/``), so an interrupted run never leaves a mutated file behind.
Afterwards every surviving mutant's diff is written to ``mutation/survivors.txt`` and the counts to
``mutation/results.json``; the README lists the survivors with the reason each survives.

    python mutation/run_mutmut.py [--count N] [--paths verify/model.py,...] [--resume]
    python mutation/run_mutmut.py --sample 150 [--sample-seed 0]

A long run (about an hour per thousand mutants on one core); not part of ``make test``.
``--sample N`` estimates the score from N mutants drawn uniformly (seeded) from all of mutmut's
mutants of the paths: mutmut enumerates them (with a runner that always passes), then each drawn
mutant is applied to a fresh copy of its file and judged by the campaign; the score comes with a
95% Wilson interval.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".mutation")
FORMULA_MODULES = [
    "verify/model.py",
    "verify/losses.py",
    "verify/gradients.py",
    "verify/dynamics.py",
    "verify/convergence.py",
    "verify/trust_region.py",
    "verify/batched.py",
    "verify/implicit_bias.py",
    "verify/scale.py",
    "verify/certify/ball_model.py",
    "verify/certify/balls.py",
    "verify/certify/proof.py",
    "verify/certify/statements.py",
    "theory/gradients.py",
    "theory/dynamics.py",
    "theory/trust_region.py",
]


def mutmut(*args, capture=True):
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=WORK, capture_output=capture, text=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--count",
        type=int,
        help="configurations per claim in the campaign run per mutant (default: the quick campaign's own counts)",
    )
    p.add_argument("--paths", default=",".join(FORMULA_MODULES), help="comma-separated files to mutate")
    p.add_argument("--resume", action="store_true", help="keep .mutation/ and mutmut's cache (continue a run)")
    p.add_argument("--sample", type=int, metavar="N", help="judge N mutants drawn uniformly from all of them")
    p.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of the draw (default 0)")
    args = p.parse_args(argv)
    if args.count is not None and args.count < 1:
        p.error("--count must be >= 1")
    if args.sample is not None and args.sample < 1:
        p.error("--sample must be >= 1")
    if not args.resume or not os.path.isdir(WORK):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        for sub in ("verify", "theory"):
            shutil.copytree(
                os.path.join(ROOT, sub), os.path.join(WORK, sub), ignore=shutil.ignore_patterns("__pycache__")
            )
    count = "" if args.count is None else f" --count {args.count}"
    runner = f"{sys.executable} -m verify --fail-fast{count} --seed 0 --blas-threads 1"
    start = time.time()
    if args.sample is not None:
        return sample_run(args, runner, start)
    # --tests-dir only has to exist: the runner (the campaign) is the test command
    run = mutmut(
        "run",
        "--paths-to-mutate",
        args.paths,
        "--runner",
        runner,
        "--tests-dir",
        "verify",
        "--disable-mutation-types",
        "fstring",
        "--simple-output",
        "--no-progress",
        capture=False,
    )
    if run.returncode & 1:
        print("mutmut reported a fatal error (does the unmutated campaign pass?)", file=sys.stderr)
        return 1
    results = mutmut("results").stdout
    groups = _result_ids(results)
    survivors = groups.get("Survived", [])
    with open(os.path.join(ROOT, "mutation", "survivors.txt"), "w") as fh:
        for mutant_id in survivors:
            fh.write(f"=== mutant {mutant_id}\n{mutmut('show', str(mutant_id)).stdout}\n")
    summary = {
        "count_per_claim": args.count,
        "paths": args.paths.split(","),
        "seconds": round(time.time() - start),
        "results": {k: len(v) for k, v in groups.items()},
        "survivors": survivors,
        "mutmut_results": results,
    }
    with open(os.path.join(ROOT, "mutation", "results.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps(summary["results"]))
    return 0


def _result_ids(results: str) -> dict[str, list[int]]:
    """mutmut's `results` text as {status: [mutant ids]}."""
    groups: dict[str, list[int]] = {}
    current = None
    for line in results.splitlines():
        header = re.match(r"^(Survived|Timed out|Suspicious|Untested|Killed)", line.strip())
        if header:
            current = header.group(1)
            continue
        if current and "----" in line:
            ids = line.split("----")[-1]
            groups.setdefault(current, []).extend(int(x) for x in re.findall(r"\d+", ids))
        elif current and re.fullmatch(r"[\d, \-]+", line.strip() or "x"):
            groups.setdefault(current, []).extend(_expand(line))
    return groups


def _expand(text: str) -> list[int]:
    """'1-3, 7' -> [1, 2, 3, 7] (mutmut writes runs of ids as ranges)."""
    out = []
    for part in text.replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z * ((k * (n - k) / n + z * z / 4) ** 0.5) / (n + z * z)
    return centre - half, centre + half


def sample_run(args, runner: str, start: float) -> int:
    """Enumerate every mutant (runner `true`), draw args.sample of them, judge each by the campaign."""
    import numpy as np

    enum = mutmut(
        "run",
        "--paths-to-mutate",
        args.paths,
        "--runner",
        "true",
        "--tests-dir",
        "verify",
        "--disable-mutation-types",
        "fstring",
        "--simple-output",
        "--no-progress",
    )
    if enum.returncode & 1:
        print(enum.stdout[-2000:], enum.stderr[-2000:], file=sys.stderr)
        return 1
    all_ids = sorted(i for ids in _result_ids(mutmut("results").stdout).values() for i in ids)
    rng = np.random.default_rng(args.sample_seed)
    drawn = sorted(int(i) for i in rng.choice(all_ids, size=min(args.sample, len(all_ids)), replace=False))
    pristine = {path: open(os.path.join(WORK, path)).read() for path in args.paths.split(",")}
    baseline = time.time()
    if subprocess.run(runner.split(), cwd=WORK, capture_output=True).returncode != 0:
        print("the unmutated campaign fails: nothing to judge", file=sys.stderr)
        return 1
    timeout = max(60.0, 10 * (time.time() - baseline))
    verdicts = {}
    for k, mutant_id in enumerate(drawn):
        diff = mutmut("show", str(mutant_id)).stdout
        mutmut("apply", str(mutant_id))
        try:
            run = subprocess.run(runner.split(), cwd=WORK, capture_output=True, timeout=timeout)
            status = "killed" if run.returncode != 0 else "survived"
        except subprocess.TimeoutExpired:
            status = "timeout"  # counted as killed: a mutant that hangs the campaign is detected
        for path, text in pristine.items():
            with open(os.path.join(WORK, path), "w") as fh:
                fh.write(text)
        verdicts[mutant_id] = {"status": status, "diff": diff}
        print(f"[{k + 1}/{len(drawn)}] mutant {mutant_id}: {status}", flush=True)
    survivors = [i for i, v in verdicts.items() if v["status"] == "survived"]
    killed = len(drawn) - len(survivors)
    low, high = _wilson(killed, len(drawn))
    with open(os.path.join(ROOT, "mutation", "survivors.txt"), "w") as fh:
        for mutant_id in survivors:
            fh.write(f"=== mutant {mutant_id}\n{verdicts[mutant_id]['diff']}\n")
    summary = {
        "mode": "sample",
        "count_per_claim": args.count,
        "paths": args.paths.split(","),
        "mutants_in_total": len(all_ids),
        "sampled": len(drawn),
        "sample_seed": args.sample_seed,
        "killed_or_timeout": killed,
        "survived": len(survivors),
        "score": killed / len(drawn),
        "score_95_interval": [low, high],
        "seconds": round(time.time() - start),
        "survivors": survivors,
        "verdicts": {str(i): v["status"] for i, v in verdicts.items()},
    }
    with open(os.path.join(ROOT, "mutation", "results.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "verdicts"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
