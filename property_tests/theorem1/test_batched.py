"""Batched evaluation equals the one-configuration path."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import verify
from verify.batched import (batched_gradient_descent, batched_gradient_flow, batched_loss_and_grad,
                            batched_rate_constant)
from verify.claims import CLAIMS_BY_ID
from verify.claims.gradients import check_conservation, check_conservation_batch
from verify.campaign import claim_configurations
from strategies import make_case, shapes

EPS = np.finfo(float).eps


def _stack(cases):
    return [np.stack([getattr(c, name) for c in cases]) for name in ("A", "B", "Phi", "Y")]


@given(shapes(), st.integers(1, 6), st.sampled_from(["square", "cross_entropy"]), st.integers(0, 2**31))
def test_batched_matches_single(shape, k, loss, seed):
    m, m_y, n = shape
    m_y = max(m_y, 2) if loss == "cross_entropy" else m_y
    rng = np.random.default_rng(seed)
    cases = [make_case(int(s), m, m_y, n, float(g), loss) for s, g in zip(rng.integers(0, 2**31, k), rng.uniform(0.05, 0.95, k))]
    A, B, Phi, Y = _stack(cases)
    gammas = np.array([c.gamma for c in cases])
    L, dA, dB = batched_loss_and_grad(A, B, Phi, Y, gammas, loss)
    for i, c in enumerate(cases):
        L1, dA1, dB1 = verify.loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=loss)
        cond = (1 + c.gamma) / (1 - c.gamma)
        # Same formulas, different LAPACK driver (gesv vs getrf/getrs): agreement to cond * eps.
        tol = 100 * m * cond * EPS
        assert L[i] == pytest.approx(L1, rel=tol, abs=tol)
        assert np.abs(dA[i] - dA1).max() <= tol * max(1.0, np.abs(dA1).max(), np.abs(dB1).max() * 10)
        assert np.abs(dB[i] - dB1).max() <= tol * max(1.0, np.abs(dB1).max())
    lam = batched_rate_constant(A, gammas)
    assert np.allclose(lam, [verify.rate_constant(c.A, gamma=c.gamma) for c in cases], rtol=1e-12)


def test_batched_flow_and_descent_match_single_runs():
    cases = [make_case(s, 3, 2, 4, 0.6) for s in range(4)]
    A, B, Phi, Y = _stack(cases)
    t, A_t, B_t = batched_gradient_flow(A, B, Phi, Y, 0.6, T=1.0, rtol=1e-10, t_eval=[0.0, 1.0])
    for i, c in enumerate(cases):
        single = verify.gradient_flow(c.A, c.B, c.Phi, c.Y, gamma=0.6, T=1.0, rtol=1e-10, t_eval=np.array([0.0, 1.0]))
        # Both runs meet rtol 1e-10 per configuration; they differ by the two global errors.
        assert np.abs(A_t[-1, i] - single.A).max() <= 1e-7 * max(1.0, np.abs(single.A).max())
    _, _, losses = batched_gradient_descent(A, B, Phi, Y, 0.6, lr=1e-2, steps=20)
    single = verify.gradient_descent(cases[0].A, cases[0].B, cases[0].Phi, cases[0].Y, gamma=0.6, lr=1e-2, steps=20)
    np.testing.assert_allclose(losses[:, 0], single.loss, rtol=1e-10)


def test_batched_validation():
    with pytest.raises(ValueError, match="stack shapes do not fit"):
        batched_loss_and_grad(np.zeros((2, 3, 3)), np.zeros((2, 2, 3)), np.zeros((2, 4, 5)), np.zeros((2, 2, 5)), 0.5)
    with pytest.raises(ValueError, match="gamma"):
        batched_loss_and_grad(np.zeros((1, 2, 2)), np.zeros((1, 1, 2)), np.zeros((1, 2, 3)), np.zeros((1, 1, 3)), 1.5)
    with pytest.raises(ValueError, match="A must be a real 3-D"):
        batched_loss_and_grad(np.zeros((2, 2)), np.zeros((1, 1, 2)), np.zeros((1, 2, 3)), np.zeros((1, 1, 3)), 0.5)


def test_campaign_batch_path_agrees_with_the_loop():
    """Same-shape configurations at m >= 2: the batched check and the one-at-a-time check give
    the same conservation measurements, and the batched values equal the single path's."""
    base = next(c for c in claim_configurations(CLAIMS_BY_ID["CONSERVATION"], 0, 50) if c["m"] >= 3)
    same = [dict(base, seed=base["seed"] + k) for k in range(4)]
    batch = check_conservation_batch(same)
    loop = [check_conservation(c) for c in same]
    for b, single in zip(batch, loop):
        assert b.passed and single.passed
        by_name = {m.name: m for m in b.measurements}
        for meas in single.measurements:  # the conservation measurements, computed both ways
            assert by_name[meas.name].value <= meas.tolerance
        values = [m for m in b.measurements if m.name.startswith("batched")]
        assert len(values) == 4 and all(m.value <= m.tolerance for m in values)  # L, dA, dB, the flow


def test_campaign_batch_path_fails_on_a_wrong_batched_flow(monkeypatch):
    """The batched flow is judged per configuration: a flow whose second configuration ends 1e-4
    relative off (a state mix-up, a wrong right-hand side) fails that configuration."""
    from verify import batched

    original = batched.batched_gradient_flow

    def wrong(*args, **kwargs):
        t, A_t, B_t = original(*args, **kwargs)
        A_t = A_t.copy()
        A_t[-1, 1] *= 1 + 1e-4
        return t, A_t, B_t

    monkeypatch.setattr(batched, "batched_gradient_flow", wrong)
    base = next(c for c in claim_configurations(CLAIMS_BY_ID["CONSERVATION"], 0, 50) if c["m"] >= 3)
    outcomes = check_conservation_batch([dict(base, seed=base["seed"] + k) for k in range(3)])
    assert [o.passed for o in outcomes] == [True, False, True]


def test_campaign_batch_path_fails_on_a_wrong_batched_gradient(monkeypatch):
    """The batch path compares values: a batched dL/dB with U^{-1} in place of U^{-T} fails."""
    from verify import batched

    original = batched.batched_loss_and_grad

    def wrong(A, B, Phi, Y, gamma, loss="square"):
        L, dA, dB = original(A, B, Phi, Y, gamma, loss)
        return L, dA, dB.transpose(0, 2, 1) if dB.shape[1] == dB.shape[2] else 1.001 * dB

    monkeypatch.setattr(batched, "batched_loss_and_grad", wrong)
    base = next(c for c in claim_configurations(CLAIMS_BY_ID["CONSERVATION"], 0, 50) if c["m"] >= 3)
    assert not any(o.passed for o in check_conservation_batch([dict(base, seed=base["seed"] + k) for k in range(3)]))
