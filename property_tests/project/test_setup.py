"""The square-loss setup of ShallowProblem (CholeskyQR2 with a Householder fallback) against the
previous implementation (Householder QR of Phi^T and LAPACK's SVD-based gelsd), kept below as the
reference, on well-conditioned, ill-conditioned and rank-deficient features, m < n and m > n."""

import numpy as np
import pytest
import scipy.linalg as sla

import verify
from verify import rounding
from verify.sampling import orthonormal_columns

EPS = np.finfo(float).eps


def previous_setup(Phi, Y):
    """ShallowProblem's square-loss setup before CholeskyQR2: (R, W*, L*, kappa)."""
    m, n = Phi.shape
    R = sla.qr(Phi.T, mode="r")[0][: min(n, m)]
    W_star = sla.lstsq(Phi.T, Y.T, lapack_driver="gelsd")[0].T
    residual = W_star @ Phi - Y
    s = sla.svdvals(R)
    kappa = float(np.min(s[s > s.max() * max(m, n) * EPS]) ** 2)
    return R, W_star, 0.5 * float(np.sum(residual * residual)), kappa


def features(rng, m, n, decades, rank=None, repeats=1):
    """m x n features with singular values log-spaced over ``decades`` (rank ``rank``), whose
    columns are ``repeats`` copies of n / repeats distinct ones when repeats > 1."""
    distinct = n // repeats
    r = min(m, distinct) if rank is None else rank
    s = np.logspace(0, -decades, r)
    base = (orthonormal_columns(rng, m, r) * s) @ orthonormal_columns(rng, distinct, r).T
    return np.tile(base, repeats)


CASES = {
    # name: (m, n, decades, rank, repeats, expected factorization or None when either may serve)
    "m<n, 3 decades": (12, 150, 3, None, 1, "CholeskyQR2"),
    "m<n, 8 decades": (12, 150, 8, None, 1, None),
    "m<n, 12 decades": (12, 150, 12, None, 1, "Householder QR"),
    "m<n, 6 decades, larger": (40, 800, 6, None, 1, None),
    "m<n, repeated columns (rank 6 < m)": (10, 42, 2, None, 7, "Householder QR"),
    "m<n, repeated columns (full rank)": (10, 48, 2, None, 4, "CholeskyQR2"),
    "m<n<3m (not tall enough for CholeskyQR2)": (10, 25, 2, None, 1, "Householder QR"),
    "m>n (rank n)": (15, 6, 3, None, 1, "Householder QR"),
    "m>n, 9 decades": (15, 6, 9, None, 1, "Householder QR"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("targets", ["random", "realisable"])
def test_setup_agrees_with_the_previous_implementation(name, targets):
    m, n, decades, rank, repeats, expected = CASES[name]
    rng = np.random.default_rng(list(CASES).index(name))
    Phi = features(rng, m, n, decades, rank, repeats)
    m_y = 3
    # realisable targets Y = W0 Phi have L* = 0: the residual branch of L* (no 1/2 ||Y||^2 - ... )
    Y = rng.standard_normal((m_y, m)) @ Phi if targets == "realisable" else rng.standard_normal((m_y, n))
    problem = verify.ShallowProblem(Phi, Y)
    if expected is not None:
        assert problem.factorization == expected
    R_old, W_old, L_old, kappa_old = previous_setup(Phi, Y)

    s = np.linalg.svd(Phi, compute_uv=False)
    s_max = s.max()
    nonzero = s[s > s_max * max(m, n) * EPS]
    cond = s_max / nonzero.min()
    # Both implementations are backward stable: each factorisation is exact for Phi + F with
    # ||F|| <= (m + n) eps ||Phi||_2 to first order (verify.rounding's model, derived for
    # CholeskyQR2 in verify.losses.square._cholesky_qr2). The tolerances are for two such computations.
    tol_kappa = rounding.kappa_tolerance(s, m, n)
    assert abs(problem.pl_constant - kappa_old) <= tol_kappa, (problem.pl_constant, kappa_old, tol_kappa)

    # L* = 1/2 ||Y - Y P||^2: the projection errs by proj ||Y|| (Wedin), so L* by
    # ||Y - Y P|| proj ||Y|| + (proj ||Y||)^2 / 2 each
    proj = rounding.projection_rounding(s, m, n)
    Y_norm = np.linalg.norm(Y)
    res = np.sqrt(2 * max(L_old, problem.optimal_loss))
    tol_L = 2 * (res * proj * Y_norm + (proj * Y_norm) ** 2)
    assert abs(problem.optimal_loss - L_old) <= tol_L, (problem.optimal_loss, L_old, tol_L)

    # W* = Y Phi^+ (minimum norm): least-squares perturbation theory (Wedin) for a backward
    # error e = (m + n) eps: ||dW|| / ||W|| <= e cond (2 + (cond + 1) ||Y - W Phi|| / (||Phi|| ||W||))
    W_norm = np.linalg.norm(W_old)
    e = (m + n) * EPS
    tol_W = 2 * e * cond * (2 + (cond + 1) * res / (s_max * W_norm)) * W_norm
    assert np.linalg.norm(problem.minimiser - W_old) <= tol_W, (np.linalg.norm(problem.minimiser - W_old), tol_W)
    assert np.linalg.norm(problem.minimiser) <= W_norm * (1 + 2 * e * cond**2)  # minimum norm

    # excess at a random W: E = 1/2 ||D||^2, D = (W - W*) R^T = W Phi - Y P up to the errors of
    # the factor (||F|| ||W - W*||), of the product (m eps ||W - W*|| ||Phi||) and of the
    # projection (proj ||Y||): delta each, so E errs by ||D|| delta + delta^2 / 2 each
    W = rng.standard_normal((m_y, m))
    D_norm = np.linalg.norm((W - W_old) @ R_old.T)
    E_old = 0.5 * D_norm**2
    delta = (e + m * EPS) * np.linalg.norm(W - W_old) * s_max + proj * Y_norm
    tol_E = 2 * (D_norm * delta + 0.5 * delta**2)
    assert abs(problem.excess(W) - E_old) <= tol_E, (problem.excess(W), E_old, tol_E)


def test_ill_conditioned_q1_falls_back_to_householder():
    """At cond(Phi) ~ 1e8-3e9 the Cholesky factorisation of Phi Phi^T still succeeds, but
    Q1 = Phi^T R1^{-1} is far from orthonormal (||Q1^T Q1 - I||_F > 1): the a posteriori check
    refuses CholeskyQR2, and the setup (Householder QR) agrees with the previous implementation."""
    from verify.losses import square as losses

    # Whether dpotrf still succeeds this close to cond(Phi Phi^T) ~ 1/eps depends on the BLAS's
    # summation order; search seeds and spreads of 8-9.5 decades for a case where it does
    for seed, decades in ((s, d) for s in range(10) for d in np.arange(9.5, 7.99, -0.25)):
        rng = np.random.default_rng(seed)
        Phi, Y = features(rng, 12, 150, decades), rng.standard_normal((3, 150))
        gram = Phi @ Phi.T
        R1, info = sla.lapack.dpotrf(gram, lower=0, clean=1)
        if info != 0:
            continue
        Q1 = sla.solve_triangular(R1, Phi, trans="T").T
        if np.linalg.norm(Q1.T @ Q1 - np.eye(12)) > 2 * losses.CHOLESKY_QR_MAX_DEVIATION:
            break
    else:
        pytest.fail(
            "no seed < 10 and spread of 8-9.5 decades gives a successful Cholesky with a far-from-orthonormal Q1"
        )
    assert losses._cholesky_qr2(Phi, Y, gram) is None
    problem = verify.ShallowProblem(Phi, Y)
    assert problem.factorization == "Householder QR"
    _, W_old, L_old, kappa_old = previous_setup(Phi, Y)
    assert problem.pl_constant == kappa_old and problem.optimal_loss == L_old
    assert np.array_equal(problem.minimiser, W_old)


def test_fast_setup_keeps_the_gradient_statistics_and_the_excess_at_the_optimum():
    """gram = Phi Phi^T and Y Phi^T are the plain products; the excess vanishes at W* and is a
    sum of squares (>= 0, cancellation-free) next to it."""
    rng = np.random.default_rng(5)
    Phi = features(rng, 20, 400, 4)
    Y = rng.standard_normal((4, 400))
    problem = verify.ShallowProblem(Phi, Y)
    assert problem.factorization == "CholeskyQR2"
    gram = Phi @ Phi.T
    # one n-term inner product per entry, summed in a different order: 2 n eps |Phi| |Phi|^T
    assert np.all(np.abs(problem.gram - gram) <= 2 * 400 * EPS * (np.abs(Phi) @ np.abs(Phi).T))
    assert np.all(np.abs(problem.state.YPhiT - Y @ Phi.T) <= 2 * 400 * EPS * (np.abs(Y) @ np.abs(Phi).T))
    assert problem.excess(problem.minimiser) == 0.0
    D = rng.standard_normal((4, 20))
    expected = 0.5 * 1e-16 * np.sum((D @ Phi) ** 2)
    # (W* + 1e-8 D) - W* = 1e-8 D up to 2 eps |W*| per entry (relative 2 eps |W*| / 1e-8)
    scale = np.abs(problem.minimiser).max()
    assert problem.excess(problem.minimiser + 1e-8 * D) == pytest.approx(expected, rel=8 * EPS * scale / 1e-8 + 1e-12)


def test_streaming_blocks_do_not_change_the_result(monkeypatch):
    """The pass over the samples in blocks (smaller than n here) equals one block."""
    from verify.losses import square as losses

    rng = np.random.default_rng(6)
    Phi, Y = features(rng, 8, 3050, 3), rng.standard_normal((2, 3050))  # 30 blocks of 100, and 50
    whole = verify.ShallowProblem(Phi, Y)
    monkeypatch.setattr(losses, "CHOLESKY_QR_BLOCK", 100)
    monkeypatch.setattr(losses, "CHOLESKY_QR_BLOCK_FLOATS", 0)
    blocked = verify.ShallowProblem(Phi, Y)
    assert whole.factorization == blocked.factorization == "CholeskyQR2"
    # the same products summed in other groupings: rounding only, n eps cond relative (cond = 1e3)
    tol = 3050 * EPS * 1e3
    assert np.allclose(blocked.minimiser, whole.minimiser, rtol=0, atol=tol * np.abs(whole.minimiser).max())
    assert blocked.pl_constant == pytest.approx(whole.pl_constant, rel=tol)
    assert blocked.optimal_loss == pytest.approx(whole.optimal_loss, rel=tol)


@pytest.mark.parametrize("m", [1, 2, 31, 32, 33, 64, 97, 256])
def test_recursive_triangular_solve_is_substitution(m):
    """X R = B solved in place by the recursive split (gemm updates, trsm leaves) has the
    row-wise backward error of substitution: |B - X R| <= gamma_m |X| |R| entrywise
    (Higham Thm 8.5), and it agrees with LAPACK's solve to cond(R) times that."""
    from verify.losses import square as losses

    rng = np.random.default_rng(m)
    R = np.triu(rng.standard_normal((m, m))) + 3 * np.eye(m)  # well-conditioned upper triangular
    B = rng.standard_normal((50, m))
    X = np.asfortranarray(B.copy())
    out = losses._right_triangular_solve(np.asfortranarray(R), X)
    assert out is X  # in place: the pass must not allocate an n x m temporary
    gamma_m = m * EPS / (1 - m * EPS)
    # twice gamma_m: the check's own product X R rounds by as much again
    assert np.all(np.abs(B - X @ R) <= 2 * gamma_m * (np.abs(X) @ np.abs(R)))
    reference = sla.solve_triangular(R, B.T, trans="T").T
    cond = np.linalg.cond(R)
    assert np.allclose(X, reference, rtol=0, atol=4 * cond * gamma_m * np.abs(reference).max())
