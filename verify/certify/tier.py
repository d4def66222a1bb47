"""The certificate plan as a tier of the campaign: ``python -m verify`` (the default run) checks the
quick plan of :func:`verify.certify.plan.entries` claim by claim, each entry a configuration whose
check runs the certificate and requires its verdict to be one the entry expects (true instances
certified or consistent, canaries violated, exact equalities not certified). A certificate that
comes back with an unexpected verdict fails the run, as a false formula does in the other tiers.
"""

from __future__ import annotations

from functools import lru_cache

from ..results import condition, outcome
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
    return outcome([condition(f"verdict {certificate.status!r} is one of {list(config['expect'])}", ok),
                    condition("--certify judges it the same way", cli_ok == ok)], detail,
                   verdict=certificate.status, bits=certificate.bits)
