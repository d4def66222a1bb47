"""What a claim is: one statement, checked at one or more tiers.

A :class:`ClaimSpec` is written once per claim (its id, statement, provenance, where its
derivation lives) and carries a :class:`Tier` for each way the suite checks it:

- ``default``: the campaign (`python -m verify`), seeded random configurations at small sizes;
- ``scale``: the scale tier (`python -m verify --scale`), widths up to 1024 and n up to 1e5;
- ``slice``: the default run's slice of the scale tier (one configuration per scale claim at
  m >= 256, the scale tier's check), so that `python -m verify` judges the scale checks too;
- ``certify``: instances decided in ball arithmetic (`python -m verify --certify`), a function
  ``seed -> list of plan entries`` (:mod:`verify.certify.plan`).

``ClaimSpec.at(tier)`` gives the :class:`Claim` the campaign runs: the spec's identity with that
tier's sampler, check and counts. Configurations are drawn from a stream seeded by the master
seed, the tier and the claim's id (:func:`configuration_stream`), never by a position in a list,
so adding a claim leaves every other claim's configurations unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..results import Outcome

TIERS = ("default", "scale", "slice")


@dataclass(frozen=True, kw_only=True)
class Tier:
    """How one tier checks a claim: ``sample(rng, index) -> config`` (a flat JSON-able dict),
    ``check(config) -> Outcome`` (module-level functions, so worker processes can be sent them),
    the configuration counts of the quick and thorough modes, and optional extras."""

    sample: Callable[[np.random.Generator, int], dict]
    check: Callable[[dict], Outcome]
    quick: int
    thorough: int
    #: the statement as checked at this tier, when it differs from the claim's ("at scale: ...")
    statement: str | None = None
    #: a vectorised check of configurations that share ``batch_key``; returns Outcomes in order
    check_batch: Callable[[list[dict]], list[Outcome]] | None = None
    batch_key: Callable[[dict], tuple] | None = None
    #: a summary of the per-configuration ``info`` of all records (a dict for the report)
    digest: Callable[[list[dict]], dict] | None = None
    #: a check of a replayed configuration beyond the schema (raises ValueError)
    check_replay: Callable[[dict], None] | None = None
    #: configurations checked in every run after the random ones, whatever the seed and count
    #: (the tight instances where the claim's bound has least slack; see verify.sharpness)
    fixed: tuple = ()
    #: scale tier only: a sampler of the configurations the default run takes from this tier
    #: (``python -m verify`` checks ``slice_count`` of them, at widths m >= 256)
    slice_sample: Callable[[np.random.Generator, int], dict] | None = None
    slice_count: int = 1


@dataclass(frozen=True)
class Claim:
    """A claim at one tier: what the campaign and its workers run."""

    id: str
    statement: str
    provenance: str
    symbolic: str
    sample: Callable[[np.random.Generator, int], dict]
    check: Callable[[dict], Outcome]
    quick: int
    thorough: int
    check_batch: Callable[[list[dict]], list[Outcome]] | None = None
    batch_key: Callable[[dict], tuple] | None = None
    digest: Callable[[list[dict]], dict] | None = None
    check_replay: Callable[[dict], None] | None = None
    tier: str = "default"
    theorem: str = ""
    fixed: tuple = ()


@dataclass(frozen=True, kw_only=True)
class ClaimSpec:
    """One claim: its identity once, its checks per tier. ``theorem`` names the group (the module
    of :mod:`verify.claims` and of :mod:`theory`) it belongs to."""

    id: str
    statement: str
    provenance: str
    symbolic: str
    theorem: str
    default: Tier
    scale: Tier | None = None
    certify: Callable[[int], list] | None = None

    def at(self, tier: str = "default") -> Claim:
        """This claim at ``tier`` ("default" or "scale")."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}; got {tier!r}")
        t = getattr(self, "scale" if tier == "slice" else tier)
        if t is None or (tier == "slice" and t.slice_sample is None):
            raise ValueError(f"claim {self.id} has no {tier} tier")
        if tier == "slice":  # the scale tier's check on the slice's configurations
            t = replace(t, sample=t.slice_sample, quick=t.slice_count, thorough=t.slice_count, digest=None, fixed=())
        return Claim(
            self.id,
            t.statement or self.statement,
            self.provenance,
            self.symbolic if tier == "default" else "not applicable",
            t.sample,
            t.check,
            t.quick,
            t.thorough,
            t.check_batch,
            t.batch_key,
            t.digest,
            t.check_replay,
            tier,
            self.theorem,
            tuple(t.fixed),
        )


def stream_key(claim_id: str, tier: str = "default") -> int:
    """A 64-bit integer from the claim's id and tier (SHA-256: the same on every platform and run)."""
    return int.from_bytes(hashlib.sha256(f"{tier}:{claim_id}".encode()).digest()[:8], "little")


def configuration_stream(claim: Claim, seed: int) -> np.random.Generator:
    """The Generator a claim's configurations are drawn from: SeedSequence([seed, key(id, tier)])."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream_key(claim.id, claim.tier)]))


def with_check(claim: Claim, check: Callable[[dict], Outcome]) -> Claim:
    """The claim with another check (tests and benchmarks)."""
    return replace(claim, check=check)
