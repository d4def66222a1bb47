"""The hand-written mutants (mutation/hand_mutants.py) stay applicable: every anchor text occurs
exactly once in its file, and every mutant changes it (a catalogue that drifted would silently
test nothing). Both sets are checked: the older MUTANTS and the ACCEPTANCE_MUTANTS."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "mutation"))

from hand_mutants import ACCEPTANCE_MUTANTS, MUTANTS  # noqa: E402

CATALOGUE = [("MUTANTS", name, spec) for name, spec in sorted(MUTANTS.items())] + [
    ("ACCEPTANCE_MUTANTS", name, spec) for name, spec in sorted(ACCEPTANCE_MUTANTS.items())
]


@pytest.mark.parametrize(("catalogue", "name", "spec"), CATALOGUE, ids=[f"{c}:{n}" for c, n, _ in CATALOGUE])
def test_each_mutant_anchor_occurs_once(catalogue, name, spec):
    path, old, new = spec
    text = (ROOT / path).read_text()
    assert text.count(old) == 1, f"{catalogue} {name}: anchor found {text.count(old)} times in {path}"
    assert old != new, name


def test_the_two_sets_do_not_share_names():
    # the runner looks a name up in both sets: a shared name would run only one of them
    assert not set(MUTANTS) & set(ACCEPTANCE_MUTANTS)
