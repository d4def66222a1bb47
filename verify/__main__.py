"""`python -m verify` / `deq-verify`: run the verification campaign and print the evidence.

Exit status 0 when every selected claim holds on every configuration, 1 otherwise, 130 on Ctrl-C,
143 on SIGTERM and 129 on SIGHUP (each after stopping the workers and printing and writing the
partial report), 2 on bad arguments (one line on stderr, before any work), when a Dask cluster is
lost during the run (one line naming the address; the partial report is written) or when a
report could not be written where asked (it is then saved elsewhere and the place named).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import traceback

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .campaign import (
    MAIN_TIERS,
    ClaimReport,
    digest,
    format_digest,
    format_ratio,
    format_slack,
    iter_configurations,
    markdown_table,
    report_dict,
    reproduce_command,
    run_claim,
    select_claims,
    sharpness_section,
    write_atomically,
)
from .catalogue import symbolic_label
from .cli_checks import check_distinct_outputs, check_output_path, write_reports
from .config_schema import replay_config
from .executors import make_backend, run_parallel
from .results import condition
from .results import outcome as make_outcome

#: largest --count: the report keeps one record (about 0.5 KB) per configuration
COUNT_LIMIT = 1_000_000
#: largest --workers (local processes)
WORKERS_LIMIT = 1024
#: memory of one local worker process, measured (Linux, Python 3.11, NumPy 2.4, SciPy 1.17, SymPy
#: 1.14): after importing the project and checking two configurations of every claim, its
#: proportional set size is 127 MiB (resident 165 MiB, of which 111 MiB private)
WORKER_FOOTPRINT_BYTES = 128 * 2**20

PROVENANCE_NOTE = (
    "Theorems are this suite's own formalisation (docs/theory.md); only the paper's abstract "
    "is available to the project."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line naming the argument and the rule, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def usage_error(message: str) -> int:
    """Print one error line on stderr, as the argument parser does; the caller returns 2."""
    print(f"deq-verify: error: {message}", file=sys.stderr)
    return 2


def parse_args(argv):
    p = _Parser(prog="deq-verify", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="few configurations per claim (default; about a minute)")
    mode.add_argument("--thorough", action="store_true", help="many configurations per claim (long)")
    p.add_argument("--seed", type=int, help="master seed >= 0 (default 0): same seed, same report")
    p.add_argument(
        "--only",
        action="append",
        metavar="CLAIM",
        help="run only this claim (repeatable, or comma-separated); see --list",
    )
    p.add_argument(
        "--replay", metavar="JSON", help="with one --only: check this single configuration (as printed for a failure)"
    )
    p.add_argument("--count", type=int, help="configurations per claim (overrides --quick/--thorough)")
    p.add_argument("--json", metavar="PATH", help="write the machine-readable report (atomically)")
    p.add_argument("--markdown", metavar="PATH", help="write the summary table as Markdown")
    p.add_argument("--list", action="store_true", help="list the claims and exit")
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first configuration that fails (exit 1; for mutation testing and bisection)",
    )
    p.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        metavar="N",
        help="BLAS threads (default 1: the campaign's matrices are small, and NumPy's and SciPy's "
        "two OpenBLAS pools spin against each other on a busy machine)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="check configurations in N local processes (default: the number of cores, or "
        "$DEQ_VERIFY_WORKERS; 1 runs them one after the other in this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="check configurations on the workers of a running Dask cluster (e.g. tcp://host:8786; "
        "see the README); the report is the same as on one core",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="the scale tier: widths 2-1024, n up to 1e5, m_y up to 10 and the full 8x8 digits "
        "(measured: 183 s on 2 cores while another job used one, docs/scale.md; "
        "with --thorough, 4x the configurations)",
    )
    p.add_argument(
        "--idx",
        nargs=2,
        metavar=("IMAGES", "LABELS"),
        help="with --scale: also check the claims on these MNIST-format IDX files (never downloaded)",
    )
    p.add_argument(
        "--tiers",
        metavar="TIER[,TIER]",
        help="the tiers of the default run: default (random configurations), slice (one configuration "
        "of each scale claim at m >= 256), certify (the quick certificate plan with its canaries); "
        "default: all three, or $DEQ_VERIFY_TIERS",
    )
    p.add_argument(
        "--certify",
        action="store_true",
        help="prove the finite claims at fixed instances in ball arithmetic (python-flint), with near-tight "
        "instances and false canaries; uses --seed, --only, --quick, --json, --markdown, --list, "
        "--replay ENTRY, --fail-fast",
    )
    args = p.parse_args(argv)
    if args.certify:  # its own rules: verify/certify/cli.py
        from .certify.cli import check_certify_args

        return check_certify_args(p, args)
    if args.count is not None and not 1 <= args.count <= COUNT_LIMIT:
        p.error(
            f"--count must lie in [1, {COUNT_LIMIT}] (the report keeps one record per configuration); got {args.count}"
        )
    if args.workers is not None and not 1 <= args.workers <= WORKERS_LIMIT:
        p.error(f"--workers must lie in [1, {WORKERS_LIMIT}]; got {args.workers}")
    if args.scheduler is not None:
        from .executors import check_scheduler_address

        try:
            check_scheduler_address(args.scheduler)
        except ValueError as err:
            p.error(f"--scheduler: {err}")
    if args.scheduler is not None and args.workers is not None:
        p.error("--workers does not apply with --scheduler (the cluster's workers check the configurations)")
    if args.idx is not None:
        if not args.scale:
            p.error("--idx needs --scale (the real-data configurations are part of the scale tier)")
        for role, path in zip(("IMAGES", "LABELS"), args.idx):
            if not os.path.isfile(path):
                p.error(f"--idx {role}: {path!r} is not a readable file (this suite never downloads data)")
    if args.tiers is not None:
        if args.scale or args.certify:
            p.error("--tiers applies to the default run only (not with --scale or --certify)")
        args.tiers = parse_tiers(p, "--tiers", args.tiers)
    elif os.environ.get("DEQ_VERIFY_TIERS", "").strip() and not (args.scale or args.certify):
        args.tiers = parse_tiers(p, "DEQ_VERIFY_TIERS", os.environ["DEQ_VERIFY_TIERS"])
    if args.blas_threads < 1:
        p.error(f"--blas-threads must be >= 1; got {args.blas_threads}")
    if args.seed is not None and args.seed < 0:
        p.error(f"--seed must be >= 0 (a numpy SeedSequence entropy); got {args.seed}")
    if args.only is not None:
        names = [c.strip() for item in args.only for c in item.split(",")]
        if "" in names:
            p.error(f"--only: empty claim name in {','.join(args.only)!r} (give CLAIM[,CLAIM...]; see --list)")
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated:
            p.error(f"--only: claim(s) {repeated} named more than once")
        args.only = names
    if args.replay is not None:
        if not args.only or len(args.only) != 1:
            p.error("--replay needs exactly one --only CLAIM")
        for option, given in (
            ("--count", args.count is not None),
            ("--seed", args.seed is not None),
            ("--thorough", args.thorough),
            ("--workers", args.workers is not None),
            ("--scheduler", args.scheduler is not None),
        ):
            if given:
                p.error(f"{option} does not apply to --replay, which checks the one configuration given")
    if args.seed is None:
        args.seed = 0
    if args.workers is None and args.scheduler is None:
        args.workers = default_workers(p)
    if args.workers is not None and args.workers > 1 and args.replay is None and not args.list and not args.certify:
        warning = workers_warning(args.workers)
        if warning:
            print(f"deq-verify: warning: {warning}", file=sys.stderr)
    return args


def parse_tiers(p, source: str, text: str) -> tuple[str, ...]:
    """Distinct tier names among MAIN_TIERS, comma-separated, in the report's order."""
    tiers = [t.strip() for t in text.split(",")]
    if not tiers or any(t not in MAIN_TIERS for t in tiers) or len(set(tiers)) != len(tiers):
        p.error(f"{source}: give distinct tiers among {','.join(MAIN_TIERS)}; got {text!r}")
    return tuple(t for t in MAIN_TIERS if t in tiers)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (MemAvailable of /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def workers_warning(workers: int) -> str | None:
    """What is wrong with ``workers`` local processes on this machine, in one line, or None: more
    than the usable cores (they only take turns), or more than the available memory holds at
    WORKER_FOOTPRINT_BYTES each (the machine would swap, or the kernel kill them)."""
    from .executors import available_cores

    cores, memory = available_cores(), available_memory()
    problems = []
    if workers > cores:
        problems.append(f"exceeds the {cores} usable cores")
    if memory is not None and workers * WORKER_FOOTPRINT_BYTES > memory:
        problems.append(
            f"needs about {workers * WORKER_FOOTPRINT_BYTES / 2**30:.3g} GiB at "
            f"{WORKER_FOOTPRINT_BYTES // 2**20} MiB per worker (measured), more than the "
            f"{memory / 2**30:.3g} GiB available"
        )
    if not problems:
        return None
    return f"--workers {workers} {' and '.join(problems)}; the run will be slower, not faster (or be killed)"


def default_workers(p) -> int:
    """$DEQ_VERIFY_WORKERS if set (the test suite sets 1: its tests patch claims in this process),
    else the cores this process may use."""
    value = os.environ.get("DEQ_VERIFY_WORKERS", "").strip()
    if not value:
        from .executors import available_cores

        return available_cores()
    # ASCII digits only: str.isdigit() also accepts '²' (and int() then raises)
    if not re.fullmatch(r"[0-9]+", value) or not 1 <= int(value) <= WORKERS_LIMIT:
        p.error(f"DEQ_VERIFY_WORKERS must be an integer in [1, {WORKERS_LIMIT}]; got {value!r}")
    return int(value)


def summary_table(reports: list[ClaimReport], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col, kw in [
        ("claim", {}),
        ("tier", {}),
        ("holds", {}),
        ("tried", {"justify": "right"}),
        ("passed", {"justify": "right"}),
        ("max err/tol", {"justify": "right"}),
        ("min slack", {"justify": "right"}),
        ("symbolic", {}),
        ("provenance", {}),
        ("time (s)", {"justify": "right"}),
    ]:
        table.add_column(col, **kw)
    for r in reports:
        if r.holds and r.complete:
            holds = "[green]yes[/]"
        elif not r.complete and r.passed == r.tried:
            holds = "[yellow]partial[/]"
        else:
            holds = "[red]NO[/]"
        symbolic = symbolic_label(r.symbolic)
        table.add_row(
            r.id,
            r.tier,
            holds,
            str(r.tried),
            str(r.passed),
            format_ratio(r),
            format_slack(r),
            symbolic,
            r.provenance,
            f"{r.seconds:.1f}",
        )
    return table


def _write_reports(args, result: dict, reports: list[ClaimReport]) -> bool:
    """Write the requested reports; a write that fails (disk full, a path that changed since the
    check) saves the report elsewhere and says where. Returns True if all went where asked."""
    outputs = [
        ("--json", args.json, lambda: json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n", ".json"),
        ("--markdown", args.markdown, lambda: markdown_table(reports), ".md"),
    ]
    return write_reports(outputs, write_atomically, usage_error)


def _replay(args, claim, console) -> int:
    """Check the one configuration given with --replay (validated first: exit 2 on bad input)."""
    try:
        config = replay_config(args.replay, claim)
    except ValueError as err:
        return usage_error(f"--replay: {err}")
    report = ClaimReport(claim.id, claim.statement, claim.provenance, claim.symbolic, claim.tier)
    try:
        outcome = claim.check(config)
    except KeyboardInterrupt as err:
        console.print(f"{claim.id}: INTERRUPTED")
        return interrupted_status(err)
    except Exception as err:  # noqa: BLE001 - a crash of the check reproduces a campaign failure
        console.print(traceback.format_exc(limit=3), soft_wrap=True)
        outcome = make_outcome([condition(f"the check runs ({type(err).__name__}: {err})", False)])
    report.add(config, outcome)
    report.complete = True
    console.print(f"{claim.id}: {'holds' if outcome.passed else 'FAILS'}; {outcome.summary()}", soft_wrap=True)
    for meas in outcome.measurements:
        console.print(
            f"  {'ok ' if meas.holds else 'BAD'} {meas.kind:<10} {meas.name}: value {meas.value:.6g}, "
            f"tolerance {meas.tolerance:.3g}",
            soft_wrap=True,
        )
    written = _write_reports(
        args, report_dict([report], seed=None, mode="replay", interrupted=False, scale=args.scale), [report]
    )
    return 1 if not outcome.passed else (0 if written else 2)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, a CI cancel, a batch scheduler, a closed terminal), raised
    where the run is, so that it ends as on Ctrl-C: workers stopped, partial report written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, _frame):
    # a second signal (an impatient `kill`, a CI runner's repeat) must not cut short the clean-up
    # the first one starts (workers stopped, report written): further ones wait until main returns
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Terminated(signum)


def interrupted_status(err: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (err.signum if isinstance(err, Terminated) else signal.SIGINT)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from threadpoolctl import threadpool_limits

    handled = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {}
    if threading_is_main():
        previous = {sig: signal.signal(sig, _raise_terminated) for sig in handled}
    try:
        with threadpool_limits(limits=args.blas_threads):
            return _main(args)
    except Terminated as err:  # outside the run (connecting, writing): nothing partial to report
        print(f"deq-verify: stopped by {signal.Signals(err.signum).name}", file=sys.stderr)
        return interrupted_status(err)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run_in_parallel(args, plan, reports, backend, progress, task):
    """The configurations on the local pool or the Dask cluster (verify/executors.py). Returns
    (stopped by --fail-fast, the error that ended the run early or None); Ctrl-C propagates.
    Outstanding work is cancelled whatever ends the run."""
    try:
        stopped = run_parallel(
            plan,
            reports,
            args.seed,
            backend,
            advance=lambda n: progress.advance(task, n),
            on_claim=lambda claim_id: progress.update(task, description=claim_id),
            fail_fast=args.fail_fast,
        )
        return stopped, None
    except Exception as err:  # noqa: BLE001 - not a claim's failure (those are results): keep the partial report
        return False, err
    finally:
        backend.close(cancel=True)


def _main(args) -> int:
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: wide enough that the table never wraps
        console = Console(width=170)
    if args.certify:  # a separate report: certified verdicts (verify/certify/)
        from .certify.cli import run_cli

        return run_cli(console, args)
    tiers = ("scale",) if args.scale else (("default",) if args.replay is not None else args.tiers or MAIN_TIERS)
    if args.list:
        for c in select_claims(None, tiers=tiers):
            tier = "" if c.tier == "default" else f" [{c.tier}]"
            console.print(f"[bold]{c.id}[/]{tier}  ({c.provenance}; symbolic: {c.symbolic})\n    {c.statement}")
        return 0
    try:
        claims = select_claims(args.only, tiers=tiers)
    except ValueError as err:
        known = {c.id for c in select_claims(None, tiers=tiers)}
        hints = [f"{c} -> {c.upper()}" for c in args.only or () if c not in known and c.upper() in known]
        return usage_error(str(err) + (f" (claim ids are upper case: {', '.join(hints)})" if hints else ""))
    if args.idx is not None:  # the data checked in full before any work: exit 2 naming the file and the rule
        from .scale import set_idx_files

        try:
            set_idx_files(*args.idx)
        except (ValueError, OSError) as err:
            return usage_error(f"--idx: {err}")
    # Every output is checked before the first configuration: a bad path must not cost the run.
    try:
        for option in ("--json", "--markdown"):
            if getattr(args, option[2:]) is not None:
                check_output_path(option, getattr(args, option[2:]))
        check_distinct_outputs({o: getattr(args, o[2:]) for o in ("--json", "--markdown") if getattr(args, o[2:])})
    except ValueError as err:
        return usage_error(str(err))
    mode = ("thorough" if args.thorough else "quick") + (" scale" if args.scale else "")
    if args.replay is not None:
        return _replay(args, claims[0], console)

    # configurations are drawn lazily, claim by claim, as they are checked
    # --count sets the number of random configurations of the default and scale tiers; the slice
    # and the certificate plan have fixed sizes
    plan = [
        (
            claim,
            (args.count or (claim.thorough if args.thorough else claim.quick))
            if claim.tier in ("default", "scale")
            else claim.quick,
        )
        for claim in claims
    ]
    reports = [ClaimReport(c.id, c.statement, c.provenance, c.symbolic, c.tier) for c, _ in plan]
    interrupted = stopped = False
    interrupt_status = 130
    backend_error = None
    total = sum(count + len(claim.fixed) for claim, count in plan)
    backend = None
    if args.scheduler is not None or args.workers > 1:
        try:  # before the progress bar: a cluster that cannot be reached is a usage error
            backend = make_backend(args.workers, args.scheduler, args.blas_threads)
        except ConnectionError as err:
            return usage_error(f"--scheduler: {err}")
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=total)
        try:
            if backend is not None:
                stopped, backend_error = _run_in_parallel(args, plan, reports, backend, progress, task)
            else:
                for (claim, count), report in zip(plan, reports):
                    progress.update(task, description=claim.id)
                    run_claim(
                        claim,
                        iter_configurations(claim, args.seed, count),
                        report,
                        advance=lambda: progress.advance(task),
                        fail_fast=args.fail_fast,
                    )
                    if args.fail_fast and report.failures:
                        stopped = True
                        break
        except KeyboardInterrupt as err:
            interrupted, interrupt_status = True, interrupted_status(err)
    if backend_error is not None:  # the cluster went away, say: what was checked is reported, as on Ctrl-C
        interrupted = True
        where = f"--scheduler {args.scheduler}: " if args.scheduler is not None else ""
        usage_error(
            f"{where}the parallel run stopped ({type(backend_error).__name__}: "
            f"{' '.join(str(backend_error).split())}); the partial report follows"
            + (f" and is written to {args.json}" if args.json else "")
        )
    wall_time = time.perf_counter() - started
    title = (
        f"deq-verify ({mode}, seed {args.seed}){' — INTERRUPTED, partial' if interrupted else ''}"
        f"{' — stopped at the first failure (--fail-fast)' if stopped else ''}"
    )
    console.print(summary_table(reports, title))
    console.print(PROVENANCE_NOTE)
    for r in reports:
        summary = digest(r)
        if summary:
            console.print(
                f"[bold]{r.id}[/]{'' if r.tier in ('default', 'scale') else ' [' + r.tier + ']'} "
                f"{format_digest(summary)}",
                soft_wrap=True,
            )
    sharp = sharpness_section(reports)
    if sharp:
        console.print("[bold]Sharpness[/] (observed / bound at the tightest instances; 1 = the bound is attained):")
        for row in sharp:
            found = f", search {row['search_ratio']:.10g}" if row["search_ratio"] is not None else ""
            note = f" -- {row['note']}" if row["note"] else ""
            console.print(f"  {row['claim']} {row['instance']}: {row['ratio']:.10g}{found}{note}", soft_wrap=True)
    for r in reports:
        for f in r.failures[:5]:
            tier = "" if r.tier in ("default", "scale") else f" [{r.tier}]"
            console.print(
                f"[red]FAILED[/] {r.id}{tier}: {f.get('detail', '')}\n  reproduce: {reproduce_command(r, f['config'])}",
                soft_wrap=True,
            )
            if "traceback" in f:
                console.print(f["traceback"], soft_wrap=True)
    console.print(f"wall time {wall_time:.1f} s (the table's times are each claim's compute time, summed over workers)")
    result = report_dict(
        reports, seed=args.seed, mode=mode, interrupted=interrupted, scale=args.scale, wall_time=wall_time
    )
    written = _write_reports(args, result, reports)
    if backend_error is not None:
        return 2
    if interrupted:
        return interrupt_status
    if not result["all_hold"]:
        return 1
    return 0 if written else 2


if __name__ == "__main__":
    sys.exit(main())
