"""The result types of a check: one :class:`Measurement` per comparison, an :class:`Outcome` per
configuration.

Each measurement is one of four kinds, reported in its own column of the campaign's table:

- ``equality``: an error and the tolerance it must not exceed, derived from a rounding-error
  model (:mod:`verify.rounding`) or an ODE error model; reported as error / tolerance (<= 1).
- ``inequality``: X >= Y reported as the relative slack X / Y - 1 (>= 0, less a rounding
  allowance that the measurement carries).
- ``exact``: a SymPy residual that must simplify to exactly 0.
- ``condition``: a yes/no fact (the flow reached its target; the data are separable as built).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS = np.finfo(np.float64).eps
PAPER = "paper abstract"
DERIVED = "suite-derived"

EQUALITY, INEQUALITY, EXACT, CONDITION = "equality", "inequality", "exact", "condition"


@dataclass(frozen=True)
class Measurement:
    """One comparison. ``value``: the error (equality), the relative slack X/Y - 1 (inequality),
    0 for an exact zero residual (exact), 1 or 0 (condition). ``tolerance``: the allowed error
    (equality) or the allowed negative slack from rounding (inequality)."""

    name: str
    kind: str
    value: float
    tolerance: float = 0.0

    @property
    def holds(self) -> bool:
        if self.kind == EQUALITY:
            return bool(self.value <= self.tolerance)
        if self.kind == INEQUALITY:
            return bool(self.value >= -self.tolerance)
        if self.kind == EXACT:
            return self.value == 0.0
        return self.value == 1.0

    @property
    def ratio(self) -> float:
        """error / tolerance for an equality (0 when both are 0)."""
        if self.value == 0.0:
            return 0.0
        return self.value / self.tolerance if self.tolerance > 0 else float("inf")

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "value": float(self.value),
            "tolerance": float(self.tolerance),
            "holds": self.holds,
        }


def equal(name: str, error: float, tolerance: float) -> Measurement:
    """|error| <= tolerance; a non-finite error never holds."""
    error = float(error)
    return Measurement(name, EQUALITY, error if np.isfinite(error) else float("inf"), float(tolerance))


def at_least(name: str, lhs: float, rhs: float, rounding: float = 0.0) -> Measurement:
    """lhs >= rhs as the relative slack lhs / rhs - 1 (rhs > 0), allowed down to -rounding."""
    slack = float(lhs) / float(rhs) - 1.0
    return Measurement(name, INEQUALITY, slack if np.isfinite(slack) else -float("inf"), float(rounding))


def exact(name: str, ok: bool) -> Measurement:
    return Measurement(name, EXACT, 0.0 if ok else 1.0)


def condition(name: str, ok: bool) -> Measurement:
    return Measurement(name, CONDITION, 1.0 if ok else 0.0)


@dataclass(frozen=True)
class Outcome:
    """The measurements of one configuration; it passes iff there is one and every one holds."""

    measurements: tuple
    detail: str = ""
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return len(self.measurements) > 0 and all(m.holds for m in self.measurements)

    @property
    def worst_ratio(self) -> float | None:
        r = [m.ratio for m in self.measurements if m.kind == EQUALITY]
        return max(r) if r else None

    @property
    def worst_slack(self) -> float | None:
        s = [m.value for m in self.measurements if m.kind == INEQUALITY]
        return min(s) if s else None

    @property
    def failing(self) -> list[str]:
        return [m.name for m in self.measurements if not m.holds]

    def summary(self) -> str:
        if self.passed:
            return self.detail
        return "; ".join(["fails: " + ", ".join(self.failing)] + ([self.detail] if self.detail else []))


def outcome(measurements, detail: str = "", **info) -> Outcome:
    return Outcome(tuple(measurements), detail, info)
