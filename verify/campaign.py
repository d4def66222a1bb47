"""The verification campaign: every claim on many seeded random configurations.

Each claim's configurations are drawn from its own stream, seeded by the master seed, the tier
and the claim's id (:func:`verify.claims.spec.configuration_stream`): the same seed gives the same
configurations and the same report (timings aside), whatever subset ``--only`` selects and
whatever claims are added.
"""

from __future__ import annotations

import itertools
import os
import stat
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from .claims import CLAIMS_BY_ID, SCALE_CLAIMS_BY_ID, Claim, configuration_stream
from .results import EQUALITY, INEQUALITY, Outcome


@dataclass
class ClaimReport:
    """Per-claim results. ``worst_ratio``: the largest error / tolerance of any equality
    measurement (holds iff <= 1); ``worst_slack``: the smallest relative slack X/Y - 1 of any
    inequality (holds iff >= minus its rounding allowance); ``symbolic``: where the derivation
    lives and whether it is exact or a proof on paper."""

    id: str
    statement: str
    provenance: str
    symbolic: str
    tier: str = "default"
    tried: int = 0
    passed: int = 0
    worst_ratio: float | None = None
    worst_ratio_name: str = ""
    worst_slack: float | None = None
    worst_slack_name: str = ""
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    records: list = field(default_factory=list)  # every configuration: config, passed, measurements, detail, info
    complete: bool = False

    @property
    def holds(self) -> bool:
        # an interrupted claim (complete is False) has not been shown to hold, however many passed
        return self.complete and self.tried > 0 and self.passed == self.tried

    def add(self, config: dict, outcome: Outcome) -> None:
        self.tried += 1
        self.passed += int(outcome.passed)
        self.records.append(
            {
                "config": config,
                "passed": bool(outcome.passed),
                "detail": outcome.summary(),
                "measurements": [m.as_dict() for m in outcome.measurements],
                "info": outcome.info,
            }
        )
        for meas in outcome.measurements:
            if meas.kind == EQUALITY and (self.worst_ratio is None or meas.ratio > self.worst_ratio):
                self.worst_ratio, self.worst_ratio_name = float(meas.ratio), meas.name
            if meas.kind == INEQUALITY and (self.worst_slack is None or meas.value < self.worst_slack):
                self.worst_slack, self.worst_slack_name = float(meas.value), meas.name
        if not outcome.passed:
            self.failures.append({"config": config, "detail": outcome.summary(), "failing": outcome.failing})

    def add_crash(self, config: dict, err: BaseException) -> None:
        """A check that raised is a failure of the claim's check, reported with its config."""
        self.add_crash_record(config, crash_detail(err), crash_traceback(err))

    def add_crash_record(self, config: dict, detail: str, traceback_text: str) -> None:
        """A crash described by text (from a worker process, or a worker that died)."""
        self.tried += 1
        self.records.append({"config": config, "passed": False, "detail": detail, "measurements": [], "info": {}})
        self.failures.append({"config": config, "detail": detail, "traceback": traceback_text})


def crash_detail(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def crash_traceback(err: BaseException) -> str:
    """The traceback of a check that raised, from the check's own frame down (the frame that
    caught it, ``run_claim`` here or the worker's loop in ``verify.executors``, is left out), so a
    crash reads the same whatever process ran the check."""
    tb = err.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(err), err, tb, limit=4))


def _jsonable(config: dict) -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def iter_configurations(claim: Claim, seed: int, count: int) -> Iterator[dict]:
    """The claim's ``count`` random configurations for this master seed, drawn one at a time (a
    huge count costs nothing until it is run, and Ctrl-C stops it at once), then its fixed ones
    (the tight instances of :mod:`verify.sharpness`, whatever the seed and count)."""
    rng = configuration_stream(claim, seed)
    for index in range(count):
        yield _jsonable(claim.sample(rng, index))
    for config in claim.fixed:
        yield dict(config)


def claim_configurations(claim: Claim, seed: int, count: int) -> list[dict]:
    return list(iter_configurations(claim, seed, count))


def _batched_outcomes(claim: Claim, configs: list[dict]) -> list[Outcome]:
    """Group configurations by shape and check each group in one vectorised call."""
    return check_in_batches(claim.check_batch, claim.batch_key, configs)


def check_in_batches(check_batch, batch_key, configs: list[dict]) -> list[Outcome]:
    """``_batched_outcomes`` from the claim's two functions (module-level, so a worker process
    can be sent them): the outcomes in the order of ``configs``."""
    groups: dict = {}
    for i, config in enumerate(configs):
        groups.setdefault(batch_key(config), []).append(i)
    outcomes: list = [None] * len(configs)
    for indices in groups.values():
        for i, outcome in zip(indices, check_batch([configs[i] for i in indices])):
            outcomes[i] = outcome
    return outcomes


#: configurations of a batched claim checked per vectorised call (bounds memory for huge counts)
BATCH_CHUNK = 512


def run_claim(
    claim: Claim, configs: Iterable[dict], report: ClaimReport, advance=lambda: None, fail_fast: bool = False
) -> None:
    """Check every configuration (a list or a lazy iterator) and add the outcomes to ``report``;
    with ``fail_fast``, stop at the first failure (``report.complete`` stays False)."""
    start = time.perf_counter()
    configs = iter(configs)
    try:
        if claim.check_batch is not None:
            while chunk := list(itertools.islice(configs, BATCH_CHUNK)):
                for config, outcome in zip(chunk, _batched_outcomes(claim, chunk)):
                    report.add(config, outcome)
                    advance()
                if fail_fast and report.failures:
                    return
            report.complete = True
            return
        for config in configs:
            try:
                outcome = claim.check(config)
            except Exception as err:  # noqa: BLE001 - a crash is a failure, reported with its config
                report.add_crash(config, err)
                advance()
                if fail_fast:
                    return
                continue
            report.add(config, outcome)
            advance()
            if fail_fast and not outcome.passed:
                return
        report.complete = True
    finally:
        report.seconds += time.perf_counter() - start


def catalogue(scale: bool = False, tier: str | None = None) -> dict[str, Claim]:
    """The claims of a tier by id: the default tier, the scale tier (``--scale``) or the default
    run's slice of it (``tier="slice"``), all tiers of the same claims (:mod:`verify.claims`)."""
    tier = tier or ("scale" if scale else "default")
    if tier == "default":
        return CLAIMS_BY_ID
    if tier == "scale":
        return SCALE_CLAIMS_BY_ID
    from .claims import SLICE_CLAIMS_BY_ID, certify_claims

    if tier == "slice":
        return SLICE_CLAIMS_BY_ID
    if tier == "certify":
        return certify_claims()
    raise ValueError(f"unknown tier {tier!r}")


#: the tiers the default run (`python -m verify`) checks, in the order of the report
MAIN_TIERS = ("default", "slice", "certify")


def select_claims(only: list[str] | None, scale: bool = False, tiers: tuple[str, ...] | None = None) -> list[Claim]:
    """The claims to run: every claim of each tier in ``tiers`` (default: the scale tier with
    ``scale``, else the default tier), or those named by ``--only`` (each must be a claim of at
    least one of the tiers; a tier without it is skipped)."""
    tiers = tiers or (("scale",) if scale else ("default",))
    by_tier = [catalogue(tier=t) for t in tiers]
    if only:
        known = {c for by_id in by_tier for c in by_id}
        unknown = [c for c in only if c not in known]
        if unknown:
            names = " and ".join(f"the {t} tier" for t in tiers)
            raise ValueError(f"--only: unknown claim(s) {unknown} in {names}; known: {sorted(known)}")
        return [by_id[c] for by_id in by_tier for c in only if c in by_id]
    return [claim for by_id in by_tier for claim in by_id.values()]


def reproduce_command(report: ClaimReport, config: dict) -> str:
    """The command line that re-checks one configuration of this report's claim and tier."""
    import json

    text = json.dumps(config, sort_keys=True)
    if report.tier == "certify":  # a plan entry names its claim
        return f"python -m verify --certify --replay '{text}'"
    flag = {"default": "", "scale": "--scale ", "slice": "--scale "}[report.tier]
    return f"python -m verify {flag}--only {report.id} --replay '{text}'"


def json_safe(value):
    """The report with every non-finite float written as the string "inf", "-inf" or "nan"
    (strict JSON has no such numbers) and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def report_dict(
    reports: list[ClaimReport],
    *,
    seed: int,
    mode: str,
    interrupted: bool,
    scale: bool = False,
    wall_time: float | None = None,
) -> dict:
    """The JSON report: one entry per (claim, tier) row, each with its records and digest."""
    return json_safe(
        {
            "suite": "deq-verify",
            "seed": seed,
            "mode": mode,
            "tier": "scale" if scale else "default",
            "interrupted": interrupted,
            "all_hold": all(r.holds for r in reports) and not interrupted,
            "wall_time": wall_time,
            "claims": [asdict(r) | {"holds": r.holds, "digest": digest(r)} for r in reports],
            "sharpness": sharpness_section(reports),
        }
    )


def sharpness_section(reports: list[ClaimReport]) -> list[dict]:
    """The report's sharpness section: per claim, the ratio observed / bound (1 = attained) at
    each fixed tight instance as re-measured in this run (``info["tight"]``), with the tightest
    ratio the adversarial search found there (verify/data/sharpness.json) and what is known of
    attainment; and the tightest ratio among the claim's random configurations of this run."""
    import json as _json

    from .sharpness import DATA

    stored = _json.loads(DATA.read_text())["instances"] if DATA.exists() else {}
    rows = []
    for r in reports:
        if r.tier != "default":
            continue
        random_ratios = [
            rec["info"]["ratio"]
            for rec in r.records
            if rec.get("info", {}).get("ratio") is not None and not rec["info"].get("tight")
        ]
        for rec in r.records:
            name = rec.get("info", {}).get("tight")
            if name:
                entry = stored.get(name, {})
                rows.append(
                    {
                        "claim": r.id,
                        "instance": name,
                        "ratio": rec["info"].get("ratio"),
                        "search_ratio": entry.get("ratio"),
                        "note": entry.get("note", ""),
                        "holds": rec["passed"],
                    }
                )
        if random_ratios:
            rows.append(
                {
                    "claim": r.id,
                    "instance": "random configurations (this run)",
                    "ratio": float(min(random_ratios)),
                    "search_ratio": None,
                    "note": "",
                    "holds": None,
                }
            )
    return rows


def digest(report: ClaimReport, scale: bool = False) -> dict | None:
    """The claim's own summary of its records (tightness per regime, ...), or None."""
    claim = catalogue(tier=report.tier).get(report.id)
    if claim is None or claim.digest is None or not report.records:
        return None
    return claim.digest([r for r in report.records if r.get("info") is not None])


def write_atomically(path: str, text: str) -> None:
    """Write to a temporary file in the same directory, then rename over the target."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".deq-verify-", suffix=".tmp")
    try:
        os.fchmod(fd, _report_mode(path))  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def format_digest(summary: dict) -> str:
    """One line per key: 'key: n=.., min .. / median .. / max ..'."""
    parts = []
    for key, st in summary.items():
        for label, val in st.items() if "count" not in st else [(key, st)]:
            if val.get("count"):
                parts.append(
                    f"{label}: n={val['count']} min {val['min']:.4g} / median {val['median']:.4g} "
                    f"/ max {val['max']:.4g}"
                )
    return "; ".join(parts) if parts else "(nothing to summarise)"


def format_ratio(report: ClaimReport) -> str:
    return "n/a" if report.worst_ratio is None else f"{report.worst_ratio:.2g}"


def format_slack(report: ClaimReport) -> str:
    return "n/a" if report.worst_slack is None else f"{report.worst_slack:.3g}"


def symbolic_status(report: ClaimReport) -> str:
    return report.symbolic


def _report_mode(path: str) -> int:
    """The mode a new file would get (0666 minus the umask), or the replaced file's own mode."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def markdown_table(reports: list[ClaimReport]) -> str:
    lines = [
        "| claim | tier | holds | tried | passed | max error/tol (<= 1) | min slack (>= 0) | symbolic | provenance | "
        "time (s) | statement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        statement = r.statement.replace("|", "\\|")  # norms use |, Markdown cells must escape it
        holds = "yes" if r.holds else ("partial" if not r.complete and r.passed == r.tried else "NO")
        lines.append(
            f"| {r.id} | {r.tier} | {holds} | {r.tried} | {r.passed} | {format_ratio(r)} | "
            f"{format_slack(r)} | {r.symbolic} | {r.provenance} | {r.seconds:.1f} | {statement} |"
        )
    return "\n".join(lines) + "\n"
