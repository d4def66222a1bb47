"""Rate constants and the suite's Theorem 1 (THEORY.md sections 4 and 5).

    lambda(A) = lambda_min(U^{-T} U^{-1}) = 1 / ||I - gamma sigma(A)||_2^2
              >= 1 / (1 + gamma ||sigma(A)||_2)^2 >= 1 / (1 + gamma sqrt(m))^2

Theorem 1 (this suite's formalisation; the paper's own statement is not available to the
project): if ||grad L0||^2 >= 2 kappa (L0 - L*), then at every (A, B)

    ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*),

and along gradient flow L_T - L* <= (L_0 - L*) exp(-2 kappa int_0^T lambda(A_t) dt).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from ._validation import check_gamma, check_positive, check_square_weight
from .model import column_softmax


def rate_constant(A, *, gamma) -> float:
    """lambda(A) = 1 / ||I - gamma sigma(A)||_2^2, the smallest eigenvalue of U^{-T} U^{-1}."""
    A = check_square_weight(A)
    gamma = check_gamma(gamma)
    return rate_constant_unchecked(A, gamma)


def rate_constant_unchecked(A: np.ndarray, gamma: float) -> float:
    """lambda(A) from the dense SVD of U = I - gamma sigma(A) (no input checks)."""
    return rate_from_implicit_matrix(np.eye(A.shape[0]) - gamma * column_softmax(A))


def rate_from_implicit_matrix(U: np.ndarray) -> float:
    """lambda = 1 / ||U||_2^2 = 1 / sigma_max(U)^2 from a dense SVD of U (O(m^3)); the
    singular value has relative error <= (m + 3) eps (backward stable SVD, Weyl)."""
    return 1.0 / float(np.linalg.norm(U, 2)) ** 2


EPS = np.finfo(np.float64).eps


def default_rate_rtol(m: int) -> float:
    """(m + 3) eps: the relative accuracy :class:`RateTracker` certifies for sigma_max(U)^2 on its
    iterative path, the first-order accuracy of the dense SVD itself ((m + 3) eps for sigma_max,
    :func:`verify.rounding.rate_tolerance`), so that both paths fit the same rounding model."""
    return (m + 3) * EPS

#: least fraction of its norm a new direction keeps after projection (see RateTracker._orthonormal)
ORTHONORMAL_KEEP = 1e-3

#: widths up to which :class:`RateTracker` takes the dense SVD: there it costs no more than the
#: Python overhead of the Krylov iteration (measured along a path A + 1e-3 k D, one BLAS thread,
#: dense SVD against a warm Krylov call: 68 vs 146 us at m = 32, 117 vs 134 us at m = 48,
#: 195 vs 158 us at m = 64, 468 vs 220 us at m = 96)
DENSE_RATE_MAX_WIDTH = 48


# LAPACK directly: the Krylov iteration's matrices are tiny, and numpy.linalg's wrappers (type
# dispatch, triu, error state) cost more than the factorisations themselves (measured: the warm
# call 40% faster than with numpy.linalg.qr and eigh)
_GEQRF, _ORGQR, _SYEVD = lapack.dgeqrf, lapack.dorgqr, lapack.dsyevd


def _householder_q(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, |diag R|) of the Householder QR V = Q R (V m x p; Q m x min(m, p), as numpy.linalg.qr's
    reduced mode)."""
    qr, tau, _, info = _GEQRF(V)
    if info != 0:  # pragma: no cover - LAPACK reports an illegal argument only
        raise np.linalg.LinAlgError(f"dgeqrf failed (info = {info})")
    k = tau.shape[0]  # min(m, p); dorgqr forms the first k columns of Q from k reflectors
    d = np.abs(qr.diagonal()[:k])
    Q, _, info = _ORGQR(qr[:, :k], tau)
    if info != 0:  # pragma: no cover
        raise np.linalg.LinAlgError(f"dorgqr failed (info = {info})")
    return Q, d


class RateTracker:
    """lambda(A_k) = 1 / sigma_max(U_k)^2 along a sequence of nearby states (a trajectory).

    For m <= ``dense_max`` this is :func:`rate_from_implicit_matrix` (dense SVD). Above, the
    largest eigenvalue mu_1 = sigma_max(U)^2 of M = U^T U is found by Rayleigh-Ritz on a block
    Krylov space, using only products with U and U^T (no factorisation, O(m^2) per vector):

    - the start space holds the top-``block`` Ritz vectors of the last ``history`` calls, so it
      contains their polynomial extrapolation in the call index: along a smooth trajectory it
      already holds the new top eigenvector to O(step^history), and one or two expansions
      finish the job (a cold start, or a jump, takes a few tens);
    - each expansion adds the (orthogonalised) residuals of the current top-``block`` Ritz
      vectors, i.e. the next block of the Krylov space;
    - it stops when the Kato-Temple bound certifies the relative accuracy ``rtol``. With Ritz
      values theta_1 >= theta_2 and residual norms rho_i = ||M x_i - theta_i x_i||:

          0 <= mu_1 - theta_1 <= min(rho_1, rho_1^2 / (theta_1 - theta_2 - rho_2))

      (theta_1 is a Rayleigh quotient, so never above mu_1; some eigenvalue lies within rho_i of
      theta_i, and Kato-Temple applies once the second eigenvalue mu_2 <= theta_2 + rho_2 is
      separated from theta_1). Like every Krylov method it assumes that the eigenvalues found
      are the top two. The first call (a cold start) therefore takes the dense 2-norm and the
      top eigenvectors of U^T U, and every later start space carries a random vector besides
      the history; the campaign (UNIFORM-RATE) and the tests compare it with the reference
      along paths at every width, at saturated, degenerate and clustered spectra.

    lambda = 1 / theta_1 then has relative error <= bound / theta_1 <= rtol (default
    :func:`default_rate_rtol`, (m + 3) eps), plus the rounding of theta_1, an eigenvalue of the
    small Gram matrix (U V)^T (U V) ((m + p) u for a basis of p <= m vectors, u = eps / 2): in
    all <= 2 (m + 3) eps, what the rounding model allows the dense SVD's sigma_max^2.
    ``last_bound`` is the certified bound / theta_1 for the last value (0.0 on the dense path,
    whose error is the SVD's rounding); ``stats`` counts calls, expansions, cold starts and
    fallbacks to the dense SVD (after ``max_expansions`` without convergence).
    """

    def __init__(self, m: int, *, rtol: float | None = None, block: int = 2, history: int = 3,
                 max_basis: int = 48, max_expansions: int = 400, dense_max: int = DENSE_RATE_MAX_WIDTH,
                 seed: int = 0):
        self.m = int(m)
        self.rtol = default_rate_rtol(self.m) if rtol is None else float(rtol)
        self.dense = self.m <= dense_max
        self.block = min(block, self.m)
        self.history = history
        self.max_basis = max(min(max_basis, self.m), 2 * self.block)
        self.max_expansions = max_expansions
        self._rng = np.random.default_rng(seed)
        self._past: list[np.ndarray] = []  # Ritz blocks of the last calls, newest last
        self.last_bound = 0.0
        self.stats = {"calls": 0, "expansions": 0, "cold_starts": 0, "dense_fallbacks": 0}

    def __call__(self, U: np.ndarray) -> float:
        """lambda = 1 / ||U||_2^2 for the implicit matrix U = I - gamma sigma(A) (m x m)."""
        self.stats["calls"] += 1
        if self.dense:
            self.last_bound = 0.0
            return rate_from_implicit_matrix(U)
        if not self._past:
            # cold start: the dense 2-norm, and the top eigenvectors of U^T U to start the next
            # call from. From a random start the Krylov iteration can stop at the second member of
            # a near-degenerate top pair (measured: sigma_1, sigma_2 equal to 4e-10 relative at a
            # saturated softmax, m = 5) with a certificate that assumes it found the first.
            self.stats["cold_starts"] += 1
            top = sla.eigh(U.T @ U, subset_by_index=[self.m - self.block, self.m - 1])[1]
            self._past = [top[:, ::-1]]
            self.last_bound = 0.0
            return rate_from_implicit_matrix(U)
        theta, X, bound = self._top_eigenpair(U)
        if theta is None:
            self.stats["dense_fallbacks"] += 1
            self._past = []
            self.last_bound = 0.0
            return rate_from_implicit_matrix(U)
        self._past = (self._past + [X])[-self.history:]
        self.last_bound = bound / theta
        return 1.0 / theta

    @staticmethod
    def _orthonormal(V: np.ndarray, against: np.ndarray | None = None) -> np.ndarray:
        """An orthonormal basis of span(V) (minus span(against), orthonormal), dropping directions
        that are numerically dependent (classical Gram-Schmidt twice, then Householder QR).

        Without ``against``, Householder QR alone (directions below 1e-10 of the largest are
        dropped; the history blocks of a warm start differ by O(step), which must be kept).
        With it, column j is kept only if what is left of it is >= ORTHONORMAL_KEEP times its own
        norm *before* the projection: after two Gram-Schmidt passes the part left in span(against) is
        ~ eps ||V||, so a kept direction is orthogonal to span(against) to eps / ORTHONORMAL_KEEP.
        (Measured against the projected norm instead, rounding noise of residuals that lie in
        span(against) was normalised into "new" directions inside it, and the Ritz values of the
        non-orthonormal basis overshot sigma_max^2 by up to 1e-9.) Rayleigh-Ritz residuals are
        orthogonal to the search space, so genuine directions keep ~ all of their norm."""
        if against is not None:
            before = np.sqrt((V * V).sum(axis=0))
            V = V - against @ (against.T @ V)
            V = V - against @ (against.T @ V)
        Q, d = _householder_q(V)  # d: |R_jj|, column j's part orthogonal to the columns < j
        if against is None:  # Q is orthonormal to eps whatever R's diagonal
            keep = d > 1e-10 * max(float(d.max()), np.finfo(float).tiny)
        else:  # ... and orthogonal to span(against)
            keep = d > ORTHONORMAL_KEEP * np.maximum(before[: len(d)], np.finfo(float).tiny)
        return Q if keep.all() else Q[:, keep]

    def _top_eigenpair(self, U: np.ndarray):
        b = self.block
        # the last Ritz blocks (newest first; the first from the cold start's dense
        # eigenvectors), one Krylov step from the newest in the new M, and a random vector so
        # that no eigenvector can be absent from the start space
        P = np.hstack(self._past[::-1])
        V = self._orthonormal(np.hstack([P, U.T @ (U @ P[:, :b]), self._rng.standard_normal((self.m, 1))]))
        Z = U @ V
        MV = U.T @ Z
        for _ in range(self.max_expansions + 1):
            w, C, _ = _SYEVD(Z.T @ Z)  # V^T M V, symmetric positive semi-definite by construction
            k = min(b, len(w))
            theta, C = w[: -k - 1: -1], C[:, : -k - 1: -1]
            X = V @ C
            R = MV @ C - X * theta
            rho = np.sqrt((R * R).sum(axis=0))
            bound = rho[0]
            if k > 1 and theta[0] - theta[1] - rho[1] > 0:
                bound = min(bound, rho[0] ** 2 / (theta[0] - theta[1] - rho[1]))
            if bound <= self.rtol * theta[0] or V.shape[1] >= self.m:
                # (V spanning the whole space makes Rayleigh-Ritz exact up to rounding)
                return float(theta[0]), X, float(bound)
            if V.shape[1] + k > self.max_basis:  # thick restart from the current Ritz block
                V, Z, MV = X, Z @ C, MV @ C
            Q = self._orthonormal(R, V)
            if Q.shape[1] == 0:  # the residuals are rounding noise inside span(V): nothing to add
                return float(theta[0]), X, float(bound)
            self.stats["expansions"] += 1
            ZQ = U @ Q
            V = np.hstack([V, Q])
            Z = np.hstack([Z, ZQ])
            MV = np.hstack([MV, U.T @ ZQ])
        return None, None, None


def softmax_norm_rate_bound(A, *, gamma) -> float:
    """The intermediate bound 1 / (1 + gamma ||sigma(A)||_2)^2 <= lambda(A)."""
    A = check_square_weight(A)
    gamma = check_gamma(gamma)
    return 1.0 / (1.0 + gamma * float(sla.norm(column_softmax(A), 2))) ** 2


def uniform_rate_bound(m: int, *, gamma) -> float:
    """1 / (1 + gamma sqrt(m))^2, a lower bound on lambda(A) for every m x m matrix A.

    Proof: ||sigma(A)||_2 <= sqrt(||sigma(A)||_1 ||sigma(A)||_inf) <= sqrt(1 * m), and
    ||I - gamma S||_2 <= 1 + gamma ||S||_2.
    """
    m = check_positive("m", m, integer=True)
    if m > 2 ** 53:  # beyond float64's exact integers (and any matrix that fits in memory)
        raise ValueError(f"m must be an integer in [1, 2^53]; got {m!r}")
    gamma = check_gamma(gamma)
    return 1.0 / (1.0 + gamma * np.sqrt(float(m))) ** 2


def naive_rate_bound(gamma) -> float:
    """1 / (1 + gamma)^2: FALSE as a lower bound on lambda(A) in general (see counterexample)."""
    return 1.0 / (1.0 + check_gamma(gamma)) ** 2


def concentrated_weight(m: int, *, logit_gap: float = 50.0, row: int = 0) -> np.ndarray:
    """An A whose softmax columns all sit near e_row: A[row, :] = logit_gap, the rest 0.

    Then sigma(A) ~ e_row 1^T with ||sigma(A)||_2 ~ sqrt(m), which nearly attains the uniform
    bound and breaks the naive bound 1 / (1 + gamma)^2 once gamma sqrt(m) is large enough.
    """
    m = check_positive("m", m, integer=True)
    if not 0 <= row < m:
        raise ValueError(f"row must be in [0, m); got {row}")
    A = np.zeros((m, m))
    A[row, :] = logit_gap
    return A


def naive_bound_counterexample(m: int = 30, gamma: float = 0.9) -> dict:
    """Evidence that lambda(A) >= 1 / (1 + gamma)^2 fails: returns both values for the
    concentrated A (THEORY.md section 4: m = 30, gamma = 0.9 gives lambda ~ 0.041 < 0.277)."""
    A = concentrated_weight(m)
    lam = rate_constant(A, gamma=gamma)
    return {
        "m": m,
        "gamma": gamma,
        "A": A,
        "rate_constant": lam,
        "naive_bound": naive_rate_bound(gamma),
        "uniform_bound": uniform_rate_bound(m, gamma=gamma),
        "violated": lam < naive_rate_bound(gamma),
    }


def state_wise_ratio(grad_norm_sq: float, excess: float, *, kappa: float, rate: float) -> float:
    """(||dL/dA||^2 + ||dL/dB||^2) / (2 kappa lambda(A) (L - L*)); Theorem 1 says >= 1.

    Returns +inf at an optimum (excess == 0), where the inequality holds trivially.
    """
    denom = 2.0 * kappa * rate * excess
    return float("inf") if denom == 0.0 else grad_norm_sq / denom


def local_pl_estimate(problem, W=None) -> float:
    """An ESTIMATE (not a certificate) of a local PL constant for cross-entropy near W*.

    Near a minimiser, L0 - L* ~ 1/2 d^T H d and ||grad||^2 ~ d^T H^2 d along directions d in the
    range of the Hessian H = H(W*), so kappa_loc ~ lambda_min^+(H) (smallest nonzero eigenvalue,
    zero meaning below sqrt(eps) * lambda_max). It is exact only in the limit W -> W*; along a
    trajectory started far away the true local constant can be smaller.
    """
    W = problem.minimiser if W is None else W
    ev = np.linalg.eigvalsh(problem.hessian(W))
    tol = np.sqrt(np.finfo(float).eps) * ev.max()
    return float(ev[ev > tol].min())
