"""Reference computations, written from the definitions and sharing no code with the core.

The campaign judges the numerical core (:mod:`verify.model`, :mod:`verify.losses`,
:mod:`verify.gradients`, :mod:`verify.dynamics`, :mod:`verify.convergence`,
:mod:`verify.trust_region`) against the functions here. They import nothing from those modules
(a test enforces it), take the slow and obvious route, and differentiate by the complex step

    f'(x) v = Im f(x + i h v) / h + O(h^2),    h = 1e-20,

which has no subtractive cancellation: for a real-analytic f evaluated in complex arithmetic
the imaginary part carries the derivative with the rounding error of one evaluation, so the
derivative is accurate to about (condition of the evaluation) x eps, not sqrt(eps). Every
function below is therefore written for complex input: maxima are taken of real parts (a real
shift leaves a softmax unchanged), squares are z * z, never |z|^2.

Notation as in docs/theory.md: S = sigma(A) (column softmax), U = I - gamma S, W = B U^{-1},
Q = W Phi, L = sum_i l(q_i, y_i); vec is column-major.
"""

from __future__ import annotations

import numpy as np

#: complex-step size; h^2 = 1e-40 is far below eps for every quantity of order 1e-10 or more
STEP = 1e-20
EPS = np.finfo(np.float64).eps


# ---- the model ----------------------------------------------------------------------------
def softmax_columns(A: np.ndarray) -> np.ndarray:
    """sigma(A)_ij = exp(A_ij - c_j) / sum_k exp(A_kj - c_j), c_j = max_k Re A_kj."""
    E = np.exp(A - A.real.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def softmax_jacobian(s: np.ndarray) -> np.ndarray:
    """J = diag(s) - s s^T, the Jacobian of the softmax at the probabilities s."""
    return np.diag(s) - np.outer(s, s)


def implicit_matrix(A: np.ndarray, gamma: float) -> np.ndarray:
    """U = I - gamma sigma(A)."""
    return np.eye(A.shape[0]) - gamma * softmax_columns(A)


def end_to_end_weight(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """W = B U^{-1}, from the dense solve U^T W^T = B^T (numpy.linalg.solve)."""
    return np.linalg.solve(implicit_matrix(A, gamma).T, B.T).T


def fixed_point(A: np.ndarray, Phi: np.ndarray, gamma: float, layers: int) -> np.ndarray:
    """z^(layers) of z^(l) = gamma S z^(l-1) + Phi, z^(0) = 0 (the weight-tied forward pass)."""
    gS = gamma * softmax_columns(A)
    z = np.zeros_like(Phi, dtype=np.result_type(gS, Phi))
    for _ in range(layers):
        z = gS @ z + Phi
    return z


# ---- losses -------------------------------------------------------------------------------
def _square_value(Q, Y):
    """1/2 ||Q - Y||_F^2."""
    R = Q - Y
    return 0.5 * np.sum(R * R)


def _cross_entropy_value(Q, Y):
    """-sum_i log softmax(q_i)_{y_i}. Per sample, with d = q - q_y: log sum_k exp(d_k) =
    log1p(sum_{k != y} exp(d_k)) when y is the (real) argmax (so no digit is lost when the loss
    is tiny), otherwise max d + log sum exp(d - max d)."""
    labels = np.argmax(Y.real, axis=0)
    cols = np.arange(Q.shape[1])
    true = labels[None, :] == np.arange(Q.shape[0])[:, None]
    D = Q - Q[labels, cols][None, :]
    top = D.real.max(axis=0)
    y_is_max = top <= 0.0
    with np.errstate(over="ignore"):  # exp(d) overflows only where y is not the argmax (unused there)
        others = np.sum(np.where(true, 0.0, np.exp(np.where(y_is_max[None, :], D, 0.0))), axis=0)
    shifted = np.log(np.sum(np.exp(D - top[None, :]), axis=0)) + top
    return np.sum(np.where(y_is_max, np.log1p(others), shifted))


def _cross_entropy_gradient(Q, Y):
    """softmax(Q) - Y; the true-class entry is -(mass of the other classes), which keeps its
    digits when the softmax saturates."""
    P = softmax_columns(Q)
    labels = np.argmax(Y.real, axis=0)
    true = labels[None, :] == np.arange(Q.shape[0])[:, None]
    rest = np.sum(np.where(true, 0.0, P), axis=0)
    return np.where(true, -rest[None, :], P)


def _pseudo_huber_value(Q, Y):
    """sum (sqrt(1 + r^2) - 1), r = Q - Y, as r^2 / (1 + sqrt(1 + r^2)) (no cancellation at small r;
    analytic, so the complex step applies)."""
    R = Q - Y
    return np.sum(R * R / (1.0 + np.sqrt(1.0 + R * R)))


def _pseudo_huber_gradient(Q, Y):
    """r / sqrt(1 + r^2) entrywise."""
    R = Q - Y
    return R / np.sqrt(1.0 + R * R)


#: relative accuracy asked of each quadrature in :func:`_pseudo_huber_excess` (QUADPACK accepts
#: no less than 50 eps); the integrands are positive, so the sum has the same relative accuracy
QUAD_RTOL = 1e-13


def _pseudo_huber_excess(W, Phi, Y) -> float:
    """L0(W) - L* as sum_{k,i} (r - s)^2 int_0^1 (1 - u) l''(s + u (r - s)) du (Taylor's formula with
    the integral remainder about s = W* Phi - Y, r = W Phi - Y; the linear terms sum to
    <grad L0(W*), W - W*> = 0), l''(t) = (1 + t^2)^(-3/2), each integral by adaptive quadrature
    (scipy.integrate.quad): no cancellation, and no closed form shared with the core."""
    from scipy.integrate import quad

    W_star = _cached_minimiser(Phi, Y)
    S = W_star @ Phi - Y
    D = (W - W_star) @ Phi
    total = 0.0
    for s, d in zip(S.ravel(), D.ravel()):
        if d != 0.0:
            weight = quad(
                lambda u: (1.0 - u) * (1.0 + (s + u * d) ** 2) ** -1.5,
                0.0,
                1.0,
                epsabs=0.0,
                epsrel=QUAD_RTOL,
                limit=200,
            )[0]
            total += d * d * weight
    return float(total)


_MINIMISERS: dict = {}


def _cached_minimiser(Phi, Y) -> np.ndarray:
    """The pseudo-Huber W* of (Phi, Y), kept for the last few data sets (a trajectory's records all
    share one)."""
    key = (Phi.shape, Phi.tobytes(), Y.shape, Y.tobytes())
    if key not in _MINIMISERS:
        if len(_MINIMISERS) >= 8:
            _MINIMISERS.pop(next(iter(_MINIMISERS)))
        _MINIMISERS[key] = pseudo_huber_minimiser(Phi, Y)[1]
    return _MINIMISERS[key]


class ReferenceLoss:
    """The reference's own implementation of one loss, registered under the core's name:
    ``value(Q, Y)`` and ``gradient(Q, Y)`` (complex-step safe), ``minimiser(Phi, Y) -> (L*, W*)``,
    ``excess(W, Phi, Y)`` and ``pl_constant(Phi, Y, level)`` (None where the loss has none)."""

    def __init__(self, name, value, gradient, minimiser, excess, pl_constant=None):
        self.name, self.value, self.gradient = name, value, gradient
        self.minimiser, self.excess, self.pl_constant = minimiser, excess, pl_constant


REFERENCE_LOSSES: dict = {}


def register_loss(loss: ReferenceLoss) -> ReferenceLoss:
    REFERENCE_LOSSES[loss.name] = loss
    return loss


def reference_loss(loss) -> ReferenceLoss:
    """The reference implementation of ``loss`` (a name, or any object whose ``name`` is one)."""
    name = loss if isinstance(loss, str) else getattr(loss, "name", None)
    if name not in REFERENCE_LOSSES:
        raise ValueError(f"the reference has no loss {loss!r}; it has {tuple(REFERENCE_LOSSES)}")
    return REFERENCE_LOSSES[name]


def output_loss(Q: np.ndarray, Y: np.ndarray, loss):
    """sum_i l(q_i, y_i) (square 1/2 ||q - y||^2; cross-entropy -log softmax(q)_{y}; pseudo-Huber
    sum_k sqrt(1 + r_k^2) - 1)."""
    return reference_loss(loss).value(Q, Y)


def output_gradient(Q: np.ndarray, Y: np.ndarray, loss) -> np.ndarray:
    """G = dL/dQ: Q - Y (square), softmax(Q) - Y (cross-entropy), r / sqrt(1 + r^2) (pseudo-Huber)."""
    return reference_loss(loss).gradient(Q, Y)


def optimum(Phi, Y, loss) -> tuple[float, np.ndarray]:
    """(L*, W*) of ``loss`` by the reference's own route."""
    return reference_loss(loss).minimiser(Phi, Y)


def excess(W, Phi, Y, loss) -> float:
    """L0(W) - L* by the reference's own route (cancellation-free for square and pseudo-Huber)."""
    return reference_loss(loss).excess(W, Phi, Y)


def loss_pl_constant(Phi, Y, loss, level: float | None = None) -> float:
    """The loss's PL constant (square: global; pseudo-Huber: on {L0 <= level})."""
    f = reference_loss(loss).pl_constant
    if f is None:
        raise ValueError(f"the {reference_loss(loss).name} loss has no PL constant in the reference")
    return f(Phi, Y, level)


def loss_value(A, B, Phi, Y, gamma: float, loss: str):
    """L(A, B) = sum_i l(W phi_i, y_i)."""
    return output_loss(end_to_end_weight(A, B, gamma) @ Phi, Y, loss)


def shallow_gradient(W, Phi, Y, loss: str) -> np.ndarray:
    """grad L0(W) = G Phi^T."""
    return output_gradient(W @ Phi, Y, loss) @ Phi.T


# ---- complex-step derivatives -------------------------------------------------------------
def gradients(A, B, Phi, Y, gamma: float, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dA, dL/dB) entry by entry: dL/dx_k = Im L(x + i h e_k) / h."""
    dA = np.empty(A.shape)
    dB = np.empty(B.shape)
    for idx in np.ndindex(A.shape):
        Ac = A.astype(complex)
        Ac[idx] += 1j * STEP
        dA[idx] = loss_value(Ac, B, Phi, Y, gamma, loss).imag / STEP
    for idx in np.ndindex(B.shape):
        Bc = B.astype(complex)
        Bc[idx] += 1j * STEP
        dB[idx] = loss_value(A, Bc, Phi, Y, gamma, loss).imag / STEP
    return dA, dB


def directional_derivative(A, B, Phi, Y, gamma: float, loss: str, VA, VB) -> float:
    """d/ds L(A + s VA, B + s VB) at s = 0 (one complex evaluation, any size)."""
    return float(loss_value(A + 1j * STEP * VA, B + 1j * STEP * VB, Phi, Y, gamma, loss).imag / STEP)


def weight_derivative(A, B, gamma: float, VA, VB) -> np.ndarray:
    """d/ds W(A + s VA, B + s VB) at s = 0."""
    return end_to_end_weight(A + 1j * STEP * VA, B + 1j * STEP * VB, gamma).imag / STEP


def weight_jacobian(A, B, gamma: float) -> np.ndarray:
    """J = d vec(W) / d theta, theta = (vec A, vec B): shape (m m_y, m^2 + m_y m)."""
    m, m_y = A.shape[0], B.shape[0]
    columns = []
    for idx in np.ndindex(A.shape):
        E = np.zeros(A.shape)
        E[idx] = 1.0
        columns.append(weight_derivative(A, B, gamma, E, np.zeros(B.shape)).reshape(-1, order="F"))
    for idx in np.ndindex(B.shape):
        E = np.zeros(B.shape)
        E[idx] = 1.0
        columns.append(weight_derivative(A, B, gamma, np.zeros(A.shape), E).reshape(-1, order="F"))
    return np.array(columns).T.reshape(m * m_y, m * m + m_y * m)


def metric(A, B, gamma: float) -> np.ndarray:
    """K = J J^T: along gradient flow d vec(W)/dt = J dtheta/dt = -J J^T g (chain rule)."""
    J = weight_jacobian(A, B, gamma)
    return J @ J.T


def shallow_hessian(W, Phi, Y, loss: str) -> np.ndarray:
    """Hessian of L0 in column-major vec(W): column k is vec(Im grad L0(W + i h E_k)) / h."""
    m_y, m = W.shape
    H = np.empty((m * m_y, m * m_y))
    for k in range(m * m_y):
        E = np.zeros(m * m_y)
        E[k] = 1.0
        Wc = W + 1j * STEP * E.reshape(W.shape, order="F")
        H[:, k] = (shallow_gradient(Wc, Phi, Y, loss).imag / STEP).reshape(-1, order="F")
    return 0.5 * (H + H.T)


# ---- back-propagation through the unrolled model -------------------------------------------
def unrolled_gradients(A, B, Phi, Y, gamma: float, layers: int, loss: str):
    """(L_H, dL_H/dA, dL_H/dB) of f_H(x) = B z^(H), z^(l) = gamma S z^(l-1) + Phi, z^(0) = 0,
    by reverse-mode differentiation layer by layer with the explicit softmax Jacobians J_j."""
    S = softmax_columns(A)
    zs = [np.zeros(Phi.shape)]
    for _ in range(layers):
        zs.append(gamma * S @ zs[-1] + Phi)
    Q = B @ zs[-1]
    G = output_gradient(Q, Y, loss)
    dB = G @ zs[-1].T
    adjoint = B.T @ G
    dS = np.zeros(S.shape)
    for layer in range(layers, 0, -1):
        dS += gamma * adjoint @ zs[layer - 1].T  # z^(l) = gamma S z^(l-1) + Phi
        adjoint = gamma * S.T @ adjoint
    dA = np.column_stack([softmax_jacobian(S[:, j]) @ dS[:, j] for j in range(S.shape[1])])
    return float(output_loss(Q, Y, loss)), dA, dB


# ---- constants of Theorem 1 ----------------------------------------------------------------
def rate_constant(A, gamma: float) -> float:
    """lambda(A) = lambda_min(U^{-T} U^{-1}), from the eigenvalues of X^T X with X = U^{-1}
    (computed by a solve). Relative accuracy about m eps cond_2(U)^2."""
    X = np.linalg.solve(implicit_matrix(A, gamma), np.eye(A.shape[0]))
    return float(np.linalg.eigvalsh(X.T @ X)[0])


def second_gram_eigenvalue(A, gamma: float) -> float:
    """mu_2 = sigma_2(U)^2, the second largest eigenvalue of U^T U, as 1 / (second smallest
    eigenvalue of X^T X), X = U^{-1} by a solve (m >= 2). Its relative error is at most that of
    :func:`rate_constant` (the eigenvalues of X^T X share one absolute error bound, and this one
    is not below the smallest)."""
    X = np.linalg.solve(implicit_matrix(A, gamma), np.eye(A.shape[0]))
    return float(1.0 / np.linalg.eigvalsh(X.T @ X)[1])


def spectral_norm_lower_bound(A, gamma: float) -> float:
    """max_i ||U^T e_i||_2 <= ||U||_2, so lambda(A) <= 1 / max_i ||U^T e_i||^2 (a certified
    upper bound on lambda from one row of U)."""
    U = implicit_matrix(A, gamma)
    return float(np.sqrt(np.max(np.sum(U * U, axis=1))))


def concentrated_rate_constant(m: int, gamma: float, logit_gap: float = 50.0) -> float:
    """lambda(A) at the concentrated A (A[0, :] = logit_gap, 0 elsewhere) for any width m, without
    an m x m matrix. Every column of sigma(A) is the same s = (e^g, 1, ..., 1) / (e^g + m - 1), so
    U = I - gamma s 1^T and U^T U = I - gamma (1 s^T + s 1^T) + gamma^2 ||s||^2 1 1^T is the
    identity on the complement of span{1, s}. On that span, in the basis (1, s) (1^T s = 1),

        U^T U 1 = (1 - gamma + gamma^2 m ||s||^2) 1 - gamma m s,
        U^T U s = (gamma^2 - gamma) ||s||^2 1 + (1 - gamma) s,

    so ||U||_2^2 = max(1, the larger eigenvalue of that 2 x 2 matrix) and lambda = 1 / ||U||_2^2."""
    total = np.exp(logit_gap) + (m - 1)
    s0, s1 = np.exp(logit_gap) / total, 1.0 / total
    q = s0 * s0 + (m - 1) * s1 * s1
    M = np.array([[1 - gamma + gamma * gamma * m * q, (gamma * gamma - gamma) * q], [-gamma * m, 1 - gamma]])
    return float(1.0 / max(1.0, float(np.max(np.linalg.eigvals(M).real))))


def concentrated_row_bound(m: int, gamma: float, logit_gap: float = 50.0) -> float:
    """||U^T e_1||^2 = (1 - gamma s_0)^2 + (m - 1) gamma^2 s_0^2 at the concentrated A: lambda(A) is
    at most its inverse (||U||_2 >= ||U^T e_1||), at any width."""
    s0 = np.exp(logit_gap) / (np.exp(logit_gap) + (m - 1))
    return float((1 - gamma * s0) ** 2 + (m - 1) * (gamma * s0) ** 2)


def gram_spectrum(Phi) -> np.ndarray:
    """Squared singular values of Phi (the eigenvalues of Phi Phi^T that can be nonzero)."""
    return np.linalg.svd(Phi, compute_uv=False) ** 2


def pl_constant(Phi) -> float:
    """kappa = smallest nonzero eigenvalue of Phi Phi^T, from the SVD of Phi itself.

    "Nonzero" is numpy.linalg.matrix_rank's rule: singular values above
    sigma_max max(m, n) eps (what rounding in Phi alone cannot produce).
    """
    s = np.linalg.svd(Phi, compute_uv=False)
    keep = s > s.max() * max(Phi.shape) * EPS
    return float(s[keep].min() ** 2)


def least_squares(Phi, Y) -> tuple[float, np.ndarray]:
    """(L*, W*) of the square loss from the SVD Phi = U_r diag(s) V_r^T (rank r):
    W* = Y V_r diag(1/s) U_r^T (minimum norm), L* = 1/2 ||Y - Y V_r V_r^T||_F^2."""
    Ur, s, Vt = np.linalg.svd(Phi, full_matrices=False)
    keep = s > s.max() * max(Phi.shape) * EPS
    Ur, s, Vt = Ur[:, keep], s[keep], Vt[keep]
    YV = Y @ Vt.T
    residual = Y - YV @ Vt
    return 0.5 * float(np.sum(residual * residual)), (YV / s) @ Ur.T


def square_excess(W, Phi, Y) -> float:
    """L0(W) - L* = 1/2 ||(W - W*) Phi||_F^2 (no cancellation)."""
    D = (W - least_squares(Phi, Y)[1]) @ Phi
    return 0.5 * float(np.sum(D * D))


def newton_minimiser(Phi, Y, loss, *, max_iter: int = 100, W0=None) -> tuple[float, np.ndarray]:
    """(L*, W*) of a convex loss by Newton's method on the complex-step Hessian, with
    pseudo-inverse steps (flat directions, e.g. W -> W + 1 c^T for the cross-entropy and null
    vectors of Phi, leave L0 unchanged; from W0 = 0 or a minimum-norm W0 the iterates keep
    minimum norm) and backtracking; stops when the Newton decrement no longer exceeds the
    rounding of L0, then polishes twice."""
    m_y, m = Y.shape[0], Phi.shape[0]
    W = np.zeros((m_y, m)) if W0 is None else np.array(W0, dtype=float)
    polish = 0
    for _ in range(max_iter):
        value = float(output_loss(W @ Phi, Y, loss))
        g = shallow_gradient(W, Phi, Y, loss).reshape(-1, order="F")
        step = -np.linalg.pinv(shallow_hessian(W, Phi, Y, loss), rcond=1e-12) @ g
        decrement = float(-g @ step)
        V = step.reshape(W.shape, order="F")
        if decrement <= 64 * EPS * max(1.0, value):
            if polish == 2:
                break
            polish += 1
            W = W + V
            continue
        t = 1.0
        while float(output_loss((W + t * V) @ Phi, Y, loss)) > value - 0.25 * t * decrement and t > 1e-12:
            t *= 0.5
        W = W + t * V
    return float(output_loss(W @ Phi, Y, loss)), W


def cross_entropy_minimiser(Phi, Y, *, max_iter: int = 100) -> tuple[float, np.ndarray]:
    """(L*, W*) of the cross-entropy on non-separable data (:func:`newton_minimiser` from 0)."""
    return newton_minimiser(Phi, Y, "cross_entropy", max_iter=max_iter)


def pseudo_huber_minimiser(Phi, Y) -> tuple[float, np.ndarray]:
    """(L*, W*) of the pseudo-Huber loss: :func:`newton_minimiser` from the minimum-norm
    least-squares W, so W* is the minimum-norm minimiser."""
    return newton_minimiser(Phi, Y, "pseudo_huber", W0=least_squares(Phi, Y)[1])


register_loss(
    ReferenceLoss(
        "square",
        _square_value,
        lambda Q, Y: Q - Y,
        lambda Phi, Y: least_squares(Phi, Y),
        lambda W, Phi, Y: square_excess(W, Phi, Y),
        lambda Phi, Y, level: pl_constant(Phi),
    )
)
register_loss(
    ReferenceLoss(
        "cross_entropy",
        _cross_entropy_value,
        _cross_entropy_gradient,
        cross_entropy_minimiser,
        lambda W, Phi, Y: float(output_loss(W @ Phi, Y, "cross_entropy")) - cross_entropy_minimiser(Phi, Y)[0],
    )
)
register_loss(
    ReferenceLoss(
        "pseudo_huber",
        _pseudo_huber_value,
        _pseudo_huber_gradient,
        pseudo_huber_minimiser,
        _pseudo_huber_excess,
        # kappa_Phi / (1 + c)^3 on {L0 <= c} (docs/theory.md, section 5)
        lambda Phi, Y, level: pl_constant(Phi) / (1.0 + level) ** 3,
    )
)


# ---- trust region --------------------------------------------------------------------------
def trust_region_kkt(g, H, G, delta: float, v, multiplier: float) -> dict:
    """The KKT conditions of min g^T v + 1/2 v^T H v s.t. v^T G v <= delta^2 at (v, mu):

    stationarity ||g + (H + mu G) v|| relative to ||g|| + ||(H + mu G) v||, the radius
    |v^T G v - delta^2| / delta^2, mu >= 0, and lambda_min(H + mu G) (>= 0 makes the KKT point
    a global minimiser: the standard sufficient condition for trust-region subproblems).
    """
    M = H + multiplier * G
    Mv = M @ v
    return {
        "stationarity": float(np.linalg.norm(g + Mv) / (np.linalg.norm(g) + np.linalg.norm(Mv))),
        "radius": float(abs(v @ G @ v - delta**2) / delta**2),
        "multiplier": float(multiplier),
        "lambda_min_H_plus_mu_G": float(np.linalg.eigvalsh(0.5 * (M + M.T))[0]),
        "lambda_min_G": float(np.linalg.eigvalsh(0.5 * (G + G.T))[0]),
    }


def admissible_step_bound(K, H) -> float:
    """sup{dt : K^{-1}/dt - H > 0} = 1 / lambda_max(K^{1/2} H K^{1/2}), with K^{1/2} from the
    eigendecomposition of K (the core uses a Cholesky factor); inf when that maximum is <= 0."""
    w, V = np.linalg.eigh(K)
    root = (V * np.sqrt(w)) @ V.T
    top = float(np.linalg.eigvalsh(root @ H @ root)[-1])
    return float("inf") if top <= 0 else 1.0 / top
