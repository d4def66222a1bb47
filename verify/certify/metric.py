"""The metric K of docs/theory.md, section 4, without its (m m_y)^2 matrix.

    K = (U^{-T} U^{-1}) (x) I_{m_y} + c sum_j (a_j a_j^T) (x) N_j,   a_j = U^{-T} e_j,  N_j = W J_j^2 W^T,

c = gamma^2 (times ``second_term_scale`` for a deliberately wrong K). On paper (exact identities and
structure, not ball computations):

  (K1) (A (x) B) vec(X) = vec(B X A^T), so K vec(X) = vec(X Q^T + c [N_j X a_j]_j U^{-1}), Q = U^{-T} U^{-1}
       (the Kronecker formula term by term; :meth:`StructuredMetric.apply`).
  (K2) Mixed products: with F = U^{-T} (x) I and M = blockdiag(M_j), M_j = I + c N_j,
       K = F M F^T, hence K^{-1} = (U (x) I) M^{-1} (U^T (x) I): K^{-1} vec(X) = vec([M_j^{-1} (X U)_j]_j U^T)
       (m rigorous m_y x m_y solves and products with U; :meth:`StructuredMetric.apply_inverse`).
  (K3) N_j = (W J_j)(W J_j)^T >= 0 (J_j is symmetric), so every term a_j a_j^T (x) N_j is a Kronecker
       product of PSD matrices, hence PSD, and M_j = I + c N_j >= I (c >= 0).
  (K4) K - nu I = F Z(nu) F^T with Z(nu) = (I - nu U^T U) (x) I + blockdiag(c N_j) (F^{-1} F^{-T} =
       U^T U (x) I): K - nu I and Z(nu) have the same inertia (Sylvester; U is invertible, which the
       rigorous inverse of U proves).
  (K5) For H = (Phi Phi^T) (x) I = Xi Xi^T, Xi = Phi (x) I, and Psi = U^{-1} Phi Phi^T U^{-T}:
       tau F^T (K^{-1} - H / tau) F = tau M^{-1} - Psi (x) I =: Z'(tau), and K^{-1} - H / tau is congruent
       to I - K^{1/2} H K^{1/2} / tau; so the number of eigenvalues of K^{1/2} H K^{1/2} (= the nonzero
       ones of B = Xi^T K Xi) that are >= tau equals the number of eigenvalues of Z'(tau) that are <= 0.
       Z'(tau) = (diag(beta) - Psi) (x) I + blockdiag(tau M_j^{-1} - beta_j I) with beta_j = tau / mu_j,
       mu_j >= lambda_max(M_j) (a proved enclosure), so the blocks are PSD.

Z(nu) and Z'(tau) have the form of :func:`verify.certify.kronecker.prove_inertia`. Proved in balls:

  lambda_min(K)     upper: the Rayleigh quotient of an exact float64 vector x (Courant-Fischer);
                    lower: Temple's bound at x with lambda_2(K) > nu, nu proved by Z(nu) having at most
                    one eigenvalue <= 0 (K4); if no gap can be proved, the weaker Z(lo) > 0 (lo <= lambda_min).
  lambda_max(K^{1/2} H K^{1/2}) = 1/dt_max: lower: Rayleigh quotients of B at y and of the pencil
                    (H, K^{-1}) at x = K Xi y; upper: Temple's bound for -B with the second eigenvalue
                    < nu proved by (K5); if no gap can be proved, Z'(tau) > 0 (tau >= lambda_max).

The float64 eigenvectors come from the same operators in float64 (dense up to DENSE_SIZE, else
Lanczos, scipy's eigsh); they only choose the exact vectors and shifts, never decide.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from flint import arb, arb_mat
from scipy.sparse.linalg import LinearOperator, eigsh

from .balls import ball_identity, ball_matrix, frobenius_inner, frobenius_sq, lambda_max_enclosure, mid_array
from .kronecker import float_schur, prove_inertia, temple_lower
from .proof import NON_FINITE, Undecided

#: float64 eigenproblems up to this dimension are solved densely, larger ones by Lanczos
DENSE_SIZE = 800
#: the Schur bound keeps every direction (dense Z, no basis change) up to this m m_y
DENSE_Z = 200
#: directions kept by the Schur bound above DENSE_Z, tried in turn (float64 pre-check first)
SCHUR_DIRECTIONS = (2, 4, 8, 16, 32)


def _column(M: arb_mat, j: int) -> arb_mat:
    return arb_mat([[M[i, j]] for i in range(M.nrows())])


def _finite(x: np.ndarray) -> np.ndarray:
    """x, or Undecided if a float64 helper overflowed (the helpers run under np.errstate(all="ignore"))."""
    if not np.all(np.isfinite(x)):
        raise Undecided("a float64 helper met values beyond float64's range at this scale")
    return x


class StructuredMetric:
    """K of the state ``st`` (a :class:`verify.certify.ball_model.BallState`) as an operator on m_y x m
    matrices (module docstring); ``second_term_scale`` != 1 builds a WRONG K (tests and canaries)."""

    def __init__(self, st, second_term_scale: float = 1.0):
        self.m, self.my = st.m, st.m_y
        self.U, self.Uinv = st.U, st.Uinv
        self.Q = st.Uinv.transpose() * st.Uinv
        self.c = st.gamma * st.gamma * arb(second_term_scale)
        self.N = []
        for j in range(self.m):  # N_j = V V^T, V = W J_j = W diag(s_j) - (W s_j) s_j^T
            s = [st.S[i, j] for i in range(self.m)]
            Ws = st.W * arb_mat([[x] for x in s])
            V = arb_mat(self.my, self.m)
            for k in range(self.my):
                for i in range(self.m):
                    V[k, i] = (st.W[k, i] - Ws[k, 0]) * s[i]
            self.N.append(V * V.transpose())
        self.M = [ball_identity(self.my) + Nj * self.c for Nj in self.N]
        self.P_phi = st.P
        self._Phi = st._Phi
        self._float = None
        self._psi_ball = None

    # ---- K and K^{-1} in balls ------------------------------------------------------------------------
    def apply(self, X: arb_mat) -> arb_mat:
        """unvec(K vec(X)) = X Q^T + c [N_j X a_j]_j U^{-1}  (K1)."""
        C = X * self.Uinv.transpose()  # column j is X a_j
        Y = arb_mat(self.my, self.m)
        for j in range(self.m):
            y = self.N[j] * _column(C, j)
            for k in range(self.my):
                Y[k, j] = y[k, 0]
        return X * self.Q.transpose() + Y * self.Uinv * self.c

    def apply_inverse(self, X: arb_mat) -> arb_mat:
        """unvec(K^{-1} vec(X)) = [M_j^{-1} (X U)_j]_j U^T  (K2; rigorous solves, ZeroDivisionError if a
        ball M_j is not certainly invertible)."""
        XU = X * self.U
        Z = arb_mat(self.my, self.m)
        for j in range(self.m):
            z = self.M[j].solve(_column(XU, j))
            for k in range(self.my):
                Z[k, j] = z[k, 0]
        return Z * self.U.transpose()

    def apply_hessian(self, X: arb_mat) -> arb_mat:
        """unvec(H vec(X)) = X Phi Phi^T, H = (Phi Phi^T) (x) I (square loss; docs/theory.md, section 6);
        X may have any number of rows. The only place H enters the ball computations."""
        return X * self.P_phi

    # ---- float64 helpers (they choose vectors and shifts; nothing is decided in float64) ------------
    def floats(self) -> dict:
        if self._float is None:
            f = {"U": mid_array(self.U), "Uinv": mid_array(self.Uinv), "c": float(self.c.mid()),
                 "N": np.array([mid_array(Nj) for Nj in self.N]), "Phi": np.asarray(self._Phi, dtype=np.float64)}
            for x in f.values():
                _finite(np.asarray(x, dtype=np.float64))
            f["Q"] = f["Uinv"].T @ f["Uinv"]
            f["M"] = np.eye(self.my) + f["c"] * f["N"]
            self._float = f
        return self._float

    def float_apply(self, X: np.ndarray) -> np.ndarray:
        f = self.floats()
        C = X @ f["Uinv"].T
        return X @ f["Q"].T + f["c"] * np.einsum("jab,bj->aj", f["N"], C) @ f["Uinv"]

    def float_dense(self) -> np.ndarray:
        """K in float64, F M F^T (K2), for the dense helpers."""
        f = self.floats()
        F = np.kron(f["Uinv"].T, np.eye(self.my))
        FM = F @ sla.block_diag(*f["M"])
        return _finite(FM @ F.T)

    def smallest_pairs(self) -> tuple[float, float, np.ndarray]:
        """(theta_1, theta_2, x_1): the two smallest eigenvalues of K and the first eigenvector (m_y x m)."""
        with np.errstate(all="ignore"):
            return self._smallest_pairs()

    def _smallest_pairs(self):
        d = self.m * self.my
        if d <= DENSE_SIZE:
            w, V = np.linalg.eigh(self.float_dense())
            x = V[:, 0]
            return float(w[0]), float(w[1]) if d > 1 else np.inf, x.reshape(self.m, self.my).T
        f = self.floats()

        def inverse(v):  # K^{-1} vec(X) = vec([M_j^{-1} (X U)_j] U^T)  (K2), m_y x m_y LU solves
            XU = v.reshape(self.m, self.my).T @ f["U"]
            Z = np.linalg.solve(f["M"], XU.T[:, :, None])[:, :, 0].T
            return (Z @ f["U"].T).T.reshape(-1)
        op = LinearOperator((d, d), matvec=inverse, dtype=np.float64)
        w, V = eigsh(op, k=2, which="LA", tol=0)
        order = np.argsort(-w)
        return float(1 / w[order[0]]), float(1 / w[order[1]]), V[:, order[0]].reshape(self.m, self.my).T

    def largest_pairs(self) -> tuple[float, float, np.ndarray]:
        """(Lambda_1, Lambda_2, y_1): the two largest eigenvalues of B = Xi^T K Xi (the nonzero ones of
        K^{1/2} H K^{1/2}) and the first eigenvector as an m_y x n matrix."""
        with np.errstate(all="ignore"):
            return self._largest_pairs()

    def _largest_pairs(self):
        f = self.floats()
        Phi = f["Phi"]
        n = Phi.shape[1]
        size = n * self.my
        if size <= DENSE_SIZE and self.m * self.my <= DENSE_SIZE:
            Xi = np.kron(Phi, np.eye(self.my))
            w, V = np.linalg.eigh(_finite(Xi.T @ self.float_dense() @ Xi))
            return float(w[-1]), float(w[-2]) if size > 1 else -np.inf, V[:, -1].reshape(n, self.my).T

        def apply_B(v):  # Xi^T K Xi vec(Y) = vec(K(Y Phi^T) Phi)
            return (self.float_apply(v.reshape(n, self.my).T @ Phi.T) @ Phi).T.reshape(-1)
        if size <= DENSE_SIZE:
            B = np.column_stack([apply_B(e) for e in np.eye(size)])
            w, V = np.linalg.eigh(_finite(0.5 * (B + B.T)))
            return float(w[-1]), float(w[-2]) if size > 1 else -np.inf, V[:, -1].reshape(n, self.my).T
        w, V = eigsh(LinearOperator((size, size), matvec=apply_B, dtype=np.float64), k=2, which="LA", tol=0)
        order = np.argsort(-w)
        return float(w[order[0]]), float(w[order[1]]), V[:, order[0]].reshape(n, self.my).T

    # ---- the inertia bounds (K4), (K5) ---------------------------------------------------------------
    def _directions(self, shift: float, count: int, floats) -> int | None:
        """The k of the Schur bound: every direction (dense) for small m m_y, else the fewest SCHUR_DIRECTIONS
        whose float64 T passes with a margin; None if none does."""
        if self.m * self.my <= DENSE_Z:
            return self.m
        E, D = floats(shift)
        if not (np.all(np.isfinite(E)) and np.all(np.isfinite(D))):
            return None
        for k in SCHUR_DIRECTIONS:
            if k >= self.m:
                return self.m if self.m * self.my <= 4 * DENSE_Z else None
            T = float_schur(E, D, k)
            if T is None:
                continue
            w = np.linalg.eigvalsh(T)
            scale = np.abs(w).max() or 1.0
            if w[count] > 2.0 ** -30 * scale:
                return k
        return None

    def _fallback_directions(self) -> int:
        """The most directions the Schur bound keeps when no k passed the float64 pre-check."""
        fewer = [k for k in SCHUR_DIRECTIONS if k < self.m]
        return max(fewer) if fewer and self.m * self.my > DENSE_Z else self.m

    def _metric_Z(self, nu: arb) -> tuple[arb_mat, list[arb_mat]]:
        """Z(nu) of (K4): E = I - nu U^T U, D_j = c N_j."""
        P = self.U.transpose() * self.U
        return ball_identity(self.m) - P * nu, [Nj * self.c for Nj in self.N]

    def _metric_Z_float(self, nu: float):
        f = self.floats()
        return np.eye(self.m) - nu * f["U"].T @ f["U"], f["c"] * f["N"]

    def lambda_min(self) -> tuple[arb, str]:
        """An enclosure of lambda_min(K) and how its lower end was proved (module docstring)."""
        theta1, theta2, xf = self.smallest_pairs()
        x = ball_matrix(xf)
        sigma = arb(theta1)
        r = self.apply(x) - x * sigma
        q0, q1, q2 = frobenius_sq(x), frobenius_inner(x, r), frobenius_sq(r)
        upper = sigma + q1 / q0
        if np.isfinite(theta2) and theta2 > theta1:
            nu_f = theta1 + (theta2 - theta1) / 8
            k = self._directions(nu_f, 1, self._metric_Z_float)
            if k is not None:
                nu = arb(nu_f)
                try:
                    proved = prove_inertia(*self._metric_Z(nu), k, 1) > 0
                except (Undecided, ZeroDivisionError):
                    proved = False
                if proved:
                    low = temple_lower(q0, q1, q2, nu - sigma)
                    if low is not None:
                        return (sigma + low).union(upper), (f"Temple at an exact float64 eigenvector, lambda_2(K) > "
                                                            f"{nu_f:.6g} by the Schur bound (k = {k})")
        lo = self._positive_shift(theta1)
        return lo.union(upper), "Z(lo) > 0 by the Schur bound (no gap lambda_2 - lambda_1 proved)"

    def _positive_shift(self, theta1: float) -> arb:
        """lo <= lambda_min(K) from Z(lo) > 0 (K4): lo found in float64, proved in balls."""
        k = self._directions(theta1 * (1 - 2.0 ** -10), 0, self._metric_Z_float)
        if k is None:
            k = self._fallback_directions()
        E0, D0 = self._metric_Z_float(0.0)
        P = self.floats()["U"].T @ self.floats()["U"]

        def ok(lo):
            with np.errstate(all="ignore"):
                T = float_schur(E0 - lo * P, D0, k)
            return T is not None and bool(np.all(np.isfinite(T))) and np.linalg.eigvalsh(T)[0] > 0
        a, b = 0.0, theta1
        for _ in range(48):
            mid = 0.5 * (a + b)
            a, b = (mid, b) if ok(mid) else (a, mid)
        for shrink in (2.0 ** -30, 2.0 ** -20, 2.0 ** -10, 2.0 ** -5):
            lo = arb(a * (1 - shrink))
            try:
                if prove_inertia(*self._metric_Z(lo), k, 0) > 0:
                    return lo
            except (Undecided, ZeroDivisionError):
                continue
        raise Undecided("lambda_min(K): no positive definite Z(lo) proved")

    def _step_Z(self, tau: arb, mu: list[arb]) -> tuple[arb_mat, list[arb_mat]]:
        """Z'(tau) of (K5): E = diag(tau / mu_j) - Psi, D_j = tau M_j^{-1} - (tau / mu_j) I."""
        beta = [tau / x for x in mu]
        E = -self._psi()
        for j in range(self.m):
            E[j, j] += beta[j]
        D = [self.M[j].inv() * tau - ball_identity(self.my) * beta[j] for j in range(self.m)]
        return E, D

    def _psi(self) -> arb_mat:
        """Psi = U^{-1} Phi Phi^T U^{-T}, through :meth:`apply_hessian` (K5)."""
        if self._psi_ball is None:
            self._psi_ball = self.apply_hessian(self.Uinv) * self.Uinv.transpose()
        return self._psi_ball

    def block_bounds(self) -> list[arb]:
        """mu_j >= lambda_max(M_j), exact upper ends of proved enclosures."""
        return [arb(lambda_max_enclosure(Mj).upper()) for Mj in self.M]

    def step_bound(self, mu: list[arb]) -> dict:
        """Enclosure of Lambda = lambda_max(K^{1/2} H K^{1/2}) = 1/dt_max (module docstring) at the witness
        x = K w, w = Xi y (y a float64 top eigenvector of B = Xi^T K Xi): K^{-1} x = w exactly, so
        q1 = x^T K^{-1} x = w^T K w and q2 = x^T H x need only K and H; Lambda >= q2/q1 (the pencil
        (H, K^{-1}); Courant-Fischer). Above: Temple for K^{1/2} H K^{1/2} at z = K^{-1/2} x, whose
        residual is K^{1/2} r, r = (H - sigma K^{-1}) x = H x - sigma w, ||.||^2 = r^T K r. H enters only
        through :meth:`apply_hessian` (here and in Psi)."""
        Lam1, Lam2, yf = self.largest_pairs()
        if not np.isfinite(Lam2):
            Lam2 = 0.0  # n m_y = 1: rank H <= 1, the next eigenvalue of K^{1/2} H K^{1/2} is 0
        w = ball_matrix(yf) * ball_matrix(self._Phi.T)   # Xi y = vec(Y Phi^T)
        x = self.apply(w)
        Hx = self.apply_hessian(x)
        q1, q2 = frobenius_inner(w, x), frobenius_inner(x, Hx)
        out = {"estimate": Lam1, "q1": q1, "q2": q2, "xx": frobenius_sq(x)}
        if not q1 > 0:
            raise Undecided("dt_max: the witness w^T K w > 0 is not proved")
        lower = q2 / q1
        sigma = arb(Lam1)
        r = Hx - w * sigma
        s1, s2 = frobenius_inner(x, r), frobenius_inner(r, self.apply(r))
        f = self.floats()
        mu_f = np.array([float(t) for t in mu])
        Psi_f = mid_array(self._psi())
        Minv_f = np.linalg.inv(f["M"])  # m_y x m_y blocks, a float64 helper only

        def floats(tau):
            return np.diag(tau / mu_f) - Psi_f, tau * Minv_f - (tau / mu_f)[:, None, None] * np.eye(self.my)
        if Lam2 < Lam1:
            nu_f = Lam1 - (Lam1 - Lam2) / 8
            k = self._directions(nu_f, 1, floats)
            if k is not None:
                nu = arb(nu_f)
                try:
                    proved = prove_inertia(*self._step_Z(nu, mu), k, 1) > 0
                except (Undecided, ZeroDivisionError):
                    proved = False
                if proved:  # Temple for -K^{1/2} H K^{1/2} at z: Lambda - sigma <= -temple(q1, -s1, s2, sigma - nu)
                    low = temple_lower(q1, -s1, s2, sigma - nu)
                    if low is not None:
                        out["Lambda"] = lower.union(sigma - low)
                        out["how"] = f"Temple, second eigenvalue < {nu_f:.6g} by the Schur bound (k = {k})"
                        return out
        out["Lambda"] = lower.union(self._step_upper(Lam1, mu, floats))
        out["how"] = "Z'(tau) > 0 by the Schur bound (no gap proved)"
        return out

    def _step_upper(self, Lam1: float, mu: list[arb], floats) -> arb:
        """tau >= Lambda from Z'(tau) > 0 (K5): tau found in float64, proved in balls."""
        k = self._directions(Lam1 * (1 + 2.0 ** -10), 0, floats)
        if k is None:
            k = self._fallback_directions()

        def ok(tau):
            with np.errstate(all="ignore"):
                T = float_schur(*floats(tau), k)
            return T is not None and bool(np.all(np.isfinite(T))) and np.linalg.eigvalsh(T)[0] > 0
        a, b = Lam1, 4 * Lam1
        if not ok(b):
            raise Undecided("dt_max: no positive definite Z'(tau) found in float64")
        for _ in range(48):
            mid = 0.5 * (a + b)
            a, b = (a, mid) if ok(mid) else (mid, b)
        for grow in (2.0 ** -30, 2.0 ** -20, 2.0 ** -10, 2.0 ** -5):
            tau = arb(b * (1 + grow))
            try:
                if prove_inertia(*self._step_Z(tau, mu), k, 0) > 0:
                    return tau
            except (Undecided, ZeroDivisionError):
                continue
        raise Undecided("dt_max: no positive definite Z'(tau) proved")


__all__ = ["StructuredMetric", "NON_FINITE"]
