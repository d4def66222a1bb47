"""The certificate plan as a tier of the campaign: ``python -m verify`` (the default run) checks the
quick plan of :func:`verify.certify.plan.entries` claim by claim, each entry a configuration whose
check runs the certificate and requires its verdict to be one the entry expects (true instances
certified or consistent, canaries violated, exact equalities not certified). A certificate that
comes back with an unexpected verdict fails the run, as a false formula does in the other tiers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..results import EPS, condition, equal, outcome
from .cli import run_one
from .plan import entries


@lru_cache(maxsize=8)
def _quick_entries(seed: int) -> tuple:
    return tuple(entries(seed, quick=True))


def claim_entries(claim_id: str, seed: int) -> list[dict]:
    """The quick plan's entries of one claim for the instance seed ``seed``."""
    return [dict(e) for e in _quick_entries(seed) if e["claim"] == claim_id]


def entry_count(claim_id: str) -> int:
    """How many entries the quick plan holds for the claim (the same for every seed)."""
    return len(claim_entries(claim_id, 0))


def sampler(claim_id: str):
    """``sample(rng, index)``: the index-th quick-plan entry of the claim for the campaign's master
    seed (the first word of the stream's SeedSequence entropy, [seed, key(id, tier)]: see
    verify.claims.spec.configuration_stream), so that `python -m verify --seed S` checks the
    instances `python -m verify --certify --quick --seed S` prints."""

    def sample(rng, index):
        entropy = rng.bit_generator.seed_seq.entropy
        seed = int(entropy[0]) if isinstance(entropy, (list, tuple)) else int(rng.integers(2**31))
        return claim_entries(claim_id, seed)[index]

    return sample


def check_entry(config: dict):
    """Run the entry's certificate as `--certify` does (verify.certify.cli.run_one); it holds iff
    the verdict is one the entry expects, judged here, and `--certify`'s own judgement agrees."""
    _, certificate, cli_ok, error, _ = run_one(config)
    if certificate is None:
        return outcome([condition(f"the certificate runs ({error.splitlines()[0]})", False)], error)
    ok = certificate.status in config["expect"]
    detail = f"{config['kind']} {config.get('label', '')}: {certificate.status} at {certificate.bits} bits"
    if not ok and certificate.reason:
        detail += f" ({certificate.reason[:300]})"
    meas = [
        condition(f"verdict {certificate.status!r} is one of {list(config['expect'])}", ok),
        condition("--certify judges it the same way", cli_ok == ok),
    ]
    for name, value in stated_bounds(config).items():
        if name in certificate.enclosures:
            ball = certificate.enclosures[name]
            meas.append(
                equal(
                    f"the certificate's {name} = the statement's formula (float64)",
                    abs(value - ball.mid),
                    ball.rad + BOUND_ROUNDING * EPS * abs(value),
                )
            )
    return outcome(meas, detail, verdict=certificate.status, bits=certificate.bits)


#: relative rounding of the float64 bounds below: at most six operations (sqrt, product, sum,
#: square, quotient, the factor), eps/2 each, plus the enclosure midpoint's rounding to float64
BOUND_ROUNDING = 8


def stated_bounds(config: dict) -> dict[str, float]:
    """The bounds the rate certificates state, in float64 from the claims' formulas
    (docs/theory.md, section 4), keyed by the certificate's enclosure names: a certificate that
    proves a different (say weaker) bound than its statement names fails here even when its
    verdict is the expected one (no canary moves NAIVE-BOUND-FALSE's second item)."""
    claim, gamma, m = config["claim"], float(config["gamma"]), config["m"]
    factor = float(config.get("bound_factor", 1.0))
    uniform = 1.0 / (1.0 + gamma * np.sqrt(m)) ** 2
    if claim == "NAIVE-BOUND-FALSE":
        return {"1/(1+gamma)^2": factor / (1.0 + gamma) ** 2, "1/(1+gamma sqrt m)^2": uniform}
    if claim == "UNIFORM-RATE":
        return {"bound": factor * uniform}
    return {}
