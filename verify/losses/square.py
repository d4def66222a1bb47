"""The square loss l(q, y) = 1/2 ||q - y||^2, G = W Phi - Y (docs/theory.md, sections 1 and 5).

Its problem state holds the sufficient statistics (a triangular factor R with Phi Phi^T = R^T R,
Y Phi^T and the minimum-norm minimiser W* = Y Phi^+), so that after construction every
evaluation costs O(m_y m^2), independent of n, and the excess loss is the cancellation-free
1/2 ||(W - W*) R^T||_F^2. kappa = the smallest nonzero eigenvalue of Phi Phi^T is a global PL
constant; the Hessian (Phi Phi^T) (x) I is constant in W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from .._validation import as_matrix
from .registry import Loss, register

EPS = np.finfo(np.float64).eps

_POTRF = _lapack.get_lapack_funcs("potrf", dtype=np.float64)
_TRSM = _blas.dtrsm
_SYRK = _blas.dsyrk
_GEMM = _blas.dgemm


def _symmetric(upper: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose upper triangle is given (BLAS syrk fills only that one)."""
    return np.triu(upper) + np.triu(upper, 1).T


@dataclass
class SquareStatistics:
    """What the square loss caches per data set: gram = Phi Phi^T, YPhiT = Y Phi^T, R (Phi Phi^T
    = R^T R), the minimum-norm minimiser W_star, L_star, and which factorization gave R."""

    gram: np.ndarray
    YPhiT: np.ndarray
    R: np.ndarray
    W_star: np.ndarray
    L_star: float
    factorization: str

    @property
    def gram_factor(self) -> np.ndarray:
        return self.R


class SquareLoss(Loss):
    """l(q, y) = 1/2 ||q - y||^2."""

    name = "square"
    targets = "real"
    pl = "global"
    attainment = "always"
    constant_hessian = True
    curvature_bound = 1.0
    #: :meth:`prepare` finds a NaN or inf in Phi or Y through its Gram products (one pass fewer)
    checks_finite_data = True

    def terms(self, Q, Y):
        G = Q - Y
        return 0.5 * np.einsum("...ij,...ij->...", G, G), G

    def output_hvp(self, Q, Y, dQ):
        return dQ

    def prepare(self, problem) -> SquareStatistics:
        """The sufficient statistics of the square loss: gram = Phi Phi^T, Y Phi^T, a triangular
        R with Phi Phi^T = R^T R from a QR factorisation of Phi^T (backward stable, so that
        ||D R^T||_F = ||D Phi||_F to rounding for every D: the excess loss needs nothing else),
        the minimum-norm minimiser W* = Y Phi^+ and L* = 1/2 ||W* Phi - Y||_F^2.

        CholeskyQR2 (:func:`_cholesky_qr2`) when n >= 3 m (where its rounding fits the model of
        :mod:`verify.rounding`) and Phi is not too ill-conditioned: about five Gram products
        whatever n is. Otherwise Householder QR and an SVD-based least squares
        (:func:`_householder_least_squares`). ``factorization`` says which one was used. All the
        O(n) products go through SciPy's BLAS (NumPy's and SciPy's OpenBLAS threads would spin
        against each other if the calls alternated).
        """
        m, data, Phi, Y = problem.m, problem.data, problem.Phi, problem.Y
        with np.errstate(over="ignore", invalid="ignore"):
            stats = _symmetric(_SYRK(1.0, data.T, trans=1, lower=0))  # [Phi; Y] [Phi; Y]^T, one pass
        gram = stats[:m, :m]
        if not np.all(np.isfinite(stats)):
            # a NaN or inf in Phi or Y makes its diagonal block non-finite: name it (finite data
            # whose products overflow are reported below)
            as_matrix("Phi", Phi)
            as_matrix("Y", Y)
        if not np.all(np.isfinite(gram)):
            raise ValueError(
                f"Phi is too large for the square loss: Phi Phi^T overflows float64 (max |Phi| = "
                f"{np.abs(Phi).max():.3g}); rescale Phi"
            )
        YPhiT = np.ascontiguousarray(stats[m:, :m])
        fast = _cholesky_qr2(Phi, Y, gram) if 3 * m <= problem.n else None
        L_star = None
        if fast is not None:
            R, W_star, YQ2 = fast
            gram = np.ascontiguousarray(gram)
            factorization = "CholeskyQR2"
            # L* = 1/2 ||Y||^2 - 1/2 ||Y Q2||^2 without another pass over the data, when it keeps
            # L* >= 1/4 of 1/2 ||Y||^2. Its error: the projection's, ||Y - Y P|| proj ||Y||
            # (proj = (m + n) eps cond(Phi), verify.rounding.projection_rounding), plus
            # (n + m) u ||Y||^2 from Q2's orthonormality; the second is at most the first once
            # ||Y - Y P||^2 = 2 L* >= ||Y||^2 / 4 (cond >= 1), so the tolerance of L* in
            # verify.rounding still covers it. Otherwise (e.g. L* ~ 0) the residual W* Phi - Y
            # is formed below.
            with np.errstate(over="ignore", invalid="ignore"):
                total = 0.5 * float(np.trace(stats[m:, m:]))
                explained = 0.5 * float(np.sum(YQ2 * YQ2))
            if np.isfinite(total) and np.isfinite(explained) and total - explained >= 0.25 * total:
                L_star = total - explained
        else:
            R, W_star = _householder_least_squares(Phi, Y)
            with np.errstate(over="ignore"):
                gram = R.T @ R  # Phi Phi^T
            factorization = "Householder QR"
        if L_star is None:
            with np.errstate(over="ignore", invalid="ignore"):
                # (W* Phi - Y)^T = Phi^T W*^T - Y^T: Fortran-ordered views, no copy of Phi
                residual = _GEMM(1.0, Phi.T, W_star.T, beta=-1.0, c=Y.T)
                L_star = 0.5 * float(np.sum(residual * residual))
        if not np.isfinite(L_star):
            raise ValueError(
                f"Y is too large for the square loss: L* overflows float64 (max |Y| = {np.abs(Y).max():.3g}); rescale Y"
            )
        return SquareStatistics(gram, YPhiT, R, W_star, L_star, factorization)

    def value(self, problem, W):
        return problem.state.L_star + self.excess(problem, W)

    def gradient(self, problem, W):
        """W Phi Phi^T - Y Phi^T from the cached statistics (not (W - W*) Phi Phi^T, which loses
        digits to ||W*|| when Phi is ill-conditioned)."""
        return W @ problem.state.gram - problem.state.YPhiT

    def value_and_gradient(self, problem, W):
        return self.value(problem, W), self.gradient(problem, W)

    def output_gradient(self, problem, W):
        return W @ problem.Phi - problem.Y

    def excess(self, problem, W):
        """1/2 ||(W - W*) R^T||_F^2, a sum of squares: full relative accuracy even when it is
        1e-30 while L0 is O(1)."""
        D = (W - problem.state.W_star) @ problem.state.R.T
        return 0.5 * float(np.sum(D * D))

    def hessian_vector(self, problem, W, V):
        return V @ problem.state.gram

    def hessian(self, problem, W=None):
        """H = (Phi Phi^T) (x) I_{m_y}, whatever W is."""
        return np.kron(problem.state.gram, np.eye(problem.m_y))

    def optimum(self, problem):
        return problem.state.L_star, problem.state.W_star

    def excess_rounding(self, problem, W, rho) -> float:
        """E = 1/2 ||D||^2 with D = (W - W*) Phi computed to delta = (rho + m eps) ||W|| ||Phi||_2 +
        (m + n) eps cond(Phi) ||Y|| (verify.rounding.excess_tolerance for one implementation), so
        |E_computed - E| <= ||D|| delta + delta^2 / 2 = sqrt(2 E) delta + delta^2 / 2. E is
        indistinguishable from 0 when it is at most that bound: E <= (3 + 2 sqrt(2)) delta^2 / 2."""
        m, n = problem.m, problem.n
        s = problem.feature_singular_values
        keep = s > s.max() * max(m, n) * EPS
        cond = float(s.max() / s[keep].min()) if np.any(keep) else 1.0
        delta = (rho + m * EPS) * float(np.linalg.norm(W)) * float(s.max()) + (m + n) * EPS * cond * float(
            np.linalg.norm(problem.Y)
        )
        return (3.0 + 2.0 * np.sqrt(2.0)) / 2.0 * delta * delta

    def pl_constant(self, problem, level=None) -> float:
        """kappa = smallest nonzero eigenvalue of Phi Phi^T, for every W (``level`` is ignored).

        "Nonzero" uses the rank threshold sigma_max(Phi) * max(m, n) * eps of
        numpy.linalg.matrix_rank, i.e. singular values below the level that rounding in Phi alone
        can produce are treated as zero.
        """
        s = problem.feature_singular_values
        tol = s.max() * max(problem.m, problem.n) * EPS
        if not np.any(s > tol):
            raise ValueError(
                "pl_constant: Phi has rank 0 (every entry is zero), so L0 is constant and "
                "Phi Phi^T has no nonzero eigenvalue"
            )
        return float(np.min(s[s > tol]) ** 2)


SQUARE = register(SquareLoss())


#: floats per block in the streaming pass of :func:`_cholesky_qr2` (8 MiB): the block stays in
#: cache for the solve and the syrk that follow its copy, the pass never holds an n x m temporary,
#: and the recursive solve's gemm updates get wide blocks (measured at n = 1e5, solve and copy
#: alone: blocks of 1024 and 4096 samples within 5% at m = 64; 4096 20% faster than 1024 at m = 256)
CHOLESKY_QR_BLOCK_FLOATS = 2**20
CHOLESKY_QR_BLOCK = 1024  # but at least this many samples per block

#: width at which :func:`_right_triangular_solve` stops splitting R and calls trsm
TRIANGULAR_SOLVE_LEAF = 32


def _right_triangular_solve(R: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X <- X R^{-1} in place (R upper triangular m x m, X Fortran-ordered b x m), recursively:
    with R = [R11 R12; 0 R22] split in halves, X1 <- X1 R11^{-1}, X2 <- (X2 - X1 R12) R22^{-1}.

    Half of the flops at each level go to a gemm, which OpenBLAS runs about twice as fast as its
    trsm (measured at m = 256, n = 1e5, blocks of 4096: 1.4 Gram products against 2.0). Each
    entry is still computed by substitution, x_ij = (b_ij - sum_k x_ik r_kj) / r_jj, only with
    the sum split into pieces: every order of evaluation of that sum keeps the row-wise backward
    error bound x_i (R + dR_i) = b_i, |dR_i| <= gamma_m |R| of plain substitution (Higham,
    Accuracy and Stability of Numerical Algorithms, 2nd ed., Theorem 8.5), which
    :func:`_cholesky_qr2`'s analysis uses."""
    m = R.shape[0]
    if m <= TRIANGULAR_SOLVE_LEAF:
        out = _TRSM(1.0, R, X, side=1, lower=0, trans_a=0, diag=0, overwrite_b=1)
        if not np.shares_memory(out, X):  # pragma: no cover - f2py copied after all
            X[...] = out
        return X
    h = m // 2
    _right_triangular_solve(R[:h, :h], X[:, :h])
    out = _GEMM(-1.0, X[:, :h], R[:h, h:], beta=1.0, c=X[:, h:], overwrite_c=1)
    if not np.shares_memory(out, X):  # pragma: no cover
        X[:, h:] = out
    _right_triangular_solve(R[h:, h:], X[:, h:])
    return X


#: CholeskyQR2 is used only when the first pass's Q1 = Phi^T R1^{-1} is well conditioned:
#: ||Q1^T Q1 - I||_F <= this bound gives cond_2(Q1) <= sqrt(3), and the second pass is then as
#: accurate as Householder QR (see :func:`_cholesky_qr2`). Otherwise Householder QR is used.
CHOLESKY_QR_MAX_DEVIATION = 0.5


def _householder_least_squares(Phi: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, W*) by Householder QR of Phi^T (R of size min(n, m) x m, Phi Phi^T = R^T R) and the
    SVD-based minimum-norm least squares W* = Y Phi^+ (LAPACK gelsd): any rank, any condition
    number, about 20-30 Gram products at n >> m on this project's machine (dgeqrf and the
    bidiagonalisation in gelsd are memory-bound on a tall Phi^T)."""
    m, n = Phi.shape
    R = sla.qr(Phi.T, mode="r")[0][: min(n, m)]
    with np.errstate(over="ignore"):  # SciPy's residues overflow with a huge Y: L* is checked by the caller
        W_star_T, *_ = sla.lstsq(Phi.T, Y.T, lapack_driver="gelsd")
    return R, W_star_T.T


def _cholesky_qr2(Phi: np.ndarray, Y: np.ndarray, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(R, W*, Y Q2) by CholeskyQR2 of Phi^T (used for n >= 3 m), or None when it does not apply.

    First pass: R1^T R1 = Phi Phi^T (Cholesky of the Gram product), Q1 = Phi^T R1^{-1} by a
    triangular solve. Second pass: R2^T R2 = Q1^T Q1, so Phi^T = Q2 R with Q2 = Q1 R2^{-1} and
    R = R2 R1 upper triangular. Q1 is streamed in blocks of samples and never stored: one pass
    accumulates Q1^T Q1 and Y Q1 together (the syrk of [Q1, Y^T]). Then

        W* = Y Phi^+ = (Y Q2) R^{-T},   Y Q2 = (Y Q1) R2^{-1}

    (Phi has full row rank m here, so the minimiser is unique and W* is the minimum-norm one).
    Cost: the Gram product, the triangular solve (:func:`_right_triangular_solve`) and the second
    Gram product, each n m^2 flops.

    Accuracy (first order, u = eps / 2; normwise constants as in :mod:`verify.rounding`). The
    solve is row-wise backward stable, Phi^T = Q1 R1 + E1 with ||E1|| <~ m u ||Q1|| ||R1||
    ~ m u ||Phi||, and the product R2 R1 errs by ~ m u ||Phi||: so Phi^T + F = Q2 R with
    ||F|| <~ 2 m u ||Phi||_2, Q2 = Q1 R2^{-1} (exactly). Q2 is orthonormal up to the rounding of
    Q1^T Q1 and of its Cholesky factor, ||Q2^T Q2 - I|| <~ (n + m) u cond(Q1)^2 <= 3 (n + m) u
    (cond(Q1)^2 <= 3 below), i.e. Q2 = Q (I + K) with Q orthonormal and ||K|| <= 3 (n + m) u / 2.
    Hence each singular value s_i of R is within
    2 m u s_max + 3 (n + m) u s_i / 2 <= (7 m + 3 n) u s_max / 2 of Phi's, which is at most the
    (m + n) eps s_max that :func:`verify.rounding.kappa_tolerance` assumes for Householder QR
    when n >= 3 m (the caller's condition); and the row space moves by
    (||F|| + ||K|| s_min) / s_min <= (3 n + 7 m) u cond(Phi) / 2 <= (m + n) eps cond(Phi), as
    :func:`verify.rounding.projection_rounding` assumes. Both need Q1 well conditioned, i.e.
    (n + m) u cond(Phi)^2 small: it is checked a posteriori, ||Q1^T Q1 - I||_F <=
    CHOLESKY_QR_MAX_DEVIATION (so the eigenvalues of Q1^T Q1 lie in [1/2, 3/2]), and the
    function returns None (Householder QR is then used) when it fails, when either Cholesky
    factorisation breaks down (Phi Phi^T numerically singular: rank-deficient or very
    ill-conditioned Phi) or when a result is not finite. Since the check implies
    cond(Phi) <~ 1 / sqrt(2 (n + m) u), far below the rank threshold max(m, n) eps used by
    ``pl_constant``, every singular value of R counts as nonzero, as the rank rule also decides.
    """
    m, n = Phi.shape
    m_y = Y.shape[0]
    R1, info = _POTRF(gram, lower=0, clean=1)
    if info != 0:
        return None
    k = m + m_y
    block = min(n, max(CHOLESKY_QR_BLOCK, CHOLESKY_QR_BLOCK_FLOATS // k))
    buffer = np.empty((block, k), order="F")
    GX = np.zeros((k, k), order="F")  # upper triangle of [Q1, Y^T]^T [Q1, Y^T]
    with np.errstate(over="ignore", invalid="ignore"):
        for j0 in range(0, n, block):
            j1 = min(n, j0 + block)
            B = buffer if j1 - j0 == block else np.empty((j1 - j0, k), order="F")
            B[:, :m] = Phi[:, j0:j1].T
            B[:, m:] = Y[:, j0:j1].T
            # B[:, :m] is Fortran-contiguous: the solve Q1 = Phi^T R1^{-1} runs in place
            _right_triangular_solve(R1, B[:, :m])
            GX = _SYRK(1.0, B, beta=1.0, c=GX, trans=1, lower=0, overwrite_c=1)
    G2 = _symmetric(GX[:m, :m])
    YQ1 = GX[:m, m:].T
    if not (np.all(np.isfinite(G2)) and np.all(np.isfinite(YQ1))):
        return None
    if np.linalg.norm(G2 - np.eye(m)) > CHOLESKY_QR_MAX_DEVIATION:
        return None
    R2, info = _POTRF(G2, lower=0, clean=1)
    if info != 0:
        return None
    R = _GEMM(1.0, R2, R1)  # upper triangular (the products below the diagonal are exact zeros)
    YQ2 = sla.solve_triangular(R2, YQ1.T, trans="T", check_finite=False).T  # (Y Q1) R2^{-1}
    with np.errstate(over="ignore"):
        W_star = sla.solve_triangular(R, YQ2.T, check_finite=False).T  # (Y Q2) R^{-T}
    return R, W_star, YQ2
