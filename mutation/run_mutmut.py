"""``make mutation``: mutation testing of the formula modules, judged by the campaign alone.

mutmut (2.x, which accepts any command as the test runner) mutates verify/model.py, losses.py,
gradients.py, dynamics.py, convergence.py and trust_region.py one change at a time (operators,
numbers, names, keywords, arguments, strings; f-strings are skipped: they are error messages)
and runs

    python -m verify --fail-fast --count COUNT --seed 0

on each mutant: a mutant is killed when the campaign exits non-zero. The work happens in a copy
of the project (``.mutation/``), so an interrupted run never leaves a mutated file behind.
Afterwards every surviving mutant's diff is written to ``mutation/survivors.txt`` and the counts to
``mutation/results.json``; the README lists the survivors with the reason each survives.

    python mutation/run_mutmut.py [--count 3] [--paths verify/model.py,...] [--resume]

A long run (about an hour per thousand mutants on one core); not part of ``make test``.
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
FORMULA_MODULES = ["verify/model.py", "verify/losses.py", "verify/gradients.py", "verify/dynamics.py",
                   "verify/convergence.py", "verify/trust_region.py"]


def mutmut(*args, capture=True):
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=WORK, capture_output=capture, text=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=3, help="configurations per claim in the campaign run per mutant")
    p.add_argument("--paths", default=",".join(FORMULA_MODULES), help="comma-separated files to mutate")
    p.add_argument("--resume", action="store_true", help="keep .mutation/ and mutmut's cache (continue a run)")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be >= 1")
    if not args.resume or not os.path.isdir(WORK):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        for sub in ("verify", "theory"):
            shutil.copytree(os.path.join(ROOT, sub), os.path.join(WORK, sub),
                            ignore=shutil.ignore_patterns("__pycache__"))
    runner = f"{sys.executable} -m verify --fail-fast --count {args.count} --seed 0 --blas-threads 1"
    start = time.time()
    # --tests-dir only has to exist: the runner (the campaign) is the test command
    run = mutmut("run", "--paths-to-mutate", args.paths, "--runner", runner, "--tests-dir", "verify",
                 "--disable-mutation-types", "fstring",
                 "--simple-output", "--no-progress", capture=False)
    if run.returncode & 1:
        print("mutmut reported a fatal error (does the unmutated campaign pass?)", file=sys.stderr)
        return 1
    results = mutmut("results").stdout
    groups: dict[str, list[int]] = {}
    current = None
    for line in results.splitlines():
        header = re.match(r"^(Survived|Timed out|Suspicious|Untested|Killed)", line.strip())
        if header:
            current = header.group(1)
            continue
        if current:
            groups.setdefault(current, []).extend(int(x) for x in re.findall(r"\b(\d+)\b", line.split("----")[-1])
                                                  if "(" not in line)
    survivors = groups.get("Survived", [])
    with open(os.path.join(ROOT, "mutation", "survivors.txt"), "w") as fh:
        for mutant_id in survivors:
            fh.write(f"=== mutant {mutant_id}\n{mutmut('show', str(mutant_id)).stdout}\n")
    summary = {"count_per_claim": args.count, "paths": args.paths.split(","), "seconds": round(time.time() - start),
               "results": {k: len(v) for k, v in groups.items()}, "survivors": survivors,
               "mutmut_results": results}
    with open(os.path.join(ROOT, "mutation", "results.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    print(json.dumps(summary["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
