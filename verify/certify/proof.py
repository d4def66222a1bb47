"""Certificates, their items and verdicts, and the precision loop (see :mod:`verify.certify`).

Every decision below is an Arb comparison of balls (never of floats): a ball that straddles a
bound decides nothing, a non-finite ball decides nothing, and an equation between irrational
numbers is at best *consistent to 2^-k* -- a proof that |lhs - rhs| <= 2^-k max|term|, not of
lhs = rhs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flint import arb, ctx

#: Working precisions in bits, tried in turn until the verdict is decided.
PRECISIONS = (53, 106, 212, 424)

#: An equation counts toward a verdict only once it is consistent to 2^-EQUATION_BITS: every
#: residual is proved to be at most 2^-64 times the largest term. A relative deviation above
#: 2^-64 (5.4e-20; any deviation worth detecting, 1e-12 included) can then never pass: the loop
#: raises the precision until its residual ball excludes 0 (violated) or gives up (not certified).
EQUATION_BITS = 64

#: verdicts of a certificate
CERTIFIED, CONSISTENT, VIOLATED, NOT_CERTIFIED = "certified", "consistent", "violated", "not certified"
VERDICTS = (CERTIFIED, CONSISTENT, VIOLATED, NOT_CERTIFIED)
#: statuses of an item (an equation's "consistent" carries its k)
PROVED, FAILED, UNDECIDED = "proved", "violated", "undecided"

CLAIMS = (
    "NAIVE-BOUND-FALSE",
    "UNIFORM-RATE",
    "STATE-WISE",
    "ENERGY",
    "TRUST-REGION",
    # along trajectories and the remaining finite claims (verify/certify/trajectory_plan.py)
    "GD-RATE",
    "INTEGRATED",
    "NONCONVEX",
    "CONSERVATION",
    "STATIONARY",
)


class Undecided(Exception):
    """A step that cannot be carried out at this precision (e.g. a ball matrix that is not
    certainly invertible); the certificate is undecided there and the precision is raised."""


# ---- records ------------------------------------------------------------------------------------
def _float_down(x: arb) -> float:
    """A float64 <= every point of the (finite) ball x; -inf below float64's range."""
    return float(np.nextafter(float(x.lower()), -np.inf))


def _float_up(x: arb) -> float:
    return float(np.nextafter(float(x.upper()), np.inf))


@dataclass(frozen=True)
class Enclosure:
    """A ball for the report: [lo, hi] in float64 rounded outwards (+-inf beyond float64's range;
    the decisions never use these floats), the ball as Arb prints it, its midpoint and radius
    rounded to float64, and its relative width 2 rad / |mid| computed in Arb and rounded up."""

    lo: float
    hi: float
    text: str
    mid: float
    rad: float
    rel_width: float

    @classmethod
    def of(cls, x: arb) -> Enclosure:
        if not x.is_finite():
            return cls(-np.inf, np.inf, x.str(radius=True), float("nan"), np.inf, np.inf)
        mid, rad = arb(x.mid()), arb(x.rad())
        if mid == 0:
            rel = 0.0 if rad == 0 else np.inf
        else:
            rel = _float_up(2 * rad / abs(mid))
        return cls(_float_down(x), _float_up(x), x.str(radius=True), float(mid), _float_up(rad), rel)

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def as_dict(self) -> dict:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "mid": self.mid,
            "rad": self.rad,
            "ball": self.text,
            "rel_width": self.rel_width,
        }


@dataclass
class Item:
    """One statement of a certificate: an inequality, a positive-definiteness claim or an
    equation; ``margin`` encloses lhs - rhs, lambda_min, or the residual farthest from 0;
    ``consistent_bits`` is an equation's k (|lhs - rhs| <= 2^-k max|term|, proved)."""

    statement: str
    kind: str
    status: str
    margin: Enclosure | None = None
    detail: str = ""
    consistent_bits: int | None = None

    @property
    def settled(self) -> bool:
        """Proved, or an equation consistent to the target 2^-EQUATION_BITS."""
        return self.status == PROVED or (
            self.status == CONSISTENT and self.consistent_bits is not None and self.consistent_bits >= EQUATION_BITS
        )

    def as_dict(self) -> dict:
        return {
            "statement": self.statement,
            "kind": self.kind,
            "status": self.status,
            "consistent_bits": self.consistent_bits,
            "margin": None if self.margin is None else self.margin.as_dict(),
            "detail": self.detail,
        }


@dataclass
class Certificate:
    """The verdict on one claim at one instance, at the precision that decided it (``bits``)."""

    claim: str
    instance: dict
    status: str = NOT_CERTIFIED
    bits: int = 0
    items: list[Item] = field(default_factory=list)
    enclosures: dict[str, Enclosure] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    #: (bits, verdict, smallest equation k or None) at each precision tried
    history: list = field(default_factory=list)
    #: the raw balls (arb / arb_mat) for tests; not serialised
    balls: dict = field(default_factory=dict, repr=False)
    #: True at the last precision tried: no early exit, every item is evaluated for the report
    final: bool = field(default=True, repr=False)

    def give_up_early(self, item: Item) -> None:
        """Below the last precision, stop at an equation short of 2^-EQUATION_BITS (the costly
        items after it cannot make the certificate pass at this precision) and raise the
        precision; a violated equation is kept (the verdict is then decided)."""
        if item.kind == "equation" and item.status in (UNDECIDED, CONSISTENT) and not item.settled and not self.final:
            raise Undecided(f"{item.statement}: {item.detail}; raising the precision")

    @property
    def consistent_bits(self) -> int | None:
        """The smallest k over the equation items (None without equations, or if one is not
        consistent at all)."""
        ks = [it.consistent_bits for it in self.items if it.kind == "equation" and it.status != PROVED]
        if not ks:
            return None
        return None if any(k is None for k in ks) else min(ks)

    @property
    def max_rel_width(self) -> float:
        return max((e.rel_width for e in self.enclosures.values()), default=0.0)

    def as_dict(self) -> dict:
        return {
            "claim": self.claim,
            "instance": self.instance,
            "status": self.status,
            "bits": self.bits,
            "consistent_bits": self.consistent_bits,
            "equation_bits_required": EQUATION_BITS,
            "history": [list(h) for h in self.history],
            "seconds": self.seconds,
            "reason": self.reason,
            "max_rel_width": self.max_rel_width,
            "items": [it.as_dict() for it in self.items],
            "enclosures": {k: v.as_dict() for k, v in self.enclosures.items()},
        }


# ---- items --------------------------------------------------------------------------------------
NON_FINITE = "non-finite enclosure (infinite or NaN radius or midpoint)"


def inequality(statement: str, diff: arb, detail: str = "") -> Item:
    """The claim lhs > rhs (or >=) with diff = lhs - rhs: proved iff diff > 0 on the whole ball,
    violated iff diff < 0 on the whole ball; otherwise (straddling, or not finite) undecided."""
    if not diff.is_finite():
        return Item(statement, "inequality", UNDECIDED, Enclosure.of(diff), NON_FINITE)
    status = PROVED if diff > 0 else FAILED if diff < 0 else UNDECIDED
    return Item(statement, "inequality", status, Enclosure.of(diff), detail)


def positive_definite(statement: str, lam_min: arb, detail: str = "") -> Item:
    """M > 0 from an enclosure of lambda_min(M) (lower end from a congruence proof)."""
    if not lam_min.is_finite():
        return Item(statement, "positive definite", UNDECIDED, Enclosure.of(lam_min), NON_FINITE)
    status = PROVED if lam_min > 0 else FAILED if lam_min < 0 else UNDECIDED
    return Item(statement, "positive definite", status, Enclosure.of(lam_min), detail)


def consistency_bits(deviation: arb, size: arb) -> int:
    """The largest integer k <= 100000 with deviation <= 2^-k size, both exact and > 0 (decided by
    exact Arb comparisons; the logarithms only give the first guess)."""
    k = int(np.floor(float((size.log() - deviation.log()) / arb(2).log()))) if deviation > 0 else 100000
    k = max(min(k, 100000), -100000)
    two = arb(2)
    while k > -100000 and not deviation <= size * two ** (-k):
        k -= 1
    while k < 100000 and deviation <= size * two ** (-(k + 1)):
        k += 1
    return k


def equation(statement: str, residuals: list[arb], terms: list[arb]) -> Item:
    """lhs = rhs componentwise, residuals = lhs - rhs, ``terms`` the entries of one side.

    violated   some residual ball excludes 0 (a proof that lhs != rhs);
    proved     every residual is exactly 0 (radius 0): possible only when no rounding occurred;
    consistent every residual ball holds 0; k is the largest integer with
               max|residual| <= 2^-k max|term| (upper and lower ends of the balls, exact Arb
               comparisons): a proof that the relative deviation is at most 2^-k;
    undecided  a non-finite ball, terms not bounded away from 0, or k <= 0.
    """
    # the residual shown in the report (a choice of display, not a decision)
    worst = max(residuals, key=lambda r: float(r.abs_upper().upper()) if r.is_finite() else np.inf)
    if not all(r.is_finite() for r in residuals) or not all(t.is_finite() for t in terms):
        return Item(statement, "equation", UNDECIDED, Enclosure.of(worst), NON_FINITE)
    for r in residuals:
        if not r.contains(0):
            return Item(statement, "equation", FAILED, Enclosure.of(r), "a residual ball excludes 0")
    if all(r.is_zero() for r in residuals):
        return Item(statement, "equation", PROVED, Enclosure.of(worst), "every residual is exactly 0")
    size = arb(0)
    for t in terms:
        size = size.max(t.abs_lower().lower())
    deviation = arb(0)
    for r in residuals:
        deviation = deviation.max(r.abs_upper().upper())
    if not size > 0:
        return Item(
            statement,
            "equation",
            UNDECIDED,
            Enclosure.of(worst),
            "the terms are not bounded away from 0: no relative deviation can be bounded",
        )
    k = consistency_bits(deviation, size)
    if k <= 0:
        return Item(
            statement,
            "equation",
            UNDECIDED,
            Enclosure.of(worst),
            "the residual balls hold 0 but are as wide as the terms",
        )
    detail = f"|residual| <= 2^-{k} max|term|"
    return Item(statement, "equation", CONSISTENT, Enclosure.of(worst), detail, consistent_bits=k)


# ---- verdicts and the precision loop ------------------------------------------------------------
def verdict_of(items: list[Item]) -> str:
    """violated if an item is violated; certified if every item is proved; consistent if every
    item is proved or an equation consistent to 2^-EQUATION_BITS; otherwise not certified."""
    if any(it.status == FAILED for it in items):
        return VIOLATED
    if items and all(it.status == PROVED for it in items):
        return CERTIFIED
    if items and all(it.settled for it in items):
        return CONSISTENT
    return NOT_CERTIFIED


def _blocking(it: Item) -> str:
    margin = f" (margin {it.margin.text})" if it.margin else ""
    if it.status == CONSISTENT:
        return f"{it.statement}: consistent only to 2^-{it.consistent_bits} (2^-{EQUATION_BITS} required){margin}"
    return f"{it.statement}: {it.detail or 'the ball straddles the bound'}{margin}"


def run_certificate(
    claim: str, instance: dict, compute: Callable[[Certificate], None], precisions: tuple[int, ...] = PRECISIONS
) -> Certificate:
    """Run ``compute`` at each precision until the verdict is decided: violated (some item
    refuted), certified (every item proved) or consistent (every inequality proved, every
    equation consistent to 2^-EQUATION_BITS). Anything else raises the precision; after the last
    one the verdict is "not certified" and the reason names the items that blocked it."""
    t0 = time.perf_counter()
    history = []
    for bits in precisions:
        cert = Certificate(claim, dict(instance), bits=bits, final=bits == precisions[-1])
        with ctx.workprec(bits):
            try:
                compute(cert)
            except Undecided as err:
                cert.items.append(Item("computation", "step", UNDECIDED, None, str(err)))
            except ZeroDivisionError as err:  # a ball matrix that is not certainly invertible
                cert.items.append(Item("computation", "step", UNDECIDED, None, f"singular ball: {err}"))
        cert.status = verdict_of(cert.items)
        history.append((bits, cert.status, cert.consistent_bits))
        if cert.status != NOT_CERTIFIED:
            break
    cert.history = history
    cert.seconds = time.perf_counter() - t0
    if cert.status == VIOLATED:
        cert.reason = "certified violation: " + "; ".join(
            f"{it.statement} (margin {it.margin.text if it.margin else '?'})"
            for it in cert.items
            if it.status == FAILED
        )
    elif cert.status == NOT_CERTIFIED:
        cert.reason = f"undecided at every precision up to {cert.bits} bits: " + "; ".join(
            _blocking(it) for it in cert.items if not it.settled
        )
    elif cert.status == CONSISTENT:
        cert.reason = (
            f"every inequality proved; equations consistent to 2^-{cert.consistent_bits} "
            f"(>= 2^-{EQUATION_BITS} required), not proved"
        )
    return cert
