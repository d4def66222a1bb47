"""The structured metric of the certificates (verify/certify/metric.py, kronecker.py) against the
explicit (m m_y)^2 matrices at small sizes."""

import numpy as np
import pytest
from certify_support import EPS, assert_encloses, state
from flint import arb, arb_mat, ctx

import verify
from verify import certify as C
from verify.certify import ball_model, kronecker, metric, proof


# ---- the structured metric against the explicit (m m_y)^2 matrices (small sizes) -------------------------
def _structured(shape, seed=0, scale=1.0):
    A, B, Phi, Y = state(shape, seed)
    st = ball_model.BallState(A, B, Phi, Y, 0.9)
    return st, metric.StructuredMetric(st, scale)


def _unvec(v, rows):
    cols = v.nrows() // rows
    return arb_mat([[v[i * rows + k, 0] for i in range(cols)] for k in range(rows)])


@pytest.mark.parametrize("shape", [(8, 2, 4), (3, 6, 10), (5, 3, 8), (1, 3, 5), (4, 1, 2)])
@pytest.mark.parametrize("scale", [1.0, 1.1])
def test_structured_products_overlap_the_explicit_metric(shape, scale):
    """K X, K^{-1} X and H X by the Kronecker factors overlap (K vec X), K^{-1} (vec X) and H vec X with
    the explicit ball matrices (both enclose the same exact numbers), and K^{-1} K X encloses X."""
    with ctx.workprec(106):
        st, K = _structured(shape, scale=scale)
        X = C.ball_matrix(np.random.default_rng(1).standard_normal((shape[1], shape[0])))
        Kx = st.metric(scale)
        for structured, explicit in (
            (K.apply(X), Kx * C.balls.ball_vec(X)),
            (K.apply_inverse(X), Kx.inv() * C.balls.ball_vec(X)),
            (K.apply_hessian(X), st.hessian() * C.balls.ball_vec(X)),
        ):
            explicit = _unvec(explicit, shape[1])
            assert all(a.overlaps(b) for a, b in zip(structured.entries(), explicit.entries()))
        assert all(b.contains(a) for a, b in zip(X.entries(), K.apply_inverse(K.apply(X)).entries()))


@pytest.mark.parametrize(
    "shape, seed", [((8, 2, 4), 0), ((5, 3, 8), 1), ((6, 2, 3), 2), ((3, 6, 10), 0), ((4, 4, 8), 3)]
)
def test_structured_eigenvalue_enclosures_overlap_the_explicit_ones(shape, seed):
    """lambda_min(K) (Temple or the Schur bound) overlaps lambda_min_enclosure of the explicit K, and is
    narrow (1e-20 relative at 106 bits) where a gap is proved; Lambda = 1/dt_max overlaps lambda_max of the
    explicit Xi^T K Xi (its nonzero spectrum is that of K^{1/2} H K^{1/2}); lambda_max(K) and lambda_min(G)
    overlap the explicit enclosures (G from the explicit K^{-1}); the float64 reference lies in both."""
    A, B, Phi, Y = state(shape, seed)
    with ctx.workprec(106):
        st, K = _structured(shape, seed)
        lam, how = K.lambda_min()
        Kx = st.metric()
        explicit = C.lambda_min_enclosure(Kx)
        assert lam.overlaps(explicit), (lam, explicit)
        if "Temple" in how:  # quadratic in the float64 eigenvector's error (~1e-14): ~1e-25 relative
            assert lam.rad() <= 1e-20 * abs(lam)
        Xi = C.ball_matrix(np.kron(Phi, np.eye(shape[1])))
        step = K.step_bound()
        Lam_explicit = C.lambda_max_enclosure(Xi.transpose() * Kx * Xi)
        assert step["Lambda"].overlaps(Lam_explicit), (step["Lambda"], Lam_explicit)
        lam_max, _ = K.lambda_max()
        assert lam_max.overlaps(C.lambda_max_enclosure(Kx))
        dt = arb(0.5) / step["Lambda"].mid()
        found = K.lambda_min_G(arb(dt.mid()))
        if found is not None:
            G = Kx.inv() / arb(dt.mid()) - st.hessian()
            assert found[0].overlaps(C.lambda_min_enclosure(G)), (found[0], C.lambda_min_enclosure(G))
    K_f = verify.reference.metric(A, B, 0.9)
    W = verify.reference.end_to_end_weight(A, B, 0.9)
    H_f = verify.reference.shallow_hessian(W, Phi, Y, "square")
    cond = np.linalg.cond(K_f)
    assert_encloses(lam, np.linalg.eigvalsh(K_f)[0], 100 * cond * EPS * np.linalg.norm(K_f, 2), "lambda_min(K)")
    Lam_f = 1 / verify.reference.admissible_step_bound(K_f, H_f)
    assert_encloses(step["Lambda"], Lam_f, 100 * cond * EPS * Lam_f, "1/dt_max")


@pytest.mark.parametrize("shape, seed", [((8, 2, 4), 0), ((5, 3, 8), 1)])
def test_structured_temple_step_refuses_a_gap_it_cannot_prove(shape, seed, monkeypatch):
    """Temple's bound needs lambda_2 >= nu; the float64 helpers only suggest nu. Fed a false "next
    eigenvalue" (nu between lambda_2 and lambda_3) and a poor vector x = v_1 + v_2 / 3, Temple alone
    would put lambda_min(K) above its true value (x^T (K - lambda_1) x > 0 and nu - lambda_1 > lambda_2 -
    lambda_1 make the bound exceed lambda_1); the Schur bound must refuse the gap, and the enclosure must
    still hold lambda_min of the explicit K."""
    with ctx.workprec(106):
        st, K = _structured(shape, seed)
        Kx = st.metric()
        w, V = np.linalg.eigh(C.balls.mid_array(Kx))
        assert w[2] - w[1] > 1e-3 * w[2]  # the lie below needs distinct lambda_2 < lambda_3
        lie = w[0] + 8 * (0.5 * (w[1] + w[2]) - w[0])  # _extreme puts nu at theta + (next - theta) / 8
        x = (V[:, 0] + V[:, 1] / 3).reshape(shape[0], shape[1]).T
        monkeypatch.setattr(metric.StructuredMetric, "_float_extreme", lambda self, which, step=1.0: (w[0], lie, x))
        lam, how = K.lambda_min()
        assert "Temple" not in how, how
        assert lam.overlaps(C.lambda_min_enclosure(Kx)), (lam, C.lambda_min_enclosure(Kx))


def _random_blocks(rng, m, my, negatives, coupling):
    """E with ``negatives`` eigenvalues -1/2 (the rest in [1, 2]) and PSD blocks of size ``coupling``."""
    V = np.linalg.qr(rng.standard_normal((m, m)))[0]
    e = np.concatenate([-0.5 * np.ones(negatives), rng.uniform(1, 2, m - negatives)])
    E = (V * e) @ V.T
    D = np.array([coupling * (R @ R.T) for R in rng.standard_normal((m, my, my))])
    return E, D


@pytest.mark.parametrize("seed", range(6))
def test_the_schur_bound_never_proves_a_false_inertia(seed):
    """prove_inertia(E, D, k, count) > 0 only when Z = E (x) I + blockdiag(D) has at most ``count``
    eigenvalues <= 0 (float64 count of the dense Z, well separated from 0 by construction), at every k;
    and it does prove a true count when the coupling is small (it is not vacuous)."""
    rng = np.random.default_rng(seed)
    m, my = 7, 3
    for negatives, coupling in ((0, 0.1), (1, 0.1), (1, 2.0), (2, 0.1), (3, 1.0)):
        E, D = _random_blocks(rng, m, my, negatives, coupling)
        w = np.linalg.eigvalsh(kronecker.float_blocks(E, D))
        nonpositive = int(np.sum(w <= 0))
        assert np.min(np.abs(w)) > 1e-6
        for k in (1, 2, 4, m):
            for count in (0, 1):
                try:
                    margin = kronecker.prove_inertia(C.ball_matrix(E), [C.ball_matrix(x) for x in D], k, count)
                except proof.Undecided:
                    continue
                if margin > 0:
                    assert nonpositive <= count, (negatives, coupling, k, count, w[:4])
                elif k == m and nonpositive <= count:
                    pytest.fail(f"the dense case failed to prove a true count {count}: {w[:4]}")
    for my, negatives, count in ((1, 1, 1), (3, 0, 0)):  # one negative eigenvalue of Z (m_y = 1); Z > 0
        E, D = _random_blocks(np.random.default_rng(seed), m, my, negatives, 0.01)
        assert kronecker.prove_inertia(C.ball_matrix(E), [C.ball_matrix(x) for x in D], 1, count) > 0


def test_temple_bound_is_below_the_smallest_eigenvalue_and_needs_the_gap():
    rng = np.random.default_rng(0)
    Qm = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    lam = np.array([1.0, 1.5, 2.0, 3.0, 4.0, 5.0])
    K = (Qm * lam) @ Qm.T
    x = Qm[:, 0] + 1e-4 * rng.standard_normal(6)
    with ctx.workprec(106):
        Kb, xb = C.ball_matrix(K), C.ball_matrix(x[:, None])
        sigma = arb(1.0)
        r = Kb * xb - xb * sigma
        q0, q1, q2 = (xb.transpose() * xb)[0, 0], (xb.transpose() * r)[0, 0], (r.transpose() * r)[0, 0]
        low = kronecker.temple_lower(q0, q1, q2, arb(1.5) - sigma)
        assert low is not None and low + sigma <= 1.0 and low + sigma > 1 - 1e-5  # ||r||^2 ~ 1e-7
        # nu below the Rayleigh quotient: no bound
        assert kronecker.temple_lower(q0, q1, q2, arb(-0.5)) is None
