"""The plan's instances, rebuilt from a configuration alone, and their float64 reference values.

Instances (``config["instance"]``):

    random        verify.sampling.make_case(seed, m, m_y, n, gamma, a_scale=...)
    concentrated  A[0, :] = logit_gap, the rest 0 (UNIFORM-RATE, NAIVE-BOUND-FALSE)
    tight-state   verify.sampling.tight_state_wise_case(seed, m, m_y, n, gamma) with B replaced by
                  b_scale N(0, 1) (B = 0 there): a small perturbation of the state where the
                  state-wise inequality and K >= lambda(A) I are (nearly) equalities
    exact-tight   an exact dyadic state where the state-wise inequality, K >= lambda(A) I and
                  -dL/dt >= lambda(A) ||g||^2 are exact equalities (:func:`exact_tight_case`)

``scale`` multiplies (B, Phi, Y) of a state, or A of the rate claims.

Reference values come from verify.reference (float64, independent of the certificates and of the
core); the plan uses them to place near-tight bounds and false canaries. :func:`reference_floor`
bounds their relative error (16x the first-order rounding estimate of each computation).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .. import reference as R
from ..sampling import make_case, tight_state_wise_case

EPS = np.finfo(np.float64).eps
STATE_CLAIMS = ("STATE-WISE", "ENERGY", "TRUST-REGION")


def exact_tight_case(seed: int, m: int, m_y: int, gamma: float):
    """(A, B, Phi, Y) with exact dyadic entries where Theorem 1's state-wise inequality is an
    equality in exact arithmetic (m a power of two >= 2, n = 2m):

    A column-constant, so S = 1 1^T / m and U = I - gamma S is symmetric with eigenvalues 1 (on
    1-perp) and 1 - gamma: ||U||_2 = 1, lambda(A) = 1. With H_m the Sylvester Hadamard matrix
    (h_0 = 1), Phi = H_m diag(s) R, R the first m rows of H_{2m} (R R^T = 2m I), the Gram matrix
    Phi Phi^T = 2m H_m diag(s^2) H_m^T has eigenvector h_1 (1-perp) with the smallest eigenvalue
    kappa = 2 m^2 s_1^2. B = 0 (W = 0) and Y = c h_1^T Phi (L* = 0). Then dL/dA = 0,
    dL/dB = g = -c (2 m^2 s_1^2) h_1^T, and both sides equal 4 m^5 s_1^4 ||c||^2. K = U^{-2} (x) I
    there, so K >= lambda(A) I and -dL/dt >= lambda(A) ||g||^2 are equalities too.
    """
    if m < 2 or m & (m - 1):
        raise ValueError(f"m must be a power of two >= 2 for the exact tight state; got {m}")
    rng = np.random.default_rng(seed)
    A = np.tile(rng.integers(-3, 4, m).astype(np.float64), (m, 1))  # column j constant
    Hm = sla.hadamard(m).astype(np.float64)
    R2 = sla.hadamard(2 * m).astype(np.float64)[:m]
    s = rng.choice([1.0, 1.25, 1.5, 2.0], m)
    s[1] = 0.5  # strictly the smallest: h_1 spans kappa's eigenspace
    Phi = (Hm * s) @ R2
    c = rng.integers(1, 8, m_y) * rng.choice([-1.0, 1.0], m_y) / 4
    Y = np.outer(c, Hm[:, 1] @ Phi)
    return A, np.zeros((m_y, m)), Phi, Y


def build(config: dict) -> dict:
    """The arrays of a configuration: {"A", "gamma"} (+ "B", "Phi", "Y" for a state)."""
    kind, claim, gamma = config["instance"], config["claim"], config["gamma"]
    scale = config.get("scale", 1.0)
    m = config["m"]
    if kind == "concentrated":
        A = np.zeros((m, m))
        A[0, :] = config.get("logit_gap", 50.0)
        return {"A": A * scale, "gamma": gamma}
    m_y, n, seed = config.get("m_y", 1), config.get("n", 1), config["seed"]
    if kind == "random":
        case = make_case(seed, m, m_y, n, gamma, a_scale=config.get("a_scale", 1.0))
        A, B, Phi, Y = case.A, case.B, case.Phi, case.Y
    elif kind == "tight-state":
        case = tight_state_wise_case(seed, m, m_y, n, gamma)
        A, Phi, Y = case.A, case.Phi, case.Y
        B = config["b_scale"] * np.random.default_rng([seed, 1]).standard_normal((m_y, m))
    elif kind == "exact-tight":
        A, B, Phi, Y = exact_tight_case(seed, m, m_y, gamma)
    else:
        raise ValueError(f"config['instance'] must be random, concentrated, tight-state or exact-tight; got {kind!r}")
    if claim not in STATE_CLAIMS:
        return {"A": A * scale, "gamma": gamma}
    return {"A": A, "B": B * scale, "Phi": Phi * scale, "Y": Y * scale, "gamma": gamma}


# ---- reference values (float64, verify.reference) -------------------------------------------------
def _cond_U(gamma: float) -> float:
    """cond_1(U) <= (1 + gamma) / (1 - gamma) (docs/theory.md, section 2)."""
    return (1 + gamma) / (1 - gamma)


def _cond_phi(Phi: np.ndarray) -> float:
    s = np.linalg.svd(Phi, compute_uv=False)
    s = s[s > s.max() * max(Phi.shape) * EPS]
    return float(s.max() / s.min())


def reference_floor(claim: str, arrays: dict, K: np.ndarray | None = None) -> float:
    """A bound on the relative error of the reference ratios of :func:`reference_values`:
    16 x (number of terms) x (condition numbers) x eps, the first-order rounding estimate of the
    solves and eigenvalue computations involved (rate_constant: m eps cond(U)^2; the state's
    gradients, kappa and L - L*: the data's cond(Phi)^2 as well; lambda_min(K) for ENERGY:
    cond(K), given K)."""
    A, gamma = arrays["A"], arrays["gamma"]
    m = A.shape[0]
    base = 16 * m * _cond_U(gamma) ** 2 * EPS
    if claim not in STATE_CLAIMS:
        return base
    B, Phi = arrays["B"], arrays["Phi"]
    terms = m * B.shape[0] + m + Phi.shape[1]
    state = 16 * terms * _cond_U(gamma) ** 2 * _cond_phi(Phi) ** 2 * EPS
    if claim != "ENERGY" or K is None:
        return state
    w = np.linalg.eigvalsh(K)
    return state * float(w[-1] / w[0])


def _state_wise_ratio(A, B, Phi, Y, gamma, loss: str = "square") -> float:
    """Square loss: kappa = kappa_Phi and L - L* by the reference's least squares. Pseudo-Huber
    (n <= m, full rank, so L* = 0): kappa = kappa_Phi / (1 + L)^3 on the sublevel set of the state."""
    dA, dB = R.gradients(A, B, Phi, Y, gamma, loss)
    lhs = float(np.sum(dA * dA) + np.sum(dB * dB))
    W = R.end_to_end_weight(A, B, gamma)
    if loss == "square":
        return lhs / (2 * R.pl_constant(Phi) * R.rate_constant(A, gamma) * R.square_excess(W, Phi, Y))
    value = float(R.output_loss(W @ Phi, Y, loss))
    return lhs / (2 * R.pl_constant(Phi) / (1 + value) ** 3 * R.rate_constant(A, gamma) * value)


def reference_values(config: dict) -> dict:
    """Float64 reference values of the instance of ``config`` (docs/theory.md notation):

    NAIVE-BOUND-FALSE  ratio = lambda(A) (1 + gamma)^2             (the claim lambda < f naive: f > ratio)
    UNIFORM-RATE       ratio = lambda(A) (1 + gamma sqrt m)^2      (lambda >= f bound: f <= ratio)
    STATE-WISE         ratio = (||dL/dA||^2 + ||dL/dB||^2) / (2 kappa lambda (L - L*))
    ENERGY             rate_ratio = lambda_min(K) / lambda, energy_ratio = g^T K g / (lambda ||g||^2),
                       second_term_share = the relative deviation of vec(dW/dt) = -K g or
                       dL/dt = -g^T K g per unit second_term_scale - 1 (whichever is larger)
    TRUST-REGION       dt_max = 1 / lambda_max(K^{1/2} H K^{1/2}); multiplier_share = ||G v||_inf / ||g||_inf
                       at dt = dt_factor dt_max (the residual of (H + mu G) v + g = 0 is (mu - 1) G v)

    plus ``floor`` (:func:`reference_floor`).
    """
    arrays = build(config)
    claim, A, gamma = config["claim"], arrays["A"], arrays["gamma"]
    m = A.shape[0]
    out = {}
    if claim not in ("ENERGY", "TRUST-REGION"):
        out["floor"] = reference_floor(claim, arrays)
    if claim == "NAIVE-BOUND-FALSE":
        out["ratio"] = R.rate_constant(A, gamma) * (1 + gamma) ** 2
        return out
    if claim == "UNIFORM-RATE":
        out["ratio"] = R.rate_constant(A, gamma) * (1 + gamma * np.sqrt(m)) ** 2
        return out
    B, Phi, Y = arrays["B"], arrays["Phi"], arrays["Y"]
    if claim == "STATE-WISE":
        out["ratio"] = _state_wise_ratio(A, B, Phi, Y, gamma, config.get("loss", "square"))
        return out
    W = R.end_to_end_weight(A, B, gamma)
    g = R.shallow_gradient(W, Phi, Y, "square").reshape(-1, order="F")
    K = R.metric(A, B, gamma)
    lam = R.rate_constant(A, gamma)
    Kg = K @ g
    out["floor"] = reference_floor(claim, arrays, K)
    if claim == "ENERGY":
        X = np.linalg.solve(R.implicit_matrix(A, gamma), np.eye(m))
        K2g = Kg - np.kron(X.T @ X, np.eye(B.shape[0])) @ g  # the gamma^2 term of K applied to g
        out["rate_ratio"] = float(np.linalg.eigvalsh(K)[0] / lam)
        out["energy_ratio"] = float(g @ Kg / (lam * (g @ g)))
        out["second_term_share"] = float(max(np.abs(K2g).max() / np.abs(Kg).max(), abs(g @ K2g) / (g @ Kg)))
        return out
    H = R.shallow_hessian(W, Phi, Y, "square")
    dt_max = R.admissible_step_bound(K, H)
    dt = config.get("dt_factor", 0.5) * config.get("dt_max", dt_max)
    Gv = -g + dt * (H @ Kg)  # G v = (K^{-1}/dt - H)(-dt K g), without the inverse
    out["dt_max"] = float(dt_max)
    out["multiplier_share"] = float(np.abs(Gv).max() / np.abs(g).max())
    return out
