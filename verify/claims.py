"""The claims the campaign verifies, each with a sampler of random configurations and a check.

A claim's ``sample(rng, index)`` returns a JSON-serialisable configuration (a dict of scalars:
a seed, sizes, gamma, loss, options); ``check(config)`` rebuilds everything from it and returns
an :class:`Outcome`. So any failing configuration is reproduced by
``python -m verify --only CLAIM --replay 'JSON'``.

How a check judges. The numerical core (the subject) is compared with :mod:`verify.reference`
(written from the definitions, sharing no code with the core) and with the SymPy derivations of
:mod:`theory`. Each comparison is a :class:`Measurement` of one of four kinds:

- ``equality``: an error and the tolerance it must not exceed, derived from a rounding-error
  model (:mod:`verify.rounding`) or an ODE error model; reported as error / tolerance (<= 1).
- ``inequality``: X >= Y reported as the relative slack X / Y - 1 (>= 0, less a rounding
  allowance that the measurement carries).
- ``exact``: a SymPy residual that must simplify to exactly 0.
- ``condition``: a yes/no fact (the flow reached its target; the data are separable as built).

Inequalities are one-sided by nature; where a bound is attained (m = 1, the constructed tight
state, the concentrated softmax) the check adds the equality, and every constant a bound is made
of (kappa, lambda(A), the uniform bound, L*) is compared with an independent computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dataclasses

import numpy as np
import scipy.linalg
from scipy.integrate import cumulative_trapezoid

from . import reference as ref
from . import rounding
from .convergence import (RateTracker, concentrated_weight, local_pl_estimate, naive_bound_counterexample,
                          naive_rate_bound, rate_constant, softmax_norm_rate_bound, state_wise_ratio, uniform_rate_bound)
from .dynamics import (gradient_descent, gradient_flow, preconditioner, preconditioner_from_layer,
                       preconditioner_matvec, vec)
from .gradients import DEQObjective, loss_and_grad, unrolled_loss_and_grad
from .hypotheses import CASES as HYPOTHESIS_CASES, check_case, names_argument, run_hypotheses, sample_hypotheses
from .landscape import midpoint_violation
from .losses import ShallowProblem, optimal_loss
from .model import (ImplicitLayer, column_softmax, end_to_end_weight, equilibrium, fixed_point_iterates, predict,
                    weight_for)
from theory.catalogue import DERIVATIONS

from .sampling import PROPER_REGIMES, make_case, random_shape, regime_for_index, tight_state_wise_case

EPS = np.finfo(np.float64).eps
PAPER = "paper abstract"
DERIVED = "suite-derived"

EQUALITY, INEQUALITY, EXACT, CONDITION = "equality", "inequality", "exact", "condition"


# ---- measurements and outcomes -------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """One comparison. ``value``: the error (equality), the relative slack X/Y - 1 (inequality),
    0 for an exact zero residual (exact), 1 or 0 (condition). ``tolerance``: the allowed error
    (equality) or the allowed negative slack from rounding (inequality)."""

    name: str
    kind: str
    value: float
    tolerance: float = 0.0

    @property
    def holds(self) -> bool:
        if self.kind == EQUALITY:
            return bool(self.value <= self.tolerance)
        if self.kind == INEQUALITY:
            return bool(self.value >= -self.tolerance)
        if self.kind == EXACT:
            return self.value == 0.0
        return self.value == 1.0

    @property
    def ratio(self) -> float:
        """error / tolerance for an equality (0 when both are 0)."""
        if self.value == 0.0:
            return 0.0
        return self.value / self.tolerance if self.tolerance > 0 else float("inf")

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "value": float(self.value),
                "tolerance": float(self.tolerance), "holds": self.holds}


def equal(name: str, error: float, tolerance: float) -> Measurement:
    error = float(error)
    return Measurement(name, EQUALITY, error if np.isfinite(error) else float("inf"), float(tolerance))


def at_least(name: str, lhs: float, rhs: float, rounding: float = 0.0) -> Measurement:
    """lhs >= rhs as the relative slack lhs / rhs - 1 (rhs > 0), allowed down to -rounding."""
    slack = float(lhs) / float(rhs) - 1.0
    return Measurement(name, INEQUALITY, slack if np.isfinite(slack) else -float("inf"), float(rounding))


def exact(name: str, ok: bool) -> Measurement:
    return Measurement(name, EXACT, 0.0 if ok else 1.0)


def condition(name: str, ok: bool) -> Measurement:
    return Measurement(name, CONDITION, 1.0 if ok else 0.0)


@dataclass(frozen=True)
class Outcome:
    measurements: tuple
    detail: str = ""
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return len(self.measurements) > 0 and all(m.holds for m in self.measurements)

    @property
    def worst_ratio(self) -> float | None:
        r = [m.ratio for m in self.measurements if m.kind == EQUALITY]
        return max(r) if r else None

    @property
    def worst_slack(self) -> float | None:
        s = [m.value for m in self.measurements if m.kind == INEQUALITY]
        return min(s) if s else None

    @property
    def failing(self) -> list[str]:
        return [m.name for m in self.measurements if not m.holds]

    def summary(self) -> str:
        if self.passed:
            return self.detail
        return "; ".join(["fails: " + ", ".join(self.failing)] + ([self.detail] if self.detail else []))


def outcome(measurements, detail: str = "", **info) -> Outcome:
    return Outcome(tuple(measurements), detail, info)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    provenance: str
    symbolic: str  # "exact" (a SymPy residual checked in this claim), "proof in docstring: ...", "not applicable"
    sample: Callable[[np.random.Generator, int], dict]
    check: Callable[[dict], Outcome]
    quick: int
    thorough: int
    #: optional vectorised check of configurations that share ``batch_key``; returns Outcomes in order
    check_batch: Callable[[list[dict]], list[Outcome]] | None = None
    batch_key: Callable[[dict], tuple] | None = None
    #: optional summary of the per-configuration ``info`` of all records (a dict for the report)
    digest: Callable[[list[dict]], dict] | None = None
    #: optional check of a replayed configuration beyond the schema (raises ValueError)
    check_replay: Callable[[dict], None] | None = None


def _stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"count": 0}
    return {"count": int(len(v)), "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def tightness_by_regime(records: list[dict]) -> dict:
    """Theorem 1's tightness ratio (observed log-decay / 2 kappa int lambda; 1 = the bound is
    attained) per width regime, and for the flows with ill-conditioned features."""
    out = {}
    for regime in ("m<m_y", "m<n", "m>n", "m=1"):
        out[regime] = _stats(r["info"].get("tightness") for r in records if r["config"].get("regime") == regime)
    out["spread features"] = _stats(r["info"].get("tightness") for r in records if r["config"].get("spread"))
    for dataset in ("digits", "idx"):  # real data (the scale tier)
        if any(r["config"].get("dataset") == dataset for r in records):
            out[dataset] = _stats(r["info"].get("tightness") for r in records if r["config"].get("dataset") == dataset)
    return out


def ratio_at_concentrated(records: list[dict]) -> dict:
    """lambda(A) / (1 + gamma sqrt m)^-2 at the concentrated softmax, by width (-> 1 as m grows)."""
    out = {}
    for r in records:
        if r["config"].get("concentrated"):
            out.setdefault(f"m={r['config']['m']}", []).append(r["info"].get("ratio_to_bound"))
    return {k: _stats(v) for k, v in sorted(out.items(), key=lambda kv: int(kv[0][2:]))}


def asymptotic_rate_ratio(records: list[dict]) -> dict:
    """Observed late decay rate / the linearised rate 2 mu_min (1 = the linearisation's slowest mode)."""
    return {"observed / (2 mu_min)": _stats(r["info"].get("asymptotic_ratio") for r in records)}


# ---- configurations ------------------------------------------------------------------------------
CASE_KEYS = ("seed", "m", "m_y", "n", "gamma", "loss", "a_scale", "non_separable", "well_conditioned",
             "phi_scale", "y_scale", "spread")


def _case(config: dict):
    return make_case(**{k: config[k] for k in CASE_KEYS if k in config})


def _log_uniform(rng, low_decade: float, high_decade: float) -> float:
    return float(10.0 ** rng.uniform(low_decade, high_decade))


def _sampler(losses=("square", "cross_entropy"), gamma=(0.01, 0.99), a_scales=(0.1, 1.0, 3.0), max_dim=8,
             m1_every: int | None = 10, scales=(-2.0, 2.0), spreads=(None,), regimes=PROPER_REGIMES, **options):
    """Configurations over the width regimes (m = 1 exactly at every ``m1_every``-th index, so at
    most 1/m1_every of them), gamma uniform in ``gamma``, Phi and Y scaled by log-uniform factors
    over ``scales`` decades, Phi's singular values optionally spread over ``spreads`` decades."""
    def sample(rng: np.random.Generator, index: int) -> dict:
        regime = regime_for_index(rng, index, m1_every=m1_every, regimes=regimes)
        m, m_y, n = random_shape(rng, regime, max_dim)
        loss = str(rng.choice(losses))
        if loss == "cross_entropy":
            m_y = max(m_y, 2)
        config = {"seed": int(rng.integers(2**32)), "regime": regime, "m": m, "m_y": m_y, "n": n,
                  "gamma": float(rng.uniform(*gamma)), "loss": loss, "a_scale": float(rng.choice(a_scales))}
        if scales is not None:
            config["phi_scale"] = _log_uniform(rng, *scales)
            config["y_scale"] = _log_uniform(rng, *scales) if loss == "square" else 1.0
        spread = spreads[int(rng.integers(len(spreads)))]
        if spread is not None:
            config["spread"] = float(spread)
        config.update(options)
        return config
    return sample


def _shape_key(config: dict) -> tuple:
    return (config["m"], config["m_y"], config["n"], config["loss"], config.get("non_separable", False))


# ---- shared pieces of the checks -----------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceState:
    """Reference quantities at (A, B) on data (Phi, Y): W, Q, G, grad L0, the complex-step
    gradients and the rounding bounds of one implementation."""

    W: np.ndarray
    G: np.ndarray
    grad_L0: np.ndarray
    L: float
    dA: np.ndarray
    dB: np.ndarray
    errors: dict

    @classmethod
    def at(cls, A, B, Phi, Y, gamma, loss) -> "ReferenceState":
        W = ref.end_to_end_weight(A, B, gamma)
        Q = W @ Phi
        G = ref.output_gradient(Q, Y, loss)
        dA, dB = ref.gradients(A, B, Phi, Y, gamma, loss)
        return cls(W, G, G @ Phi.T, float(ref.output_loss(Q, Y, loss)), dA, dB,
                   rounding.forward_errors(W, Phi, G, gamma))


def _norm(x) -> float:
    return float(np.linalg.norm(x))


def _cond2(A, gamma) -> float:
    return float(np.linalg.cond(ref.implicit_matrix(A, gamma), 2))


def _rate_measurement(name: str, A, gamma: float) -> tuple[Measurement, float, float]:
    """lambda(A) of the core against the reference; returns (measurement, core value, reference)."""
    lam_core = rate_constant(A, gamma=gamma)
    lam_ref = ref.rate_constant(A, gamma)
    tol = rounding.rate_tolerance(lam_ref, A.shape[0], gamma, _cond2(A, gamma))
    return equal(name, abs(lam_core - lam_ref), tol), lam_core, lam_ref


def _kappa_measurement(problem: ShallowProblem, Phi) -> tuple[Measurement, float, float]:
    s = np.linalg.svd(Phi, compute_uv=False)
    kappa_ref = ref.pl_constant(Phi)
    kappa_core = problem.pl_constant
    tol = rounding.kappa_tolerance(s, *Phi.shape)
    return equal("kappa = reference (SVD of Phi)", abs(kappa_core - kappa_ref), tol), kappa_core, kappa_ref


def _square_excess_ref(W, Phi, Y) -> tuple[float, float]:
    """(E, ||D||) with D = (W - W*) Phi from the reference minimiser."""
    D = (W - ref.least_squares(Phi, Y)[1]) @ Phi
    return 0.5 * float(np.sum(D * D)), _norm(D)


# ---- section 2 -------------------------------------------------------------------------------
def check_well_posedness(config):
    """S column-stochastic, ||gamma S||_1 = rho(gamma S) = gamma, cond_1(U) <= (1+gamma)/(1-gamma),
    the forward iteration contracts like gamma^l (an equality for m = 1), and the core's S,
    equilibrium and iterates equal the reference ones."""
    c = _case(config)
    m, gamma = c.m, c.gamma
    S = column_softmax(c.A)
    S_ref = ref.softmax_columns(c.A)
    # each entry: an exp, an m-term sum and a division on numbers <= 1: (m + 3) eps, twice
    entry_tol = 2 * (m + 3) * EPS
    U = np.eye(m) - gamma * S
    # Perron root gamma of gamma S: left eigenvector 1, so its condition number is
    # ||1|| ||p|| / |1^T p| <= sqrt(m); the eigensolver's backward error is <= m eps ||gamma S||_F
    # <= m eps gamma sqrt(m) (and S itself carries entry_tol per entry).
    rho_tol = m * EPS * gamma * m + gamma * entry_tol * m
    layers = 40
    iterates = fixed_point_iterates(c.A, c.Phi, gamma=gamma, layers=layers)
    z_star = np.linalg.solve(ref.implicit_matrix(c.A, gamma), c.Phi)
    z_layers = ref.fixed_point(c.A, c.Phi, gamma, layers)
    Z_norm = _norm(z_star)
    err0 = np.abs(iterates[0] - z_star).sum(axis=0)
    errl = np.abs(iterates[-1] - z_star).sum(axis=0)
    # the solve's error in z* and the iteration's own rounding ((m + 2) eps per layer, damped by
    # gamma per layer: sum over layers <= (m + 2) eps / (1 - gamma) times the column's 1-norm)
    floor = (2 * rounding.solve_rounding(m, gamma) + (m + 2) * EPS / (1 - gamma)) * np.abs(z_star).sum(axis=0) * np.sqrt(m)
    meas = [
        equal("sigma(A) = reference softmax", np.abs(S - S_ref).max(), entry_tol),
        equal("column sums of sigma(A) = 1", np.abs(S.sum(axis=0) - 1).max(), (2 * m + 3) * EPS),
        equal("||gamma S||_1 = gamma", abs(np.linalg.norm(gamma * S, 1) - gamma), gamma * (2 * m + 4) * EPS),
        equal("rho(gamma S) = gamma", abs(np.abs(np.linalg.eigvals(gamma * S)).max() - gamma), rho_tol),
        at_least("cond_1(U) <= (1+gamma)/(1-gamma)", rounding.cond_bound(gamma), np.linalg.cond(U, 1),
                 # cond via an explicit inverse: relative error <= m cond eps
                 m * rounding.cond_bound(gamma) * EPS),
        equal("equilibrium U^{-1} Phi = reference solve", _norm(equilibrium(c.A, c.Phi, gamma=gamma) - z_star),
              2 * rounding.solve_rounding(m, gamma) * Z_norm * rounding.cond_bound(gamma)),
        equal("iterates z^(l) = reference iteration", _norm(iterates[-1] - z_layers),
              2 * (m + 2) * EPS / (1 - gamma) * Z_norm * np.sqrt(m) * layers),
    ]
    W_ref = ref.end_to_end_weight(c.A, c.B, gamma)
    e = rounding.forward_errors(W_ref, c.Phi, np.zeros((c.m_y, c.n)), gamma)
    meas += [equal("W = B U^-1 (verify.end_to_end_weight) = reference", _norm(end_to_end_weight(c.A, c.B, gamma=gamma) - W_ref),
                   2 * e["W"]),
             equal("outputs W Phi (verify.predict) = reference", _norm(predict(c.A, c.B, c.Phi, gamma=gamma) - W_ref @ c.Phi),
                   2 * e["Q"])]
    if m == 1:
        # sigma(A) = 1: z^(l) - z* = -gamma^l z* exactly
        meas.append(equal("m = 1: ||z^(l) - z*||_1 = gamma^l ||z^(0) - z*||_1",
                          float(np.max(np.abs(errl - gamma ** layers * err0))), float(np.max(floor))))
    else:
        meas.append(at_least("||z^(l) - z*||_1 <= gamma^l ||z^(0) - z*||_1 (worst column)",
                             float(np.min((gamma ** layers * err0 + floor) / np.maximum(errl, 1e-300))), 1.0))
    return outcome(meas)


def check_expressivity(config):
    """B = W U realises W (judged by the reference forward pass), and L(A, W* U) = L* with L*
    from the reference least squares."""
    c = _case(config)
    m, gamma = c.m, c.gamma
    problem = ShallowProblem(c.Phi, c.Y)
    W_target = np.random.default_rng(c.seed + 1).standard_normal((c.m_y, m))
    B = weight_for(c.A, W_target, gamma=gamma)
    W_back = ref.end_to_end_weight(c.A, B, gamma)
    # B = W U rounds by m eps |W||U|; solving back amplifies by cond_2(U) <= sqrt(m) cond_1 bound
    tol_W = 2 * (rounding.solve_rounding(m, gamma) + m * EPS * np.sqrt(m) * rounding.cond_bound(gamma)) * _norm(W_target)
    L_star_ref, W_star_ref = ref.least_squares(c.Phi, c.Y)
    B_star = weight_for(c.A, problem.minimiser, gamma=gamma)
    E, D_norm = _square_excess_ref(ref.end_to_end_weight(c.A, B_star, gamma), c.Phi, c.Y)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    proj = rounding.projection_rounding(s, m, c.n)
    # W* U U^{-1} = W* up to tol_W relative, W* itself to proj relative: E is second order
    delta = (tol_W / max(_norm(W_target), 1e-300) + proj) * _norm(W_star_ref) * s.max() + proj * _norm(c.Y)
    residual_norm = np.sqrt(2 * L_star_ref)
    dr = rounding.residual_rounding(_norm(c.Phi), _norm(c.Y), _norm(W_star_ref), m, c.n)
    return outcome([
        equal("W(A, W U) = W (reference forward pass)", _norm(W_back - W_target), tol_W),
        equal("L* (verify.optimal_loss) = reference least squares", abs(optimal_loss(c.Phi, c.Y) - L_star_ref),
              2 * (residual_norm * dr + dr ** 2 / 2)),
        equal("L(A, W* U) - L* = 0 (reference excess)", E, 2 * (0.5 * delta ** 2 + residual_norm * 0 + delta * D_norm)),
    ])


def check_nonconvexity(config):
    """Two global minimisers (A_k, W* U_k) whose midpoint has a larger loss, all three evaluated
    by the reference (m >= 2; for m = 1, sigma(A) = 1 and L is convex in B)."""
    c = _case(config)
    problem = ShallowProblem(c.Phi, c.Y)
    v = midpoint_violation(problem, gamma=c.gamma, rng=np.random.default_rng(c.seed))
    e1, _ = _square_excess_ref(ref.end_to_end_weight(v.A1, v.B1, c.gamma), c.Phi, c.Y)
    e2, _ = _square_excess_ref(ref.end_to_end_weight(v.A2, v.B2, c.gamma), c.Phi, c.Y)
    e_mid, _ = _square_excess_ref(ref.end_to_end_weight(0.5 * (v.A1 + v.A2), 0.5 * (v.B1 + v.B2), c.gamma), c.Phi, c.Y)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    W_star_norm = _norm(ref.least_squares(c.Phi, c.Y)[1])
    # rounding floor of an excess at a minimiser: W is W* up to (solve + projection) rounding
    delta = (4 * rounding.solve_rounding(c.m, c.gamma) + rounding.projection_rounding(s, c.m, c.n)) \
        * W_star_norm * s.max() * np.sqrt(c.m) * rounding.cond_bound(c.gamma)
    floor = 0.5 * delta ** 2 + 1e-300
    gap = e_mid - 0.5 * (e1 + e2)
    return outcome([
        equal("L(A_1, B_1) = L* (endpoint 1 is a global minimiser)", e1, floor),
        equal("L(A_2, B_2) = L* (endpoint 2 is a global minimiser)", e2, floor),
        at_least("L(midpoint) - mean > rounding floor", gap, floor),
    ], f"L(mid) - mean = {gap:.3e}, floor {floor:.1e}")


# ---- section 3 -------------------------------------------------------------------------------
def check_gradient(config):
    """loss_and_grad against the complex-step derivative of the reference forward pass."""
    c = _case(config)
    L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
    tL, tA, tB = 2 * r.errors["L"], 2 * r.errors["dA"], 2 * r.errors["dB"]
    return outcome([
        equal("L = reference L", abs(L - r.L), tL),
        equal("dL/dA = complex-step derivative", _norm(dA - r.dA), tA),
        equal("dL/dB = complex-step derivative", _norm(dB - r.dB), tB),
    ], f"relative errors dA {_norm(dA - r.dA) / max(_norm(r.dA), 1e-300):.1e}, "
       f"dB {_norm(dB - r.dB) / max(_norm(r.dB), 1e-300):.1e}")


_SYMBOLIC_CACHE: dict = {}


def check_gradient_symbolic(config):
    """The SymPy derivation (sympy.diff of the scalar loss), evaluated in mpmath at high precision
    (no overflow, no cancellation), against the core: the core's own rounding bound."""
    from theory.gradients import derive_gradients

    size, loss = (config["m"], config["m_y"], config["n"]), config["loss"]
    if (size, loss) not in _SYMBOLIC_CACHE:
        _SYMBOLIC_CACHE[(size, loss)] = derive_gradients(*size, loss).high_precision()
    c = _case(config)
    L_s, dA_s, dB_s, digits = _SYMBOLIC_CACHE[(size, loss)](c.A, c.B, c.Phi, c.Y, c.gamma)
    L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=loss)
    W = ref.end_to_end_weight(c.A, c.B, c.gamma)
    e = rounding.forward_errors(W, c.Phi, ref.output_gradient(W @ c.Phi, c.Y, loss), c.gamma)
    return outcome([
        equal("L = SymPy derivation", abs(L - L_s), e["L"]),
        equal("dL/dA = SymPy derivation", _norm(dA - dA_s), e["dA"]),
        equal("dL/dB = SymPy derivation", _norm(dB - dB_s), e["dB"]),
    ], f"derivation evaluated at {digits} digits")


def _symbolic_sampler(sizes, width_one=((1, 2, 2), "square")):
    """Sizes small enough for the symbolic model; m = 1 only at every tenth index."""
    def sample(rng, index):
        size, loss = width_one if index % 10 == 9 else sizes[int(rng.integers(len(sizes)))]
        return {"seed": int(rng.integers(2**32)), "m": size[0], "m_y": size[1], "n": size[2],
                "gamma": float(rng.uniform(0.01, 0.99)), "loss": loss,
                "a_scale": float(rng.choice([0.1, 1.0, 3.0, 30.0])), "phi_scale": _log_uniform(rng, -1, 1.5),
                "y_scale": _log_uniform(rng, -1, 1)}
    return sample


def _conservation_measurements(S, Gamma, dA, dA_ref, ref_error) -> list[Measurement]:
    m = S.shape[0]
    # column j of the VJP is s o Gamma_j - s (s . Gamma_j); its sum is (1 - sum s)(s . Gamma_j)
    # up to (2m + 4) eps sum_i |s_i Gamma_ij| per implementation step: 2 (2m + 4) eps in all
    tol = 2 * (2 * m + 4) * EPS * np.abs(S * Gamma).sum(axis=0)
    # the reference's column sums: ||1^T E||_2 <= sqrt(m) ||E||_F for its error E
    return [equal("1^T dL/dA = 0 (core; worst column's |sum| / its tolerance)",
                  float(np.max(np.abs(dA.sum(axis=0)) / (tol + 1e-300))), 1.0),
            equal("1^T dL/dA = 0 (complex-step derivative)", _norm(dA_ref.sum(axis=0)), np.sqrt(m) * ref_error + 1e-300)]


def check_conservation(config):
    """1^T dL/dA = 0 for the core's gradient and for the complex-step derivative of the reference
    loss. Structural: any VJP through the column softmax conserves column sums, so this check is
    no evidence for the VALUE of dL/dA (GRAD-FD judges that)."""
    c = _case(config)
    _, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
    Gamma = c.gamma * r.W.T @ r.dB
    return outcome(_conservation_measurements(ref.softmax_columns(c.A), Gamma, dA, r.dA, r.errors["dA"]))


def check_conservation_batch(configs: list[dict]) -> list[Outcome]:
    """The same check on a stack of same-shape configurations in one batched evaluation, plus the
    batched values against the single-configuration path."""
    from .batched import batched_loss_and_grad

    cases = [_case(c) for c in configs]
    A = np.stack([c.A for c in cases])
    B = np.stack([c.B for c in cases])
    gammas = np.array([c.gamma for c in cases])
    L_b, dA_b, dB_b = batched_loss_and_grad(A, B, np.stack([c.Phi for c in cases]), np.stack([c.Y for c in cases]),
                                            gammas, cases[0].loss)
    outcomes = []
    for k, c in enumerate(cases):
        L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
        r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
        Gamma = c.gamma * r.W.T @ r.dB
        meas = _conservation_measurements(ref.softmax_columns(c.A), Gamma, dA_b[k], r.dA, r.errors["dA"])
        meas += [equal("batched L = single L", abs(L_b[k] - L), 2 * r.errors["L"]),
                 equal("batched dL/dA = single dL/dA", _norm(dA_b[k] - dA), 2 * r.errors["dA"]),
                 equal("batched dL/dB = single dL/dB", _norm(dB_b[k] - dB), 2 * r.errors["dB"])]
        outcomes.append(outcome(meas))
    return outcomes


def check_stationary(config):
    """grad L0(W) = dL/dB U^T for the complex-step derivative (so dL/dB = 0 forces grad L0 = 0:
    stationary points are global minima of the convex L0), and the core's grad L0 = reference."""
    c = _case(config)
    problem = ShallowProblem(c.Phi, c.Y, c.loss)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
    U = ref.implicit_matrix(c.A, c.gamma)
    W_core = ImplicitLayer.from_weights(c.A, gamma=c.gamma).end_to_end_weight(c.B)
    _, _, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    e = r.errors
    U_norm = _norm(U)
    # the core's square-loss gradient is (W - W*) Phi Phi^T = W Phi Phi^T - Y P Phi^T
    s = np.linalg.svd(c.Phi, compute_uv=False)
    proj = rounding.projection_rounding(s, c.m, c.n) * _norm(c.Y) * s.max()
    return outcome([
        equal("grad L0(W) = dL/dB U^T (reference derivative)", _norm(r.grad_L0 - r.dB @ U.T),
              e["grad_L0"] + (e["dB"] + c.m * EPS * _norm(r.dB)) * U_norm),
        equal("core grad L0(W) = reference", _norm(problem.gradient(W_core) - r.grad_L0), 2 * e["grad_L0"] + 2 * proj),
        equal("core dL/dB U^T = reference grad L0", _norm(dB @ U.T - r.grad_L0),
              2 * e["grad_L0"] + 2 * (e["dB"] + c.m * EPS * _norm(r.dB)) * U_norm),
    ])


def check_unrolled(config):
    """Back-propagation through H weight-tied layers: the core's unrolled gradient equals the
    reference's (explicit softmax Jacobians) at the same H, and as H grows the reference tends to
    the core's implicit gradient (checked at H with H gamma^H below eps)."""
    c = _case(config)
    gamma = c.gamma
    _, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=gamma, loss=c.loss)
    H1 = int(np.ceil(np.log(1e-3) / np.log(gamma)))
    H_inf = int(np.ceil(np.log(EPS / 100) / np.log(gamma)))
    while H_inf * gamma ** H_inf > EPS / 100:
        H_inf += 1
    _, a1, b1 = unrolled_loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=gamma, layers=H1, loss=c.loss)
    _, a1_ref, b1_ref = ref.unrolled_gradients(c.A, c.B, c.Phi, c.Y, gamma, H1, c.loss)
    _, a_inf, b_inf = ref.unrolled_gradients(c.A, c.B, c.Phi, c.Y, gamma, H_inf, c.loss)
    r_W = ref.end_to_end_weight(c.A, c.B, gamma)
    e = rounding.forward_errors(r_W, c.Phi, ref.output_gradient(r_W @ c.Phi, c.Y, c.loss), gamma)
    Z_norm = _norm(ref.fixed_point(c.A, c.Phi, gamma, H1))
    G_norm = _norm(ref.output_gradient(c.B @ ref.fixed_point(c.A, c.Phi, gamma, H1), c.Y, c.loss))
    # each layer rounds its (m + 1)-term products by (m + 1) eps relative; H layers accumulate
    # linearly; the magnitudes are ||G|| ||Z|| (dB) and gamma ||B|| ||G|| ||Z|| / (1 - gamma) (dS)
    scale = G_norm * Z_norm * (1 + gamma * _norm(c.B) / (1 - gamma)) + _norm(b1_ref) + _norm(a1_ref)

    def unrolled_tol(H):
        return 2 * H * (c.m + c.n + c.m_y + 2) * EPS * scale

    err_H1 = _norm(a1_ref - dA) + _norm(b1_ref - dB)
    return outcome([
        equal(f"core unrolled = reference unrolled (H = {H1})", _norm(a1 - a1_ref) + _norm(b1 - b1_ref), unrolled_tol(H1)),
        equal(f"reference unrolled (H = {H_inf}, H gamma^H < eps/100) = core implicit gradient",
              _norm(a_inf - dA) + _norm(b_inf - dB), e["dA"] + e["dB"] + unrolled_tol(H_inf)),
    ], f"error at H = {H1}: {err_H1:.2e} (gamma^H = {gamma ** H1:.1e})")


# ---- sections 4 and 5 ------------------------------------------------------------------------
def check_energy_and_metric(config):
    """vec(dW/dt) = -K g, dL/dt = -g^T K g and K >= lambda(A) I, with K = J J^T from the reference
    Jacobian of W (complex step) and lambda(A) = lambda_min(J_B J_B^T), its B-part."""
    c = _case(config)
    m, gamma = c.m, c.gamma
    problem = ShallowProblem(c.Phi, c.Y, c.loss)
    st = DEQObjective(problem, gamma=gamma).evaluate(c.A, c.B, with_excess=False)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, gamma, c.loss)
    J = ref.weight_jacobian(c.A, c.B, gamma)
    K_ref = J @ J.T
    K_B = J[:, m * m:] @ J[:, m * m:].T
    g = vec(r.grad_L0)
    tol_K = rounding.metric_tolerance(r.W, m, gamma)
    K_norm = float(np.linalg.norm(K_ref, 2))
    J_norm = np.sqrt(K_norm)
    e = r.errors
    grad_err = e["dA"] + e["dB"]
    KG_matrix_free = vec(preconditioner_matvec(c.A, c.B, st.grad_L0, gamma=gamma))
    dW = ref.weight_derivative(c.A, c.B, gamma, -st.dA, -st.dB)
    gKg = float(g @ K_ref @ g)
    lam_core = rate_constant(c.A, gamma=gamma)
    lam_B = float(np.linalg.eigvalsh(K_B)[0])
    size = K_ref.shape[0]
    cond2 = _cond2(c.A, gamma)
    grad_norm = np.sqrt(_norm(r.dA) ** 2 + _norm(r.dB) ** 2)
    # K g: K errs by tol_K and g by e_grad; -J grad: J errs by rho ||J|| (complex step through one
    # solve) and the core's gradient by e_dA + e_dB; ||J||_2 = ||K||_2^(1/2)
    Kg_tol = tol_K * _norm(g) + 2 * K_norm * e["grad_L0"]
    rho = rounding.solve_rounding(m, gamma)
    meas = [
        equal("matrix-free K g = J J^T g", _norm(KG_matrix_free - K_ref @ g), Kg_tol),
        equal("dW/dt along -dL/dtheta = -J J^T g (complex step of W)", _norm(vec(dW) + K_ref @ g),
              J_norm * (2 * grad_err + 2 * rho * grad_norm) + Kg_tol),
        equal("||dL/dtheta||^2 = g^T K g (energy identity)", abs(st.grad_norm_sq - gKg),
              tol_K * _norm(g) ** 2 + 2 * K_norm * _norm(g) * e["grad_L0"]
              + 2 * (_norm(r.dA) * e["dA"] + _norm(r.dB) * e["dB"])),
        equal("lambda(A) = lambda_min(J_B J_B^T)", abs(lam_core - lam_B),
              rounding.rate_tolerance(lam_B, m, gamma, cond2) + rounding.symmetric_eigen_tolerance(
                  float(np.linalg.norm(K_B, 2)), size) + tol_K),
        at_least("K >= lambda(A) I", float(np.linalg.eigvalsh(K_ref)[0]), lam_core,
                 (rounding.symmetric_eigen_tolerance(K_norm, size) + tol_K) / lam_core
                 + rounding.rate_tolerance(lam_core, m, gamma, cond2) / lam_core),
    ]
    if m * c.m_y <= 4096:
        meas.insert(0, equal("explicit K (verify.preconditioner) = J J^T (reference Jacobian)",
                             _norm(preconditioner(c.A, c.B, gamma=gamma) - K_ref), tol_K))
    return outcome(meas)


def _state_wise_measurements(problem, c, *, tight: bool) -> tuple[list[Measurement], float]:
    st = DEQObjective(problem, gamma=c.gamma).evaluate(c.A, c.B)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, "square")
    label = "tight state: " if tight else ""
    m_kappa, kappa, kappa_ref = _kappa_measurement(problem, c.Phi)
    m_lam, lam, lam_ref = _rate_measurement("lambda(A) = reference", c.A, c.gamma)
    E_ref, D_norm = _square_excess_ref(r.W, c.Phi, c.Y)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    tol_E = rounding.excess_tolerance(D_norm, _norm(r.W), _norm(c.Y), s.max(), c.m, c.gamma, s, c.n)
    grad_sq_ref = _norm(r.dA) ** 2 + _norm(r.dB) ** 2
    tol_grad = 2 * 2 * (_norm(r.dA) * r.errors["dA"] + _norm(r.dB) * r.errors["dB"])
    ratio = state_wise_ratio(st.grad_norm_sq, st.excess, kappa=kappa, rate=lam)
    ratio_ref = grad_sq_ref / (2 * kappa_ref * lam_ref * E_ref) if E_ref > 0 else float("inf")
    # relative rounding of the ratio: the sum of its factors' relative tolerances
    rel = (tol_grad / max(grad_sq_ref, 1e-300) + m_kappa.tolerance / kappa_ref + m_lam.tolerance / lam_ref
           + tol_E / max(E_ref, 1e-300))
    meas = [equal(label + "kappa = reference (SVD of Phi)", m_kappa.value, m_kappa.tolerance),
            equal(label + "lambda(A) = reference", m_lam.value, m_lam.tolerance),
            equal(label + "L - L* = reference excess", abs(st.excess - E_ref), tol_E),
            equal(label + "||dL/dtheta||^2 = reference", abs(st.grad_norm_sq - grad_sq_ref), tol_grad),
            equal(label + "verify.convergence.state_wise_ratio = reference ratio (relative)",
                  abs(ratio / ratio_ref - 1) if np.isfinite(ratio_ref) else float(ratio != ratio_ref), rel + 4 * EPS)]
    if tight:
        meas.append(equal("tight state: ||dL/dtheta||^2 = 2 kappa lambda (L - L*)", abs(ratio - 1), rel))
    else:
        meas.append(at_least("||dL/dtheta||^2 >= 2 kappa lambda (L - L*)", ratio, 1.0, rel))
    return meas, ratio


def check_state_wise(config):
    """||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*) at a random state, and = at a state
    built to attain it (B = 0, kappa's eigenvector = lambda's eigenvector, L* = 0; see
    :func:`verify.sampling.tight_state_wise_case`), with kappa, lambda, L - L* and the gradient
    norm each compared with the reference."""
    c = _case(config)
    meas, ratio = _state_wise_measurements(ShallowProblem(c.Phi, c.Y), c, tight=False)
    t = tight_state_wise_case(c.seed + 1, c.m, c.m_y, c.n, c.gamma, a_scale=c.options["a_scale"],
                              phi_scale=config.get("phi_scale", 1.0), spread=config.get("spread") or 0.0)
    tight_meas, tight_ratio = _state_wise_measurements(ShallowProblem(t.Phi, t.Y), t, tight=True)
    return outcome(meas + tight_meas, f"ratio {ratio:.6g} at the random state, {tight_ratio:.15g} at the tight one")


def _order_of_convergence(errors_at: Callable[[int], float], N0: int, *, max_doublings: int, floor: float) -> dict:
    """Decide whether errors e(N) (N steps of size T/N) are first order in the step.

    Error model: e = C1 dt + C2 dt^2 + O(dt^3) with C1 != 0. The observed order
    p_k = log2(e(N_k)/e(2 N_k)) then deviates from 1 by d_k ~ C2 dt_k / (2 ln 2 C1), which halves
    per halving, so the Richardson extrapolate 2 p_{k+1} - p_k = 1 + O(dt^2). Accept when the
    extrapolate lies within a quarter of |p_{k+1} - p_k| (+ 0.02) of 1 and the deviations
    shrink; otherwise halve dt again (the run is extended), up to ``max_doublings``; errors below
    ``floor`` (the reference's own error) cannot be measured and end the refinement as a failure
    unless a decision was reached before.
    """
    Ns = [N0, 2 * N0, 4 * N0]
    errors = [errors_at(N) for N in Ns]
    while True:
        orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        p_prev, p_last = orders[-2], orders[-1]
        extrapolated = 2 * p_last - p_prev
        settled = abs(extrapolated - 1) <= 0.25 * abs(p_last - p_prev) + 0.02 and abs(p_last - 1) <= abs(p_prev - 1) + 0.02
        if settled and np.all(np.array(errors) > floor):
            return {"passed": True, "orders": orders, "extrapolated": float(extrapolated), "N": Ns}
        if len(Ns) - 3 >= max_doublings or errors[-1] <= floor:
            return {"passed": False, "orders": orders, "extrapolated": float(extrapolated), "N": Ns,
                    "reason": "error floor reached" if errors[-1] <= floor else "order not settled at the finest step"}
        Ns.append(2 * Ns[-1])
        errors.append(errors_at(Ns[-1]))


#: above this stiffness ratio (fastest / slowest rate of the linearised flow) an explicit
#: Runge-Kutta method needs ~1e5 or more steps; LSODA switches to BDF there
STIFF_RATIO = 1e3


def _ode_method(c, slowest_rate: float, H=None) -> str:
    """DOP853, or LSODA when lambda_max(K^1/2 H K^1/2) / slowest_rate exceeds STIFF_RATIO
    (K from the reference Jacobian at the start, H the Hessian of L0 there)."""
    W = ref.end_to_end_weight(c.A, c.B, c.gamma)
    H = ref.shallow_hessian(W, c.Phi, c.Y, c.loss) if H is None else H
    fastest = 1.0 / ref.admissible_step_bound(ref.metric(c.A, c.B, c.gamma), H)
    return "LSODA" if fastest > STIFF_RATIO * slowest_rate else "DOP853"


def check_integrated_bound(config):
    """Gradient flow to 10 decades below the start: the integrated and lambda_T bounds at every
    record (kappa, lambda(A_t) and L - L* from the reference), an equality for m = 1 (sigma = 1,
    K = lambda I), the rate integral against a quadrature of the reference lambda(A_t), monotone
    loss, and the target reached within the time the uniform bound guarantees."""
    c = _case(config)
    m, gamma = c.m, c.gamma
    problem = ShallowProblem(c.Phi, c.Y)
    m_kappa, _, kappa = _kappa_measurement(problem, c.Phi)
    W0 = ref.end_to_end_weight(c.A, c.B, gamma)
    E0, _ = _square_excess_ref(W0, c.Phi, c.Y)
    decades, rtol = 10.0, 1e-12
    T = decades * np.log(10) / (2 * kappa / (1 + gamma * np.sqrt(m)) ** 2) * 1.01
    method = config.get("method") or _ode_method(c, kappa / (1 + gamma * np.sqrt(m)) ** 2)
    # first to the target event, then again with the records spread over [0, event time] (a
    # linear and a geometric grid: the quadrature of lambda and the bounds need both ends)
    probe = gradient_flow(c.A, c.B, problem, gamma=gamma, T=T, rtol=rtol, target_excess=10 ** (-decades) * E0,
                          num_points=2, method=method)
    reached = probe.event_time is not None
    t_end = probe.event_time if reached else float(probe.t[-1])
    t_eval = np.unique(np.concatenate([np.linspace(0, t_end, 300), np.geomspace(t_end * 1e-6, t_end, 300)]))
    W_star = ref.least_squares(c.Phi, c.Y)[1]
    curvature = float(np.linalg.norm(c.Phi, 2) ** 2)
    max_slack = 0.05  # records whose E_t is too small for the ODE error to resolve are not checked
    for refinement in range(4):
        traj = gradient_flow(c.A, c.B, problem, gamma=gamma, T=t_end, rtol=rtol, t_eval=t_eval,
                             record_parameters=True, method=method)
        t, r = traj.t, traj.rate_integral
        W_t = [ref.end_to_end_weight(A, B, gamma) for A, B in zip(traj.A_t, traj.B_t)]
        E = np.array([0.5 * float(np.sum(((W - W_star) @ c.Phi) ** 2)) for W in W_t])
        # ODE error model: the state errs by ode_state_error; r_t by ODE_GLOBAL_ERROR_FACTOR rtol r_t;
        # E_t = 1/2 ||D R^T||^2 moves by <= sqrt(2 E curvature) ||delta W|| for a W error delta W
        theta_max = max(np.abs(traj.A_t).max(), np.abs(traj.B_t).max(), 1.0)
        state_err = rounding.ode_state_error(rtol, traj.info["atol"], theta_max, c.A.size + c.B.size)
        weight_err = state_err * rounding.weight_sensitivity(m, gamma, max(_norm(W) for W in W_t))
        keep = (t > 0) & (E > 0)
        with np.errstate(divide="ignore"):
            slack = rounding.ODE_GLOBAL_ERROR_FACTOR * rtol * (1 + 2 * kappa * r) \
                + np.sqrt(2 * curvature / np.where(E > 0, E, np.inf)) * weight_err
        keep &= slack <= max_slack
        # what must be covered: 6 decades, or all of them down to the floor the ODE error can
        # resolve; short of it by at most one record's log-decrement (the grid's own resolution)
        resolvable_floor = 2 * curvature * (weight_err / max_slack) ** 2
        needed = min(6 * np.log(10), np.log(E0 / resolvable_floor))
        resolved = float(np.max(np.log(E0 / E[keep]))) if np.any(keep) else 0.0
        steps = -np.diff(np.log(E[keep])) if np.sum(keep) > 1 else np.zeros(1)
        covered = resolved >= needed - float(np.max(steps))
        kept = np.flatnonzero(keep)
        if covered or not len(kept) or kept[-1] + 1 >= len(t) or refinement == 3:
            break
        # not covered: a sudden drop (a plateau, then decades within one record interval) jumped
        # from above the resolvable floor to below it. The run is extended with records inside
        # that interval, so that the bound is checked through the drop, not passed over.
        j = kept[-1]
        t_eval = np.unique(np.concatenate([t_eval, np.linspace(t[j], t[j + 1], 101)]))
    lam_ref = np.array([ref.rate_constant(A, gamma) for A in traj.A_t])
    cond2 = max(_cond2(A, gamma) for A in traj.A_t)
    lam_err = np.abs(traj.rate - lam_ref) / np.array([rounding.rate_tolerance(x, m, gamma, cond2) for x in lam_ref])
    meas = [m_kappa,
            equal("lambda(A_t) = reference at every record (worst error/tolerance)", float(np.max(lam_err)), 1.0)]
    # rate integral r_t = int lambda: the trapezoid rule on the records errs by
    # sum_k h_k^3 |lambda''| / 12 per interval; lambda'' is estimated by second divided differences
    # of the reference lambda (the larger of the two at an interval's ends), counted twice
    trap = cumulative_trapezoid(lam_ref, t, initial=0.0)
    h = np.diff(t)
    if len(t) > 2:
        second = 2 * np.abs(np.diff(np.diff(lam_ref) / h)) / (h[:-1] + h[1:])
        curv = np.maximum(np.concatenate([second[:1], second]), np.concatenate([second, second[-1:]]))
        trap_err = float(np.sum(h ** 3 * curv) / 12)
    else:
        trap_err = float("inf")
    quad_tol = 2 * trap_err + rounding.ODE_GLOBAL_ERROR_FACTOR * rtol * r[-1] + 10 * len(t) * EPS * r[-1]
    meas.append(equal("int lambda(A_t) dt = quadrature of the reference lambda", abs(r[-1] - trap[-1]), quad_tol))
    meas.append(condition("reached 1e-10 (L_0 - L*) within the uniform-bound time", reached))
    detail = ""
    if not np.any(keep):
        meas.append(condition("some record resolvable by the ODE tolerance", False))
        return outcome(meas, "no record could be checked")
    observed = np.log(E0 / E[keep])
    predicted_int = 2 * kappa * r[keep]
    lam_T = np.minimum.accumulate(lam_ref)[keep]
    predicted_T = 2 * kappa * lam_T * t[keep]
    tol_rel = np.expm1(slack[keep])

    def worst(name, predicted):
        raw = np.expm1(observed - predicted)  # E_bound / E_t - 1
        k = int(np.argmin(raw + tol_rel))
        return Measurement(name, INEQUALITY, float(raw[k]), float(tol_rel[k]))

    meas.append(worst("integrated bound at every record (worst)", predicted_int))
    meas.append(worst("lambda_T bound at every record (worst)", predicted_T))
    if m == 1:  # K = lambda I and kappa = Phi Phi^T: dE/dt = -2 kappa lambda E exactly
        dev = np.abs(np.expm1(observed - predicted_int))
        k = int(np.argmax(dev / tol_rel))
        meas.append(equal("m = 1: log(E_0/E_t) = 2 kappa int lambda (bound attained)", float(dev[k]), float(tol_rel[k])))
    meas.append(condition("resolved >= 6 decades (or down to the floor the ODE error can resolve)", covered))
    # monotone loss, up to the ODE error of each record's excess (relative slack)
    E_keep = E[keep]
    rises = E_keep[1:] / E_keep[:-1] - 1
    meas.append(Measurement("monotone excess (worst rise)", INEQUALITY, float(-np.max(rises)) if len(rises) else 0.0,
                            float(np.max(tol_rel)) * 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        meaningful = predicted_int > 0.1
        tightness = float(np.min(observed[meaningful] / predicted_int[meaningful])) if np.any(meaningful) else float("nan")
    detail = f"tightness {tightness:.4f} (observed log-decay / 2 kappa int lambda), resolved {resolved / np.log(10):.1f} decades"
    return outcome(meas, detail, tightness=tightness, regime=config.get("regime"), resolved_decades=resolved / np.log(10))


def _tracker_measurements(A, gamma: float, rng: np.random.Generator, steps: int = 6) -> tuple[list[Measurement], dict]:
    """The iterative lambda of :class:`RateTracker` -- the path trajectories take at
    m > DENSE_RATE_MAX_WIDTH (48) -- forced at every width (dense_max = 0), by each of its two
    refinements: inverse iteration with the formed U^T U (the default up to m = 96) and the
    block Krylov iteration (above; forced with shift_invert_max = 0). Each starts cold (the
    dense 2-norm and eigenvectors) and is warm-started along the path A + 1e-3 k D (k < steps,
    D ~ N(0, 1)); on the Krylov tracker every other state also moves by 1e-3 E_k (E_k ~ N(0, 1)),
    off the path its start space extrapolates, so that its Krylov expansions run. Each
    value against the reference lambda, within the tracker's own a-posteriori bound plus the
    rounding of both sides; the bound must certify the stated accuracy (<= rtol), with no
    fallback to the dense SVD; and the tracked a >= mu_2 on which the unconditional (Kato-Temple)
    certificates rest must bound the reference mu_2 at every state."""
    m = A.shape[0]
    D = rng.standard_normal((m, m))
    jitter = [rng.standard_normal((m, m)) if k % 2 else 0.0 for k in range(steps)]
    trackers = {"inverse iteration": (RateTracker(m, dense_max=0), False),
                "Krylov": (RateTracker(m, dense_max=0, shift_invert_max=0), True)}
    meas, stats = [], {}
    for label, (tracker, jittered) in trackers.items():
        worst, certified, gap_slack = 0.0, True, np.inf
        for k in range(steps):
            A_k = A + 1e-3 * k * D + (1e-3 * jitter[k] if jittered else 0.0)
            U_k = np.eye(m) - gamma * column_softmax(A_k)
            lam = tracker(U_k)
            lam_ref = ref.rate_constant(A_k, gamma)
            cond = _cond2(A_k, gamma)
            tol = tracker.last_bound * lam + rounding.rate_tolerance(lam_ref, m, gamma, cond)
            worst = max(worst, abs(lam - lam_ref) / tol)
            certified &= 0.0 <= tracker.last_bound <= tracker.rtol
            if m > 1 and tracker.gap_bound is not None:
                # relative slack a / mu_2 - 1, allowed down to mu_2's own rounding
                mu2 = ref.second_gram_eigenvalue(A_k, gamma)
                gap_slack = min(gap_slack, (tracker.gap_bound / mu2 - 1.0) / rounding.rate_tolerance(1.0, m, gamma, cond))
        meas += [equal(f"RateTracker ({label}) = reference along a path, within its certificate (worst error/tol)",
                       worst, 1.0),
                 condition(f"RateTracker ({label}): certificate <= its rtol at every call, no dense fallback",
                           certified and tracker.stats["dense_fallbacks"] == 0)]
        if np.isfinite(gap_slack):
            meas.append(Measurement(f"RateTracker ({label}): tracked a >= reference mu_2 (worst relative slack / "
                                    "mu_2's rounding)", INEQUALITY, gap_slack, 1.0))
        stats[label] = dict(tracker.stats)
    return meas, stats


def check_uniform_rate(config):
    """lambda(A) >= 1/(1 + gamma ||sigma(A)||_2)^2 >= 1/(1 + gamma sqrt(m))^2 at sampled A (the
    core's lambda and the core's uniform bound each against an independent evaluation); at the
    concentrated softmax, lambda(A) <= 1/||U^T e_1||^2 pins lambda from above and the ratio
    lambda / bound (-> 1 as m grows) is reported. The iterative lambda tracker used along
    trajectories at m > 48 is judged here at every width (see :func:`_tracker_measurements`)."""
    m, gamma = config["m"], config["gamma"]
    A = concentrated_weight(m) if config.get("concentrated") else \
        config["a_scale"] * np.random.default_rng(config["seed"]).standard_normal((m, m))
    m_lam, lam, lam_ref = _rate_measurement("lambda(A) = reference", A, gamma)
    bound = 1.0 / (1.0 + gamma * np.sqrt(m)) ** 2  # the claim's statement
    S_norm = float(np.linalg.norm(ref.softmax_columns(A), 2))
    mid = 1.0 / (1.0 + gamma * S_norm) ** 2
    rel = m_lam.tolerance / lam_ref
    meas = [m_lam,
            # ||sigma(A)||_2 from two SVDs of matrices that agree to (m + 3) eps per entry
            equal("verify.convergence.softmax_norm_rate_bound = 1/(1 + gamma ||sigma(A)||_2)^2",
                  abs(softmax_norm_rate_bound(A, gamma=gamma) - mid), 8 * (m + 3) * EPS * np.sqrt(m) * mid),
            equal("verify.uniform_rate_bound(m) = 1/(1 + gamma sqrt m)^2", abs(uniform_rate_bound(m, gamma=gamma) - bound),
                  4 * EPS * bound),
            at_least("lambda(A) >= 1/(1 + gamma ||sigma(A)||_2)^2", lam, mid, rel + 4 * m * EPS),
            at_least("1/(1 + gamma ||sigma(A)||_2)^2 >= 1/(1 + gamma sqrt m)^2", mid, bound, 4 * m * EPS),
            at_least("lambda(A) >= 1/(1 + gamma sqrt m)^2", lam, bound, rel)]
    if config.get("concentrated"):
        row = ref.spectral_norm_lower_bound(A, gamma)
        meas.append(at_least("lambda(A) <= 1/max_i ||U^T e_i||^2 (pins lambda from above)", 1.0 / row ** 2, lam,
                             rel + 4 * m * EPS))
    tracker_meas, stats = _tracker_measurements(A, gamma, np.random.default_rng(config.get("seed", m)))
    meas += tracker_meas
    krylov, inverse = stats["Krylov"], stats["inverse iteration"]
    return outcome(meas, f"lambda = {lam:.6g}, lambda / bound = {lam / bound:.4f}; trackers: inverse iteration "
                         f"{inverse['shift_invert']}/{inverse['calls']} calls, Krylov {krylov['expansions']} expansions "
                         f"in {krylov['calls']} calls ({krylov['conditional']} conditional)", ratio_to_bound=lam / bound)


def _uniform_sampler(rng, index):
    if index % 5 == 4:  # every fifth: the concentrated softmax at a large width
        return {"m": int(rng.choice([2, 8, 32, 128, 256])), "gamma": float(rng.uniform(0.5, 0.99)), "concentrated": True}
    return {"seed": int(rng.integers(2**32)), "m": int(rng.integers(2, 41)), "gamma": float(rng.uniform(0.01, 0.99)),
            "a_scale": float(rng.choice([0.1, 1.0, 10.0, 1000.0]))}


def check_counterexample(config):
    """At the concentrated A (columns of sigma(A) near e_1): lambda(A) <= 1/||U^T e_1||^2 <
    1/(1+gamma)^2, so the naive bound fails (the middle term is a proof), while the uniform
    bound holds. verify.naive_bound_counterexample's report is judged field by field."""
    m, gamma = config["m"], config["gamma"]
    report = naive_bound_counterexample(m, gamma)
    A = concentrated_weight(m)
    lam_ref = ref.rate_constant(A, gamma)
    lam = report["rate_constant"]
    tol = rounding.rate_tolerance(lam_ref, m, gamma, _cond2(A, gamma))
    naive = 1.0 / (1.0 + gamma) ** 2  # the statement refuted
    uniform = 1.0 / (1.0 + gamma * np.sqrt(m)) ** 2
    row = ref.spectral_norm_lower_bound(A, gamma)
    rel = tol / lam_ref
    return outcome([
        equal("reported lambda(A) = reference", abs(lam - lam_ref), tol),
        equal("reported naive bound = 1/(1 + gamma)^2", abs(report["naive_bound"] - naive), 4 * EPS * naive),
        equal("verify.naive_rate_bound = 1/(1 + gamma)^2", abs(naive_rate_bound(gamma) - naive), 4 * EPS * naive),
        equal("reported uniform bound = 1/(1 + gamma sqrt m)^2", abs(report["uniform_bound"] - uniform), 4 * EPS * uniform),
        condition("reported as violated", report["violated"] is True and np.array_equal(report["A"], A)),
        at_least("1/(1+gamma)^2 > 1/||U^T e_1||^2 >= lambda(A) (naive bound broken)", naive * row ** 2, 1.0, -4 * m * EPS),
        at_least("1/||U^T e_1||^2 >= lambda(A)", 1.0 / row ** 2, lam, rel + 4 * m * EPS),
        at_least("lambda(A) >= 1/(1 + gamma sqrt m)^2", lam, uniform, rel),
    ], f"m={m}, gamma={gamma:.3f}: lambda={lam:.4f} < naive {naive:.4f}")


def _counterexample_sampler(rng, index):
    return {"m": int(rng.integers(10, 60)), "gamma": float(rng.uniform(0.7, 0.99))}


def check_cross_entropy_linear(config):
    """Cross-entropy on non-separable data (true by construction): L* attained (core against the
    reference Newton solve), monotone decay and linear convergence to L*. kappa is an ESTIMATE
    (smallest nonzero Hessian eigenvalue at W*), compared with the reference. The linear-rate
    check is one-sided: the late decay rate is at least half the rate 2 mu_min of the dynamics
    linearised at the end (mu_min the smallest nonzero eigenvalue of H^{1/2} K H^{1/2}), and
    mu_min >= lambda_min(K) kappa_est; the ratio observed / 2 mu_min is reported."""
    c = _case(config)
    problem = ShallowProblem(c.Phi, c.Y, "cross_entropy")
    L_star_ref, W_star_ref = ref.cross_entropy_minimiser(c.Phi, c.Y)
    H_star = ref.shallow_hessian(W_star_ref, c.Phi, c.Y, "cross_entropy")
    ev = np.linalg.eigvalsh(H_star)
    kappa_ref = float(ev[ev > np.sqrt(EPS) * ev.max()].min())
    kappa_est = local_pl_estimate(problem)
    meas = [condition("non-separable detected (true by construction)", problem.separability.status == "non-separable"),
            # both solves stop at a Newton decrement of 64 eps L*: |L - L*| <= that, each
            equal("L* = reference Newton solve", abs(problem.optimal_loss - L_star_ref),
                  2 * 64 * EPS * max(1.0, L_star_ref) + 4 * c.n * c.m_y * EPS * L_star_ref),
            # eigenvalues to size eps ||H|| (eigh), and H at the two minimisers, which agree to
            # sqrt(2 * 64 eps L* / kappa) (the excess is quadratic): H moves by ||Phi||^2 / 4 times that
            equal("kappa_est = reference (Hessian at the reference W*)", abs(kappa_est - kappa_ref),
                  2 * H_star.shape[0] * EPS * ev.max()
                  + 0.25 * float(np.linalg.norm(c.Phi, 2)) ** 3 * np.sqrt(2 * 64 * EPS * max(1.0, L_star_ref) / kappa_ref))]
    E0 = problem.value(ref.end_to_end_weight(c.A, c.B, c.gamma)) - L_star_ref
    # the excess L0 - L* cancels: its absolute rounding is about 4 n m_y eps L0 (n log-sum-exps of
    # m_y terms); records are fitted only 100x above it (1% relative error at worst)
    floor = 100 * 4 * c.n * c.m_y * EPS * (L_star_ref + E0)
    target = max(1e-8 * E0, floor)
    T = 30.0 / (kappa_ref / (1 + c.gamma * np.sqrt(c.m)) ** 2)
    method = _ode_method(c, kappa_ref / (1 + c.gamma * np.sqrt(c.m)) ** 2, H_star)
    for _attempt in range(4):  # a flow that has not reached the target is extended, never passed
        traj = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=T, target_excess=target, num_points=50, method=method)
        if traj.event_time is not None:
            break
        T *= 4
    reached = traj.event_time is not None
    if reached:  # again, with the records spread over [0, event time]
        traj = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=traj.event_time, method=method,
                             t_eval=np.linspace(0.0, traj.event_time, 400), record_parameters=True)
    tail = (traj.excess_loss < 1e-3 * E0) & (traj.excess_loss > floor)
    meas.append(condition("reached L* + 1e-8 (L_0 - L*) (extended up to 64x the estimated time)", reached))
    meas.append(condition("at least 8 tail records above the rounding floor", tail.sum() >= 8))
    rises = np.diff(traj.loss) / traj.loss[0]
    meas.append(Measurement("monotone loss (worst rise / L_0)", INEQUALITY, float(-np.max(rises)), 1e-9))
    if tail.sum() < 8:
        return outcome(meas, "could not measure a tail slope")
    slope = float(np.polyfit(traj.t[tail], np.log(traj.excess_loss[tail]), 1)[0])
    J = ref.weight_jacobian(traj.A_t[-1], traj.B_t[-1], c.gamma)
    K_end = J @ J.T
    w, V = np.linalg.eigh(H_star)
    root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    mu = np.linalg.eigvalsh(root @ K_end @ root)
    mu_min = float(mu[mu > np.sqrt(EPS) * mu.max()].min())
    lam_K = float(np.linalg.eigvalsh(K_end)[0])
    meas.append(at_least("late decay rate >= mu_min (half the linearised rate 2 mu_min)", -slope, mu_min))
    meas.append(at_least("mu_min >= lambda_min(K) kappa_est", mu_min, lam_K * kappa_ref, 1e-8))
    return outcome(meas, f"kappa ESTIMATE {kappa_ref:.3g}; tail slope {slope:.4g} = {-slope / (2 * mu_min):.3f} x (-2 mu_min)",
                   asymptotic_ratio=-slope / (2 * mu_min))


def check_cross_entropy_separable(config):
    """Separable data (labels = sign of the first feature): L* = 0 is not attained; the excess
    decays sublinearly. The log-log slope band (-1.5, -0.5) around the t^-1 decay of linear
    models is an empirical band, not a derived tolerance."""
    rng = np.random.default_rng(config["seed"])
    m = config["m"]
    scale = config.get("phi_scale", 1.0)
    Phi = rng.standard_normal((m, 6)) * scale
    Y = np.eye(2)[:, (Phi[0] > 0).astype(int)]
    problem = ShallowProblem(Phi, Y, "cross_entropy")
    # time runs like 1 / scale^2 (the gradient is quadratic in Phi): the window scales with it
    unit = 1.0 / scale ** 2
    traj = gradient_flow(rng.standard_normal((m, m)), rng.standard_normal((2, m)), problem, gamma=config["gamma"],
                         T=2000.0 * unit, rtol=1e-8, t_eval=np.geomspace(unit, 2000.0 * unit, 50))
    late = traj.t > 100 * unit
    slope = float(np.polyfit(np.log(traj.t[late]), np.log(traj.excess_loss[late]), 1)[0])
    rises = np.diff(traj.loss) / traj.loss[0]
    # sublinear: over the last two doublings of time, log E drops by about the same amount
    # (a power law) instead of twice as much (what a linear rate, E ~ exp(-c t), would give)
    logE = np.interp(np.log([250 * unit, 500 * unit, 1000 * unit, 2000 * unit]), np.log(traj.t), np.log(traj.excess_loss))
    drop_prev, drop_last = logE[1] - logE[2], logE[2] - logE[3]
    return outcome([
        condition("separable detected (true by construction)", problem.separability.status == "separable"),
        equal("L* = 0", abs(problem.optimal_loss), 0.0),
        Measurement("monotone loss (worst rise / L_0)", INEQUALITY, float(-np.max(rises)), 1e-6),
        condition("still decreasing at the end (E_T < E_{T/2})", drop_last > 0),
        at_least("sublinear: the last time-doubling's log-drop < 1.5 x the previous one's", 1.5 * drop_prev, drop_last),
    ], f"L* = 0 not attained; excess ~ t^{slope:.2f} on [100, 2000] time units")


def check_gradient_descent_step(config):
    """Gradient descent: the first step is exactly theta - lr grad (reference gradient), and its
    records carry the reference lambda and the trapezoid rate integral; the
    iterates track the flow to first order in lr (observed orders, extended until they settle);
    small steps decrease the loss monotonically; the largest monotone step is reported."""
    c = _case(config)
    problem = ShallowProblem(c.Phi, c.Y)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, "square")
    K = ref.metric(c.A, c.B, c.gamma)
    H = ref.shallow_hessian(r.W, c.Phi, c.Y, "square")
    bound = ref.admissible_step_bound(K, H)  # ~ the stability limit of descent near the optimum
    lr0 = 0.1 * bound
    one = gradient_descent(c.A, c.B, problem, gamma=c.gamma, lr=lr0, steps=1)
    step_err = _norm(one.A - (c.A - lr0 * r.dA)) + _norm(one.B - (c.B - lr0 * r.dB))
    step_tol = 2 * lr0 * (r.errors["dA"] + r.errors["dB"]) + 2 * EPS * (_norm(c.A) + _norm(c.B))
    # the records' lambda and the trapezoid rate integral lr0 sum_k (lambda_k + lambda_{k+1}) / 2 of
    # a three-step run, whose iterates are those of chained one-step runs (same arithmetic)
    states, step = [c.A, one.A], one
    for _ in range(2):
        step = gradient_descent(step.A, step.B, problem, gamma=c.gamma, lr=lr0, steps=1)
        states.append(step.A)
    three = gradient_descent(c.A, c.B, problem, gamma=c.gamma, lr=lr0, steps=3, record_every=1)
    lam_ref = np.array([ref.rate_constant(A, c.gamma) for A in states])
    lam_tol = np.array([rounding.rate_tolerance(x, c.m, c.gamma, _cond2(A, c.gamma)) for x, A in zip(lam_ref, states)])
    trap = cumulative_trapezoid(lam_ref, dx=lr0, initial=0.0)
    trap_tol = cumulative_trapezoid(lam_tol, dx=lr0, initial=0.0) + 4 * EPS * trap + EPS * lr0
    integral_err = np.abs(three.rate_integral - trap) / trap_tol
    T = 2.0 * bound
    flow = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=T, rtol=1e-12, t_eval=np.array([0.0, T]))
    W_T = flow.W[-1]
    monotone = {}

    def error_at(N):
        gd = gradient_descent(c.A, c.B, problem, gamma=c.gamma, lr=T / N, steps=N, record_every=1)
        monotone[N] = float(np.max(np.diff(gd.loss)) / gd.loss[0])
        return _norm(gd.W[-1] - W_T)

    flow_err = rounding.ODE_GLOBAL_ERROR_FACTOR * 1e-12 * max(1.0, _norm(W_T))  # the flow's own error
    order = _order_of_convergence(error_at, 10, max_doublings=5, floor=flow_err)
    largest, lr = None, 0.05 * bound
    while lr < 100 * bound:
        gd = gradient_descent(c.A, c.B, problem, gamma=c.gamma, lr=lr, steps=100, on_divergence="stop")
        if "diverged" in gd.message or np.any(np.diff(gd.loss) > 4 * EPS * gd.loss[0]):
            break
        largest, lr = lr, 2 * lr
    finest = max(monotone)
    return outcome([
        equal("first step = theta - lr dL/dtheta (reference gradient)", step_err, step_tol),
        equal("records' lambda = reference, 3 steps (worst error/tolerance)",
              float(np.max(np.abs(three.rate - lam_ref) / lam_tol)), 1.0),
        equal("rate integral = trapezoid of the reference lambda, 3 steps (worst error/tolerance)",
              float(np.max(integral_err)), 1.0),
        condition("first order in lr (observed orders settle at 1)", order["passed"]),
        Measurement(f"monotone at lr = T/{finest} (worst rise / L_0)", INEQUALITY, -monotone[finest], 8 * EPS),
    ], f"orders {np.array2string(order['orders'], precision=3)} (extrapolated {order['extrapolated']:.3f}); "
       f"largest monotone step {largest / bound if largest else 0:.3g} x 1/lambda_max(K^1/2 H K^1/2)")


def _unsaturated(c):
    """For the cross-entropy, B scaled so that the start's outputs W Phi are at most 2 in size:
    at a saturated start the Hessian of L0 nearly vanishes and grows like 1/t along the flow, so
    no uniform step is admissible for the trust-region iteration and the step bound cannot be
    resolved (Theorem 2 needs G_dt > 0). Square-loss cases are returned unchanged."""
    if c.loss != "cross_entropy":
        return c
    scale = float(np.abs(ref.end_to_end_weight(c.A, c.B, c.gamma) @ c.Phi).max()) / 2.0
    return c if scale <= 1.0 else dataclasses.replace(c, B=c.B / scale)


# ---- section 6 -------------------------------------------------------------------------------
_HESSIAN_CACHE: dict = {}


def _derived_hessian(m, m_y, loss):
    """The SymPy Hessian of one sample's loss l(W phi, y), lambdified; L0's Hessian is the sum
    over samples (the derivation is per sample so that its size does not grow with n)."""
    key = (m, m_y, loss)
    if key not in _HESSIAN_CACHE:
        import sympy as sp

        from theory.trust_region import derived_hessian

        H, W, Phi, Y = derived_hessian(m, m_y, 1, loss)
        _HESSIAN_CACHE[key] = sp.lambdify([list(W), list(Phi), list(Y)], H, modules="numpy", cse=True)
    return _HESSIAN_CACHE[key]


def _hessian_tolerance(Phi, loss) -> float:
    # square: entries sum_i phi_ji phi_ki (n-term products); cross-entropy: the same with the
    # probabilities (each <= 1, rounded to m_y eps) as weights: n eps sum_i |phi_i|^2, twice
    return 2 * (Phi.shape[1] + 8) * EPS * float(np.sum(Phi * Phi)) * (1 if loss == "square" else 2)


def check_hessian(config):
    """The core's Hessian of L0 against the complex-step Hessian of the reference gradient and
    against the SymPy derivation (sympy.hessian of one sample's loss, summed over samples)."""
    c = _case(config)
    problem = ShallowProblem(c.Phi, c.Y, c.loss)
    W = np.random.default_rng(c.seed + 7).standard_normal((c.m_y, c.m)) * 3 / max(1.0, float(np.abs(c.Phi).max()))
    H = problem.hessian(W)
    H_cs = ref.shallow_hessian(W, c.Phi, c.Y, c.loss)
    f = _derived_hessian(c.m, c.m_y, c.loss)
    H_sym = sum(np.asarray(f(list(W.ravel()), list(c.Phi[:, i]), list(c.Y[:, i])), dtype=float) for i in range(c.n))
    tol = _hessian_tolerance(c.Phi, c.loss)
    return outcome([equal("Hessian = complex-step Hessian of the reference gradient", _norm(H - H_cs), tol),
                    equal("Hessian = SymPy derivation", _norm(H - H_sym), tol)])


def check_trust_region(config):
    """At states along a short flow, with K = J J^T and H from the reference: the core's K, H and
    admissible step bound 1/lambda_max(K^1/2 H K^1/2) equal the reference ones; the reference
    G_dt = K^-1/dt - H is positive definite just below the core's bound and not just above it
    (this part depends on H); the Euler step -dt K g satisfies the KKT conditions of the shallow
    trust-region subproblem in the reference G_dt with multiplier 1 (stationarity, H + G > 0,
    radius) -- an identity for ANY SPD K and symmetric H once G is built from them, so its evidence
    is that K is the DEQ's metric; and the independent More-Sorensen solver returns that step."""
    from .trust_region import admissible_step_bound, frozen_A_preconditioner, solve_trust_region, trust_region_metric

    c = _unsaturated(_case(config))
    problem = ShallowProblem(c.Phi, c.Y, c.loss)
    traj = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=1.0, rtol=1e-8, t_eval=np.linspace(0, 1.0, 3),
                         record_parameters=True)
    objective = DEQObjective(problem, gamma=c.gamma)
    meas, worst_gap = [], 0.0
    for k, (A, B) in enumerate(zip(traj.A_t, traj.B_t)):
        st = objective.evaluate(A, B, with_excess=False)
        K = preconditioner_from_layer(st.layer, st.W)
        H = problem.hessian(st.W)
        W_ref = ref.end_to_end_weight(A, B, c.gamma)
        K_ref = ref.metric(A, B, c.gamma)
        H_ref = ref.shallow_hessian(W_ref, c.Phi, c.Y, c.loss)
        g_ref = vec(ref.shallow_gradient(W_ref, c.Phi, c.Y, c.loss))
        size = K.shape[0]
        tol_K = rounding.metric_tolerance(W_ref, c.m, c.gamma)
        tol_H = _hessian_tolerance(c.Phi, c.loss)
        K_norm, H_norm = float(np.linalg.norm(K_ref, 2)), float(np.linalg.norm(H_ref, 2))
        cond_K = float(np.linalg.cond(K_ref))
        bound, bound_ref = admissible_step_bound(K, H), ref.admissible_step_bound(K_ref, H_ref)
        # lambda_max(K^1/2 H K^1/2) moves by <= tol_K ||H|| + ||K|| tol_H + eigensolver rounding
        # (the square root of K adds size eps cond(K) relative): relative to 1/bound
        top_err = (tol_K * H_norm + K_norm * tol_H) + 4 * size * EPS * K_norm * H_norm * np.sqrt(cond_K)
        rel_bound = top_err * bound_ref if np.isfinite(bound_ref) else float("inf")
        J_B = ref.weight_jacobian(A, B, c.gamma)[:, c.m * c.m:]
        meas += [equal(f"state {k}: K = J J^T", _norm(K - K_ref), tol_K),
                 equal(f"state {k}: frozen-A metric (U^-T U^-1) (x) I = J_B J_B^T",
                       _norm(frozen_A_preconditioner(st.layer, c.m_y) - J_B @ J_B.T), tol_K),
                 equal(f"state {k}: H = complex-step Hessian", _norm(H - H_ref), tol_H),
                 condition(f"state {k}: lambda_max(K^1/2 H K^1/2) resolvable (relative error < 1e-2)", rel_bound < 1e-2)]
        if rel_bound >= 1e-2:
            continue
        meas.append(equal(f"state {k}: step bound = reference", abs(bound / bound_ref - 1), rel_bound))
        # just below / above the core's bound; delta well above the resolution of G's eigenvalues
        delta = max(1e-6, 10 * rel_bound, 100 * size * EPS * cond_K)

        def definite(dt):
            G = np.linalg.solve(K_ref, np.eye(size)) / dt - H_ref
            try:
                np.linalg.cholesky(0.5 * (G + G.T))
                return True
            except np.linalg.LinAlgError:
                return False

        meas.append(condition(f"state {k}: G_dt > 0 at dt = (1 - {delta:.0e}) bound", definite(bound * (1 - delta))))
        meas.append(condition(f"state {k}: G_dt not > 0 at dt = (1 + {delta:.0e}) bound", not definite(bound * (1 + delta))))
        dt = 0.5 * bound_ref
        v_star = -dt * (K @ g_ref)  # the core's metric, the reference gradient
        G_ref = np.linalg.solve(K_ref, np.eye(size)) / dt - H_ref
        G_ref = 0.5 * (G_ref + G_ref.T)
        delta_tr = float(np.sqrt(v_star @ G_ref @ v_star))
        kkt = ref.trust_region_kkt(g_ref, H_ref, G_ref, delta_tr, v_star, 1.0)
        # (H + G) v* + g = g - K_ref^-1 K g: relative error cond(K) (tol_K / ||K|| + size eps)
        stat_tol = 4 * cond_K * (tol_K / K_norm + size * EPS)
        meas += [equal(f"state {k}: KKT stationarity g + (H + G) v = 0 at multiplier 1", kkt["stationarity"], stat_tol),
                 condition(f"state {k}: H + G > 0 (the KKT point is the global minimiser)",
                           kkt["lambda_min_H_plus_mu_G"] > 0 and kkt["lambda_min_G"] > 0)]
        if np.any(v_star):
            G_core = trust_region_metric(K, H, dt)
            v_ref = -dt * (K_ref @ g_ref)
            delta_ref = float(np.sqrt(v_ref @ G_ref @ v_ref))
            sol = solve_trust_region(g_ref, H_ref, G_ref, delta_ref)
            # the solver stops when ||w|| matches delta to 1e-12 relative (w = L^T v, G = L L^T):
            # mu then errs by <= 1e-12 lambda_max(H~ + I) and w by 1e-12 cond(H~ + I), where
            # cond(H~ + I) = (1 + mu_max)/(1 + mu_min) over the eigenvalues mu of the pencil (H, G);
            # v = L^{-T} w adds sqrt(cond(G)); plus rounding of the Cholesky solves
            pencil = scipy.linalg.eigh(H_ref, G_ref, eigvals_only=True)
            cond_pencil = (1 + max(pencil.max(), 0.0)) / (1 + max(pencil.min(), 0.0))
            solver_tol = 10 * cond_pencil * np.sqrt(float(np.linalg.cond(G_ref))) * (1e-12 + 100 * size * EPS)
            gap = _norm(sol.v - v_ref) / _norm(v_ref)
            worst_gap = max(worst_gap, gap)
            meas += [equal(f"state {k}: G_dt (core) = reference", _norm(G_core - G_ref) / _norm(G_ref),
                           2 * cond_K * (tol_K / K_norm + size * EPS) + tol_H / _norm(G_ref)),
                     equal(f"state {k}: independent solver step = -dt K g (relative)", gap, solver_tol),
                     equal(f"state {k}: solver multiplier = 1", abs(sol.multiplier - 1), solver_tol),
                     condition(f"state {k}: solver reports the constraint active", sol.boundary)]
            if pencil.min() > 1e-8 * max(pencil.max(), 1.0):
                # H > 0 in the G metric, so the Newton step -H^{-1} g exists. With a radius 10%
                # above its G-norm the minimiser is that step (multiplier 0, constraint inactive:
                # the solver's other branch; the campaign's own subproblems are all active); 10%
                # below, the constraint is active and the step lies on the sphere
                v_newton = -np.linalg.solve(H_ref, g_ref)
                newton_norm = float(np.sqrt(v_newton @ G_ref @ v_newton))
                inner = solve_trust_region(g_ref, H_ref, G_ref, 1.1 * newton_norm)
                outer = solve_trust_region(g_ref, H_ref, G_ref, 0.9 * newton_norm)
                newton_tol = 10 * size * EPS * float(np.linalg.cond(H_ref)) * np.sqrt(float(np.linalg.cond(G_ref)))
                meas += [condition(f"state {k}: radius 1.1 x the Newton step's: constraint inactive, multiplier 0",
                                   not inner.boundary and inner.multiplier == 0.0),
                         equal(f"state {k}: interior solution = -H^-1 g (relative)",
                               _norm(inner.v - v_newton) / _norm(v_newton), newton_tol),
                         condition(f"state {k}: radius 0.9 x the Newton step's: constraint active, multiplier > 0",
                                   outer.boundary and outer.multiplier > 0.0),
                         equal(f"state {k}: that solution lies on the sphere ||v||_G = radius (relative)",
                               abs(float(np.sqrt(outer.v @ G_ref @ outer.v)) / (0.9 * newton_norm) - 1), solver_tol)]
    return outcome(meas, f"worst solver disagreement {worst_gap:.2e}")


def check_trust_region_iteration(config):
    """The trust-region Newton iteration on the shallow model with the metric of the co-evolving
    DEQ state reproduces W_t to first order in dt (orders extended until they settle). Depends
    on K and H: a wrong metric leaves an O(1) error and the order drops to 0."""
    from .trust_region import trust_region_iteration

    c = _unsaturated(_case(config))
    problem = ShallowProblem(c.Phi, c.Y, c.loss)

    def step_bound(A, B):
        W = ref.end_to_end_weight(A, B, c.gamma)
        return ref.admissible_step_bound(ref.metric(A, B, c.gamma), ref.shallow_hessian(W, c.Phi, c.Y, c.loss))

    N_min, N_max = 10, 1280
    # the horizon: T = 2 bound(0), shortened until the coarsest step T/N_min is at most half the
    # step bound at every state of [0, T] (the flow on [0, T'] is a prefix of the flow on [0, T])
    T = 2.0 * step_bound(c.A, c.B)
    probe = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=T, rtol=1e-10, record_parameters=True,
                          t_eval=np.unique(np.concatenate([np.linspace(0, T, 41), np.geomspace(1e-4 * T, T, 41)])))
    bounds = np.minimum.accumulate([step_bound(A, B) for A, B in zip(probe.A_t, probe.B_t)])
    admissible = probe.t / N_min <= 0.5 * bounds
    T = float(probe.t[np.flatnonzero(admissible)[-1]])
    if T <= 0:
        return outcome([condition("a horizon with admissible steps", False)])
    traj = gradient_flow(c.A, c.B, problem, gamma=c.gamma, T=T, rtol=1e-12, t_eval=np.linspace(0, T, N_max + 1),
                         record_parameters=True)
    if _norm(traj.W[-1] - traj.W[0]) <= 1e-12 * max(1.0, _norm(traj.W[0])):
        return outcome([condition("trajectory moves (not stationary)", False)])

    def error_at(N):
        idx = np.arange(0, N_max + 1, N_max // N)
        Ws = trust_region_iteration(problem, traj.A_t[idx], traj.B_t[idx], traj.t[idx], gamma=c.gamma)
        return _norm(Ws[-1] - traj.W[-1])

    # the iteration's H is taken at its own iterate W_k, which moves away from W_t by O(dt): a
    # step admissible along the flow can still be refused; start from the coarsest accepted grid
    N0 = N_min
    while True:
        try:
            error_at(N0)
            break
        except ValueError:
            if 8 * N0 >= N_max:
                return outcome([condition("an admissible step of at most T/(N_max/8)", False)])
            N0 *= 2
    # the reference W_T carries the ODE's global error (ODE_GLOBAL_ERROR_FACTOR rtol relative)
    floor = rounding.ODE_GLOBAL_ERROR_FACTOR * 1e-12 * max(1.0, _norm(traj.W[-1]))
    order = _order_of_convergence(error_at, N0, max_doublings=int(np.log2(N_max // (4 * N0))), floor=floor)
    return outcome([condition("first order in dt (observed orders settle at 1)", order["passed"])],
                   f"orders {np.array2string(order['orders'], precision=3)} (extrapolated {order['extrapolated']:.3f}) "
                   f"at N = {order['N']}, T = {T:.3g}{'; ' + order['reason'] if 'reason' in order else ''}")


# ---- the hypotheses ------------------------------------------------------------------------
def check_hypotheses(config):
    """One entry point, one argument outside the theorems' hypotheses (see verify.hypotheses):
    the valid call is accepted, the invalid one refused by a ValueError naming the argument."""
    accepted, argument, label, refused = run_hypotheses(config)
    entry = config["entry"]
    return outcome([condition(f"{entry} accepts the valid call (gamma = {config['gamma']:.3g})", accepted == "accepted"),
                    condition(f"{entry} refuses it with a ValueError naming the argument", names_argument(refused, argument))],
                   f"{argument}: {label} -> {refused[:160]}" + ("" if accepted == "accepted" else f"; valid call: {accepted[:160]}"))


# ---- the symbolic derivations ----------------------------------------------------------------
def check_symbolic(config):
    """Runs one derivation of theory/ and reports whether its residual is exactly zero (or, for
    the lambdified derivations, whether they agree with the core to rounding)."""
    from theory import checks

    return checks.run(config["derivation"], config["seed"])


def _cycle_sampler():
    def sample(rng, index):
        return {"derivation": DERIVATIONS[index % len(DERIVATIONS)], "seed": int(rng.integers(2**32))}
    return sample


# ---- the list ----------------------------------------------------------------------------------
_TRAJECTORY = dict(losses=("square",), gamma=(0.05, 0.95), max_dim=5, scales=(-1.0, 1.0))


def _integrated_sampler():
    """Well-conditioned features for most flows; every third configuration has singular values
    spread over 1.5 or 2 decades (Gram eigenvalues over 3-4), integrated by LSODA (stiff). Wider
    spreads are out of reach: at 3 decades a flow to 10 decades below the start exhausts 10^6
    right-hand-side evaluations at rtol 1e-12 (LSODA and Radau alike), and at 4 the a-priori ODE
    error slack hides every record (the ODE-free claims STATE-WISE, ENERGY and GRAD-FD cover
    spreads of 4 decades)."""
    base = _sampler(**_TRAJECTORY, well_conditioned=True)

    def sample(rng, index):
        config = base(rng, index)
        if index % 3 == 2:
            config.update(well_conditioned=False, spread=float(rng.choice([1.5, 2.0])), method="LSODA")
        return config
    return sample

CLAIMS: list[Claim] = [
    Claim("WELL-POSED", "sigma(A) is column-stochastic, ||gamma S||_1 = rho(gamma S) = gamma, cond_1(U) <= (1+gamma)/(1-gamma), "
          "and the forward iteration contracts like gamma^l (equality for m = 1) to U^{-1} Phi", DERIVED,
          "not applicable", _sampler(a_scales=(0.1, 1.0, 3.0, 30.0)), check_well_posedness, 40, 400),
    Claim("EXPRESSIVITY", "for every A, B = W U realises any W; so inf L = inf L0 = L* whatever the width", PAPER,
          "not applicable", _sampler(losses=("square",), spreads=(None, 2.0)), check_expressivity, 30, 300),
    Claim("NONCONVEX", "L(A, B) is not convex (m >= 2): two global minimisers with a worse midpoint", DERIVED,
          "not applicable", _sampler(losses=("square",), gamma=(0.3, 0.99), m1_every=None), check_nonconvexity, 20, 200),
    Claim("GRAD-FD", "implicit gradients dL/dA, dL/dB (and L) equal the complex-step derivative of an independent "
          "forward pass, to a derived rounding bound", DERIVED, "not applicable",
          _sampler(a_scales=(0.1, 1.0, 3.0, 30.0), spreads=(None, 4.0)), check_gradient, 40, 500),
    Claim("GRAD-SYMBOLIC", "the SymPy derivation (differentiating the scalar loss), evaluated at high precision, "
          "equals the numerical core to its rounding bound", DERIVED, "exact: theory.gradients.derive_gradients",
          _symbolic_sampler([((2, 1, 1), "square"), ((2, 2, 1), "square"),
                             ((2, 3, 2), "square"), ((3, 2, 2), "square"), ((2, 2, 1), "cross_entropy"),
                             ((2, 3, 2), "cross_entropy")]),
          check_gradient_symbolic, 14, 140),
    Claim("CONSERVATION", "1^T dL/dA = 0: the column sums of A are invariants of gradient flow and descent "
          "(structural: also holds for a wrong dL/dS; GRAD-FD judges the values)", DERIVED,
          "exact: theory.gradients.column_scaling_residual", _sampler(max_dim=4), check_conservation, 60, 1000,
          check_batch=check_conservation_batch, batch_key=_shape_key),
    Claim("STATIONARY", "grad L0(W) = dL/dB U^T: every stationary point is a global minimum (convex loss)", PAPER,
          "not applicable", _sampler(), check_stationary, 40, 500),
    Claim("UNROLLED", "back-propagation through H weight-tied layers converges to the implicit gradient (error "
          "O(H gamma^H); checked at the limit)", DERIVED, "not applicable", _sampler(gamma=(0.3, 0.99)), check_unrolled, 20, 300),
    Claim("ENERGY", "vec(dW/dt) = -K g, dL/dt = -g^T K g, K >= lambda(A) I, lambda(A) = lambda_min of the B-part of K",
          DERIVED, "exact: theory.dynamics.derive_metric", _sampler(max_dim=6, a_scales=(0.1, 1.0, 3.0, 30.0)),
          check_energy_and_metric, 30, 500),
    Claim("STATE-WISE", "||dL/dA||^2 + ||dL/dB||^2 >= 2 kappa lambda(A) (L - L*) at every state (square loss), with "
          "equality at a constructed state", DERIVED, "exact: theory.dynamics.square_loss_pl_residual",
          _sampler(losses=("square",), spreads=(None, 2.0, 4.0)), check_state_wise, 60, 1000),
    Claim("INTEGRATED", "along gradient flow, L_T - L* <= (L_0 - L*) exp(-2 kappa int lambda) <= ... exp(-2 kappa lambda_T T) "
          "(equality for m = 1); converges to L* in every width regime", PAPER,
          "dsolve of the comparison ODE; comparison principle: proof in docstring",
          _integrated_sampler(), check_integrated_bound, 10, 500, digest=tightness_by_regime),
    Claim("GD-STEP", "gradient descent: one step is theta - lr grad; small steps track the flow to first order and "
          "decrease the loss; reports the largest monotone step", DERIVED, "not applicable",
          _sampler(**{**_TRAJECTORY, "max_dim": 4}, well_conditioned=True), check_gradient_descent_step, 4, 100),
    Claim("UNIFORM-RATE", "lambda(A) >= 1/(1 + gamma ||sigma(A)||_2)^2 >= 1/(1 + gamma sqrt(m))^2 for every A: the rate "
          "needs no width assumption; lambda/bound -> 1 at the concentrated softmax", PAPER,
          "column sums derived; norm inequalities: proof in docstring", _uniform_sampler, check_uniform_rate, 100, 2000,
          digest=ratio_at_concentrated),
    Claim("NAIVE-BOUND-FALSE", "the bound lambda(A) >= 1/(1+gamma)^2 is FALSE (concentrated softmax columns)", DERIVED,
          "not applicable", _counterexample_sampler, check_counterexample, 5, 50),
    Claim("CE-LINEAR", "cross-entropy, non-separable data: monotone, linear convergence to the attained L* "
          "(kappa is an ESTIMATE; the rate check is one-sided)", PAPER, "not applicable",
          _sampler(losses=("cross_entropy",), gamma=(0.05, 0.9), max_dim=4, scales=(-0.5, 0.5), non_separable=True),
          check_cross_entropy_linear, 6, 300, digest=asymptotic_rate_ratio),
    Claim("CE-SEPARABLE", "cross-entropy, separable data: L* = 0 is not attained; the decay is sublinear", DERIVED,
          "not applicable", _sampler(losses=("cross_entropy",), gamma=(0.2, 0.95), max_dim=5, m1_every=None,
                                     scales=(-0.5, 0.5)),
          check_cross_entropy_separable, 2, 20),
    Claim("HESSIAN", "the Hessian of L0 (square and cross-entropy) equals the complex-step Hessian and the SymPy "
          "derivation", DERIVED, "exact: theory.trust_region.derived_hessian",
          _sampler(max_dim=4), check_hessian, 20, 300),
    Claim("TRUST-REGION", "the Euler step -dt K g solves the shallow model's trust-region Newton subproblem in metric "
          "G = K^{-1}/dt - H with multiplier 1; K, H and the H-dependent admissible step are judged independently",
          PAPER, "exact: theory.trust_region.kkt_solution", _sampler(gamma=(0.05, 0.99), max_dim=4, scales=(-1.0, 0.5)),
          check_trust_region,
          12, 300),
    Claim("TR-ITERATION", "the trust-region Newton iteration with metric from the co-evolving DEQ state reproduces W_t, "
          "first order in dt", DERIVED, "exact: theory.trust_region.kkt_solution",
          _sampler(gamma=(0.1, 0.99), max_dim=4, well_conditioned=True, scales=(-1.0, 0.5)),
          check_trust_region_iteration, 4, 60),
    Claim("HYPOTHESES", "inputs outside the theorems' hypotheses (gamma not in (0, 1), A not square, shapes that "
          "do not fit, NaN or inf, cross-entropy targets not one-hot, lr, T, steps or layers out of range) are refused "
          "by every public entry point with a ValueError naming the argument; the valid call is accepted", DERIVED,
          "not applicable", sample_hypotheses, check_hypotheses, len(HYPOTHESIS_CASES),
          10 * len(HYPOTHESIS_CASES), check_replay=check_case),
    Claim("SYMBOLIC", "SymPy derivations (theory/) reduce to exactly zero residuals; lambdified ones agree with the core",
          DERIVED, "exact", _cycle_sampler(), check_symbolic, len(DERIVATIONS), len(DERIVATIONS)),
]

CLAIMS_BY_ID = {c.id: c for c in CLAIMS}
