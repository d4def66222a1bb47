"""The pseudo-Huber loss with delta = 1 (docs/theory.md, section 5, "Pseudo-Huber"):

    l(q, y) = sum_k (sqrt(1 + r_k^2) - 1),   r = q - y,
    G = dl/dq = r / sqrt(1 + r^2),   d^2 l / dq^2 = diag((1 + r^2)^(-3/2))     (entrywise)

A smooth robust regression loss: quadratic for small residuals, linear for large ones. L0 is
convex and, on the row space of Phi, strictly convex and coercive, so L* is attained for all data.
It is not globally PL (the curvature vanishes like |r|^-3), but on the sublevel set
{L0 <= c} every residual obeys |r| <= sqrt(c^2 + 2c), so the curvature is at least (1 + c)^-3 and

    kappa(c) = kappa_Phi / (1 + c)^3,   kappa_Phi = smallest nonzero eigenvalue of Phi Phi^T,

is a PL constant there (:meth:`PseudoHuberLoss.pl_constant`). L* and the minimum-norm minimiser
W* come from a damped Newton solve (:func:`newton_minimiser`), and the excess L0(W) - L* is a
sum of Bregman divergences, computed without cancellation (:func:`bregman_terms`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .registry import Loss, armijo_step, register

EPS = np.finfo(np.float64).eps

#: damped Newton iterations allowed before :func:`newton_minimiser` gives up (quadratic convergence
#: takes ~10 from the least-squares start; each large residual costs a few damped steps first)
NEWTON_MAX_ITERATIONS = 200


def residual_terms(R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(l(r), l'(r), l''(r)) entrywise: r^2 / (1 + sqrt(1 + r^2)) (no cancellation of sqrt(1 + r^2)
    - 1 at small r; written |r| (|r| / (1 + h)) so that it does not overflow at |r| ~ 1e154),
    r / sqrt(1 + r^2) and (1 + r^2)^(-3/2), with sqrt(1 + r^2) = hypot(1, r)."""
    h = np.hypot(1.0, R)
    absR = np.abs(R)
    return absR * (absR / (1.0 + h)), R / h, 1.0 / (h * h * h)


def bregman_terms(R: np.ndarray, S: np.ndarray, D: np.ndarray) -> np.ndarray:
    """l(r) - l(s) - l'(s)(r - s) entrywise, with D = r - s given (formed without the targets).

    With a = sqrt(1 + r^2), b = sqrt(1 + s^2): l(r) - l(s) - l'(s)(r - s) = (ab - 1 - rs) / b and
    ab - (1 + rs) = (r - s)^2 / (ab + 1 + rs) (multiply by the conjugate; (1 + r^2)(1 + s^2) -
    (1 + rs)^2 = (r - s)^2), so the divergence is d^2 / (b (ab + 1 + rs)). Where rs < 0 the sum
    ab + rs would cancel; there ab + rs = (1 + r^2 + s^2) / (ab - rs), a sum of positive terms.
    """
    a, b = np.hypot(1.0, R), np.hypot(1.0, S)
    RS = R * S
    with np.errstate(over="ignore", invalid="ignore"):
        cross = np.where(RS >= 0, a * b + RS, (1.0 + R * R + S * S) / (a * b - RS))
    return D * D / (b * (1.0 + cross))


class PseudoHuberLoss(Loss):
    """l(q, y) = sum_k (sqrt(1 + (q_k - y_k)^2) - 1) (delta = 1): real targets."""

    name = "pseudo_huber"
    targets = "real"
    pl = "sublevel"
    attainment = "always"
    constant_hessian = False
    curvature_bound = 1.0  # (1 + r^2)^(-3/2) <= 1

    def terms(self, Q, Y):
        value, G, _ = residual_terms(Q - Y)
        return value.sum(axis=(-2, -1)), G

    def output_hvp(self, Q, Y, dQ):
        return residual_terms(Q - Y)[2] * dQ

    def hessian(self, problem, W=None):
        """H = sum_i (phi_i phi_i^T) (x) diag(w_i), w_i = (1 + r_i^2)^(-3/2): block-diagonal over
        the outputs (the loss is a sum over them), block a = Phi diag(w_a) Phi^T, placed at the
        column-major vec(W) indices j m_y + a."""
        if W is None:
            raise ValueError("W is required for the pseudo-Huber Hessian (it depends on W)")
        m, m_y = problem.m, problem.m_y
        weights = residual_terms(W @ problem.Phi - problem.Y)[2]
        H = np.zeros((m, m_y, m, m_y))
        for a in range(m_y):
            block = (problem.Phi * weights[a]) @ problem.Phi.T
            H[:, a, :, a] = 0.5 * (block + block.T)
        return H.reshape(m * m_y, m * m_y)

    # ---- the optimum ---------------------------------------------------------------------
    def optimum(self, problem):
        W, value = newton_minimiser(problem)
        return value, W

    def excess(self, problem, W):
        """L0(W) - L* = sum_{k,i} [l(r_ki) - l(s_ki) - l'(s_ki)(r_ki - s_ki)], r = W Phi - Y,
        s = W* Phi - Y: since grad L0(W*) = G* Phi^T = 0, the linear terms sum to <G*, (W - W*)
        Phi> = 0, and each remaining divergence is >= 0 and computed without cancellation
        (:func:`bregman_terms`), with r - s = (W - W*) Phi formed without Y."""
        W_star = problem.minimiser
        return float(
            np.sum(
                bregman_terms(W @ problem.Phi - problem.Y, W_star @ problem.Phi - problem.Y, (W - W_star) @ problem.Phi)
            )
        )

    def optimum_tolerance(self, problem) -> float:
        """Accuracy of L*: Newton stops when the decrement reaches :func:`value_rounding` at W*."""
        W = problem.minimiser
        return value_rounding(problem, W, problem.value(W), problem.output_gradient(W))

    def pl_constant(self, problem, level=None) -> float:
        """kappa(c) = kappa_Phi / (1 + c)^3 on the sublevel set {W : L0(W) <= c}, c = ``level``.

        Proof (docs/theory.md, section 5): each term l(r) <= L0(W) <= c gives r^2 <= c^2 + 2c =: R^2,
        at W and at W* (L0(W*) <= c). Along the segment from W* to W the residuals are convex
        combinations, so |r| <= R and l'' >= (1 + R^2)^(-3/2) = (1 + c)^(-3) there; hence
        phi(s) = L0(W* + s (W - W*)) has phi'' >= (1 + c)^(-3) ||D Phi||^2 >= mu ||D_P||^2
        (D = W - W*, D_P its rows projected on the columns of Phi, mu = kappa_Phi (1 + c)^(-3)),
        so L0(W) - L* <= <g, D_P> - mu ||D_P||^2 / 2 <= ||g||^2 / (2 mu). "Nonzero" uses the rank
        rule of the square loss (singular values above sigma_max max(m, n) eps).
        """
        if level is None or isinstance(level, bool) or not np.isfinite(level) or level < 0:
            raise ValueError(
                "level must be a finite number >= 0 (the pseudo-Huber PL constant holds on the "
                f"sublevel set {{L0 <= level}}); got {level!r}"
            )
        s = problem.feature_singular_values
        tol = s.max() * max(problem.m, problem.n) * EPS
        if not np.any(s > tol):
            raise ValueError("pl_constant: Phi has rank 0 (every entry is zero), so L0 is constant")
        return float(np.min(s[s > tol]) ** 2 / (1.0 + float(level)) ** 3)


def value_rounding(problem, W: np.ndarray, value: float, G: np.ndarray) -> float:
    """Rounding of one evaluation of L0 at W (first order): the N = n m_y terms, each to 6 eps
    relative (hypot, add, two divisions, a product), summed with <= N eps L0; the outputs Q = W Phi
    to m eps ||W|| ||Phi|| (Higham, eq. 3.5) and r = q - y to eps |r|, which move a term by
    |l'(r)| times that; sum_ki |l'(r)| |r| = sum r^2 / sqrt(1 + r^2) <= 2 L0 (since 1 + a <= 2a)."""
    N = problem.n * problem.m_y
    return EPS * (
        (N + 8) * abs(value)
        + problem.m * float(np.linalg.norm(G)) * float(np.linalg.norm(W)) * float(np.linalg.norm(problem.Phi))
    )


def _newton_step(Phi: np.ndarray, weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """V with V_a = -H_a^+ g_a for each output a, H_a = Phi diag(w_a) Phi^T (L0 is a sum of m_y
    independent problems, one per row of W): Cholesky where H_a is positive definite, else the
    minimum-norm least-squares solution (cutoff m eps ||H_a||), which keeps V's rows in the column
    space of Phi."""
    V = np.empty_like(grad)
    for a in range(grad.shape[0]):
        H = (Phi * weights[a]) @ Phi.T
        H = 0.5 * (H + H.T)
        try:
            factor = sla.cho_factor(H, lower=False, check_finite=False)
            V[a] = -sla.cho_solve(factor, grad[a], check_finite=False)
            if np.all(np.isfinite(V[a])):
                continue
        except np.linalg.LinAlgError:
            pass
        V[a] = -sla.lstsq(H, grad[a], cond=EPS * Phi.shape[0], check_finite=False)[0]
    return V


def newton_minimiser(problem, max_iter: int = NEWTON_MAX_ITERATIONS) -> tuple[np.ndarray, float]:
    """(W*, L*) by damped Newton from the minimum-norm least-squares W_0 = Y Phi^+.

    Each step V = -H^+ g (per output, :func:`_newton_step`) has rows in the column space of Phi,
    as W_0's have, so the iterates converge to the minimum-norm minimiser (the minimiser is
    unique up to rows orthogonal to that space, where L0 is constant). Backtracking (Armijo,
    factor 1/4) makes every step decrease L0. Stopping rule: the Newton decrement lambda^2 =
    -<g, V> estimates 2 (L0 - L*) (the quadratic model's decrease); once lambda^2 / 2 is below the
    rounding of L0 itself (:func:`value_rounding`) no further decrease is measurable, and two
    undamped steps polish W (in the quadratic-convergence region the gradient still squares).
    Raises RuntimeError after ``max_iter`` steps."""
    Phi, Y = problem.Phi, problem.Y
    W = sla.lstsq(Phi.T, Y.T, lapack_driver="gelsd", check_finite=False)[0].T
    polish = 0
    for _ in range(max_iter):
        R = W @ Phi - Y
        terms, G, weights = residual_terms(R)
        value = float(terms.sum())
        grad = G @ Phi.T
        V = _newton_step(Phi, weights, grad)
        decrement = float(-np.sum(grad * V))
        if 0.5 * decrement <= value_rounding(problem, W, value, G):
            if polish == 2:
                return W, value
            polish += 1
            W = W + V
            continue
        W = armijo_step(problem, W, V, value, decrement)
    raise RuntimeError(f"Newton's method for the pseudo-Huber optimum did not converge in {max_iter} steps")


PSEUDO_HUBER = register(PseudoHuberLoss())
