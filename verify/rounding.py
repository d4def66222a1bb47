"""Rounding-error models: the tolerances of the campaign's equality checks.

Every tolerance is a first-order bound on the rounding error of the computations being compared,
built from the standard model fl(a op b) = (a op b)(1 + d), |d| <= eps, and three facts:

- an inner product of length k has error <= k eps sum |a_i b_i| (Higham, Accuracy and Stability,
  eq. 3.5), so a matrix product C = A B errs by <= k eps || |A| |B| ||_F <= k eps ||A||_F ||B||_F;
- U = I - gamma sigma(A) is strictly column diagonally dominant, so LU with partial pivoting has
  no element growth and a solve with U or U^T has backward error <= 3 m eps |U| (Higham, Thm.
  9.4 and 9.9), hence relative forward error <= 3 m eps cond(U), cond_1(U) <= (1+gamma)/(1-gamma);
- ||U^{-1}||_2 <= sqrt(m) ||U^{-1}||_1 <= sqrt(m) / (1 - gamma)  (column sums of gamma S are gamma).

Two implementations that each satisfy a bound e may differ by 2e; the tolerances below are that
sum. They are worst-case first-order bounds (no safety factor): rounding errors of random sign
usually add up to far less, which the campaign reports as the ratio error / tolerance.
"""

from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps


def cond_bound(gamma: float) -> float:
    """(1 + gamma) / (1 - gamma) >= cond_1(I - gamma sigma(A)) for every A."""
    return (1.0 + gamma) / (1.0 - gamma)


def inverse_norm_bound(m: int, gamma: float) -> float:
    """sqrt(m) / (1 - gamma) >= ||U^{-1}||_2."""
    return np.sqrt(m) / (1.0 - gamma)


def solve_rounding(m: int, gamma: float) -> float:
    """Relative forward error of W = B U^{-1} (or U^{-1} Phi) computed by one LU solve, including
    the rounding of S = sigma(A) itself (m + 3 operations per entry): (3 m cond + m + 3) eps."""
    return (3 * m * cond_bound(gamma) + m + 3) * EPS


def _fro(X) -> float:
    return float(np.linalg.norm(X))


def forward_errors(W, Phi, G, gamma: float, Y=None) -> dict:
    """First-order bounds on the rounding errors (Frobenius norms) of one implementation of

        W = B U^{-1},  Q = W Phi,  G = dl/dQ,  grad L0 = G Phi^T,  dL/dB = grad L0 U^{-T},
        Gamma = gamma W^T dL/dB,  dL/dA = softmax VJP(S, Gamma),

    evaluated at the exact (reference) W, Phi and G. dl/dQ is 1-Lipschitz in Q for every loss
    (square: identity; cross-entropy: the softmax Jacobian has norm <= 1/2; pseudo-Huber:
    l'' = (1 + r^2)^(-3/2) <= 1), and so is the
    softmax VJP in Gamma (||J_j||_2 <= 1/2), while its error from S is <= 3 ||delta S|| ||Gamma||.
    Returns the bounds on W, Q, grad L0, dB, Gamma, dA and L (with the targets Y, when given,
    the scale of L's sum covers losses whose terms grow with the residual: :func:`abs_loss_scale`).
    """
    m_y, m = W.shape
    n = Phi.shape[1]
    rho = solve_rounding(m, gamma)
    inv = inverse_norm_bound(m, gamma)
    nW, nPhi, nG = _fro(W), _fro(Phi), _fro(G)
    e_W = rho * nW
    e_Q = e_W * nPhi + m * EPS * nW * nPhi
    e_G = e_Q + 2 * m_y * EPS * (nG + np.sqrt(n * m_y))  # softmax: m_y-term sums of numbers <= 1
    grad = G @ Phi.T
    e_grad = e_G * nPhi + n * EPS * nG * nPhi
    dB_norm = _fro(grad) * inv
    e_dB = (e_grad + rho * _fro(grad)) * inv
    Gamma_norm = gamma * nW * dB_norm
    e_Gamma = gamma * (e_W * dB_norm + nW * e_dB) + m_y * EPS * Gamma_norm
    e_S = (m + 3) * EPS * np.sqrt(m)  # ||S||_F <= sqrt(m) (columns are probability vectors)
    e_dA = 0.5 * e_Gamma + 3 * e_S * Gamma_norm + 2 * m * EPS * Gamma_norm
    return {
        "W": e_W,
        "Q": e_Q,
        "grad_L0": e_grad,
        "dB": e_dB,
        "Gamma": e_Gamma,
        "dA": e_dA,
        "L": nG * e_Q + n * m_y * EPS * abs_loss_scale(W @ Phi, G, Y),
    }


def abs_loss_scale(Q, G, Y=None) -> float:
    """A scale for the rounding of the final sum in L: the sum of |per-entry terms| is at most
    ||Q|| ||G|| + ||G||^2 for the square loss (1/2 ||G||^2) and the cross-entropy (log-sum-exp
    differences bounded by the outputs' spread); with Y given, at least ||Q - Y|| ||G||, which
    bounds it for pseudo-Huber (l(r) = r^2 / (1 + a) <= r^2 / a = r l'(r), a = sqrt(1 + r^2), so
    the sum is at most <R, G> <= ||R|| ||G||; for the square loss it is ||G||^2, already counted)."""
    scale = _fro(Q) * _fro(G) + _fro(G) ** 2 + 1.0
    return scale if Y is None else max(scale, _fro(Q - Y) * _fro(G))


def gradient_tolerances(W, Phi, G, gamma: float) -> tuple[float, float, float]:
    """(tol_L, tol_dA, tol_dB): the difference of two implementations that each satisfy
    :func:`forward_errors` (absolute, Frobenius)."""
    e = forward_errors(W, Phi, G, gamma)
    return 2 * e["L"], 2 * e["dA"], 2 * e["dB"]


def metric_tolerance(W, m: int, gamma: float) -> float:
    """Frobenius bound on the difference of two computations of K = J J^T.

    ||K||_F <= sqrt(m m_y) ||K||_2 and ||K||_2 <= ||U^{-1}||_2^2 (1 + gamma^2 ||W||_2^2 / 4) (the
    second term is J_A J_A^T with ||J_A|| <= gamma ||W|| ||U^{-1}|| / 2). Each factor U^{-1} carries
    the solve rounding, W carries it too, and the m-term sums of the products add m eps.
    """
    m_y = W.shape[0]
    inv = inverse_norm_bound(m, gamma)
    size = inv**2 * (1 + gamma**2 * _fro(W) ** 2 / 4)
    rho = solve_rounding(m, gamma)
    return 2 * np.sqrt(m * m_y) * size * (3 * rho + 2 * (m + m_y) * EPS)


def symmetric_eigen_tolerance(norm: float, size: int) -> float:
    """Absolute error of an eigenvalue of a symmetric matrix from eigh: <= p(size) eps ||M||_2
    (backward stable, Weyl); p(size) = size is the usual bound of the Householder reduction."""
    return size * EPS * norm


def rate_tolerance(lam: float, m: int, gamma: float, cond2: float) -> float:
    """|lambda_core - lambda_ref| for lambda(A) = 1/||U||_2^2.

    One side takes ||U||_2 from an SVD (relative error <= (m + 3) eps, after S's own rounding) or,
    along trajectories at m > 48, from :class:`verify.convergence.RateTracker`, whose certified
    bound (m + 3) eps plus its Rayleigh quotient's rounding (m + p) u, p <= m, stays within the
    same 2 (m + 3) eps for sigma_max^2; the other lambda_min(X^T X) with X = U^{-1} by a solve:
    absolute error <= (2 rho + (m + 2) eps) ||X||_2^2, i.e. relative (2 rho + (m + 2) eps)
    cond_2(U)^2. ``cond2`` is cond_2(U), computed.
    """
    rho = solve_rounding(m, gamma)
    return lam * (4 * (m + 3) * EPS + (2 * rho + (m + 2) * EPS) * cond2**2)


def kappa_tolerance(singular_values: np.ndarray, m: int, n: int) -> float:
    """|kappa_core - kappa_ref| for kappa = s_min^2 (smallest nonzero singular value of Phi).

    An SVD is backward stable, so each singular value moves by <= p eps s_max (Weyl), p = m + n
    (the Householder reductions); the core first takes a QR of Phi^T (another p eps s_max):
    Householder QR, or CholeskyQR2 when n >= 3 m and Phi is not too ill-conditioned, whose
    first-order error (7 m + 3 n) u s_max / 2 <= p eps s_max (u = eps / 2, n >= 3 m) is derived
    in :func:`verify.losses._cholesky_qr2`.
    Two computations: 2 * 2 s_min * 2 p eps s_max.
    """
    s = np.asarray(singular_values)
    s_min = s[s > s.max() * max(m, n) * EPS].min()
    return 8 * (m + n) * EPS * s_min * s.max()


def projection_rounding(singular_values: np.ndarray, m: int, n: int) -> float:
    """Relative error of Y P, P the projector onto the row space of Phi, by QR (Householder or
    CholeskyQR2) or SVD: (m + n) eps cond(Phi) (Wedin: the computed subspace moves by eps cond(Phi))."""
    s = np.asarray(singular_values)
    s_min = s[s > s.max() * max(m, n) * EPS].min()
    return (m + n) * EPS * s.max() / s_min


def residual_rounding(Phi_fro: float, Y_fro: float, W_star_fro: float, m: int, n: int) -> float:
    """Error of the least-squares residual r = W* Phi - Y: the computed W* solves a problem with
    Phi perturbed by gamma~_{mn} ||Phi|| columnwise (Higham, Accuracy and Stability, Thm. 20.3;
    gamma~_k = c k eps with c a small integer, taken as 4), so r moves by 4 m n eps ||W*|| ||Phi||,
    plus (m + n) eps (||Y|| + ||W*|| ||Phi||) for forming it (Frobenius norms). For an
    interpolation (m >= n, r = 0) this is the whole residual."""
    return (4 * m * n + m + n) * EPS * W_star_fro * Phi_fro + (m + n) * EPS * Y_fro


def excess_tolerance(
    D_norm: float,
    W_norm: float,
    Y_norm: float,
    Phi_norm: float,
    m: int,
    gamma: float,
    singular_values: np.ndarray,
    n: int,
) -> float:
    """|E_core - E_ref| for E = 1/2 ||D||^2, D = (W - W*) Phi = W Phi - Y P.

    D errs by <= delta = (rho + m eps) ||W|| ||Phi|| + projection_rounding ||Y|| in each
    implementation; E then by <= ||D|| delta + delta^2 / 2; two implementations: twice that.
    """
    delta = (solve_rounding(m, gamma) + m * EPS) * W_norm * Phi_norm + projection_rounding(
        singular_values, m, n
    ) * Y_norm
    return 2 * (D_norm * delta + 0.5 * delta**2)


#: Global ODE error relative to the local tolerance rtol. For these dissipative flows the
#: amplification measured in the trajectory tests stays below 10^2; 10^3 leaves a margin. This is
#: an a-priori estimate (no validated integration), stated wherever it is used.
ODE_GLOBAL_ERROR_FACTOR = 1e3


def ode_state_error(rtol: float, atol: float, theta_max: float, n_params: int) -> float:
    """Euclidean error of the ODE state (A_t, B_t): ODE_GLOBAL_ERROR_FACTOR (atol + rtol max|theta|)
    per component."""
    return ODE_GLOBAL_ERROR_FACTOR * (atol + rtol * theta_max) * np.sqrt(n_params)


def weight_sensitivity(m: int, gamma: float, W_norm: float) -> float:
    """||dW/dtheta||_2 <= ||U^{-1}||_2 (1 + gamma ||W||_2 / 2): W = B U^{-1} moves with B through
    U^{-1} and with A through gamma W dS U^{-1}, ||dS|| <= ||dA|| / 2 columnwise."""
    return inverse_norm_bound(m, gamma) * (1 + 0.5 * gamma * W_norm)
