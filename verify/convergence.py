"""Rate constants and the suite's Theorem 1 (docs/theory.md, sections 4 and 5).

    lambda(A) = lambda_min(U^{-T} U^{-1}) = 1 / ||I - gamma sigma(A)||_2^2
              >= 1 / (1 + gamma ||sigma(A)||_2)^2 >= 1 / (1 + gamma sqrt(m))^2

Theorem 1 (this suite's formalisation; the paper's own statement is not available to the
project): if ||grad L0||^2 >= 2 kappa (L0 - L*), then at every (A, B)

    ||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*),

and along gradient flow L_T - L* <= (L_0 - L*) exp(-2 kappa int_0^T lambda(A_t) dt).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack

from ._validation import as_matrix, check_gamma, check_positive, check_square_weight
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
_POTRF, _POTRS = lapack.dpotrf, lapack.dpotrs
_NRM2 = blas.dnrm2

#: widths up to which :class:`RateTracker` refines by inverse iteration with the formed
#: M = U^T U (Cholesky, O(m^3)) instead of the Krylov iteration (O(m^2) per vector)
SHIFT_INVERT_MAX_WIDTH = 96


def _kato_temple(rho_rel: float, gap_rel: float) -> float:
    """(KT) in relative terms: (rho / theta)^2 / ((theta - a) / theta) = rho^2 / ((theta - a)
    theta), the bound on (mu_1 - theta) / theta; relative so that no square under- or overflows
    at any scale of U."""
    return rho_rel * rho_rel / gap_rel


def _abs_norm_product(U: np.ndarray) -> float:
    """||U||_1 ||U||_inf >= || |U|^T |U| ||_2, the size of a Gram product's rounding (gamma_m
    times it) and of the entries' magnitude in a formed U^T U."""
    absU = np.abs(U)
    return float(absU.sum(axis=0).max() * absU.sum(axis=1).max())


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


#: the range of ||U||_F the rate tracker accepts: then sigma_max(U)^2 <= ||U||_F^2 <= 1e300 and
#: lambda = 1 / sigma_max^2 <= m / ||U||_F^2 <= m 1e300 are finite, and >= 1e-300 is normal (as are
#: the Gram products, <= m ||U||_F^2, of any m below 1e8)
IMPLICIT_NORM_RANGE = (1e-150, 1e150)


def check_implicit_scale(U: np.ndarray) -> None:
    """Refuse a U whose lambda = 1 / ||U||_2^2 float64 cannot hold: non-finite entries, U = 0
    (lambda infinite), or ||U||_F outside IMPLICIT_NORM_RANGE. One sum of squares decides the
    ordinary case; only a sum outside [1e-300, 1e300] (or NaN) takes the scaled norm."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        total = float(np.vdot(U, U))
    low, high = IMPLICIT_NORM_RANGE
    if low * low <= total <= high * high:
        return
    if not np.all(np.isfinite(U)):
        raise ValueError("U must be finite (no NaN or inf entries)")
    largest = float(np.abs(U).max())
    if largest == 0.0:
        raise ValueError("U must not be zero: lambda = 1 / ||U||_2^2 would be infinite")
    norm = largest * math.sqrt(float(np.vdot(U / largest, U / largest)))
    raise ValueError(
        f"U has ||U||_F = {norm:.3g}; it must lie in [{low:g}, {high:g}] so that ||U||_2^2 and "
        "lambda = 1 / ||U||_2^2 are normal float64 numbers (rescale U: lambda scales as 1 / c^2)"
    )


class RateTracker:
    """lambda(A_k) = 1 / sigma_max(U_k)^2 along a sequence of nearby states (a trajectory).

    For m <= ``dense_max`` this is :func:`rate_from_implicit_matrix` (dense SVD). Above, it finds
    the largest eigenvalue mu_1 = sigma_max(U)^2 of M = U^T U from products with U and U^T, and
    certifies it by the Kato-Temple inequality. For a unit vector x with Rayleigh quotient
    theta = ||U x||^2 <= mu_1 and residual rho = ||M x - theta x||, and any a >= mu_2 with a < theta,

        0 <= mu_1 - theta <= rho^2 / (theta - a)                                    (KT)

    (mu_1 is then the only eigenvalue above a: Kato-Temple on the interval (a, inf)). It needs
    no assumption on which eigenvalue the iteration found.

    The tracker keeps such an a, a certified upper bound on mu_2, along the trajectory:

    - at the first call (a cold start) from the dense eigenvalues of U^T U, plus their rounding
      (the Gram product, gamma_m ||U||_1 ||U||_inf, and the eigensolver, m eps mu_1);
    - from call to call by Weyl's inequality for singular values, sigma_2(U_k) <= sigma_2(U_{k-1})
      + ||U_k - U_{k-1}||_2, so a <- (sqrt(a) + ||U_k - U_{k-1}||_F)^2;
    - when the accumulated drift has used up three quarters of the gap, by a Cholesky certificate: if the
      Cholesky factorisation of s I - (M - theta x x^T) succeeds, mu_2(M) <= mu_1(M - theta x x^T)
      <= s (rank-one interlacing), up to the factorisation's backward error
      gamma_{m+1} ||R||_F^2 (Higham, Thm 10.5), which is added.

    Each call refines the last top eigenvector x. Up to m = ``shift_invert_max`` by two steps
    of inverse iteration with s I - M, M = U^T U formed and factorised (Cholesky, O(m^3)), s a
    certified upper bound on mu_1 (see :meth:`_shift_invert`); (KT) certifies the result. Above
    (or when that fails), by Rayleigh-Ritz on a block Krylov space (O(m^2) per vector):

    - the start space holds a random vector (first, so that Householder QR keeps it), the top
      Ritz vectors of the last ``history`` calls and one Krylov step from the newest;
    - each expansion adds the (orthogonalised) residuals of the current top-``block`` Ritz
      vectors, i.e. the next block of the Krylov space;
    - it stops when a bound certifies the relative accuracy ``rtol``: (KT) with the tracked a, or,
      failing that (a drifted up to theta), with Ritz values theta_1 >= theta_2 and residual
      norms rho_i, min(rho_1, rho_1^2 / (theta_1 - theta_2 - rho_2)). The latter is
      *conditional*: like every Krylov method it assumes that the Ritz values found belong to the
      top two eigenvalues (``stats["conditional"]`` counts the values it certified). Before
      such a value is returned the Cholesky refresh is tried with s between theta_2 + rho_2 and
      theta; if it fails, the assumption is contradicted (the second Ritz pair is not mu_2's, or
      theta is not mu_1) and the dense path decides (``stats["dense_rechecks"]``). Weyl's
      bound overstates the drift of mu_2 (measured: 10-100x along descent), so with large steps
      and a small gap (e.g. m = 112, relative gap 0.5%, 1e-3 of it per step) many values are
      conditional.

    lambda = 1 / theta then has relative error <= bound / theta <= rtol (default
    :func:`default_rate_rtol`, (m + 3) eps), plus the rounding of theta ((m + p) u for a basis
    of p <= m vectors, u = eps / 2): in all <= 2 (m + 3) eps, what the rounding model allows the
    dense SVD's sigma_max^2. A conditional value's ``last_bound`` is the conditional bound; the
    refresh that precedes it proves mu_2 <= s < theta, so (KT) with a = s certifies it to at most
    4/3 (2 when the second try is taken) of that bound, i.e. <= 2 rtol. On the Krylov path the
    basis is orthonormal to eps / ORTHONORMAL_KEEP, not to eps, so theta's rounding there is the
    model's (m + p) u only approximately (measured: worst error / tolerance 0.3 in a hostile
    review's fuzzing). Residuals enter the bounds relative to theta, so that their squares
    neither under- nor overflow (measured before: U ~ 1e-80 certified a value 1e-5 off); U must
    still be such that sigma_max(U)^2 and its reciprocal are normal floats: a U with ||U||_F
    outside [1e-150, 1e150] (IMPLICIT_NORM_RANGE), U = 0, a non-finite, complex or boolean U, or
    one that is not m x m is refused (ValueError naming U and the rule), as are bad constructor
    arguments (m an integer >= 1, rtol in (0, 1], the counts integers), before any state changes.
    ``last_bound`` is the certified bound / theta for the last value (0.0 on the dense path,
    whose error is the SVD's rounding); ``stats`` counts calls, values certified after inverse
    iteration, Krylov expansions, cold starts, gap-bound refreshes, conditional certificates,
    dense rechecks and fallbacks to the dense SVD (after ``max_expansions`` without convergence,
    or a non-finite Ritz value).
    """

    def __init__(
        self,
        m: int,
        *,
        rtol: float | None = None,
        block: int = 2,
        history: int = 3,
        max_basis: int = 48,
        max_expansions: int = 400,
        dense_max: int = DENSE_RATE_MAX_WIDTH,
        shift_invert_max: int = SHIFT_INVERT_MAX_WIDTH,
        seed: int = 0,
    ):
        self.m = check_positive("m", m, integer=True)
        for name, value, lower in (
            ("block", block, 1),
            ("history", history, 1),
            ("max_basis", max_basis, 1),
            ("max_expansions", max_expansions, 0),
            ("dense_max", dense_max, 0),
            ("shift_invert_max", shift_invert_max, 0),
            ("seed", seed, 0),
        ):
            check_positive(name, value, integer=True, lower=lower)
        if rtol is not None:
            # a relative accuracy: above 1 a "certified" value could be off by more than itself
            check_positive("rtol", rtol)
            if rtol > 1.0:
                raise ValueError(f"rtol must lie in (0, 1] (a relative accuracy); got {rtol!r}")
        self.shift_invert_max = int(shift_invert_max)
        self.rtol = default_rate_rtol(self.m) if rtol is None else float(rtol)
        self.dense = self.m <= dense_max
        self.block = min(block, self.m)
        self.history = history
        self.max_basis = max(min(max_basis, self.m), 2 * self.block)
        self.max_expansions = max_expansions
        self._rng = np.random.default_rng(seed)
        self._past: list[np.ndarray] = []  # Ritz blocks of the last calls, newest last
        self._top: np.ndarray | None = None  # the last call's top eigenvector
        self._mu2_up: float | None = None  # certified upper bound on mu_2 of the last call's M
        self._U_prev: np.ndarray | None = None
        self._norm_up = 0.0  # upper bound on ||U||_2 of the last call
        self._last_drift = 0.0  # the last call's Weyl increment of a
        self._gap_estimate = 0.0  # mu_1 - mu_2 as last estimated (cold start, Krylov)
        # rounding of a computed residual, relative to theta: |fl(U^T (U x)) - U^T U x| <=
        # 2 gamma_m |U|^T |U| |x|, and || |U| ||_2^2 <= ||U||_F^2 <= m ||U||_2^2 (a crude factor:
        # the residual enters (KT) squared)
        self._residual_floor = 2.0 * (self.m + 2) * EPS * self.m
        self.last_bound = 0.0
        self.stats = {
            "calls": 0,
            "shift_invert": 0,
            "expansions": 0,
            "cold_starts": 0,
            "gap_refreshes": 0,
            "conditional": 0,
            "dense_rechecks": 0,
            "dense_fallbacks": 0,
        }

    @property
    def gap_bound(self) -> float | None:
        """The certified upper bound a >= mu_2(U^T U) of the last state (None before the first
        iterative call, and on the dense path)."""
        return self._mu2_up

    def __call__(self, U: np.ndarray) -> float:
        """lambda = 1 / ||U||_2^2 for the implicit matrix U = I - gamma sigma(A) (m x m)."""
        # a real m x m array (integer or float32 input: the same float64 arithmetic; a complex U is
        # refused, not cast: its real part has another norm), of a scale at which ||U||_2^2 and
        # lambda are normal floats; checked before any state of the tracker changes
        U = as_matrix("U", U, shape=(self.m, self.m), finite=False)
        check_implicit_scale(U)
        self.stats["calls"] += 1
        if self.dense:
            self.last_bound = 0.0
            return rate_from_implicit_matrix(U)
        if not self._past:
            return self._cold_start(U)
        self._advance_gap_bound(U)
        if self.m <= self.shift_invert_max:
            lam = self._shift_invert(U)
            if lam is not None:
                return lam
        theta, X, bound, theta2, rho2, rho1, conditional = self._top_eigenpair(U)
        if theta is None:
            self.stats["dense_fallbacks"] += 1
            return self._cold_start(U)
        self._past = (self._past + [X])[-self.history :]
        upper2 = theta2 + rho2  # some eigenvalue lies within rho_2 of theta_2
        if upper2 < theta:
            self._gap_estimate = theta - upper2
        stale = self._mu2_up is None or theta - self._mu2_up < 0.25 * (theta - theta2)
        # a new a once the drift has used up 3/4 of the gap (O(m^3)), and always before a
        # conditional value is accepted: if s I - (M - theta x x^T) is not positive definite for
        # s between theta_2 + rho_2 and theta, either the second Ritz pair is not mu_2's or theta
        # is not mu_1 -- the conditional bound's assumption is contradicted, and the dense path
        # decides (measured: a path on which the third singular value rises past the first)
        if (stale and self._last_drift < 0.25 * (theta - upper2)) or conditional:
            # s a quarter of the way from theta_2 + rho_2 to theta (then (KT) with a = s is at most
            # 4/3 of the conditional bound), halfway if Cholesky refuses that
            refreshed = False
            if upper2 < theta:
                M = U.T @ U
                refreshed = self._refresh_gap_bound(
                    U, M, theta, X[:, 0], upper2 + 0.25 * (theta - upper2)
                ) or self._refresh_gap_bound(U, M, theta, X[:, 0], upper2 + 0.5 * (theta - upper2))
            if conditional and not refreshed:
                self.stats["dense_rechecks"] += 1
                return self._cold_start(U)
            if conditional and theta > self._mu2_up:
                kt = _kato_temple(rho1 + self._residual_floor, (theta - self._mu2_up) / theta)
                if kt <= self.rtol:  # certified after all, unconditionally
                    bound, conditional = kt * theta, False
        self.stats["conditional"] += conditional
        self._remember(U, X[:, 0], theta, bound)
        self.last_bound = bound / theta
        return 1.0 / theta

    def _cold_start(self, U: np.ndarray) -> float:
        """The dense 2-norm, the top eigenvectors of U^T U to start the next call from, and the
        certified bound on mu_2. From a random start a Krylov iteration can stop at the second
        member of a near-degenerate top pair (measured: sigma_1, sigma_2 equal to 4e-10 relative
        at a saturated softmax, m = 5) with a certificate that assumes it found the first."""
        self.stats["cold_starts"] += 1
        k = min(max(self.block, 2), self.m)  # mu_2 as well, whatever the block
        G = U.T @ U
        w, top = sla.eigh(G, subset_by_index=[self.m - k, self.m - 1])
        if len(w) < k:  # LAPACK's subset drivers (evr, evx) can return none at clustered spectra
            w, top = sla.eigh(G, driver="evd")  # (measured: a concentrated softmax, m = 8, SciPy 1.17)
            w, top = w[-k:], top[:, -k:]
        lam = rate_from_implicit_matrix(U)
        sigma2 = 1.0 / lam
        self._past = [top[:, ::-1]]
        # the eigenvalues of the computed Gram matrix: its rounding, gamma_m || |U|^T |U| ||_2 <=
        # gamma_m ||U||_1 ||U||_inf, and the eigensolver's backward error (model: m eps mu_1)
        gram_rounding = (self.m + 1) * EPS * _abs_norm_product(U)
        margin = gram_rounding + (self.m + 3) * EPS * max(float(w[-1]), sigma2)
        self._mu2_up = float(w[-2]) + margin if self.m > 1 else 0.0  # (m = 1: mu_1 is the only eigenvalue)
        self._gap_estimate = float(w[-1] - w[-2]) if self.m > 1 else 0.0
        self._remember(U, top[:, -1], max(float(w[-1]), sigma2), margin)
        self.last_bound = 0.0
        return lam

    def _remember(self, U: np.ndarray, x: np.ndarray, theta: float, bound: float) -> None:
        """Keep the state's top eigenvector, U, and an upper bound on ||U||_2 = sqrt(mu_1) <=
        sqrt(theta + bound)."""
        self._top = x
        self._U_prev = U.copy()  # the caller may reuse its array
        self._norm_up = math.sqrt(theta + bound) * (1.0 + (self.m + 3) * EPS)

    def _advance_gap_bound(self, U: np.ndarray) -> None:
        """a <- (sqrt(a) + ||U - U_prev||_F)^2: Weyl's inequality for singular values,
        sigma_2(U) <= sigma_2(U_prev) + ||U - U_prev||_2, which holds whatever the values found
        (it needs no bound on sigma_1); likewise ||U||_2 <= ||U_prev||_2 + ||U - U_prev||_F. The
        computed norm is enlarged by its own rounding (m^2 terms summed: m^2 u relative)."""
        if self._mu2_up is None:
            return
        dU = (U - self._U_prev).ravel()
        e = math.sqrt(dU @ dU) * (1.0 + (self.m * self.m + 2) * EPS)
        root = math.sqrt(self._mu2_up) + e
        self._last_drift = root * root - self._mu2_up
        self._mu2_up = root * root
        self._norm_up += e

    def _shift_invert(self, U: np.ndarray):
        """1 / theta for the last top eigenvector x after two steps of inverse iteration with
        s I - M, M = U^T U formed, when (KT) certifies it; else None. s is the smaller of two
        upper bounds on mu_1: (KT) for x itself, theta_x + rho_x^2 / (theta_x - a), and Weyl's
        (||U_prev||_2 + ||U - U_prev||_F)^2 (certified as far as ||U_prev||_2's bound is; only
        the convergence depends on s: if s < mu_1, Cholesky fails and the Krylov path decides).
        With s >= mu_1, s I - M is positive definite (Cholesky), and each step shrinks the other
        eigen-directions by (s - mu_1) / (s - mu_i) <= (s - mu_1) / (s - a): about angle(x, v_1)^2
        with the first bound. A drifted a is first refreshed with the formed M
        (:meth:`_refresh_gap_bound`)."""
        if self._mu2_up is None or self._top is None:
            return None
        x = self._top
        y = U @ x
        theta = float(y @ y)
        M = U.T @ U
        if theta - self._mu2_up < 0.5 * self._gap_estimate:
            # the drifted a is near theta: refresh it first (a guess of mu_2 from the last known
            # gap), so that (KT) gives a tight shift and the final certificate. a goes a quarter
            # of the gap above mu_2's guess, so that the next refresh is due only after another
            # quarter of drift (placed at the trigger itself, it ran at nearly every call:
            # 16794 of 16804 along a flow at m = 60); halfway if Cholesky refuses that
            if not self._refresh_gap_bound(U, M, theta, x, theta - 0.75 * self._gap_estimate):
                self._refresh_gap_bound(U, M, theta, x, theta - 0.5 * self._gap_estimate)
        a = self._mu2_up
        shift = self._norm_up * self._norm_up
        # the (KT) shift costs a residual; Weyl's is enough when it already sits within 1% of the
        # certified gap above theta (each step then shrinks the rest by <= 1/100)
        if theta > a and shift - theta > 0.01 * (theta - a):
            shift = min(shift, theta * (1.0 + self._kato_temple_of(U, x, y, theta, a)))
        # (1 + 1e-10): s I - fl(U^T U) stays positive definite although the Gram product's
        # rounding, <= (m + 1) eps ||U||_1 ||U||_inf ~ 1e-13 mu_1 at m <= 96, may lift mu_1
        shift *= 1.0 + 1e-10
        H = np.negative(M)
        H.reshape(-1)[:: self.m + 1] += shift  # (a strided view of the diagonal)
        R, info = _POTRF(H, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            return None
        with np.errstate(over="ignore", invalid="ignore"):  # (a non-finite x fails (KT) below)
            for _ in range(2):
                x, _ = _POTRS(R, x)
                x /= _NRM2(x)  # scaled 2-norm: x grows by up to 1 / (s - mu_1)
            return self._certify(U, x, a)[0]

    def _certify(self, U: np.ndarray, x: np.ndarray, a: float):
        """(1 / theta, theta) for the unit vector x when (KT) with the bound a certifies rtol, else
        (None, theta)."""
        y = U @ x
        theta = float(y @ y)
        if not theta > a:
            return None, theta
        rel = self._kato_temple_of(U, x, y, theta, a)
        if not rel <= self.rtol:
            return None, theta
        bound = rel * theta
        self.stats["shift_invert"] += 1
        self._past = (self._past + [x[:, None]])[-self.history :]
        self._remember(U, x, theta, bound)
        self.last_bound = bound / theta
        return 1.0 / theta, theta

    def _kato_temple_of(self, U: np.ndarray, x: np.ndarray, y: np.ndarray, theta: float, a: float) -> float:
        """(KT) / theta for the unit vector x, y = U x, theta = ||y||^2 > a: the residual
        U^T y - theta x relative to theta (no square under- or overflows), plus its rounding floor."""
        r = U.T @ y
        r -= theta * x
        r /= theta
        return _kato_temple(math.sqrt(r @ r) + self._residual_floor, (theta - a) / theta)

    def _refresh_gap_bound(self, U: np.ndarray, M: np.ndarray, theta: float, x: np.ndarray, s: float) -> bool:
        """A new certified a >= mu_2 if the Cholesky factorisation of s I - (M - theta x x^T)
        succeeds (see the class notes; M = U^T U as computed); returns whether it did. O(m^3)."""
        H = np.negative(M)
        H += theta * np.outer(x, x)
        H.flat[:: self.m + 1] += s
        R, info = lapack.dpotrf(H, lower=0)
        if info != 0:
            return False
        self.stats["gap_refreshes"] += 1
        norms = _abs_norm_product(U)
        # the factorisation's backward error, the Gram product's and the rounding of forming H
        margin = (self.m + 2) * EPS * float(np.sum(R * R)) + (self.m + 1) * EPS * norms + 4 * EPS * (s + theta + norms)
        a = s + margin
        self._mu2_up = a if self._mu2_up is None else min(self._mu2_up, a)
        return True

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
        """(theta_1, Ritz block X, bound on mu_1 - theta_1, theta_2, rho_2, rho_1 / theta_1, whether
        the bound is the conditional one) by Rayleigh-Ritz on a block Krylov space (see the class notes);
        (None, ...) after ``max_expansions``."""
        b, a = self.block, self._mu2_up
        # the last Ritz blocks (newest first; the first from the cold start's dense
        # eigenvectors), one Krylov step from the newest in the new M, and a random vector so
        # that no eigenvector can be absent from the start space
        # (the random vector first: Householder QR without pivoting keeps only the first m columns,
        # and at small m the history alone can be m copies of one vector)
        P = np.hstack(self._past[::-1])
        V = self._orthonormal(np.hstack([self._rng.standard_normal((self.m, 1)), P, U.T @ (U @ P[:, :b])]))
        Z = U @ V
        MV = U.T @ Z
        for _ in range(self.max_expansions + 1):
            w, C, _ = _SYEVD(Z.T @ Z)  # V^T M V, symmetric positive semi-definite by construction
            k = min(b, len(w))
            theta, C = w[: -k - 1 : -1], C[:, : -k - 1 : -1]
            X = V @ C
            R = (MV @ C - X * theta) / theta[0]  # relative to theta_1: no square under- or overflows
            rho = np.sqrt((R * R).sum(axis=0))  # rho_i / theta_1
            theta2, rho2 = (float(theta[1]), float(rho[1] * theta[0])) if k > 1 else (0.0, 0.0)
            if not (theta[0] > 0 and np.all(np.isfinite(theta)) and np.all(np.isfinite(rho))):
                return (None,) * 7  # overflow or underflow of U's scale: the dense path decides
            rho1 = rho[0]
            rel, conditional = np.inf, False
            if a is not None and theta[0] > a:  # (KT) with the certified a: unconditional
                rel = _kato_temple(rho1 + self._residual_floor, (theta[0] - a) / theta[0])
            if not rel <= self.rtol:  # the conditional bound (see the class notes)
                rel, conditional = rho1, True
                if k > 1 and theta[0] - theta2 - rho2 > 0:
                    rel = min(rel, _kato_temple(rho1, (theta[0] - theta2 - rho2) / theta[0]))
            bound = rel * theta[0]
            done = rel <= self.rtol or V.shape[1] >= self.m
            if not done and V.shape[1] + k > self.max_basis:  # thick restart from the current Ritz block
                V, Z, MV = X, Z @ C, MV @ C
            # (V spanning the whole space makes Rayleigh-Ritz exact up to rounding; residuals that
            # are rounding noise inside span(V) add nothing)
            Q = None if done else self._orthonormal(R, V)
            if done or Q.shape[1] == 0:
                return float(theta[0]), X, float(bound), theta2, rho2, float(rho1), conditional
            self.stats["expansions"] += 1
            ZQ = U @ Q
            V = np.hstack([V, Q])
            Z = np.hstack([Z, ZQ])
            MV = np.hstack([MV, U.T @ ZQ])
        return (None,) * 7


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
    if m > 2**53:  # beyond float64's exact integers (and any matrix that fits in memory)
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
    concentrated A (docs/theory.md, section 4: m = 30, gamma = 0.9 gives lambda ~ 0.041 < 0.277)."""
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
