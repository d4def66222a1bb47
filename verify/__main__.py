"""`python -m verify` / `deq-verify`: run the verification campaign and print the evidence.

Exit status 0 when every selected claim holds on every configuration, 1 otherwise, 130 on Ctrl-C
(after printing the partial table), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .campaign import (ClaimReport, claim_configurations, markdown_table, report_dict, run_claim,
                       select_claims, write_atomically)
from .claims import CLAIMS

PROVENANCE_NOTE = ("Theorems are this suite's own formalisation (THEORY.md); only the paper's abstract "
                   "is available to the project.")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="deq-verify", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="few configurations per claim (default; about a minute)")
    mode.add_argument("--thorough", action="store_true", help="many configurations per claim (long)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0): same seed, same report")
    p.add_argument("--only", action="append", metavar="CLAIM",
                   help="run only this claim (repeatable, or comma-separated); see --list")
    p.add_argument("--replay", metavar="JSON", help="with one --only: check this single configuration (as printed for a failure)")
    p.add_argument("--count", type=int, help="configurations per claim (overrides --quick/--thorough)")
    p.add_argument("--json", metavar="PATH", help="write the machine-readable report (atomically)")
    p.add_argument("--markdown", metavar="PATH", help="write the summary table as Markdown")
    p.add_argument("--list", action="store_true", help="list the claims and exit")
    p.add_argument("--certify", action="store_true",
                   help="prove the finite claims at fixed instances in ball arithmetic (python-flint); uses --seed, --json")
    args = p.parse_args(argv)
    if args.count is not None and args.count < 1:
        p.error("--count must be >= 1")
    if args.only:
        args.only = [c.strip() for item in args.only for c in item.split(",") if c.strip()]
    if args.replay and (not args.only or len(args.only) != 1):
        p.error("--replay needs exactly one --only CLAIM")
    return args


def summary_table(reports: list[ClaimReport], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col, kw in [("claim", {}), ("holds", {}), ("tried", {"justify": "right"}), ("passed", {"justify": "right"}),
                    ("worst margin", {"justify": "right"}), ("provenance", {}), ("symbolic", {}),
                    ("time (s)", {"justify": "right"})]:
        table.add_column(col, **kw)
    for r in reports:
        holds = "[green]yes[/]" if r.holds else ("[yellow]partial[/]" if not r.complete and r.passed == r.tried else "[red]NO[/]")
        margin = "n/a" if r.worst_margin is None else f"{r.worst_margin:.3g}"
        table.add_row(r.id, holds, str(r.tried), str(r.passed), margin, r.provenance, r.symbolic, f"{r.seconds:.1f}")
    return table


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: wide enough that the table never wraps
        console = Console(width=170)
    if args.certify:  # a separate report: certified verdicts (verify/certify.py)
        from .certify import run_cli
        return run_cli(console, seed=args.seed, json_path=args.json)
    if args.list:
        for c in CLAIMS:
            console.print(f"[bold]{c.id}[/]  ({c.provenance}; symbolic: {c.symbolic})\n    {c.statement}")
        return 0
    try:
        claims = select_claims(args.only)
    except ValueError as err:
        console.print(f"[red]error:[/] {err}")
        return 2
    mode = "thorough" if args.thorough else "quick"
    if args.replay:
        config = json.loads(args.replay)
        outcome = claims[0].check(config)
        console.print(f"{claims[0].id}: {'holds' if outcome.passed else 'FAILS'}; margin {outcome.margin:.6g}; {outcome.detail}")
        return 0 if outcome.passed else 1

    plan = []
    for claim in claims:
        count = args.count or (claim.thorough if args.thorough else claim.quick)
        plan.append((claim, claim_configurations(claim, args.seed, count)))
    reports = [ClaimReport(c.id, c.statement, c.provenance, c.symbolic) for c, _ in plan]
    interrupted = False
    total = sum(len(cfgs) for _, cfgs in plan)
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("starting", total=total)
        try:
            for (claim, configs), report in zip(plan, reports):
                progress.update(task, description=claim.id)
                run_claim(claim, configs, report, advance=lambda: progress.advance(task))
        except KeyboardInterrupt:
            interrupted = True
    title = f"deq-verify ({mode}, seed {args.seed}){' — INTERRUPTED, partial' if interrupted else ''}"
    console.print(summary_table(reports, title))
    console.print(PROVENANCE_NOTE)
    for r in reports:
        for f in r.failures[:5]:
            config = json.dumps(f["config"], sort_keys=True)
            console.print(f"[red]FAILED[/] {r.id}: {f.get('detail', '')}\n  reproduce: python -m verify --only {r.id} "
                          f"--replay '{config}'", soft_wrap=True)
            if "traceback" in f:
                console.print(f["traceback"], soft_wrap=True)
    result = report_dict(reports, seed=args.seed, mode=mode, interrupted=interrupted)
    if args.json:
        write_atomically(args.json, json.dumps(result, indent=2, sort_keys=True, default=float) + "\n")
    if args.markdown:
        write_atomically(args.markdown, markdown_table(reports))
    if interrupted:
        return 130
    return 0 if result["all_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
