"""The model at ball parameters and along segments, for the trajectory certificates
(:mod:`verify.certify.descent`, :mod:`verify.certify.flow`), recomputed from the definitions of
docs/theory.md, sections 1 and 3 (no code of the float64 core).

:class:`ProblemBalls` holds what does not depend on (A, B): Phi Phi^T and Y Phi^T (exact rational
products, rounded once), W*, kappa. :class:`PointBalls` evaluates the square loss at ball
parameters (A, B) -- a single exact state (radius 0), an enclosure of an exact descent step, or a
whole segment {theta + s V : s in [s0, s1]} (a ball in s) -- so every quantity encloses its value
at every point of the balls:

    S = sigma(A), U = I - gamma S, X = U^{-1}, W = B X, grad L0 = W Phi Phi^T - Y Phi^T,
    dL/dB = grad L0 X^T, Gamma = gamma W^T dL/dB, dL/dA[:, j] = J_j Gamma[:, j],
    L - L* = 1/2 <(W - W*) Phi Phi^T, W - W*>   (no cancellation).

:meth:`PointBalls.second_derivative` encloses phi''(s) of phi(s) = L(A + s V_A, B + s V_B) by
forward differentiation of W = B U^{-1} (docs/theory.md, section 9):

    s_j' = s_j o (d_j - s_j . d_j),  s_j'' = s_j' o (d_j - s_j . d_j) - s_j (s_j' . d_j),  d_j = V_A[:, j]
    U' = -gamma S',  U'' = -gamma S'',  W' = (V_B - W U') X,  W'' = -(2 W' U' + W U'') X,
    phi'' = <W' Phi Phi^T, W'> + <grad L0(W), W''>.
"""

from __future__ import annotations

import numpy as np
from flint import arb, arb_mat

from .ball_model import apply_jacobians
from .balls import (
    ball_column,
    ball_identity,
    ball_matrix,
    ball_sum,
    exact_gram,
    frobenius_inner,
    frobenius_sq,
    lambda_min_enclosure,
)


def softmax_of_balls(A: arb_mat) -> arb_mat:
    """sigma(A) for a ball matrix A: S_ij = exp(A_ij - c_j) / sum_k exp(A_kj - c_j), with c_j an exact
    shift (the largest midpoint of column j; any c_j gives the same softmax) so that exp stays finite."""
    m = A.nrows()
    S = arb_mat(m, m)
    for j in range(m):
        col = ball_column(A, j)
        c = arb(max(x.mid() for x in col))
        e = [(x - c).exp() for x in col]
        total = ball_sum(e)
        for i in range(m):
            S[i, j] = e[i] / total
    return S


def segment(X: arb_mat, V: arb_mat, s: arb) -> arb_mat:
    """X + s V entrywise, s a ball (e.g. [0, lr] for a whole descent step)."""
    return X + V * s


def interval(lo, hi) -> arb:
    """The ball [lo, hi] (lo <= hi, exact floats or balls)."""
    return arb(lo).union(arb(hi))


class ProblemBalls:
    """The data of the square loss in balls: P = Phi Phi^T, YP = Y Phi^T (exact, rounded once), W*,
    kappa (the smallest nonzero eigenvalue of Phi Phi^T, docs/theory.md, section 5)."""

    def __init__(self, Phi: np.ndarray, Y: np.ndarray, gamma: float):
        self.Phi, self.Y = Phi, Y
        self.gamma = arb(gamma)
        self.m, self.n, self.m_y = Phi.shape[0], Phi.shape[1], Y.shape[0]
        self.P = exact_gram(Phi, Phi)
        self.YP = exact_gram(Y, Phi)
        if self.m <= self.n:
            self.kappa = lambda_min_enclosure(self.P)
            self.kappa_route = "lambda_min(Phi Phi^T)"
            self.W_star = self.P.solve(self.YP.transpose()).transpose()
        else:  # the nonzero spectrum of Phi^T Phi; interpolating minimiser Y (Phi^T Phi)^{-1} Phi^T
            gram_n = exact_gram(Phi.T, Phi.T)
            self.kappa = lambda_min_enclosure(gram_n)
            self.kappa_route = "lambda_min(Phi^T Phi): m > n"
            self.W_star = ball_matrix(Y) * gram_n.solve(ball_matrix(Phi.T))

    def at(self, A: arb_mat, B: arb_mat, *, gradient: bool = True, gamma_in_gradient: bool = True) -> PointBalls:
        return PointBalls(self, A, B, gradient=gradient, gamma_in_gradient=gamma_in_gradient)

    def at_floats(self, A: np.ndarray, B: np.ndarray, **kw) -> PointBalls:
        return self.at(ball_matrix(A), ball_matrix(B), **kw)


class PointBalls:
    """The square loss and its implicit gradient at ball parameters (module docstring).
    ``gamma_in_gradient=False`` drops the factor gamma of Gamma = gamma W^T dL/dB: a WRONG gradient
    (the perturbed vector field of the tests and canaries)."""

    def __init__(
        self, problem: ProblemBalls, A: arb_mat, B: arb_mat, *, gradient: bool = True, gamma_in_gradient: bool = True
    ):
        self.problem, self.A, self.B = problem, A, B
        m = A.nrows()
        self.S = softmax_of_balls(A)
        self.U = ball_identity(m) - self.S * problem.gamma
        self.X = self.U.inv()  # ZeroDivisionError if the ball is not certainly invertible
        self.W = B * self.X
        self.grad_L0 = self.W * problem.P - problem.YP
        if gradient:
            self.dL_dB = self.grad_L0 * self.X.transpose()
            factor = problem.gamma if gamma_in_gradient else arb(1)
            self.dL_dA = apply_jacobians(self.S, self.W.transpose() * self.dL_dB * factor)
            self.grad_norm_sq = frobenius_sq(self.dL_dA) + frobenius_sq(self.dL_dB)

    def excess(self) -> arb:
        """L - L* = 1/2 <(W - W*) P, W - W*>."""
        D = self.W - self.problem.W_star
        return frobenius_inner(D * self.problem.P, D) / 2

    def second_derivative(self, VA: arb_mat, VB: arb_mat) -> arb:
        """phi''(s) at these balls, phi(s) = L(A + s VA, B + s VB) (module docstring)."""
        m = self.A.nrows()
        S1, S2 = arb_mat(m, m), arb_mat(m, m)
        for j in range(m):
            s = ball_column(self.S, j)
            d = ball_column(VA, j)
            sd = ball_sum(a * b for a, b in zip(s, d))
            centred = [x - sd for x in d]
            s1 = [a * c for a, c in zip(s, centred)]
            s1d = ball_sum(a * b for a, b in zip(s1, d))
            for i in range(m):
                S1[i, j] = s1[i]
                S2[i, j] = s1[i] * centred[i] - s[i] * s1d
        gamma = self.problem.gamma
        U1, U2 = -S1 * gamma, -S2 * gamma
        W1 = (VB - self.W * U1) * self.X
        W2 = -(W1 * U1 * 2 + self.W * U2) * self.X
        return frobenius_inner(W1 * self.problem.P, W1) + frobenius_inner(self.grad_L0, W2)

    def directional_derivative(self, VA: arb_mat, VB: arb_mat) -> arb:
        """phi'(s) = <grad L0(W), W'> (for tests: = -||grad L||^2 along V = -grad L)."""
        m = self.A.nrows()
        S1 = arb_mat(m, m)
        for j in range(m):
            s = ball_column(self.S, j)
            d = ball_column(VA, j)
            sd = ball_sum(a * b for a, b in zip(s, d))
            for i in range(m):
                S1[i, j] = s[i] * (d[i] - sd)
        W1 = (VB + self.W * S1 * self.problem.gamma) * self.X
        return frobenius_inner(self.grad_L0, W1)


def hessian_of_loss(point: PointBalls) -> arb_mat:
    """The Hessian of L in theta = (vec A, vec B) (row-major entries of A, then of B) at the balls of
    ``point``, by polarisation of the quadratic forms Q(v) = phi''(0) along v (every direction shares
    the point's S, U^{-1}, W): H_ii = Q(e_i), H_ij = (Q(e_i + e_j) - Q(e_i) - Q(e_j)) / 2."""
    m, m_y = point.A.nrows(), point.B.nrows()
    d = m * m + m_y * m

    def direction(indices):
        VA, VB = arb_mat(m, m), arb_mat(m_y, m)
        for i in indices:
            if i < m * m:
                VA[i // m, i % m] = 1
            else:
                VB[(i - m * m) // m, (i - m * m) % m] = 1
        return VA, VB

    diag = [point.second_derivative(*direction([i])) for i in range(d)]
    H = arb_mat(d, d)
    for i in range(d):
        H[i, i] = diag[i]
        for j in range(i + 1, d):
            h = (point.second_derivative(*direction([i, j])) - diag[i] - diag[j]) / 2
            H[i, j] = h
            H[j, i] = h
    return H
