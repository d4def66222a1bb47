"""Losses of the shallow model L0(W) = sum_i l(W phi(x_i), y_i) and their optimum L*.

THEORY.md section 1 and 3:

    square         l(q, y) = 1/2 ||q - y||^2             G = W Phi - Y
    cross-entropy  l(q, y) = -sum_k y_k log softmax(q)_k   G = softmax(W Phi) - Y
    grad L0(W) = G Phi^T

:class:`ShallowProblem` holds one data set and caches what every later evaluation needs. For the
square loss these are the sufficient statistics (a triangular factor R with Phi Phi^T = R^T R, and
a minimiser W*), so that after construction every evaluation costs O(m_y m^2), independent of n,
and the excess loss is the cancellation-free 1/2 ||(W - W*) R^T||_F^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg as sla
from scipy.optimize import linprog

from ._validation import as_matrix, check_data

EPS = np.finfo(np.float64).eps


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


@dataclass(frozen=True)
class Separability:
    """Outcome of the linear-separability test for multiclass data.

    ``strict_pairs[k, i]`` is True when some direction D has (D_{y_i} - D_k) . phi_i > 0 while
    every other margin is >= 0: along D the cross-entropy term of that pair tends to 0, so L* is
    approached but not attained. ``status`` is "separable" (every pair strict: L* = 0, not
    attained), "partially separable" (some: L* not attained) or "non-separable" (none: attained).
    """

    status: str
    strict_pairs: np.ndarray

    @property
    def attained(self) -> bool:
        return self.status == "non-separable"


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
        self.Phi, self.Y = check_data(Phi, Y, loss)
        self.loss = loss
        self.m, self.n = self.Phi.shape
        self.m_y = self.Y.shape[0]
        if loss == "cross_entropy":
            self._labels = np.argmax(self.Y, axis=0)
        if loss == "square":
            # Economy QR of Phi^T: Phi Phi^T = R^T R with R of size min(n, m) x m. Backward stable,
            # and ||D R^T||_F = ||D Phi||_F for every D, which is what the excess loss needs.
            self._R = sla.qr(self.Phi.T, mode="r")[0][: min(self.n, self.m)]
            self.gram = self._R.T @ self._R  # Phi Phi^T
            self._YPhiT = self.Y @ self.Phi.T
            W_star_T, *_ = sla.lstsq(self.Phi.T, self.Y.T, lapack_driver="gelsd")
            self._W_star = W_star_T.T  # the minimum-norm minimiser Y Phi^+
            residual = self._W_star @ self.Phi - self.Y
            self._L_star = 0.5 * float(np.sum(residual * residual))

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
        P = np.exp(column_log_softmax(W @ self.Phi))
        # H4[j, a, k, b] = sum_i Phi[j,i] Phi[k,i] (delta_ab P[a,i] - P[a,i] P[b,i]); the C-order
        # flattening of (j, a) is j m_y + a, the column-major index of W[a, j].
        diag = np.einsum("ji,ki,ai->jak", self.Phi, self.Phi, P)
        H4 = -np.einsum("ji,ki,ai,bi->jakb", self.Phi, self.Phi, P, P)
        for a in range(self.m_y):
            H4[:, a, :, a] += diag[:, a, :]
        size = self.m * self.m_y
        return H4.reshape(size, size)

    # ---- the optimum -------------------------------------------------------------------
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
        s = sla.svdvals(self._R)
        tol = s.max() * max(self.m, self.n) * EPS
        return float(np.min(s[s > tol]) ** 2)

    @cached_property
    def separability(self) -> Separability:
        """Linear-programming test of (partial) separability of the classes (cross-entropy)."""
        if self.loss != "cross_entropy":
            raise ValueError("separability applies to the cross-entropy loss only")
        return _separability(self.Phi, self.Y)

    @cached_property
    def _optimum(self) -> tuple[float, np.ndarray | None]:
        if self.loss == "square":
            return self._L_star, self._W_star
        sep = self.separability
        if sep.status == "separable":
            return 0.0, None
        if sep.status == "partially separable":
            raise NotAttainedError(
                "the data are partially separable: L* is approached along a recession direction "
                "but not attained; this suite computes L* only for non-separable data (attained) "
                "and fully separable data (L* = 0)")
        W = _newton_cross_entropy(self)
        return self.value(W), W

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
        return W

    @property
    def attained(self) -> bool:
        return self.loss == "square" or self.separability.attained


def _separability(Phi: np.ndarray, Y: np.ndarray) -> Separability:
    """Maximise sum t_ki over directions D with (D_{y_i} - D_k).phi_i >= t_ki, 0 <= t_ki <= 1.

    The directions form a convex cone closed under addition, so the LP optimum sets t_ki = 1 for
    every pair that some direction separates strictly: it finds the maximal set of strict pairs.
    """
    m, n = Phi.shape
    m_y = Y.shape[0]
    labels = np.argmax(Y, axis=0)
    pairs = [(k, i) for i in range(n) for k in range(m_y) if k != labels[i]]
    if not pairs:
        return Separability("non-separable", np.zeros((m_y, n), dtype=bool))
    nd = m_y * m
    rows = []
    for r, (k, i) in enumerate(pairs):
        row = np.zeros(nd + len(pairs))
        # variable D[a, j] at index a * m + j
        row[labels[i] * m: labels[i] * m + m] -= Phi[:, i]
        row[k * m: k * m + m] += Phi[:, i]
        row[nd + r] = 1.0
        rows.append(row)
    A_ub = np.array(rows)
    # D is scale-free; the box only keeps the LP bounded. A pair whose best margin needs
    # ||D||_inf > 1e6 / max|Phi| to reach 1 is reported as non-strict (documented limit).
    scale = 1e6 / max(1.0, float(np.abs(Phi).max()))
    bounds = [(-scale, scale)] * nd + [(0.0, 1.0)] * len(pairs)
    c = np.concatenate([np.zeros(nd), -np.ones(len(pairs))])
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(pairs)), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"separability LP failed: {res.message}")
    t = res.x[nd:]
    strict = np.zeros((m_y, n), dtype=bool)
    for (k, i), tk in zip(pairs, t):
        strict[k, i] = tk > 0.5
    n_strict = int(strict.sum())
    status = "non-separable" if n_strict == 0 else ("separable" if n_strict == len(pairs) else "partially separable")
    return Separability(status, strict)


def _newton_cross_entropy(problem: ShallowProblem, max_iter: int = 200) -> np.ndarray:
    """Damped Newton on the convex L0 for non-separable data, to a gradient at rounding level.

    The Hessian is singular (adding one row vector to every row of W, or a null vector of Phi,
    leaves L0 unchanged), so each Newton step is the minimum-norm least-squares solution, which
    stays orthogonal to those flat directions. Stops when the Newton decrement reaches the
    rounding floor of L0 itself (about eps * n * log m_y).
    """
    m, m_y = problem.m, problem.m_y
    W = np.zeros((m_y, m))
    value = problem.value(W)
    floor = 64 * EPS * max(1.0, value)
    polish = 0
    for _ in range(max_iter):
        value, grad = problem.value_and_gradient(W)
        H = problem.hessian(W)
        g = grad.reshape(-1, order="F")
        step, *_ = sla.lstsq(H, -g, cond=EPS * problem.m * problem.m_y)
        decrement = float(-g @ step)
        V = step.reshape((m_y, m), order="F")
        if decrement <= floor:
            # In the quadratic-convergence region: the decrement no longer resolves on L0, but
            # the gradient still shrinks quadratically, so take two undamped polishing steps.
            if polish == 2:
                break
            polish += 1
            W = W + V
            continue
        t = 1.0
        while problem.value(W + t * V) > value - 0.25 * t * decrement and t > 1e-12:
            t *= 0.5
        W = W + t * V
    else:  # pragma: no cover - Newton on a strictly convex problem converges long before this
        raise RuntimeError("Newton's method for the cross-entropy optimum did not converge")
    return W


def optimal_loss(Phi, Y, *, loss: str = "square") -> float:
    """L* = inf_W L0(W) of the shallow model (equal to inf_{A,B} L, by expressivity).

    Square loss: least squares with the pseudo-inverse, L* = 1/2 ||Y Phi^+ Phi - Y||_F^2.
    Cross-entropy: a damped Newton solve on non-separable data; 0 on separable data, where L*
    is not attained (a warning-free, documented value: check ``ShallowProblem.separability``).
    Partially separable data raise :class:`NotAttainedError`.
    """
    return ShallowProblem(Phi, Y, loss).optimal_loss
