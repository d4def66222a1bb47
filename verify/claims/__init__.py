"""The claims the suite verifies, grouped by theorem, one module per group (as in theory/):

    well_posed      WELL-POSED, EXPRESSIVITY, NONCONVEX                (section 2)
    gradients       GRAD-FD, GRAD-SYMBOLIC, CONSERVATION, STATIONARY,  (section 3)
                    UNROLLED
    theorem1        ENERGY, STATE-WISE, INTEGRATED, GD-STEP            (sections 4-5)
    descent         GD-RATE (the discrete Theorem 1)                   (section 9)
    rates           UNIFORM-RATE, NAIVE-BOUND-FALSE                    (sections 4-5)
    cross_entropy   CE-LINEAR, CE-SEPARABLE                            (section 5)
    theorem2        HESSIAN, TRUST-REGION, TR-ITERATION                (section 6)
    implicit_bias   IMPLICIT-BIAS                                      (section 7)
    hypotheses      HYPOTHESES
    symbolic        SYMBOLIC

(sections of docs/theory.md). Each module ends with ``SPECS``, a list of
:class:`~verify.claims.spec.ClaimSpec`: a claim's identity written once, with a
:class:`~verify.claims.spec.Tier` per way it is checked (default, scale) and its certificate plan.
To add a claim, append a ClaimSpec to the module of its group (see CONTRIBUTING.md).

``CLAIMS`` / ``CLAIMS_BY_ID`` are the claims at the default tier (what ``python -m verify`` runs),
``SCALE_CLAIMS_BY_ID`` at the scale tier. A claim's ``sample(rng, index)`` returns a
JSON-serialisable configuration; ``check(config)`` rebuilds everything from it and returns an
:class:`~verify.results.Outcome`, so any failing configuration is reproduced by
``python -m verify --only CLAIM --replay 'JSON'``.
"""

from __future__ import annotations

from importlib import import_module

from ..results import (
    CONDITION,
    DERIVED,
    EPS,
    EQUALITY,
    EXACT,
    INEQUALITY,
    PAPER,
    Measurement,
    Outcome,
    at_least,
    condition,
    equal,
    exact,
    outcome,
)
from .spec import Claim, ClaimSpec, Tier, configuration_stream

#: the group modules, in the order of the report
GROUPS = (
    "well_posed",
    "gradients",
    "theorem1",
    "descent",
    "rates",
    "cross_entropy",
    "theorem2",
    "implicit_bias",
    "hypotheses",
    "symbolic",
)


def _collect() -> list[ClaimSpec]:
    specs: list[ClaimSpec] = []
    for group in GROUPS:
        specs.extend(import_module(f"{__name__}.{group}").SPECS)
    ids = [s.id for s in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RuntimeError(f"claim ids registered twice: {repeated}")
    return specs


SPECS: list[ClaimSpec] = _collect()
SPECS_BY_ID: dict[str, ClaimSpec] = {s.id: s for s in SPECS}

CLAIMS: list[Claim] = [s.at("default") for s in SPECS]
CLAIMS_BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}
SCALE_CLAIMS: list[Claim] = [s.at("scale") for s in SPECS if s.scale is not None]
SCALE_CLAIMS_BY_ID: dict[str, Claim] = {c.id: c for c in SCALE_CLAIMS}
SLICE_CLAIMS: list[Claim] = [s.at("slice") for s in SPECS if s.scale is not None and s.scale.slice_sample is not None]
SLICE_CLAIMS_BY_ID: dict[str, Claim] = {c.id: c for c in SLICE_CLAIMS}


def certify_claims() -> dict[str, Claim]:
    """The claims with certificates at the certify tier: the quick certificate plan of
    :mod:`verify.certify` (true instances, tight ones, canaries false by 1e-12 to 1e-3, exact
    equalities), each entry judged by its expected verdict (:mod:`verify.certify.tier`)."""
    from ..certify import CLAIMS as CERTIFIED_CLAIMS
    from ..certify import tier

    out = {}
    for claim_id in CERTIFIED_CLAIMS:
        spec = SPECS_BY_ID[claim_id]
        count = tier.entry_count(claim_id)
        out[claim_id] = Claim(
            claim_id,
            f"certified in ball arithmetic at fixed instances: {spec.statement}",
            spec.provenance,
            "not applicable",
            tier.sampler(claim_id),
            tier.check_entry,
            count,
            count,
            tier="certify",
            theorem=spec.theorem,
        )
    return out


__all__ = [
    "CLAIMS",
    "CLAIMS_BY_ID",
    "CONDITION",
    "Claim",
    "ClaimSpec",
    "DERIVED",
    "EPS",
    "EQUALITY",
    "EXACT",
    "GROUPS",
    "INEQUALITY",
    "Measurement",
    "Outcome",
    "PAPER",
    "SCALE_CLAIMS",
    "SCALE_CLAIMS_BY_ID",
    "SPECS",
    "SLICE_CLAIMS",
    "SLICE_CLAIMS_BY_ID",
    "SPECS_BY_ID",
    "Tier",
    "certify_claims",
    "at_least",
    "condition",
    "configuration_stream",
    "equal",
    "exact",
    "outcome",
]
