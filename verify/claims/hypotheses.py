"""The hypotheses of the theorems (docs/theory.md): every public entry point refuses an input
outside them, naming the argument, and accepts the valid call (see :mod:`verify.hypotheses`)."""

from __future__ import annotations

from ..hypotheses import CASES as HYPOTHESIS_CASES
from ..hypotheses import check_case, names_argument, run_hypotheses, sample_hypotheses
from ..results import DERIVED, condition, outcome
from .spec import ClaimSpec, Tier


# ---- the hypotheses ------------------------------------------------------------------------
def check_hypotheses(config):
    """One entry point, one argument outside the theorems' hypotheses (see verify.hypotheses):
    the valid call is accepted, the invalid one refused by a ValueError naming the argument."""
    accepted, argument, label, refused = run_hypotheses(config)
    entry = config["entry"]
    return outcome(
        [
            condition(f"{entry} accepts the valid call (gamma = {config['gamma']:.3g})", accepted == "accepted"),
            condition(f"{entry} refuses it with a ValueError naming the argument", names_argument(refused, argument)),
        ],
        f"{argument}: {label} -> {refused[:160]}"
        + ("" if accepted == "accepted" else f"; valid call: {accepted[:160]}"),
    )


SPECS = [
    ClaimSpec(
        id="HYPOTHESES",
        theorem="hypotheses",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="inputs outside the theorems' hypotheses (gamma not in (0, 1), A not square, shapes that do "
        "not fit, NaN or inf, cross-entropy targets not one-hot, lr, T, steps or layers out of range) "
        "are refused by every public entry point with a ValueError naming the argument; the valid "
        "call is accepted",
        default=Tier(
            sample=sample_hypotheses,
            check=check_hypotheses,
            quick=len(HYPOTHESIS_CASES),
            thorough=10 * len(HYPOTHESIS_CASES),
            check_replay=check_case,
        ),
    )
]
