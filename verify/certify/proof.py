"""Certificates, their items and verdicts, and the precision loop (see :mod:`verify.certify`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from flint import arb, ctx

#: Working precisions in bits, tried in turn until the verdict is decided.
PRECISIONS = (53, 106, 212, 424)

#: An equation counts as contained only if its residual ball is narrower than this times the size
#: of its terms: any relative deviation above ~1e-9 would then have been detected (refuted).
EQUATION_RTOL = 2.0 ** -30

CERTIFIED, VIOLATED, NOT_CERTIFIED = "certified", "violated", "not certified"
PROVED, CONTAINED, FAILED, UNDECIDED = "proved", "contained", "violated", "undecided"

CLAIMS = ("NAIVE-BOUND-FALSE", "UNIFORM-RATE", "STATE-WISE", "ENERGY", "TRUST-REGION")


class Undecided(Exception):
    """A step that cannot be carried out at this precision (e.g. a ball matrix that is not
    certainly invertible); the certificate is undecided there and the precision is raised."""


# ---- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enclosure:
    """[lo, hi] in float64, rounded outwards from the ball, and the ball as Arb prints it."""

    lo: float
    hi: float
    text: str
    #: the ball's midpoint (rounded to float64) and radius
    mid: float
    rad: float
    #: 2 rad / |mid| from the ball itself (float64 endpoints cannot show widths below ~1e-16)
    rel_width: float

    @classmethod
    def of(cls, x: arb) -> "Enclosure":
        if not x.is_finite():
            return cls(-np.inf, np.inf, x.str(radius=True), float("nan"), np.inf, np.inf)
        # float() rounds to nearest; one more ulp outwards keeps the interval an enclosure
        lo = float(np.nextafter(float(x.lower()), -np.inf))
        hi = float(np.nextafter(float(x.upper()), np.inf))
        mid, rad = float(x.mid()), float(x.rad())
        rel = 2 * rad / abs(mid) if mid != 0 else (0.0 if rad == 0 else np.inf)
        return cls(lo, hi, x.str(radius=True), mid, rad, rel)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def as_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "mid": self.mid, "rad": self.rad, "ball": self.text,
                "rel_width": self.rel_width}


@dataclass
class Item:
    """One statement of a certificate: an inequality, a positive-definiteness claim or an
    equation; ``margin`` encloses lhs - rhs, lambda_min, or the residual farthest from 0."""

    statement: str
    kind: str
    status: str
    margin: Enclosure | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return {"statement": self.statement, "kind": self.kind, "status": self.status,
                "margin": None if self.margin is None else self.margin.as_dict(), "detail": self.detail}


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
    #: the raw balls (arb / arb_mat) for tests; not serialised
    balls: dict = field(default_factory=dict, repr=False)
    #: True at the last precision tried: no early exit, every item is evaluated for the report
    final: bool = field(default=True, repr=False)

    def give_up_early(self, item: Item) -> None:
        """Below the last precision, stop at an undecided equation (the costly items after it
        cannot make the certificate pass at this precision) and raise the precision."""
        if item.status == UNDECIDED and not self.final:
            raise Undecided(f"{item.statement}: {item.detail}; raising the precision")

    @property
    def max_rel_width(self) -> float:
        return max((e.rel_width for e in self.enclosures.values()), default=0.0)

    def as_dict(self) -> dict:
        return {"claim": self.claim, "instance": self.instance, "status": self.status, "bits": self.bits,
                "seconds": self.seconds, "reason": self.reason, "max_rel_width": self.max_rel_width,
                "items": [it.as_dict() for it in self.items],
                "enclosures": {k: v.as_dict() for k, v in self.enclosures.items()}}


def inequality(statement: str, diff: arb, detail: str = "") -> Item:
    """The claim lhs > rhs (or >=) with diff = lhs - rhs: proved iff diff > 0 on the whole ball,
    violated iff diff < 0 on the whole ball."""
    status = PROVED if diff > 0 else FAILED if diff < 0 else UNDECIDED
    return Item(statement, "inequality", status, Enclosure.of(diff), detail)


def positive_definite(statement: str, lam_min: arb, detail: str = "") -> Item:
    """M > 0 from an enclosure of lambda_min(M) (lower end from a congruence proof)."""
    status = PROVED if lam_min > 0 else FAILED if lam_min < 0 else UNDECIDED
    return Item(statement, "positive definite", status, Enclosure.of(lam_min), detail)


def equation(statement: str, residuals: list[arb], scale: float) -> Item:
    """lhs = rhs componentwise with residuals = lhs - rhs: violated if some residual ball excludes
    0; contained if every ball holds 0 and the widest radius is <= EQUATION_RTOL * scale."""
    worst = max(residuals, key=lambda r: float(r.abs_upper()))
    for r in residuals:
        if not r.contains(0):
            return Item(statement, "equation", FAILED, Enclosure.of(r), "a residual ball excludes 0")
    rad = max(float(r.rad()) for r in residuals)
    ok = rad <= EQUATION_RTOL * scale
    detail = f"residual radius {rad:.2e} vs size of terms {scale:.2e}"
    return Item(statement, "equation", CONTAINED if ok else UNDECIDED, Enclosure.of(worst),
                detail if ok else detail + ": enclosure too wide to test the equation")


def verdict_of(items: list[Item]) -> str:
    if any(it.status == FAILED for it in items):
        return VIOLATED
    if items and all(it.status in (PROVED, CONTAINED) for it in items):
        return CERTIFIED
    return NOT_CERTIFIED


def run_certificate(claim: str, instance: dict, compute: Callable[[Certificate], None],
         precisions: tuple[int, ...] = PRECISIONS) -> Certificate:
    """Run ``compute`` at each precision until the verdict is decided (certified or violated)."""
    t0 = time.perf_counter()
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
        if cert.status != NOT_CERTIFIED:
            break
    cert.seconds = time.perf_counter() - t0
    bad = [it for it in cert.items if it.status == (FAILED if cert.status == VIOLATED else UNDECIDED)]
    if cert.status == VIOLATED:
        cert.reason = "certified violation: " + "; ".join(f"{it.statement} (margin {it.margin.text if it.margin else '?'})"
                                                         for it in bad)
    elif cert.status == NOT_CERTIFIED:
        cert.reason = (f"undecided at every precision up to {cert.bits} bits: "
                       + "; ".join(f"{it.statement}: {it.detail or 'the ball straddles the bound'}"
                                   + (f" (margin {it.margin.text})" if it.margin else "") for it in bad))
    return cert

