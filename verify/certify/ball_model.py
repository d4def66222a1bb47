"""The model in ball arithmetic, recomputed from its definitions (docs/theory.md, sections 1-6):
softmax, U, W = B U^{-1}, the implicit gradients, W*, kappa, K and the Hessian. No code of the
float64 core is used."""

from __future__ import annotations

from functools import cached_property

import numpy as np
from flint import arb, arb_mat

from .balls import (
    ball_column,
    ball_identity,
    ball_matrix,
    ball_sum,
    exact_gram,
    frobenius_inner,
    frobenius_sq,
    lambda_max_enclosure,
    lambda_min_enclosure,
)


# ---- the model in ball arithmetic (docs/theory.md, sections 1 and 3) ----------------------------------
def column_softmax_ball(A: np.ndarray) -> arb_mat:
    """S = sigma(A), S_ij = exp(A_ij - c_j) / sum_k exp(A_kj - c_j), c_j = max_k A_kj: Arb's
    exp overflows to [+/- inf] near exp(1e300) (its exponents are bounded in practice), so the
    shift is needed; A_ij - c_j is formed in Arb (exact or a ball around the exact difference)."""
    m = A.shape[0]
    S = arb_mat(m, m)
    for j in range(m):
        c = arb(float(A[:, j].max()))
        e = [(arb(float(A[i, j])) - c).exp() for i in range(m)]
        total = ball_sum(e)
        for i in range(m):
            S[i, j] = e[i] / total
    return S


def apply_jacobians(S: arb_mat, X: arb_mat) -> arb_mat:
    """Column j of the result is J_j X[:, j], J_j = diag(s_j) - s_j s_j^T (softmax Jacobian)."""
    m = S.nrows()
    out = arb_mat(m, X.ncols())
    for j in range(X.ncols()):
        s = ball_column(S, j)
        x = ball_column(X, j)
        dot = ball_sum(a * b for a, b in zip(s, x))
        for i in range(m):
            out[i, j] = s[i] * (x[i] - dot)
    return out


def implicit_matrix_ball(A: np.ndarray, gamma: float) -> tuple[arb_mat, arb_mat]:
    """(S, U) with U = I - gamma S."""
    S = column_softmax_ball(A)
    return S, ball_identity(A.shape[0]) - S * arb(gamma)


def norm_sq_enclosure(U: arb_mat) -> arb:
    """||U||_2^2 = lambda_max(U^T U)."""
    return lambda_max_enclosure(U.transpose() * U)


def rate_enclosure(U: arb_mat) -> tuple[arb, arb]:
    """(lambda(A), ||U||_2^2) with lambda(A) = 1 / ||U||_2^2 (docs/theory.md, section 1)."""
    norm_sq = norm_sq_enclosure(U)
    return arb(1) / norm_sq, norm_sq


#: the losses BallState encloses: their output gradient G = dl/dq and value, from the definitions
STATE_LOSSES = ("square", "pseudo_huber")


def pseudo_huber_terms(R: arb_mat) -> tuple[arb_mat, arb]:
    """(G, L0) of the pseudo-Huber loss (delta = 1) at the residuals R = W Phi - Y: G_ki = r / sqrt(1 + r^2)
    and L0 = sum r^2 / (1 + sqrt(1 + r^2)) (= sum sqrt(1 + r^2) - 1, written without the cancellation
    that would widen the ball at small r); docs/theory.md, section 5."""
    G = arb_mat(R.nrows(), R.ncols())
    values = []
    for k in range(R.nrows()):
        for i in range(R.ncols()):
            r = R[k, i]
            h = (1 + r * r).sqrt()
            G[k, i] = r / h
            values.append(r * r / (1 + h))
    return G, ball_sum(values)


class BallState:
    """W, the implicit gradients and the excess loss at (A, B), from the definitions (docs/theory.md,
    sections 1, 3, 5), in ball arithmetic at the working precision. ``loss`` "square" (the default;
    every certificate) or "pseudo_huber" (the STATE-WISE certificate only: its grad_L0 = G Phi^T with
    G = r / sqrt(1 + r^2) and its ``value`` L0; the square-loss methods below do not apply to it)."""

    def __init__(self, A, B, Phi, Y, gamma, loss: str = "square"):
        if loss not in STATE_LOSSES:
            raise ValueError(f"loss must be one of {list(STATE_LOSSES)}; got {loss!r}")
        self.loss = loss
        self.gamma = arb(gamma)
        self.m, self.m_y, self.n = A.shape[0], B.shape[0], Phi.shape[1]
        self.S, self.U = implicit_matrix_ball(A, gamma)
        self.Uinv = self.U.inv()  # ZeroDivisionError if the ball is not certainly invertible
        self.B = ball_matrix(B)
        self.W = self.B * self.Uinv  # W = B U^{-1}
        self.P = exact_gram(Phi, Phi)  # Phi Phi^T
        self.YPt = exact_gram(Y, Phi)  # Y Phi^T
        if loss == "square":
            self.grad_L0 = self.W * self.P - self.YPt  # G Phi^T = (W Phi - Y) Phi^T
            self.value = None
        else:
            R = self.W * ball_matrix(Phi) - ball_matrix(Y)
            G, self.value = pseudo_huber_terms(R)
            self.grad_L0 = G * ball_matrix(Phi.T)  # G Phi^T
        self.dL_dB = self.grad_L0 * self.Uinv.transpose()  # grad L0 U^{-T}
        Gamma = self.W.transpose() * self.dL_dB * self.gamma  # dL/dS = gamma W^T dL/dB
        self.dL_dA = apply_jacobians(self.S, Gamma)  # dL/dA[:, j] = J_j Gamma[:, j]
        self.grad_norm_sq = frobenius_sq(self.dL_dA) + frobenius_sq(self.dL_dB)
        self._Phi, self._Y = Phi, Y

    def rate(self) -> arb:
        """lambda(A) = 1 / ||U||_2^2."""
        return rate_enclosure(self.U)[0]

    def kappa(self) -> tuple[arb, str]:
        """kappa = the smallest NONZERO eigenvalue of Phi Phi^T.

        m <= n: kappa = lambda_min(Phi Phi^T), and its enclosure's lower end > 0 proves Phi Phi^T > 0.
        m > n: Phi Phi^T is singular; its nonzero eigenvalues are those of Phi^T Phi (n x n; the
        same nonzero spectrum with multiplicities), and a positive lower end proves Phi^T Phi > 0,
        so rank Phi = n and kappa = lambda_min(Phi^T Phi). Rank-deficient data (rank < min(m, n))
        leave a ball around 0: no positive lower bound, not certified.
        """
        if self.m <= self.n:
            return lambda_min_enclosure(self.P), "lambda_min(Phi Phi^T)"
        return lambda_min_enclosure(self.gram_n), "lambda_min(Phi^T Phi): m > n, same nonzero spectrum"

    @cached_property
    def gram_n(self) -> arb_mat:
        """Phi^T Phi (n x n), exact then rounded once."""
        return exact_gram(self._Phi.T, self._Phi.T)

    def minimiser(self) -> arb_mat:
        """A minimiser W* of L0: Y Phi^T (Phi Phi^T)^{-1} (m <= n), or Y (Phi^T Phi)^{-1} Phi^T (m > n,
        interpolating: W* Phi = Y, L* = 0); rigorous solves (ZeroDivisionError if not certainly
        invertible)."""
        if self.m <= self.n:
            return self.P.solve(self.YPt.transpose()).transpose()
        return ball_matrix(self._Y) * self.gram_n.solve(ball_matrix(self._Phi.T))

    def excess(self, W_star: arb_mat) -> arb:
        """L - L* = 1/2 ||(W - W*) Phi||_F^2 = 1/2 <D Phi Phi^T, D>, D = W - W* (no cancellation)."""
        D = self.W - W_star
        return frobenius_inner(D * self.P, D) / 2

    def metric(self, second_term_scale: float = 1.0) -> arb_mat:
        """K = (U^{-T} U^{-1}) (x) I_{m_y} + gamma^2 sum_j (U^{-T} e_j e_j^T U^{-1}) (x) (W J_j^2 W^T),
        column-major vec; row (i, k) of K is index i m_y + k. ``second_term_scale`` != 1 builds a
        WRONG K (tests only). The explicit (m m_y)^2 matrix (cost m^3 m_y^2): no certificate uses it
        (verify.certify.metric applies K by its factors); the tests cross-check against it."""
        m, m_y = self.m, self.m_y
        Q = self.Uinv.transpose() * self.Uinv
        # N_j = (W J_j)(W J_j)^T = W J_j^2 W^T, stored as rows vec(N_j) of an m x m_y^2 matrix
        Nmat = arb_mat(m, m_y * m_y)
        for j in range(m):
            s = ball_column(self.S, j)
            Ws = self.W * arb_mat([[x] for x in s])  # W s_j
            V = arb_mat(m_y, m)  # W J_j = W diag(s_j) - (W s_j) s_j^T
            for k in range(m_y):
                for i in range(m):
                    V[k, i] = (self.W[k, i] - Ws[k, 0]) * s[i]
            N = V * V.transpose()
            for k in range(m_y):
                for kk in range(m_y):
                    Nmat[j, k * m_y + kk] = N[k, kk]
        # Pm[(i, i'), j] = a_j[i] a_j[i'] with a_j = U^{-T} e_j, i.e. a_j[i] = U^{-1}[j, i]
        Pm = arb_mat(m * m, m)
        for j in range(m):
            a = [self.Uinv[j, i] for i in range(m)]
            for i in range(m):
                for ii in range(m):
                    Pm[i * m + ii, j] = a[i] * a[ii]
        blocks = (Pm * Nmat) * (self.gamma * self.gamma * arb(second_term_scale))
        K = arb_mat(m * m_y, m * m_y)
        for i in range(m):
            for ii in range(m):
                q = Q[i, ii]
                r = i * m + ii
                for k in range(m_y):
                    for kk in range(m_y):
                        b = blocks[r, k * m_y + kk]
                        K[i * m_y + k, ii * m_y + kk] = b + q if k == kk else b
        return K

    def hessian(self) -> arb_mat:
        """H = (Phi Phi^T) (x) I_{m_y}, the Hessian of L0 in vec(W) (square loss); explicit, for the
        tests' cross-check only (verify.certify.metric applies H as X Phi Phi^T)."""
        m, m_y = self.m, self.m_y
        H = arb_mat(m * m_y, m * m_y)
        for i in range(m):
            for ii in range(m):
                for k in range(m_y):
                    H[i * m_y + k, ii * m_y + k] = self.P[i, ii]
        return H
