"""The verification campaign: every claim on many seeded random configurations.

Configurations are drawn claim by claim from ``numpy.random.SeedSequence(seed).spawn``, so the
same seed gives the same configurations and the same report (timings aside), whatever subset
``--only`` selects.
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

from .claims import CLAIMS, CLAIMS_BY_ID, Claim, Outcome


@dataclass
class ClaimReport:
    id: str
    statement: str
    provenance: str
    symbolic: str
    tried: int = 0
    passed: int = 0
    worst_margin: float | None = None
    worst_detail: str = ""
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    records: list = field(default_factory=list)  # every configuration: config, passed, margin, detail
    complete: bool = False

    @property
    def holds(self) -> bool:
        # an interrupted claim (complete is False) has not been shown to hold, however many passed
        return self.complete and self.tried > 0 and self.passed == self.tried

    def add(self, config: dict, outcome: Outcome) -> None:
        self.tried += 1
        self.passed += int(outcome.passed)
        self.records.append({"config": config, "passed": bool(outcome.passed), "margin": float(outcome.margin),
                             "detail": outcome.detail})
        if self.worst_margin is None or outcome.margin < self.worst_margin:
            self.worst_margin = float(outcome.margin)
            self.worst_detail = outcome.detail
        if not outcome.passed:
            self.failures.append({"config": config, "margin": float(outcome.margin), "detail": outcome.detail})


def _jsonable(config: dict) -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def iter_configurations(claim: Claim, seed: int, count: int) -> Iterator[dict]:
    """The claim's ``count`` configurations for this master seed, drawn one at a time (a huge
    count costs nothing until it is run, and Ctrl-C stops it at once)."""
    index = [c.id for c in CLAIMS].index(claim.id)
    child = np.random.SeedSequence(seed).spawn(len(CLAIMS))[index]
    rng = np.random.default_rng(child)
    for _ in range(count):
        yield _jsonable(claim.sample(rng))


def claim_configurations(claim: Claim, seed: int, count: int) -> list[dict]:
    return list(iter_configurations(claim, seed, count))


def _batched_outcomes(claim: Claim, configs: list[dict]) -> list[Outcome]:
    """Group configurations by shape and check each group in one vectorised call."""
    groups: dict = {}
    for i, config in enumerate(configs):
        groups.setdefault(claim.batch_key(config), []).append(i)
    outcomes: list = [None] * len(configs)
    for indices in groups.values():
        for i, outcome in zip(indices, claim.check_batch([configs[i] for i in indices])):
            outcomes[i] = outcome
    return outcomes


#: configurations of a batched claim checked per vectorised call (bounds memory for huge counts)
BATCH_CHUNK = 512


def run_claim(claim: Claim, configs: Iterable[dict], report: ClaimReport, advance=lambda: None) -> None:
    """Check every configuration (a list or a lazy iterator) and add the outcomes to ``report``."""
    start = time.perf_counter()
    configs = iter(configs)
    try:
        if claim.check_batch is not None:
            while chunk := list(itertools.islice(configs, BATCH_CHUNK)):
                for config, outcome in zip(chunk, _batched_outcomes(claim, chunk)):
                    report.add(config, outcome)
                    advance()
            report.complete = True
            return
        for config in configs:
            try:
                outcome = claim.check(config)
            except Exception as err:  # a crash is a failure of the claim's check, reported with its config
                outcome = Outcome(False, float("-inf"), f"{type(err).__name__}: {err}")
                report.failures.append({"config": config, "traceback": traceback.format_exc(limit=3)})
                report.tried += 1
                report.worst_margin = float("-inf")
                report.worst_detail = outcome.detail
                advance()
                continue
            report.add(config, outcome)
            advance()
        report.complete = True
    finally:
        report.seconds += time.perf_counter() - start


def select_claims(only: list[str] | None) -> list[Claim]:
    if not only:
        return list(CLAIMS)
    unknown = [c for c in only if c not in CLAIMS_BY_ID]
    if unknown:
        raise ValueError(f"--only: unknown claim(s) {unknown}; known: {sorted(CLAIMS_BY_ID)}")
    return [CLAIMS_BY_ID[c] for c in only]


def report_dict(reports: list[ClaimReport], *, seed: int, mode: str, interrupted: bool) -> dict:
    return {
        "suite": "deq-verify",
        "seed": seed,
        "mode": mode,
        "interrupted": interrupted,
        "all_hold": all(r.holds for r in reports) and not interrupted,
        "claims": [asdict(r) | {"holds": r.holds} for r in reports],
    }


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


def _report_mode(path: str) -> int:
    """The mode a new file would get (0666 minus the umask), or the replaced file's own mode."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def markdown_table(reports: list[ClaimReport]) -> str:
    lines = ["| claim | holds | tried | passed | worst margin | provenance | symbolic | time (s) | statement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        margin = "n/a" if r.worst_margin is None else f"{r.worst_margin:.3g}"
        statement = r.statement.replace("|", "\\|")  # norms use |, Markdown cells must escape it
        lines.append(f"| {r.id} | {'yes' if r.holds else 'NO'} | {r.tried} | {r.passed} | {margin} | "
                     f"{r.provenance} | {r.symbolic} | {r.seconds:.1f} | {statement} |")
    return "\n".join(lines) + "\n"
