"""The cross-entropy l(q, y) = -sum_k y_k log softmax(q)_k (y one-hot), G = softmax(W Phi) - Y
(docs/theory.md, sections 1 and 5).

L0 is convex but not globally PL. Whether L* is attained depends on the data: the (partial)
linear separability of the classes (:mod:`verify.separability`), which a damped Newton solve
decides together with L* and W* (:class:`CrossEntropyState`). The suite only *estimates* a
local PL constant for it (verify.convergence.local_pl_estimate).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from ..separability import (
    Separability,
    certified,
    dual_certificate,
    power_of_two_scale,
    separability_lp,
    separating_certificate,
)
from .problem import NotAttainedError, ShallowProblem
from .registry import Loss, armijo_step, register

EPS = np.finfo(np.float64).eps

_POTRF = _lapack.get_lapack_funcs("potrf", dtype=np.float64)
_SYRK = _blas.dsyrk


def _symmetric(upper: np.ndarray) -> np.ndarray:
    return np.triu(upper) + np.triu(upper, 1).T


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
        per_sample = np.where(
            E_true > 1e-300, np.log1p(rest / np.where(E_true > 1e-300, E_true, 1.0)), np.log(sums) - shifted_true
        )
    G = E / sums
    G = np.where(onehot, -rest / sums, G)
    return per_sample.sum(axis=(-2, -1)), G


def check_one_hot(name: str, Y: np.ndarray) -> None:
    """Each column of Y (..., m_y, n) must be a standard basis vector (exactly one 1, the rest 0)."""
    Y2 = np.moveaxis(Y, -2, 0).reshape(Y.shape[-2], -1)
    binary = np.all((Y2 == 0.0) | (Y2 == 1.0), axis=0)
    good = binary & (Y2.sum(axis=0) == 1.0)
    if not np.all(good):
        bad = np.flatnonzero(~good)
        raise ValueError(
            f"{name} must have one-hot columns for the cross-entropy loss "
            f"(entries 0 or 1, exactly one 1 per column); columns {bad[:5].tolist()} are not"
        )


class CrossEntropyState:
    """The labels y_i = argmax of each column of Y, and (computed on first use) the separability
    analysis with Newton's minimiser."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        self.analysis = None


class CrossEntropyLoss(Loss):
    """l(q, y) = -sum_k y_k log softmax(q)_k, y one-hot."""

    name = "cross_entropy"
    targets = "one-hot"
    pl = "estimate"
    attainment = "data-dependent"
    constant_hessian = False
    curvature_bound = 0.5  # ||diag(p) - p p^T||_2 <= 1/2
    min_outputs = 2
    saturates_in_outputs = True

    def check_targets(self, name, Y):
        check_one_hot(name, Y)

    def sample_targets(self, rng, m_y, n, scale=1.0):
        """Labels drawn uniformly, as one-hot columns (``scale`` does not apply)."""
        return np.eye(m_y)[:, rng.integers(0, m_y, n)]

    def terms(self, Q, Y):
        return cross_entropy_terms(Q, np.argmax(Y, axis=-2))

    def output_hvp(self, Q, Y, dQ):
        shifted = Q - Q.max(axis=-2, keepdims=True)
        P = np.exp(shifted)
        P /= P.sum(axis=-2, keepdims=True)
        return P * dQ - P * np.sum(P * dQ, axis=-2, keepdims=True)

    def prepare(self, problem) -> CrossEntropyState:
        return CrossEntropyState(np.argmax(problem.Y, axis=0))

    def value(self, problem, W):
        return float(cross_entropy_terms(W @ problem.Phi, problem.state.labels)[0])

    def output_gradient(self, problem, W):
        return cross_entropy_terms(W @ problem.Phi, problem.state.labels)[1]

    def value_and_gradient(self, problem, W):
        value, G = cross_entropy_terms(W @ problem.Phi, problem.state.labels)
        return float(value), G @ problem.Phi.T

    def hessian(self, problem, W=None):
        """H = sum_i (phi_i phi_i^T) (x) J(p_i), J(p) = diag(p) - p p^T, p_i = softmax(W phi_i)."""
        if W is None:
            raise ValueError("W is required for the cross-entropy Hessian")
        P = np.exp(column_log_softmax(W @ problem.Phi))
        # H4[j, a, k, b] = sum_i Phi[j,i] Phi[k,i] (delta_ab P[a,i] - P[a,i] P[b,i]), as matrix
        # products (BLAS; a 4-index einsum took 1 s at m = 64, m_y = 10, n = 2000): with
        # X[(a, j), i] = P[a,i] Phi[j,i], the second term is X X^T and the first is block-diagonal,
        # block a = X_a Phi^T. Symmetrised, since X X^T need not be bitwise symmetric.
        m, m_y = problem.m, problem.m_y
        X = (P[:, None, :] * problem.Phi[None, :, :]).reshape(m_y * m, problem.n)
        H = -(X @ X.T)
        for a in range(m_y):
            H[a * m : (a + 1) * m, a * m : (a + 1) * m] += X[a * m : (a + 1) * m] @ problem.Phi.T
        H = 0.5 * (H + H.T)
        # from (a, j) x (b, k) to the column-major vec(W) order: (j, a) flattens to j m_y + a
        size = m * m_y
        return H.reshape(m_y, m, m_y, m).transpose(1, 0, 3, 2).reshape(size, size)

    # ---- the optimum ---------------------------------------------------------------------
    def _analysis(self, problem) -> tuple:
        """(separability, Newton's W on the scaled data or None, the scaled problem, the scale).

        L* = inf_W L0(W) is invariant under Phi -> c Phi (W -> W / c), but Newton's Hessian scales
        like c^2 and underflows or overflows far from c = 1. Newton runs on Phi / 2^k with
        max |Phi / 2^k| in [0.5, 1): a power of two, so the scaling and its undoing are exact (W Phi
        is bitwise the same) unless W / 2^k itself leaves float64's range. Separability is
        invariant under the scaling too. Newton stops early at a W that separates every pair
        (separable data); at a minimiser, -G certifies non-separability; otherwise the LP decides.
        """
        state = problem.state
        if state.analysis is None:
            state.analysis = self._analyse(problem)
        return state.analysis

    def _analyse(self, problem) -> tuple:
        labels = problem.state.labels
        scale = power_of_two_scale(np.abs(problem.Phi).max())
        scaled = problem if scale == 1.0 else ShallowProblem(problem.Phi / scale, problem.Y, self)
        if problem.m_y < 2:
            return separability_lp(problem.Phi, problem.Y), np.zeros((problem.m_y, problem.m)), scaled, scale
        W, status = _newton_cross_entropy(scaled, max_iter=NEWTON_PROBE_ITERATIONS, stop_when_separated=True)
        if status == "separated":
            return certified(labels, problem.m_y, "separable"), None, scaled, scale
        if status == "converged" and dual_certificate(scaled.Phi, labels, scaled.output_gradient(W)):
            return certified(labels, problem.m_y, "non-separable"), W, scaled, scale
        sep = separability_lp(problem.Phi, problem.Y)
        if sep.status == "non-separable" and status != "converged":
            W, status = _newton_cross_entropy(scaled, W0=W)  # the rest of Newton's budget
            if status != "converged":  # pragma: no cover - Newton on a strictly convex problem converges
                raise RuntimeError("Newton's method for the cross-entropy optimum did not converge")
        return sep, (W if sep.attained else None), scaled, scale

    def separability(self, problem) -> Separability:
        """(Partial) separability of the classes, by a certificate from Newton's method when one
        exists at rounding level, else by the exact LP (:mod:`verify.separability`)."""
        return self._analysis(problem)[0]

    def attained(self, problem) -> bool:
        return self.separability(problem).attained

    def optimum_known(self, problem) -> bool:
        return self.separability(problem).status != "partially separable"

    def optimum(self, problem):
        sep, W_scaled, scaled, scale = self._analysis(problem)
        if sep.status == "separable":
            return 0.0, None
        if sep.status == "partially separable":
            raise NotAttainedError(
                "the data are partially separable: L* is approached along a recession direction "
                "but not attained; this suite computes L* only for non-separable data (attained) "
                "and fully separable data (L* = 0)"
            )
        with np.errstate(over="ignore", under="ignore"):
            W = W_scaled / scale
        return scaled.value(W_scaled), W


CROSS_ENTROPY = register(CrossEntropyLoss())

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
        H[a * m : (a + 1) * m, a * m : (a + 1) * m] += X[a * m : (a + 1) * m] @ problem.Phi.T
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


def _newton_cross_entropy(
    problem: ShallowProblem,
    max_iter: int = NEWTON_MAX_ITERATIONS,
    stop_when_separated: bool = False,
    W0: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
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
        if stop_when_separated and separating_certificate(problem.Phi, problem.state.labels, W):
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
        W = armijo_step(problem, W, V, value, decrement)
    return W - W.mean(axis=0), state
