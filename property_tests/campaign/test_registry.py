"""The claim registry: stable seeds, tiers of one claim, and the layering of the packages."""

import ast
import dataclasses
import pathlib

import numpy as np
import pytest

from verify import claims as registry
from verify.campaign import claim_configurations
from verify.claims.spec import ClaimSpec, Tier, configuration_stream, stream_key

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _toy_spec(claim_id: str) -> ClaimSpec:
    def sample(rng, index):
        return {"seed": int(rng.integers(2**32)), "index": index}

    return ClaimSpec(
        id=claim_id,
        statement="toy",
        provenance="suite-derived",
        symbolic="not applicable",
        theorem="toy",
        default=Tier(sample=sample, check=lambda c: None, quick=3, thorough=3),
    )


def test_adding_a_claim_leaves_every_other_claims_configurations_unchanged(monkeypatch):
    before = {c.id: claim_configurations(c, 0, 3) for c in registry.CLAIMS}
    # a new claim inserted in the middle of the list, as a contributor might
    specs = list(registry.SPECS)
    specs.insert(3, _toy_spec("TOY-INSERTED"))
    claims = [s.at("default") for s in specs]
    after = {c.id: claim_configurations(c, 0, 3) for c in claims if c.id != "TOY-INSERTED"}
    assert after == before


def test_streams_differ_by_claim_tier_and_seed():
    spec = registry.SPECS_BY_ID["ENERGY"]
    keys = {stream_key("ENERGY", "default"), stream_key("ENERGY", "scale"), stream_key("STATE-WISE", "default")}
    assert len(keys) == 3
    a = configuration_stream(spec.at("default"), 0).integers(2**32, size=4)
    b = configuration_stream(spec.at("scale"), 0).integers(2**32, size=4)
    c = configuration_stream(spec.at("default"), 1).integers(2**32, size=4)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_stream_key_is_platform_independent():
    # SHA-256 of "default:ENERGY", first 8 bytes little-endian: a fixed function of the id, not of the run
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"default:ENERGY").digest()[:8], "little")
    assert stream_key("ENERGY") == expected


def test_scale_tier_claims_are_tiers_of_registered_claims():
    for claim in registry.SCALE_CLAIMS:
        assert claim.id in registry.SPECS_BY_ID and claim.tier == "scale"
        assert claim_configurations(claim, 0, 1)  # every scale claim samples (no position lookup)


def test_a_claim_without_a_tier_refuses_it():
    spec = _toy_spec("TOY")
    with pytest.raises(ValueError, match="no scale tier"):
        spec.at("scale")
    with pytest.raises(ValueError, match="tier must be one of"):
        spec.at("nonsense")


def test_ids_are_unique_and_claims_are_keyword_built():
    ids = [s.id for s in registry.SPECS]
    assert len(ids) == len(set(ids))
    with pytest.raises(TypeError):
        ClaimSpec("X", "s", "p", "n", "t", None)  # noqa - keyword-only by design
    assert all(dataclasses.is_dataclass(s) for s in registry.SPECS)


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_theory_imports_nothing_from_verify():
    """Layering: the derivations (theory/) do not depend on the numerical core or the campaign, so
    there is no import circle between the two packages."""
    for path in sorted((ROOT / "theory").glob("*.py")):
        bad = {name for name in _imports(path) if name.split(".")[0] == "verify"}
        assert not bad, f"{path.name} imports {bad}"


def test_no_module_above_600_lines():
    for package in ("verify", "theory"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().count("\n")
            assert lines <= 600, f"{path.relative_to(ROOT)} has {lines} lines"
