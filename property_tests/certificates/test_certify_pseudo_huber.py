"""STATE-WISE certified for the pseudo-Huber loss (verify.certify.certify_state_wise, loss="pseudo_huber").

The statement ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa_Phi (1 + L)^-3 lambda(A) L is finite only where
L* = 0 is provable (n <= m, rank Phi = n): the certificate must prove it there, enclose the core's
float64 gradient and loss, turn a bound raised 1e-6 above its ratio into a certified violation,
and refuse n > m with the rule.
"""

import numpy as np
import pytest
from certify_support import EPS, assert_encloses, assert_matrix_encloses, cond_bound
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import budget, make_case

import verify
from verify import certify as C
from verify.certify import plan
from verify.gradients import DEQObjective
from verify.sampling import tight_state_wise_case


def _case(shape, seed=0, gamma=0.9):
    return make_case(seed, *shape, gamma, "pseudo_huber")


@pytest.mark.parametrize("shape", [(8, 3, 5), (6, 2, 6), (3, 1, 1), (40, 5, 20)])
def test_pseudo_huber_state_wise_is_certified_and_encloses_the_float_values(shape):
    case = _case(shape)
    cert = C.certify_state_wise(case.A, case.B, case.Phi, case.Y, 0.9, loss="pseudo_huber")
    assert cert.status == C.CERTIFIED, cert.reason
    m, m_y, n = shape
    problem = verify.ShallowProblem(case.Phi, case.Y, "pseudo_huber")
    core = DEQObjective(problem, gamma=0.9).evaluate(case.A, case.B, with_excess=False)
    # float64 gradients: products and LU solves with U, the entrywise r / hypot(1, r) to a few eps
    tol = 100 * (m + n) * cond_bound(0.9) ** 2 * EPS
    b = cert.balls
    assert_matrix_encloses(b["dL_dA"], core.dA, tol * np.abs(core.dA).max(), "dL/dA")
    assert_matrix_encloses(b["dL_dB"], core.dB, tol * np.abs(core.dB).max(), "dL/dB")
    # L* = 0 here, so the excess ball is the loss itself
    assert_encloses(b["excess"], core.loss, tol * core.loss, "L")
    kappa_phi, enc = verify.reference.pl_constant(case.Phi), cert.enclosures["kappa_Phi"]
    slack = 10 * max(m, n) * EPS * np.linalg.norm(case.Phi, 2) ** 2  # the SVD's backward error
    assert enc.lo - slack <= kappa_phi <= enc.hi + slack
    assert any("L* = 0" in it.statement for it in cert.items)


def test_pseudo_huber_state_wise_kappa_is_the_sublevel_constant():
    # kappa = kappa_Phi / (1 + L)^3 (docs/theory.md, section 5), judged against the reference's own numbers
    case = tight_state_wise_case(0, 8, 3, 5, 0.9)
    A, B, Phi, Y = case.A, 0.3 * case.B, 0.3 * case.Phi, 0.3 * case.Y
    cert = C.certify_state_wise(A, B, Phi, Y, 0.9, loss="pseudo_huber")
    L = float(verify.reference.output_loss(verify.reference.end_to_end_weight(A, B, 0.9) @ Phi, Y, "pseudo_huber"))
    expected = verify.reference.pl_constant(Phi) / (1 + L) ** 3
    assert abs(cert.enclosures["kappa"].mid / expected - 1) < 1e-12
    assert L > 1e-3  # large enough that (1 + L)^-2 or ^-4 would be off by more than the tolerance


@pytest.mark.parametrize("scale", [0.3, 0.1])
def test_pseudo_huber_bound_raised_by_1e_minus_6_is_a_certified_violation(scale):
    case = tight_state_wise_case(0, 8, 3, 5, 0.9)
    args = (case.A, scale * case.B, scale * case.Phi, scale * case.Y, 0.9)
    ratio = C.certify_state_wise(*args, loss="pseudo_huber").enclosures["ratio"].mid
    assert 1 < ratio < 1.3  # near-tight: the bound is attained as L -> 0
    for factor, expected in [(ratio * (1 + 1e-6), C.VIOLATED), (ratio * (1 - 1e-6), C.CERTIFIED)]:
        assert C.certify_state_wise(*args, bound_factor=factor, loss="pseudo_huber").status == expected


def test_pseudo_huber_certificate_needs_n_at_most_m_and_a_known_loss():
    case = _case((3, 2, 5))
    with pytest.raises(ValueError, match="n <= m"):
        C.certify_state_wise(case.A, case.B, case.Phi, case.Y, 0.9, loss="pseudo_huber")
    with pytest.raises(ValueError, match="loss must be"):
        C.certify_state_wise(case.A, case.B, case.Phi, case.Y, 0.9, loss="huber")
    config = next(e for e in plan.entries(0, quick=True) if e.get("loss"))
    with pytest.raises(ValueError, match=r"config\['loss'\]"):
        plan.check_config(config | {"loss": "huber"})


def test_pseudo_huber_with_rank_deficient_data_is_not_certified():
    case = _case((6, 2, 4))
    Phi = case.Phi.copy()
    Phi[:, 3] = Phi[:, 2]
    cert = C.certify_state_wise(case.A, case.B, Phi, case.Y, 0.9, loss="pseudo_huber")
    assert cert.status == C.NOT_CERTIFIED
    assert any(it.kind == "positive definite" and it.status == C.UNDECIDED for it in cert.items)


@given(st.integers(0, 10**6), st.integers(2, 6), st.integers(1, 4), st.integers(1, 6), st.floats(0.05, 0.95))
@budget(10, 100)
def test_pseudo_huber_state_wise_is_certified_on_random_states(seed, m, m_y, n, gamma):
    assume(n <= m)
    case = make_case(seed, m, m_y, n, gamma, "pseudo_huber")
    cert = C.certify_state_wise(case.A, case.B, case.Phi, case.Y, gamma, loss="pseudo_huber")
    assert cert.status != C.VIOLATED  # the theorem is true
    if np.linalg.svd(case.Phi, compute_uv=False).min() > 1e-6:
        assert cert.status == C.CERTIFIED, cert.reason


def test_the_plan_holds_pseudo_huber_entries_with_canaries():
    for quick in (True, False):
        ph = [e for e in plan.entries(0, quick=quick) if e.get("loss") == "pseudo_huber"]
        assert any(e["kind"] == "canary" for e in ph) and any(e["kind"] == "tight" for e in ph)
        for config in ph:
            assert plan.judge(config, plan.run_entry(config)), config["label"]
