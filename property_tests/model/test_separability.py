"""The separability verdict of the cross-entropy (verify/separability.py, ShallowProblem.separability)
against an independent linear program, and the certificates that replace the LP where they exist.

Found by outside testers: one cross-entropy descent step at m = 64, m_y = 10, n = 2000 took 42 s,
nearly all of it the separability LP (n (m_y - 1) = 18000 rows of 129 nonzeros). Non-separable
and separable data are now decided by certificates from the Newton solve that L* needs anyway;
the LP is solved only when neither exists.
"""

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import verify
from verify import separability


def reference_status(Phi, labels, m_y):
    """The verdict by definition, pair by pair: pair (k, i) is strict iff max (D_{y_i} - D_k).phi_i
    subject to every margin >= 0 and that one <= 1 reaches 1 (it is 0 otherwise: the cone is
    closed under scaling). One small dense LP per pair; nothing from verify."""
    m, n = Phi.shape
    rows = []
    pairs = [(k, i) for i in range(n) for k in range(m_y) if k != labels[i]]
    for k, i in pairs:
        row = np.zeros((m_y, m))
        row[labels[i]] += Phi[:, i]
        row[k] -= Phi[:, i]
        rows.append(row.ravel())
    M = np.array(rows)
    scale = np.abs(M).max(axis=1, keepdims=True)
    M = M / np.where(scale > 0, scale, 1.0)
    strict = []
    for p in range(len(pairs)):
        A_ub = np.vstack([-M, M[p : p + 1]])
        b_ub = np.concatenate([np.zeros(len(pairs)), [1.0]])
        res = scipy.optimize.linprog(-M[p], A_ub=A_ub, b_ub=b_ub, bounds=(None, None), method="highs")
        assert res.status == 0, res.message
        strict.append(-res.fun > 0.5)
    if not any(strict):
        return "non-separable"
    return "separable" if all(strict) else "partially separable"


@st.composite
def labelled_data(draw):
    """Small data sets of every kind: random labels (any verdict), labels of a linear rule
    (separable), every point under two labels (non-separable), and a rule with one duplicated
    point under another label (partially separable, usually)."""
    seed = draw(st.integers(0, 2**32 - 1))
    m, m_y, n = draw(st.integers(1, 4)), draw(st.integers(2, 4)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["random", "rule", "duplicated", "one duplicate"]))
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((m, n)) * draw(st.sampled_from([1e-6, 1.0, 1e6]))
    if kind == "random":
        labels = rng.integers(0, m_y, n)
    else:
        labels = np.argmax(rng.standard_normal((m_y, m)) @ Phi, axis=0)
        if kind == "duplicated":
            Phi = np.concatenate([Phi, Phi], axis=1)
            labels = np.concatenate([labels, (labels + 1) % m_y])
        elif kind == "one duplicate":
            Phi = np.concatenate([Phi, Phi[:, :1]], axis=1)
            labels = np.concatenate([labels, [(labels[0] + 1) % m_y]])
    return Phi, labels, m_y


@settings(max_examples=60, deadline=None)
@given(labelled_data())
def test_verdict_matches_the_definition(data):
    Phi, labels, m_y = data
    problem = verify.ShallowProblem(Phi, np.eye(m_y)[:, labels], "cross_entropy")
    assert problem.separability.status == reference_status(Phi, labels, m_y)


@settings(max_examples=25, deadline=None)
@given(labelled_data())
def test_the_exact_lp_matches_the_definition(data):
    """The fallback LP alone (what decides when no certificate is found)."""
    Phi, labels, m_y = data
    assert separability.separability_lp(Phi, np.eye(m_y)[:, labels]).status == reference_status(Phi, labels, m_y)


@pytest.mark.parametrize("kind", ["non-separable", "separable"])
def test_certificates_decide_without_the_lp(kind, monkeypatch):
    """Random labels on many samples (non-separable) and labels of a linear rule (separable),
    m = 16, m_y = 5, n = 400: decided by a certificate; the LP (7 s before at this size) is not
    solved. The verdict is also the definition's on a subsample-free argument: a separating W is
    checked here directly, and L* is attained (a stationary point) for the non-separable data."""

    def no_lp(Phi, Y):
        raise AssertionError("the separability LP was solved")

    monkeypatch.setattr(verify.losses.cross_entropy, "separability_lp", no_lp)
    rng = np.random.default_rng(7)
    m, m_y, n = 16, 5, 400
    Phi = rng.standard_normal((m, n)) / np.sqrt(n)
    labels = (
        rng.integers(0, m_y, n) if kind == "non-separable" else np.argmax(rng.standard_normal((m_y, m)) @ Phi, axis=0)
    )
    problem = verify.ShallowProblem(Phi, np.eye(m_y)[:, labels], "cross_entropy")
    assert problem.separability.status == kind
    if kind == "non-separable":
        grad = problem.gradient(problem.minimiser)
        assert np.linalg.norm(grad) <= 1e-10 * n
        assert problem.separability.decided_by == "dual certificate"
    else:
        assert problem.optimal_loss == 0.0 and problem.separability.decided_by == "separating W"


def test_the_certificates_refuse_what_they_cannot_prove():
    """A W that leaves one margin at zero is not a separating certificate; -G of a
    partially separable data set (class 2 alone at phi < 0) is not a dual certificate, whatever
    W it comes from (its probabilities for the strict pairs are > 0 but the projection breaks
    the sign pattern, or Newton did not converge)."""
    Phi = np.array([[1.0, 2.0, -1.0]])
    labels = np.array([0, 0, 1])
    W = np.array([[1.0], [0.0]])
    assert separability.separating_certificate(Phi, labels, W)
    assert not separability.separating_certificate(np.array([[1.0, 0.0, -1.0]]), labels, W)
    Phi = np.array([[1.0, 1.0, -1.0, 2.0]])
    labels = np.array([0, 1, 2, 0])
    problem = verify.ShallowProblem(Phi, np.eye(3)[:, labels], "cross_entropy")
    for W in (np.zeros((3, 1)), np.array([[1.0], [0.5], [-3.0]])):
        assert not separability.dual_certificate(Phi, labels, problem.output_gradient(W))
    assert problem.separability.status == "partially separable"
    assert problem.separability.decided_by == "linear program"
