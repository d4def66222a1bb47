"""The discrete Theorem 1 (docs/theory.md, section 9) as the campaign checks it (claim GD-RATE): true
at every sampled configuration, two-sided at m = 1, and failing when the step or the core is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify import reference as R
from verify.claims import CLAIMS_BY_ID
from verify.claims import descent as D
from verify.claims.spec import configuration_stream
from verify.dynamics import gradient_descent
from verify.losses import ShallowProblem

CLAIM = CLAIMS_BY_ID["GD-RATE"]


def configs(seed: int, count: int) -> list[dict]:
    rng = configuration_stream(CLAIM, seed)
    return [CLAIM.sample(rng, i) for i in range(count)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_claim_holds_at_every_quick_configuration(seed):
    for config in configs(seed, CLAIM.quick):
        result = CLAIM.check(config)
        assert result.passed, (config, result.failing)
        names = [m.name for m in result.measurements]
        assert any("above the bound" in n for n in names) and any("1.05 x is violated" in n for n in names)


@settings(max_examples=25, deadline=None)
@given(x=st.floats(0.05, 1.9), gamma=st.floats(0.1, 0.9), seed=st.integers(0, 2**16))
def test_at_width_one_the_step_bound_is_exact(x, gamma, seed):
    """m = 1 (reference values): E_{k+1} = (1 - x)^2 E_k for x = lr kappa lambda, so the simple
    bound E_{k+1} <= (1 - x) E_k holds iff x <= 1 (beyond rounding on either side)."""
    rng = np.random.default_rng(seed)
    Phi, Y, B = rng.standard_normal((1, 4)), rng.standard_normal((2, 4)), rng.standard_normal((2, 1))
    rate = float(np.sum(Phi * Phi)) / (1 - gamma) ** 2
    lr = x / rate
    run = gradient_descent(np.zeros((1, 1)), B, ShallowProblem(Phi, Y), gamma=gamma, lr=lr, steps=1)
    E0, E1 = (R.square_excess(R.end_to_end_weight(np.zeros((1, 1)), b, gamma), Phi, Y) for b in (B, run.B))
    assert abs(E1 - (1 - x) ** 2 * E0) <= 1e-10 * E0
    margin = (1 - x) * E0 - E1  # = x (1 - x) E0
    if x < 0.999:
        assert margin > 1e-9 * E0
    elif x > 1.001:
        assert margin < -1e-9 * E0


def test_a_step_above_the_bound_fails_the_claim(monkeypatch):
    """With lr = 1.05 / M in place of 1/2 of it, the run is no longer below the bound."""
    monkeypatch.setattr(D, "BELOW", 1.05)
    monkeypatch.setattr(D, "SUP_SAFETY", 1.0)
    failed = [not CLAIM.check(c).passed for c in configs(0, 4)]
    assert any(failed)


def test_a_wrong_core_rate_fails_the_claim(monkeypatch):
    """The core's lambda(A_k) 5% too large (a wrong rate constant in the records) is caught."""

    def wrong(*args, **kwargs):
        run = gradient_descent(*args, **kwargs)
        run.rate[:] = run.rate * 1.05
        return run

    monkeypatch.setattr(D, "gradient_descent", wrong)
    result = CLAIM.check(configs(0, 1)[0])
    assert not result.passed and any("lambda" in n for n in result.failing)


def test_a_wrong_core_descent_step_fails_the_claim(monkeypatch):
    """A descent that takes twice the step it reports (lr doubled inside the core) leaves the bound."""

    def wrong(A, B, problem, *, gamma, lr, steps, **kwargs):
        return gradient_descent(A, B, problem, gamma=gamma, lr=2.2 * lr, steps=steps, **kwargs)

    monkeypatch.setattr(D, "gradient_descent", wrong)
    assert any(not CLAIM.check(c).passed for c in configs(0, 2))
