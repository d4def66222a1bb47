"""The hand-written mutants (mutation/hand_mutants.py) stay applicable: every anchor text occurs
exactly once in its file, and every mutant changes it (a catalogue that drifted would silently
test nothing)."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "mutation"))

from hand_mutants import MUTANTS  # noqa: E402


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_anchor_occurs_once(name):
    path, old, new = MUTANTS[name]
    text = (ROOT / path).read_text()
    assert text.count(old) == 1, f"{name}: anchor found {text.count(old)} times in {path}"
    assert old != new, name
