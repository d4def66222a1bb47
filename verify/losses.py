"""Losses of the shallow model L0(W) = sum_i l(W phi(x_i), y_i) and their optimum L*.

docs/theory.md, section 1 and 3:

    square         l(q, y) = 1/2 ||q - y||^2             G = W Phi - Y
    cross-entropy  l(q, y) = -sum_k y_k log softmax(q)_k   G = softmax(W Phi) - Y
    grad L0(W) = G Phi^T

:class:`ShallowProblem` holds one data set and caches what every later evaluation needs. For the
square loss these are the sufficient statistics (a triangular factor R with Phi Phi^T = R^T R, and
a minimiser W*), so that after construction every evaluation costs O(m_y m^2), independent of n,
and the excess loss is the cancellation-free 1/2 ||(W - W*) R^T||_F^2.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from ._validation import as_matrix, check_data
from .separability import (
    Separability,
    certified,
    dual_certificate,
    power_of_two_scale,
    separability_lp,
    separating_certificate,
)

__all__ = ["NotAttainedError", "Separability", "ShallowProblem", "optimal_loss"]

EPS = np.finfo(np.float64).eps

_POTRF = _lapack.get_lapack_funcs("potrf", dtype=np.float64)
_TRSM = _blas.dtrsm
_SYRK = _blas.dsyrk
_GEMM = _blas.dgemm


def _symmetric(upper: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose upper triangle is given (BLAS syrk fills only that one)."""
    return np.triu(upper) + np.triu(upper, 1).T

#: above this size (m m_y) the explicit Hessian is refused (as the explicit metric K is): at 4096 it
#: takes 128 MiB, and the Newton solve for the cross-entropy L* costs (m m_y)^3
EXPLICIT_HESSIAN_MAX_SIZE = 4096


def column_log_softmax(Q: np.ndarray) -> np.ndarray:
    """log softmax of each column, with the column max subtracted first (no overflow)."""
    shifted = Q - Q.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def cross_entropy_terms(Q: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """sum_i -log softmax(q_i)[y_i] and G = softmax(Q) - Y, accurate when the softmax saturates.

    Works on the last two axes (a stack (..., m_y, n) is allowed). With e = exp(q - max q),
    r_i = sum_{k != y_i} e_k (the mass outside the true class):

        l_i = log(1 + r_i / e_{y_i})            (log1p: no loss when p_{y_i} -> 1)
        G[y_i, i] = p_{y_i} - 1 = -r_i / s_i     (no cancellation in p - 1)

    The naive forms lose all digits once 1 - p_y < eps (logits a few tens apart).
    """
    shifted = Q - Q.max(axis=-2, keepdims=True)
    E = np.exp(shifted)
    sums = E.sum(axis=-2, keepdims=True)
    onehot = labels[..., None, :] == np.arange(Q.shape[-2])[:, None]
    E_true = np.sum(np.where(onehot, E, 0.0), axis=-2, keepdims=True)
    rest = np.sum(np.where(onehot, 0.0, E), axis=-2, keepdims=True)
    shifted_true = np.sum(np.where(onehot, shifted, 0.0), axis=-2, keepdims=True)
    with np.errstate(divide="ignore", over="ignore"):
        per_sample = np.where(E_true > 1e-300, np.log1p(rest / np.where(E_true > 1e-300, E_true, 1.0)),
                              np.log(sums) - shifted_true)
    G = E / sums
    G = np.where(onehot, -rest / sums, G)
    return per_sample.sum(axis=(-2, -1)), G


class NotAttainedError(ValueError):
    """Raised when a quantity needs a minimiser of L0 that does not exist."""


class ShallowProblem:
    """A data set (Phi, Y) and a loss, with L0, grad L0, its Hessian and the optimum L*.

    Parameters
    ----------
    Phi : (m, n) array, features as columns.
    Y : (m_y, n) array, targets as columns (one-hot for ``loss="cross_entropy"``).
    loss : "square" or "cross_entropy".
    """

    def __init__(self, Phi, Y, loss: str = "square"):
        # square loss: Phi and Y are checked for NaN and inf through their Gram products (below)
        Phi, Y = check_data(Phi, Y, loss, finite=(loss != "square"))
        self.loss = loss
        self.m, self.n = Phi.shape
        self.m_y = Y.shape[0]
        # Own read-only copies: the caches below (R, W*, L*, separability) must not go stale if the
        # caller later edits the arrays it passed. For the square loss Phi and Y are two views of
        # one (m + m_y) x n array, so that one syrk gives Phi Phi^T, Y Phi^T and Y Y^T.
        data = np.empty((self.m + self.m_y, self.n))
        data[: self.m] = Phi
        data[self.m:] = Y
        data.flags.writeable = False
        self.Phi, self.Y = data[: self.m], data[self.m:]
        if loss == "cross_entropy":
            self._labels = np.argmax(self.Y, axis=0)
        if loss == "square":
            self._square_setup(data)

    def _square_setup(self, data: np.ndarray) -> None:
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
        m, n = self.m, self.n
        with np.errstate(over="ignore", invalid="ignore"):
            stats = _symmetric(_SYRK(1.0, data.T, trans=1, lower=0))  # [Phi; Y] [Phi; Y]^T, one pass
        gram = stats[:m, :m]
        if not np.all(np.isfinite(stats)):
            # a NaN or inf in Phi or Y makes its diagonal block non-finite: name it (finite data
            # whose products overflow are reported below)
            as_matrix("Phi", self.Phi)
            as_matrix("Y", self.Y)
        if not np.all(np.isfinite(gram)):
            raise ValueError(f"Phi is too large for the square loss: Phi Phi^T overflows float64 (max |Phi| = "
                             f"{np.abs(self.Phi).max():.3g}); rescale Phi")
        self._YPhiT = np.ascontiguousarray(stats[m:, :m])
        fast = _cholesky_qr2(self.Phi, self.Y, gram) if 3 * m <= n else None
        self._L_star = None
        if fast is not None:
            self._R, self._W_star, YQ2 = fast
            self.gram = np.ascontiguousarray(gram)
            self.factorization = "CholeskyQR2"
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
                self._L_star = total - explained
        else:
            self._R, self._W_star = _householder_least_squares(self.Phi, self.Y)
            with np.errstate(over="ignore"):
                self.gram = self._R.T @ self._R  # Phi Phi^T
            self.factorization = "Householder QR"
        if self._L_star is None:
            with np.errstate(over="ignore", invalid="ignore"):
                # (W* Phi - Y)^T = Phi^T W*^T - Y^T: Fortran-ordered views, no copy of Phi
                residual = _GEMM(1.0, self.Phi.T, self._W_star.T, beta=-1.0, c=self.Y.T)
                self._L_star = 0.5 * float(np.sum(residual * residual))
        if not np.isfinite(self._L_star):
            raise ValueError(f"Y is too large for the square loss: L* overflows float64 (max |Y| = "
                             f"{np.abs(self.Y).max():.3g}); rescale Y")

    # ---- shapes --------------------------------------------------------------------------
    def check_weight(self, W, name: str = "W") -> np.ndarray:
        return as_matrix(name, W, shape=(self.m_y, self.m))

    # ---- loss values and gradients -------------------------------------------------------
    def outputs(self, W: np.ndarray) -> np.ndarray:
        return W @ self.Phi

    def value(self, W: np.ndarray) -> float:
        """L0(W) = sum_i l(W phi_i, y_i)."""
        if self.loss == "square":
            return self._L_star + self.excess(W)
        return float(cross_entropy_terms(W @ self.Phi, self._labels)[0])

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """grad L0(W) = G Phi^T (square: W Phi Phi^T - Y Phi^T from the cached statistics; not
        (W - W*) Phi Phi^T, which loses digits to ||W*|| when Phi is ill-conditioned)."""
        if self.loss == "square":
            return W @ self.gram - self._YPhiT
        return self.output_gradient(W) @ self.Phi.T

    def value_and_gradient(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        if self.loss == "square":
            return self.value(W), self.gradient(W)
        value, G = cross_entropy_terms(W @ self.Phi, self._labels)
        return float(value), G @ self.Phi.T

    def output_gradient(self, W: np.ndarray) -> np.ndarray:
        """G = dL0/d(outputs): W Phi - Y (square) or softmax(W Phi) - Y (cross-entropy)."""
        Q = W @ self.Phi
        if self.loss == "square":
            return Q - self.Y
        return cross_entropy_terms(Q, self._labels)[1]

    def excess(self, W: np.ndarray) -> float:
        """L0(W) - L*.

        Square loss: 1/2 ||(W - W*) R^T||_F^2, a sum of squares, so it keeps full relative
        accuracy even when it is 1e-30 while L0 is O(1). Cross-entropy: L0(W) - L*, whose absolute
        error is about eps * L0 (the subtraction cancels; no cancellation-free form exists).
        """
        if self.loss == "square":
            D = (W - self._W_star) @ self._R.T
            return 0.5 * float(np.sum(D * D))
        return self.value(W) - self.optimal_loss

    def hessian(self, W: np.ndarray | None = None) -> np.ndarray:
        """Hessian of L0 in column-major vec(W) coordinates, size (m m_y) x (m m_y).

        square: H = (Phi Phi^T) (x) I_{m_y};  cross-entropy: H = sum_i (phi_i phi_i^T) (x) J(p_i),
        J(p) = diag(p) - p p^T, p_i = softmax(W phi_i).
        """
        if self.loss == "square":
            return np.kron(self.gram, np.eye(self.m_y))
        if W is None:
            raise ValueError("W is required for the cross-entropy Hessian")
        if self.m * self.m_y > EXPLICIT_HESSIAN_MAX_SIZE:
            raise ValueError(f"the explicit cross-entropy Hessian has size m*m_y = {self.m * self.m_y} > "
                             f"{EXPLICIT_HESSIAN_MAX_SIZE} (it and the Newton solve for L* would need "
                             f"{8 * (self.m * self.m_y) ** 2 / 2 ** 30:.3g} GiB per copy)")
        P = np.exp(column_log_softmax(W @ self.Phi))
        # H4[j, a, k, b] = sum_i Phi[j,i] Phi[k,i] (delta_ab P[a,i] - P[a,i] P[b,i]), as matrix
        # products (BLAS; a 4-index einsum took 1 s at m = 64, m_y = 10, n = 2000): with
        # X[(a, j), i] = P[a,i] Phi[j,i], the second term is X X^T and the first is block-diagonal,
        # block a = X_a Phi^T. Symmetrised, since X X^T need not be bitwise symmetric.
        m, m_y = self.m, self.m_y
        X = (P[:, None, :] * self.Phi[None, :, :]).reshape(m_y * m, self.n)
        H = -(X @ X.T)
        for a in range(m_y):
            H[a * m:(a + 1) * m, a * m:(a + 1) * m] += X[a * m:(a + 1) * m] @ self.Phi.T
        H = 0.5 * (H + H.T)
        # from (a, j) x (b, k) to the column-major vec(W) order: (j, a) flattens to j m_y + a
        size = m * m_y
        return H.reshape(m_y, m, m_y, m).transpose(1, 0, 3, 2).reshape(size, size)

    # ---- the optimum -------------------------------------------------------------------
    @cached_property
    def feature_singular_values(self) -> np.ndarray:
        """The singular values of Phi, largest first (square loss: those of the cached factor R,
        Phi Phi^T = R^T R, O(m^3); cross-entropy: of Phi itself)."""
        return sla.svdvals(self._R if self.loss == "square" else self.Phi)

    @cached_property
    def pl_constant(self) -> float:
        """kappa = smallest nonzero eigenvalue of Phi Phi^T (square loss).

        ||grad L0(W)||_F^2 >= 2 kappa (L0(W) - L*) for every W. "Nonzero" uses the rank threshold
        sigma_max(Phi) * max(m, n) * eps of numpy.linalg.matrix_rank, i.e. singular values below
        the level that rounding in Phi alone can produce are treated as zero.
        """
        if self.loss != "square":
            raise ValueError("pl_constant is the certified global constant of the square loss; "
                             "for cross-entropy use verify.convergence.local_pl_estimate")
        s = self.feature_singular_values
        tol = s.max() * max(self.m, self.n) * EPS
        if not np.any(s > tol):
            raise ValueError("pl_constant: Phi has rank 0 (every entry is zero), so L0 is constant and "
                             "Phi Phi^T has no nonzero eigenvalue")
        return float(np.min(s[s > tol]) ** 2)

    @cached_property
    def separability(self) -> Separability:
        """(Partial) separability of the classes (cross-entropy), by a certificate from Newton's
        method when one exists at rounding level, else by the exact LP (:mod:`verify.separability`)."""
        if self.loss != "cross_entropy":
            raise ValueError("separability applies to the cross-entropy loss only")
        return self._cross_entropy_analysis[0]

    @cached_property
    def _cross_entropy_analysis(self) -> tuple:
        """(separability, Newton's W on the scaled data or None, the scaled problem, the scale).

        L* = inf_W L0(W) is invariant under Phi -> c Phi (W -> W / c), but Newton's Hessian scales
        like c^2 and underflows or overflows far from c = 1. Newton runs on Phi / 2^k with
        max |Phi / 2^k| in [0.5, 1): a power of two, so the scaling and its undoing are exact (W Phi
        is bitwise the same) unless W / 2^k itself leaves float64's range. Separability is
        invariant under the scaling too. Newton stops early at a W that separates every pair
        (separable data); at a minimiser, -G certifies non-separability; otherwise the LP decides.
        """
        scale = power_of_two_scale(np.abs(self.Phi).max())
        scaled = self if scale == 1.0 else ShallowProblem(self.Phi / scale, self.Y, "cross_entropy")
        if self.m_y < 2:
            return separability_lp(self.Phi, self.Y), np.zeros((self.m_y, self.m)), scaled, scale
        W, state = _newton_cross_entropy(scaled, max_iter=NEWTON_PROBE_ITERATIONS, stop_when_separated=True)
        if state == "separated":
            return certified(self._labels, self.m_y, "separable"), None, scaled, scale
        if state == "converged" and dual_certificate(scaled.Phi, self._labels, scaled.output_gradient(W)):
            return certified(self._labels, self.m_y, "non-separable"), W, scaled, scale
        sep = separability_lp(self.Phi, self.Y)
        if sep.status == "non-separable" and state != "converged":
            W, state = _newton_cross_entropy(scaled, W0=W)  # the rest of Newton's budget
            if state != "converged":  # pragma: no cover - Newton on a strictly convex problem converges
                raise RuntimeError("Newton's method for the cross-entropy optimum did not converge")
        return sep, (W if sep.attained else None), scaled, scale

    @cached_property
    def _optimum(self) -> tuple[float, np.ndarray | None]:
        if self.loss == "square":
            return self._L_star, self._W_star
        sep, W_scaled, scaled, scale = self._cross_entropy_analysis
        if sep.status == "separable":
            return 0.0, None
        if sep.status == "partially separable":
            raise NotAttainedError(
                "the data are partially separable: L* is approached along a recession direction "
                "but not attained; this suite computes L* only for non-separable data (attained) "
                "and fully separable data (L* = 0)")
        with np.errstate(over="ignore", under="ignore"):
            W = W_scaled / scale
        return scaled.value(W_scaled), W

    @property
    def optimal_loss(self) -> float:
        """L* = inf_W L0(W) (0 exactly for separable cross-entropy data, not attained)."""
        return self._optimum[0]

    @property
    def minimiser(self) -> np.ndarray:
        """A minimiser W* of L0 (square: the minimum-norm Y Phi^+)."""
        W = self._optimum[1]
        if W is None:
            raise NotAttainedError("the data are separable: L* = 0 is not attained by any W")
        if not np.all(np.isfinite(W)):
            raise ValueError("the minimiser W* overflows float64 at this scale of Phi (|W*| ~ 1 / |Phi|); "
                             "rescale Phi (L* itself is computed scale-free)")
        return W

    @property
    def attained(self) -> bool:
        return self.loss == "square" or self.separability.attained


#: floats per block in the streaming pass of :func:`_cholesky_qr2` (8 MiB): the block stays in
#: cache for the solve and the syrk that follow its copy, the pass never holds an n x m temporary,
#: and the recursive solve's gemm updates get wide blocks (measured at n = 1e5, solve and copy
#: alone: blocks of 1024 and 4096 samples within 5% at m = 64; 4096 20% faster than 1024 at m = 256)
CHOLESKY_QR_BLOCK_FLOATS = 2 ** 20
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


#: Newton iterations before the separability LP decides instead (partially separable data, or a
#: certificate below rounding level): non-separable data converge in about 10 (quadratically)
NEWTON_PROBE_ITERATIONS = 50
#: Newton iterations in all, for non-separable data (as the LP decided) that converge slowly
NEWTON_MAX_ITERATIONS = 200


def _newton_direction(problem: ShallowProblem, W: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """The Newton step V (m_y x m) with last row 0: the Hessian restricted to the first m_y - 1
    rows of W (L0 is invariant under adding one row vector to every row of W: the last row is
    fixed), by Cholesky, or by minimum-norm least squares when that Hessian is singular (Phi
    without full row rank, or saturated probabilities).

    With X[(a, j), i] = p_a(phi_i) phi_i[j] (a < m_y - 1, class-major, i.e. C-order vec of W's
    first rows), the Hessian is blockdiag(X_a Phi^T) - X X^T (docs/theory.md, section 3)."""
    m, m_y = problem.m, problem.m_y
    P = np.exp(column_log_softmax(W @ problem.Phi))[: m_y - 1]
    X = (P[:, None, :] * problem.Phi[None, :, :]).reshape((m_y - 1) * m, problem.n)
    H = _SYRK(-1.0, X)  # upper triangle of -X X^T (BLAS syrk: half the flops of X @ X.T)
    for a in range(m_y - 1):
        H[a * m:(a + 1) * m, a * m:(a + 1) * m] += X[a * m:(a + 1) * m] @ problem.Phi.T
    g = grad[: m_y - 1].ravel()
    R, info = _POTRF(H, lower=0, clean=1)
    step = None
    if info == 0:
        step = sla.cho_solve((R, False), -g, check_finite=False)
        if not np.all(np.isfinite(step)):
            step = None
    if step is None:
        step, *_ = sla.lstsq(_symmetric(H), -g, cond=EPS * m * m_y)
    V = np.zeros((m_y, m))
    V[: m_y - 1] = step.reshape(m_y - 1, m)
    return V


def _newton_cross_entropy(problem: ShallowProblem, max_iter: int = NEWTON_MAX_ITERATIONS,
                          stop_when_separated: bool = False, W0: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """Damped Newton on the convex L0 from W0 (default 0), to a gradient at rounding level:
    (W, state).

    ``state`` is "converged" when the Newton decrement reached the rounding floor of L0 itself
    (about eps * n * log m_y; then two undamped polishing steps), "separated" when
    ``stop_when_separated`` and W separates every pair
    (:func:`verify.separability.separating_certificate`: separable data, whose L* is not
    attained), or "iterations" after ``max_iter`` steps. The returned W has zero column sums (the
    least-norm W - 1 v^T; all of them have the same loss).
    """
    m, m_y = problem.m, problem.m_y
    W = np.zeros((m_y, m)) if W0 is None else W0 - W0[-1]
    floor = 64 * EPS * max(1.0, problem.value(np.zeros((m_y, m))))
    polish = 0
    state = "iterations"
    for _ in range(max_iter):
        if stop_when_separated and separating_certificate(problem.Phi, problem._labels, W):
            state = "separated"
            break
        value, grad = problem.value_and_gradient(W)
        V = _newton_direction(problem, W, grad)
        decrement = float(-np.sum(grad * V))
        if decrement <= floor:
            # In the quadratic-convergence region: the decrement no longer resolves on L0, but
            # the gradient still shrinks quadratically, so take two undamped polishing steps.
            if polish == 2:
                state = "converged"
                break
            polish += 1
            W = W + V
            continue
        t = 1.0
        while problem.value(W + t * V) > value - 0.25 * t * decrement and t > 1e-12:
            t *= 0.5
        W = W + t * V
    return W - W.mean(axis=0), state


def optimal_loss(Phi, Y, *, loss: str = "square") -> float:
    """L* = inf_W L0(W) of the shallow model (equal to inf_{A,B} L, by expressivity).

    Square loss: least squares with the pseudo-inverse, L* = 1/2 ||Y Phi^+ Phi - Y||_F^2.
    Cross-entropy: a damped Newton solve on non-separable data; 0 on separable data, where L*
    is not attained (a warning-free, documented value: check ``ShallowProblem.separability``).
    Partially separable data raise :class:`NotAttainedError`.
    """
    return ShallowProblem(Phi, Y, loss).optimal_loss
