"""`python -m verify --certify`: run the plan, print the table, write the reports.

Exit status: 0 iff every entry's verdict is one it expects (true claims certified or consistent,
canaries violated or not certified, exact equalities not certified); 1 otherwise; 130 on Ctrl-C
(after the partial table and reports); 2 on bad arguments (one line on stderr, before any work)
or a report that could not be written where asked (saved elsewhere and the place named).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from contextlib import nullcontext

from ..campaign import json_safe, write_atomically
from ..cli_checks import check_distinct_outputs, check_output_path, write_reports
from .plan import HEADLINE, check_config, entries, judge, run_entry
from .proof import CERTIFIED, CLAIMS, CONSISTENT, EQUATION_BITS, NOT_CERTIFIED, PRECISIONS, VIOLATED

#: options of the campaign that do not apply to --certify (refused, exit 2)
NOT_APPLICABLE = (
    ("--count", "count", "the plan fixes its entries"),
    ("--workers", "workers", "certificates run one after the other in this process"),
    ("--scheduler", "scheduler", "certificates run in this process"),
    ("--thorough", "thorough", "the full plan is the default; --quick runs the campaign's subset"),
    ("--idx", "idx", "certificates use no data files"),
)


def check_certify_args(parser, args):
    """The argument rules of --certify (called by verify.__main__.parse_args; errors exit 2 with
    one line on stderr). --seed, --only, --quick, --json, --markdown, --list, --replay (one plan
    entry as printed for a failure), --fail-fast and --blas-threads apply; the rest is refused."""
    if args.scale:  # the campaign's own wording for this pair
        parser.error("--certify does not apply with --scale (certificates are for the default tier's fixed instances)")
    for option, attr, why in NOT_APPLICABLE:
        value = getattr(args, attr, None)
        if value not in (None, False):
            parser.error(f"{option} does not apply to --certify ({why})")
    if args.blas_threads < 1:
        parser.error(f"--blas-threads must be >= 1; got {args.blas_threads}")
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed must be >= 0 (a numpy SeedSequence entropy); got {args.seed}")
    if args.only is not None:
        names = [c.strip() for item in args.only for c in item.split(",")]
        if "" in names:
            parser.error(f"--only: empty claim name in {','.join(args.only)!r} (give CLAIM[,CLAIM...])")
        unknown = [c for c in names if c not in CLAIMS]
        if unknown:
            parser.error(f"--only: {unknown} have no certificate; certified claims: {list(CLAIMS)}")
        if len(set(names)) != len(names):
            parser.error(f"--only: claim(s) {sorted({c for c in names if names.count(c) > 1})} named more than once")
        args.only = names
    if args.replay is not None:
        for option, given in (
            ("--seed", args.seed is not None),
            ("--only", args.only is not None),
            ("--quick", args.quick),
            ("--list", args.list),
        ):
            if given:
                parser.error(f"{option} does not apply to --certify --replay, which runs the one entry given")
        try:
            args.replay_config = check_config(json.loads(args.replay))
        except json.JSONDecodeError as err:
            parser.error(f"--replay: not JSON ({err})")
        except ValueError as err:
            parser.error(f"--replay: {err}")
    if args.seed is None:
        args.seed = 0
    return args


def _usage_error(message: str) -> int:
    print(f"deq-verify: error: {message}", file=sys.stderr)
    return 2


def describe(config: dict) -> str:
    keys = ("instance", "seed", "m", "m_y", "n", "gamma")
    parts = [
        f"{k}={config[k]:.6g}" if isinstance(config[k], float) else f"{k}={config[k]}" for k in keys if k in config
    ]
    return ", ".join(parts)


def _k_text(cert) -> str:
    k = cert.consistent_bits if cert is not None else None
    return "-" if k is None else f"2^-{k}"


def _headline(config, cert, *, named: bool = True) -> str:
    if cert is None:
        return "-"
    head = HEADLINE[config["claim"]]
    enc = cert.enclosures.get(head)
    if enc is None:
        return "-"
    return (f"{head} = " if named else "") + f"{enc.mid:.10g} +/- {enc.rad:.1e}"


def _expected(config) -> str:
    short = {NOT_CERTIFIED: "not cert."}
    return "/".join(short.get(v, v) for v in config["expect"])


def _records(results) -> list[dict]:
    out = []
    for config, cert, ok, error, seconds in results:
        out.append(
            {
                "config": config,
                "as_expected": ok,
                "seconds": seconds,
                "error": error,
                "certificate": None if cert is None else cert.as_dict(),
            }
        )
    return out


def report_dict(results, *, seed, mode, interrupted, wall_time) -> dict:
    return json_safe(
        {
            "suite": "deq-verify",
            "mode": mode,
            "seed": seed,
            "interrupted": interrupted,
            "all_as_expected": bool(results) and all(r[2] for r in results) and not interrupted,
            "precisions": list(PRECISIONS),
            "equation_bits": EQUATION_BITS,
            "wall_time": wall_time,
            "entries": _records(results),
        }
    )


def markdown_table(results) -> str:
    lines = [
        "| # | claim | kind | label | instance | verdict | expected | as expected | bits | consistent to | "
        "headline | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, (config, cert, ok, error, seconds) in enumerate(results, 1):
        verdict = cert.status if cert is not None else f"error: {error}"
        cells = [
            str(i),
            config["claim"],
            config["kind"],
            config.get("label", ""),
            describe(config),
            verdict,
            " or ".join(config["expect"]),
            "yes" if ok else "NO",
            str(cert.bits if cert else "-"),
            _k_text(cert),
            _headline(config, cert),
            f"{seconds:.2f}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _table(results, title):
    from rich.table import Table

    table = Table(title=title)
    for col, kw in [
        ("#", {"justify": "right"}),
        ("claim", {}),
        ("kind", {}),
        ("label", {}),
        ("verdict", {}),
        ("expected", {}),
        ("bits", {"justify": "right"}),
        ("consistent to", {"justify": "right"}),
        ("headline (below)", {}),
        ("time (s)", {"justify": "right"}),
    ]:
        table.add_column(col, **kw)
    colour = {CERTIFIED: "green", CONSISTENT: "cyan", VIOLATED: "red", NOT_CERTIFIED: "yellow"}
    for i, (config, cert, ok, error, seconds) in enumerate(results, 1):
        verdict = f"[{colour[cert.status]}]{cert.status}[/]" if cert is not None else "[red]error[/]"
        expected = _expected(config) + ("" if ok else " [red bold]NO[/]")
        table.add_row(
            str(i),
            config["claim"],
            config["kind"],
            config.get("label", "")[:36],
            verdict,
            expected,
            str(cert.bits) if cert else "-",
            _k_text(cert),
            _headline(config, cert, named=False),
            f"{seconds:.2f}",
        )
    return table


def _write_reports(args, report: dict, results) -> bool:
    outputs = [
        ("--json", args.json, lambda: json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n", ".json"),
        ("--markdown", args.markdown, lambda: markdown_table(results), ".md"),
    ]
    return write_reports(outputs, write_atomically, _usage_error)


def run_one(config):
    """(config, certificate or None, verdict as expected, error text or None, seconds) for one entry."""
    started = time.perf_counter()
    try:
        cert = run_entry(config)
    except Exception as err:  # noqa: BLE001 - a crash is an unexpected result, reported with its entry
        return (
            config,
            None,
            False,
            f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=4)}",
            time.perf_counter() - started,
        )
    return config, cert, judge(config, cert), None, time.perf_counter() - started


def run_cli(console, args) -> int:
    """Run the plan (or the one --replay entry), print the table, write the reports."""
    try:
        for option in ("--json", "--markdown"):
            if getattr(args, option[2:]) is not None:
                check_output_path(option, getattr(args, option[2:]))
        check_distinct_outputs({o: getattr(args, o[2:]) for o in ("--json", "--markdown") if getattr(args, o[2:])})
    except ValueError as err:
        return _usage_error(str(err))
    replay = getattr(args, "replay_config", None)
    mode = "certify replay" if replay is not None else ("certify quick" if args.quick else "certify")
    started = time.perf_counter()
    results, interrupted, stopped = [], False, False
    try:
        with console.status("planning", spinner="dots") if console.is_terminal else nullcontext() as status:
            plan = [replay] if replay is not None else entries(args.seed, quick=args.quick)
            if args.only:
                plan = [c for c in plan if c["claim"] in args.only]
            if args.list:
                for i, config in enumerate(plan, 1):
                    console.print(f"{i:3d} {json.dumps(config, sort_keys=True)}", soft_wrap=True)
                return 0
            for i, config in enumerate(plan, 1):
                if status is not None:
                    status.update(f"{config['claim']} {config['kind']} ({i}/{len(plan)})")
                results.append(run_one(config))
                if args.fail_fast and not results[-1][2]:
                    stopped = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    wall_time = time.perf_counter() - started
    title = (
        f"deq-verify --certify ({mode}, seed {args.seed}; ball arithmetic, python-flint)"
        + (" — INTERRUPTED, partial" if interrupted else "")
        + (" — stopped at the first failure" if stopped else "")
    )
    console.print(_table(results, title))
    console.print("headline: " + "; ".join(f"{claim} {head}" for claim, head in HEADLINE.items()), soft_wrap=True)
    console.print(
        "certified = every item proved for this instance (not the theorem); consistent = every "
        "inequality proved, every equation's residual ball holds 0 with |residual| <= 2^-k max|term|, "
        f"k >= {EQUATION_BITS} (balls cannot prove an equation); canaries are false statements and must "
        "come back violated or not certified; equalities must come back not certified.",
        soft_wrap=True,
    )
    for config, cert, ok, error, _ in results:
        if not ok:
            why = error if cert is None else f"{cert.status}: {cert.reason}"
            console.print(
                f"[red]UNEXPECTED[/] {config['claim']} {config['kind']} ({config.get('label', '')}); "
                f"expected {' or '.join(config['expect'])}; got {why}\n  reproduce: python -m verify "
                f"--certify --replay '{json.dumps(config, sort_keys=True)}'",
                soft_wrap=True,
            )
    unexpected = sum(not r[2] for r in results)
    console.print(f"{len(results)} entries, {unexpected} not as expected; wall time {wall_time:.1f} s")
    written = _write_reports(
        args, report_dict(results, seed=args.seed, mode=mode, interrupted=interrupted, wall_time=wall_time), results
    )
    if interrupted:
        return 130
    if unexpected or not results:
        return 1
    return 0 if written else 2
