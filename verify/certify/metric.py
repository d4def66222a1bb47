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
       product of PSD matrices, hence PSD, K >= Q (x) I, and M_j = I + c N_j >= I (c >= 0).
  (K4) Congruences by F (nonsingular: the rigorous inverse of U proves U invertible; Sylvester keeps
       the inertia), with P = U^T U, Psi = U^{-1} Phi Phi^T U^{-T}, R = U^{-1} U^{-T} and
       mu_j >= lambda_max(M_j) (proved enclosures):
         #{eig K <= nu}           = #{eig <= 0} of Z = (I - nu P) (x) I + blockdiag(c N_j)
         #{eig K >= nu}           = ... of (nu P - diag(mu)) (x) I + blockdiag(mu_j I - M_j)
         #{eig K^1/2 H K^1/2 >= t} = ... of (diag(t/mu) - Psi) (x) I + blockdiag(t M_j^{-1} - (t/mu_j) I)
         #{eig G_s <= nu}         = ... of (diag(1/(s mu)) - Psi - nu R) (x) I
                                           + blockdiag(M_j^{-1}/s - I/(s mu_j)),   G_s = K^{-1}/s - H,
       every one E (x) I + blockdiag(PSD), the form of :func:`verify.certify.kronecker.prove_inertia`
       (K - nu I = F Z F^T; K^{-1} - H/t = F^{-T} (M^{-1} - Psi (x) I / t) F^{-1} is congruent to
       I - K^{1/2} H K^{1/2}/t; F^T (G_s - nu I) F = M^{-1}/s - Psi (x) I - nu R (x) I).

Proved in balls, for each extreme eigenvalue (:meth:`StructuredMetric._extreme`): one end by the
Rayleigh quotient of an exact float64 vector x (Courant-Fischer), the other by Temple's inequality at
x, whose gap (the next eigenvalue beyond nu) is proved by the Schur bound on the count above being
<= 1. Without a provable gap (a multiple eigenvalue: m < m_y, the exact tight state) lambda_min(K) and
1/dt_max fall back to a shift t with a positive definite Schur bound (count 0), the others to cruder
bounds (Weyl, Ostrowski) stated where they are used. For 1/dt_max = lambda_max(K^{1/2} H K^{1/2}) the
vector is x = K w, w = Xi y (Xi = Phi (x) I, y a float64 top eigenvector of Xi^T K Xi): K^{-1} x = w
exactly, so Temple runs on the pencil (H, K^{-1}) with K and H applied, nothing inverted.

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
from .proof import Undecided

#: float64 eigenproblems up to this dimension are solved densely, larger ones by Lanczos
DENSE_SIZE = 300
#: the Schur bound keeps every direction (dense Z, no basis change) up to this m m_y
DENSE_Z = 64
#: directions kept by the Schur bound above DENSE_Z, tried in turn (float64 pre-check first)
SCHUR_DIRECTIONS = (2, 4, 8, 16, 32)


def _column(M: arb_mat, j: int) -> arb_mat:
    return arb_mat([[M[i, j]] for i in range(M.nrows())])


def _finite(x: np.ndarray) -> np.ndarray:
    """x, or Undecided if a float64 helper overflowed (the helpers run under np.errstate(all="ignore"))."""
    if not np.all(np.isfinite(x)):
        raise Undecided("a float64 helper met values beyond float64's range at this scale")
    return x


def _pairs(w: np.ndarray, V: np.ndarray, largest: bool) -> tuple[float, float, np.ndarray]:
    """(extreme eigenvalue, the next one (+-inf if none), its eigenvector) from eigh/eigsh output."""
    order = np.argsort(-w if largest else w)
    nxt = float(w[order[1]]) if len(w) > 1 else (-np.inf if largest else np.inf)
    return float(w[order[0]]), nxt, V[:, order[0]]


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
        self._cache = {}

    # ---- K, K^{-1} and H in balls -----------------------------------------------------------------------
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

    def _ball(self, name: str) -> arb_mat | list[arb]:
        """Cached ball matrices of (K4): P, Psi (through apply_hessian), R, mu_j, the M_j^{-1}."""
        if name not in self._cache:
            if name == "P":
                value = self.U.transpose() * self.U
            elif name == "Psi":
                value = self.apply_hessian(self.Uinv) * self.Uinv.transpose()
            elif name == "R":
                value = self.Uinv * self.Uinv.transpose()
            elif name == "mu":  # mu_j >= lambda_max(M_j): exact upper ends of proved enclosures
                value = [arb(lambda_max_enclosure(Mj).upper()) for Mj in self.M]
            else:
                value = [Mj.inv() for Mj in self.M]
            self._cache[name] = value
        return self._cache[name]

    # ---- the four congruent forms of (K4), in balls and in float64 --------------------------------------
    def _Z(self, problem: str, t: arb, s: arb | None = None) -> tuple[arb_mat, list[arb_mat]]:
        m, eye = self.m, ball_identity(self.my)
        if problem == "K min":
            return ball_identity(m) - self._ball("P") * t, [Nj * self.c for Nj in self.N]
        mu = self._ball("mu")
        if problem == "K max":
            E = self._ball("P") * t
            for j in range(m):
                E[j, j] -= mu[j]
            return E, [eye * mu[j] - self.M[j] for j in range(m)]
        tau = t if problem == "KH max" else arb(1) / s
        E = -self._ball("Psi") if problem == "KH max" else -(self._ball("Psi") + self._ball("R") * t)
        beta = [tau / x for x in mu]
        for j in range(m):
            E[j, j] += beta[j]
        return E, [Minv * tau - eye * beta[j] for j, Minv in enumerate(self._ball("Minv"))]

    def _Z_float(self, problem: str, t: float, s: float | None = None):
        f, my = self.floats(), self.my
        if problem == "K min":
            return np.eye(self.m) - t * f["P"], f["c"] * f["N"]
        mu = np.array([float(x) for x in self._ball("mu")])
        if problem == "K max":
            return t * f["P"] - np.diag(mu), mu[:, None, None] * np.eye(my) - f["M"]
        tau = t if problem == "KH max" else 1.0 / s
        E = np.diag(tau / mu) - f["Psi"] - (0.0 if problem == "KH max" else t * f["R"])
        return E, tau * f["Minv"] - (tau / mu)[:, None, None] * np.eye(my)

    # ---- float64 helpers (they choose vectors and shifts; nothing is decided in float64) ----------------
    def floats(self) -> dict:
        if self._float is None:
            with np.errstate(all="ignore"):
                f = {
                    "U": mid_array(self.U),
                    "Uinv": mid_array(self.Uinv),
                    "c": float(self.c.mid()),
                    "N": np.array([mid_array(Nj) for Nj in self.N]),
                    "Phi": np.asarray(self._Phi, dtype=np.float64),
                }
                for x in f.values():
                    _finite(np.asarray(x, dtype=np.float64))
                f["Q"] = f["Uinv"].T @ f["Uinv"]
                f["P"] = f["U"].T @ f["U"]
                f["R"] = f["Uinv"] @ f["Uinv"].T
                f["PhiPhi"] = f["Phi"] @ f["Phi"].T
                f["Psi"] = f["Uinv"] @ f["PhiPhi"] @ f["Uinv"].T
                f["M"] = np.eye(self.my) + f["c"] * f["N"]
                f["Minv"] = np.linalg.solve(f["M"], np.broadcast_to(np.eye(self.my), f["M"].shape))
                for x in f.values():
                    _finite(np.asarray(x, dtype=np.float64))
            self._float = f
        return self._float

    def _vec_op(self, apply_matrix):
        d = self.m * self.my
        return LinearOperator(
            (d, d), dtype=np.float64, matvec=lambda v: apply_matrix(v.reshape(self.m, self.my).T).T.reshape(-1)
        )

    def float_apply(self, X: np.ndarray) -> np.ndarray:
        f = self.floats()
        return X @ f["Q"].T + f["c"] * np.einsum("jab,bj->aj", f["N"], X @ f["Uinv"].T) @ f["Uinv"]

    def float_apply_inverse(self, X: np.ndarray) -> np.ndarray:
        f = self.floats()
        Z = np.linalg.solve(f["M"], (X @ f["U"]).T[:, :, None])[:, :, 0].T  # m_y x m_y LU solves (K2)
        return Z @ f["U"].T

    def float_dense(self, which: str = "K", step: float = 1.0) -> np.ndarray:
        """K = F M F^T or G_s = F^{-T} M^{-1} F^{-1}/s - H in float64 (K2), for the dense helpers."""
        f = self.floats()
        if which == "K":
            F = np.kron(f["Uinv"].T, np.eye(self.my))
            return _finite(F @ sla.block_diag(*f["M"]) @ F.T)
        Ft = np.kron(f["U"], np.eye(self.my))
        return _finite(Ft @ sla.block_diag(*f["Minv"]) @ Ft.T / step - np.kron(f["PhiPhi"], np.eye(self.my)))

    def _float_extreme(self, which: str, step: float = 1.0) -> tuple[float, float, np.ndarray]:
        """(theta, the next eigenvalue, x as m_y x m) at the end of the spectrum named by ``which``:
        "K min", "K max" or "G min" (G_step)."""
        d, largest = self.m * self.my, which == "K max"
        with np.errstate(all="ignore"):
            if d <= DENSE_SIZE:
                w, V = np.linalg.eigh(self.float_dense(which[0], step))
                theta, nxt, x = _pairs(w, V, largest)
            elif which == "K min":  # the top of K^{-1}
                w, V = eigsh(self._vec_op(self.float_apply_inverse), k=2, which="LA", tol=0)
                theta, nxt, x = _pairs(1 / w, V, False)
            elif which == "K max":
                w, V = eigsh(self._vec_op(self.float_apply), k=2, which="LA", tol=0)
                theta, nxt, x = _pairs(w, V, True)
            else:
                P = self.floats()["PhiPhi"]
                op = self._vec_op(lambda X: self.float_apply_inverse(X) / step - X @ P)
                w, V = eigsh(op, k=2, which="SA", tol=0)
                theta, nxt, x = _pairs(w, V, False)
        return theta, nxt, _finite(x.reshape(self.m, self.my).T)

    def largest_pairs(self) -> tuple[float, float, np.ndarray]:
        """(Lambda_1, Lambda_2, y_1): the two largest eigenvalues of B = Xi^T K Xi (the nonzero ones of
        K^{1/2} H K^{1/2}) and the first eigenvector as an m_y x n matrix."""
        with np.errstate(all="ignore"):
            f = self.floats()
            Phi = f["Phi"]
            n = Phi.shape[1]
            size = n * self.my
            if size <= DENSE_SIZE and self.m * self.my <= DENSE_SIZE:
                Xi = np.kron(Phi, np.eye(self.my))
                w, V = np.linalg.eigh(_finite(Xi.T @ self.float_dense() @ Xi))
            else:

                def apply_B(v):  # Xi^T K Xi vec(Y) = vec(K(Y Phi^T) Phi)
                    return (self.float_apply(v.reshape(n, self.my).T @ Phi.T) @ Phi).T.reshape(-1)

                if size <= DENSE_SIZE:
                    B = np.column_stack([apply_B(e) for e in np.eye(size)])
                    w, V = np.linalg.eigh(_finite(0.5 * (B + B.T)))
                else:
                    op = LinearOperator((size, size), matvec=apply_B, dtype=np.float64)
                    w, V = eigsh(op, k=2, which="LA", tol=0)
            Lam1, Lam2, y = _pairs(w, V, True)
        return Lam1, Lam2, _finite(y.reshape(n, self.my).T)

    # ---- the Schur bound and Temple ---------------------------------------------------------------------
    def _directions(self, problem: str, t: float, count: int, s: float | None = None) -> int | None:
        """The k of the Schur bound: every direction (dense) for small m m_y, else the fewest SCHUR_DIRECTIONS
        whose float64 T passes with a margin; None if none does."""
        if self.m * self.my <= DENSE_Z:
            return self.m
        with np.errstate(all="ignore"):
            E, D = self._Z_float(problem, t, s)
            if not (np.all(np.isfinite(E)) and np.all(np.isfinite(D))):
                return None
            for k in SCHUR_DIRECTIONS:
                if k >= self.m:
                    return self.m if self.m * self.my <= 4 * DENSE_Z else None
                T = float_schur(E, D, k)
                if T is None or not np.all(np.isfinite(T)):
                    continue
                w = np.linalg.eigvalsh(T)
                if w[count] > 2.0**-30 * (np.abs(w).max() or 1.0):
                    return k
        return None

    def _proves(self, problem: str, t: arb, k: int, count: int, s: arb | None = None) -> bool:
        try:
            return bool(prove_inertia(*self._Z(problem, t, s), k, count) > 0)
        except (Undecided, ZeroDivisionError):
            return False

    def _extreme(
        self,
        problem: str,
        theta: float,
        nxt: float,
        q: tuple[arb, arb, arb],
        sigma: arb,
        largest: bool,
        s: arb | None = None,
    ) -> tuple[arb, str] | None:
        """Temple's bound on the other side of the extreme eigenvalue theta (q = (q0, q1, q2) of Temple
        at shift sigma, for the operator itself), with the gap to the next eigenvalue proved by the
        Schur bound at nu = theta + (next - theta)/8 (count 1); None if any step is not proved."""
        if not (np.isfinite(nxt) and (nxt < theta if largest else nxt > theta)):
            return None
        nu_f = theta + (nxt - theta) / 8
        k = self._directions(problem, nu_f, 1, None if s is None else float(s))
        if k is None or not self._proves(problem, arb(nu_f), k, 1, s):
            return None
        q0, q1, q2 = q
        nu = arb(nu_f)
        low = temple_lower(q0, -q1, q2, sigma - nu) if largest else temple_lower(q0, q1, q2, nu - sigma)
        if low is None:
            return None
        side = "next" if largest else "second"
        return (sigma - low if largest else sigma + low), (
            f"Temple, {side} eigenvalue beyond {nu_f:.6g} by the Schur bound (k = {k})"
        )

    def _rayleigh(self, apply, xf: np.ndarray, sigma: float) -> tuple[arb, tuple[arb, arb, arb]]:
        """(Rayleigh quotient, Temple's (q0, q1, q2)) of the exact vector xf at shift sigma."""
        x = ball_matrix(xf)
        r = apply(x) - x * arb(sigma)
        q = frobenius_sq(x), frobenius_inner(x, r), frobenius_sq(r)
        return arb(sigma) + q[1] / q[0], q

    def _bisect_shift(self, problem: str, safe: float, unsafe: float) -> arb | None:
        """A shift t between safe and unsafe (float64 bisection on the Schur bound), proved in balls to make
        the count-0 Schur bound positive definite; None if none is proved."""
        k = self._directions(problem, unsafe + (safe - unsafe) * 2.0**-10, 0)
        if k is None:
            fewer = [d for d in SCHUR_DIRECTIONS if d < self.m]
            k = max(fewer) if fewer and self.m * self.my > DENSE_Z else self.m

        def ok(t):
            with np.errstate(all="ignore"):
                T = float_schur(*self._Z_float(problem, t), k)
            return T is not None and bool(np.all(np.isfinite(T))) and np.linalg.eigvalsh(T)[0] > 0

        if not ok(safe):
            return None
        for _ in range(48):
            mid = 0.5 * (safe + unsafe)
            safe, unsafe = (mid, unsafe) if ok(mid) else (safe, mid)
        for back in (2.0**-30, 2.0**-20, 2.0**-10, 2.0**-5):
            t = safe + (safe - unsafe) * back
            if self._proves(problem, arb(t), k, 0):
                return arb(t)
        return None

    # ---- the enclosures ---------------------------------------------------------------------------------
    def lambda_min(self) -> tuple[arb, str]:
        """lambda_min(K): a Rayleigh quotient above, Temple (or a shift with Z > 0) below."""
        theta, nxt, xf = self._float_extreme("K min")
        upper, q = self._rayleigh(self.apply, xf, theta)
        found = self._extreme("K min", theta, nxt, q, arb(theta), largest=False)
        if found is not None:
            return found[0].union(upper), found[1]
        lo = self._bisect_shift("K min", 0.0, theta)
        if lo is None:
            raise Undecided("lambda_min(K): no positive definite Z(lo) proved")
        return lo.union(upper), "Z(lo) > 0 by the Schur bound (no gap lambda_2 - lambda_1 proved)"

    def lambda_max(self) -> tuple[arb, str]:
        """lambda_max(K): a Rayleigh quotient below, Temple above, or max_j mu_j lambda_max(Q) (K <=
        max_j lambda_max(M_j) Q (x) I, from K = F M F^T)."""
        theta, nxt, xf = self._float_extreme("K max")
        lower, q = self._rayleigh(self.apply, xf, theta)
        found = self._extreme("K max", theta, nxt, q, arb(theta), largest=True)
        if found is not None:
            return lower.union(found[0]), found[1]
        crude = max(self._ball("mu"), key=lambda x: float(x.upper())) * lambda_max_enclosure(self.Q)
        return lower.union(arb(crude.upper())), "max_j lambda_max(M_j) lambda_max(Q)"

    def lambda_min_G(self, step: arb) -> tuple[arb, str] | None:
        """lambda_min(G_s), G_s = K^{-1}/s - H, s = step: a Rayleigh quotient above, Temple below; None
        without a proved gap (the caller then uses Ostrowski's bound)."""
        theta, nxt, xf = self._float_extreme("G min", float(step))
        upper, q = self._rayleigh(lambda X: self.apply_inverse(X) / step - self.apply_hessian(X), xf, theta)
        found = self._extreme("G min", theta, nxt, q, arb(theta), largest=False, s=step)
        return None if found is None else (found[0].union(upper), found[1])

    def step_bound(self) -> dict:
        """Enclosure of Lambda = lambda_max(K^{1/2} H K^{1/2}) = 1/dt_max at the witness x = K w, w = Xi y:
        q1 = x^T K^{-1} x = w^T K w, q2 = x^T H x, xx = x^T x; Lambda >= q2/q1 (the pencil (H, K^{-1});
        Courant-Fischer). Above: Temple for K^{1/2} H K^{1/2} at z = K^{-1/2} x, with ||z||^2 = q1,
        z^T (. - sigma) z = q2 - sigma q1 and the residual K^{1/2} r, r = H x - sigma w, ||.||^2 = r^T K r."""
        Lam1, Lam2, yf = self.largest_pairs()
        if not np.isfinite(Lam2):
            Lam2 = 0.0  # n m_y = 1: rank H <= 1, the next eigenvalue of K^{1/2} H K^{1/2} is 0
        w = ball_matrix(yf) * ball_matrix(self._Phi.T)  # Xi y = vec(Y Phi^T)
        x = self.apply(w)
        Hx = self.apply_hessian(x)
        q1, q2 = frobenius_inner(w, x), frobenius_inner(x, Hx)
        if not q1 > 0:
            raise Undecided("dt_max: the witness w^T K w > 0 is not proved")
        out = {"estimate": Lam1, "q1": q1, "q2": q2, "xx": frobenius_sq(x)}
        sigma = arb(Lam1)
        r = Hx - w * sigma
        q = (q1, frobenius_inner(x, r), frobenius_inner(r, self.apply(r)))
        found = self._extreme("KH max", Lam1, Lam2, q, sigma, largest=True)
        if found is not None:
            out["Lambda"], out["how"] = (q2 / q1).union(found[0]), found[1]
            return out
        tau = self._bisect_shift("KH max", 4 * Lam1, Lam1)
        if tau is None:
            raise Undecided("dt_max: no positive definite Z'(tau) proved")
        out["Lambda"], out["how"] = (q2 / q1).union(tau), "Z'(tau) > 0 by the Schur bound (no gap proved)"
        return out
