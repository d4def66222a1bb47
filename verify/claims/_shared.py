"""Pieces shared by the claims' checks: configurations, reference states, the measurements of
kappa, lambda and the excess loss against the reference, the order-of-convergence decision, and
the digests of the report.

How a check judges. The numerical core (the subject) is compared with :mod:`verify.reference`
(written from the definitions, sharing no code with the core) and with the SymPy derivations of
:mod:`theory`; each comparison is a :class:`verify.results.Measurement`. Inequalities are
one-sided by nature; where a bound is attained (m = 1, the constructed tight state, the
concentrated softmax) the check adds the equality, and every constant a bound is made of
(kappa, lambda(A), the uniform bound, L*) is compared with an independent computation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import reference as ref
from .. import rounding
from ..convergence import rate_constant
from ..judging import STIFF_RATIO
from ..losses import ShallowProblem, SquareLoss, get_loss, loss_names
from ..results import EPS, Measurement, equal
from ..sampling import PROPER_REGIMES, Case, make_case, random_shape, regime_for_index

# ---- configurations ------------------------------------------------------------------------------
CASE_KEYS = (
    "seed",
    "m",
    "m_y",
    "n",
    "gamma",
    "loss",
    "a_scale",
    "non_separable",
    "well_conditioned",
    "phi_scale",
    "y_scale",
    "spread",
)


def case_of(config: dict) -> Case:
    """The arrays of a configuration: drawn from its seed (:func:`verify.sampling.make_case`), or a
    stored tight instance of :mod:`verify.sharpness` (``{"tight": "<claim>/<regime>"}``)."""
    if "tight" in config:
        from ..sharpness import load_tight

        t = load_tight(config["tight"])
        return Case(
            t["A"], t["B"], t["Phi"], t["Y"], float(t["gamma"]), "square", 0, {"a_scale": 1.0, "tight": config["tight"]}
        )
    return make_case(**{k: config[k] for k in CASE_KEYS if k in config})


def tight_configs(claim_id: str) -> tuple[dict, ...]:
    """The stored tight instances of a claim, as fixed configurations (see :mod:`verify.sharpness`)."""
    from ..sharpness import tight_names

    return tuple({"tight": name} for name in tight_names(claim_id))


def log_uniform(rng, low_decade: float, high_decade: float) -> float:
    return float(10.0 ** rng.uniform(low_decade, high_decade))


def losses_where(predicate=lambda loss: True) -> tuple[str, ...]:
    """The registered losses (at the time of the call: the built-in ones when a claim module is
    imported) whose properties satisfy ``predicate`` (a function of the Loss): which losses a
    claim samples is decided by what the claim needs, never by a list of names."""
    return tuple(name for name in loss_names() if predicate(get_loss(name)))


def pl_losses() -> tuple[str, ...]:
    """The losses with a derived PL constant (global, or on the sublevel set of the start): Theorem
    1's STATE-WISE and INTEGRATED checks apply to them (docs/theory.md, section 5)."""
    return losses_where(lambda loss: loss.pl in ("global", "sublevel"))


def sampler(
    losses=None,
    gamma=(0.01, 0.99),
    a_scales=(0.1, 1.0, 3.0),
    max_dim=8,
    m1_every: int | None = 10,
    scales=(-2.0, 2.0),
    spreads=(None,),
    regimes=PROPER_REGIMES,
    **options,
):
    """Configurations over the width regimes (m = 1 exactly at every ``m1_every``-th index, so at
    most 1/m1_every of them), gamma uniform in ``gamma``, Phi and Y scaled by log-uniform factors
    over ``scales`` decades (Y only for real targets), Phi's singular values optionally spread over
    ``spreads`` decades. ``losses``: default every loss registered when the sampler is made."""
    losses = losses_where() if losses is None else tuple(losses)

    def sample(rng: np.random.Generator, index: int) -> dict:
        regime = regime_for_index(rng, index, m1_every=m1_every, regimes=regimes)
        m, m_y, n = random_shape(rng, regime, max_dim)
        loss = str(rng.choice(losses))
        m_y = max(m_y, get_loss(loss).min_outputs)
        config = {
            "seed": int(rng.integers(2**32)),
            "regime": regime,
            "m": m,
            "m_y": m_y,
            "n": n,
            "gamma": float(rng.uniform(*gamma)),
            "loss": loss,
            "a_scale": float(rng.choice(a_scales)),
        }
        if scales is not None:
            config["phi_scale"] = log_uniform(rng, *scales)
            config["y_scale"] = log_uniform(rng, *scales) if get_loss(loss).targets == "real" else 1.0
        spread = spreads[int(rng.integers(len(spreads)))]
        if spread is not None:
            config["spread"] = float(spread)
        config.update(options)
        return config

    return sample


def shape_key(config: dict) -> tuple:
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
    def at(cls, A, B, Phi, Y, gamma, loss) -> ReferenceState:
        W = ref.end_to_end_weight(A, B, gamma)
        Q = W @ Phi
        G = ref.output_gradient(Q, Y, loss)
        dA, dB = ref.gradients(A, B, Phi, Y, gamma, loss)
        return cls(
            W, G, G @ Phi.T, float(ref.output_loss(Q, Y, loss)), dA, dB, rounding.forward_errors(W, Phi, G, gamma, Y)
        )


def norm(x) -> float:
    return float(np.linalg.norm(x))


def cond2(A, gamma) -> float:
    return float(np.linalg.cond(ref.implicit_matrix(A, gamma), 2))


def rate_measurement(name: str, A, gamma: float) -> tuple[Measurement, float, float]:
    """lambda(A) of the core against the reference; returns (measurement, core value, reference)."""
    lam_core = rate_constant(A, gamma=gamma)
    lam_ref = ref.rate_constant(A, gamma)
    tol = rounding.rate_tolerance(lam_ref, A.shape[0], gamma, cond2(A, gamma))
    return equal(name, abs(lam_core - lam_ref), tol), lam_core, lam_ref


def kappa_measurement(problem: ShallowProblem, Phi, level: float | None = None) -> tuple[Measurement, float, float]:
    """The core's PL constant against the reference's: global (square loss), or on the sublevel
    set {L0 <= level} (pseudo-Huber: kappa_Phi / (1 + level)^3, the same level given to both, so
    only kappa_Phi's rounding differs, scaled, plus 4 eps for the division by (1 + level)^3)."""
    s = np.linalg.svd(Phi, compute_uv=False)
    tol = rounding.kappa_tolerance(s, *Phi.shape)
    if problem.loss.pl == "global":
        kappa_ref = ref.pl_constant(Phi)
        kappa_core = problem.pl_constant
        return equal("kappa = reference (SVD of Phi)", abs(kappa_core - kappa_ref), tol), kappa_core, kappa_ref
    kappa_ref = ref.loss_pl_constant(Phi, problem.Y, problem.loss.name, level)
    kappa_core = problem.pl_constant_at(level)
    tol = tol * kappa_ref / ref.pl_constant(Phi) + 4 * EPS * kappa_ref
    return (
        equal("kappa(c) = reference (PL constant on the sublevel set {L0 <= c})", abs(kappa_core - kappa_ref), tol),
        kappa_core,
        kappa_ref,
    )


def square_excess_ref(W, Phi, Y) -> tuple[float, float]:
    """(E, ||D||) with D = (W - W*) Phi from the reference minimiser."""
    D = (W - ref.least_squares(Phi, Y)[1]) @ Phi
    return 0.5 * float(np.sum(D * D)), norm(D)


def excess_ref(W, Phi, Y, loss) -> tuple[float, float]:
    """(E, ||D||): E = L0(W) - L* by the reference's own route, D = (W - W*) Phi with its W*."""
    W_star = ref.optimum(Phi, Y, loss)[1]
    return ref.excess(W, Phi, Y, loss), norm((W - W_star) @ Phi)


def excess_tolerance(problem: ShallowProblem, W, D_norm: float, c) -> float:
    """|E_core - E_ref| for the excess at W (reference W) of a loss with a cancellation-free
    excess. Square loss (W* a projection): :func:`verify.rounding.excess_tolerance`. Otherwise
    (pseudo-Huber: a sum of Bregman divergences of D = (W - W*) Phi, whose gradient in D is
    l'(r) - l'(s), at most curvature_bound |d| entrywise): D errs by delta = (rho + m eps) ||W||
    ||Phi||_2 + ||dW*|| ||Phi||_2 per implementation, so E by curvature_bound (||D|| delta +
    delta^2 / 2), plus the reference's quadrature (QUAD_RTOL relative). ||dW*||: both
    minimisers solve grad L0 = 0 up to the rounding of the gradient, e_grad
    (verify.rounding.forward_errors at W*), and L0 is strongly convex on the row space near W*
    with the PL constant at level L* (the reference's; pseudo-Huber kappa_Phi (1 + L*)^-3), so
    ||dW*|| <= e_grad / kappa(L*) for each (Newton's polishing leaves the gradient at that level)."""
    s = np.linalg.svd(c.Phi, compute_uv=False)
    if isinstance(problem.loss, SquareLoss):
        return rounding.excess_tolerance(D_norm, norm(W), norm(c.Y), s.max(), c.m, c.gamma, s, c.n)
    L_star, W_star = ref.optimum(c.Phi, c.Y, c.loss)
    G_star = ref.output_gradient(W_star @ c.Phi, c.Y, c.loss)
    e_grad = rounding.forward_errors(W_star, c.Phi, G_star, c.gamma, c.Y)["grad_L0"]
    dW_star = 2 * e_grad / ref.loss_pl_constant(c.Phi, c.Y, c.loss, L_star)
    delta = (rounding.solve_rounding(c.m, c.gamma) + c.m * EPS) * norm(W) * s.max() + dW_star * s.max()
    E = ref.excess(W, c.Phi, c.Y, c.loss)
    return 2 * problem.loss.curvature_bound * (D_norm * delta + 0.5 * delta**2) + 2 * ref.QUAD_RTOL * E


def ode_method(c, slowest_rate: float, H=None) -> str:
    """DOP853, or LSODA when lambda_max(K^1/2 H K^1/2) / slowest_rate exceeds STIFF_RATIO
    (K from the reference Jacobian at the start, H the Hessian of L0 there)."""
    W = ref.end_to_end_weight(c.A, c.B, c.gamma)
    H = ref.shallow_hessian(W, c.Phi, c.Y, c.loss) if H is None else H
    fastest = 1.0 / ref.admissible_step_bound(ref.metric(c.A, c.B, c.gamma), H)
    return "LSODA" if fastest > STIFF_RATIO * slowest_rate else "DOP853"


def unsaturated(c):
    """For a loss whose curvature vanishes as the outputs grow (the cross-entropy:
    ``saturates_in_outputs``), B scaled so that the start's outputs W Phi are at most 2 in size:
    at a saturated start the Hessian of L0 nearly vanishes and grows like 1/t along the flow, so
    no uniform step is admissible for the trust-region iteration and the step bound cannot be
    resolved (Theorem 2 needs G_dt > 0). Other cases are returned unchanged."""
    if not get_loss(c.loss).saturates_in_outputs:
        return c
    scale = float(np.abs(ref.end_to_end_weight(c.A, c.B, c.gamma) @ c.Phi).max()) / 2.0
    return c if scale <= 1.0 else dataclasses.replace(c, B=c.B / scale)


def global_pl_losses() -> tuple[str, ...]:
    """The losses with one PL constant for every W (the square loss): the trajectory claims
    (INTEGRATED, GD-STEP) use it along the whole run. A loss whose constant holds on a sublevel
    set (pseudo-Huber) is judged by STATE-WISE at each state's own level."""
    return losses_where(lambda loss: loss.pl == "global")


#: options of the trajectory claims' samplers (the losses with a global PL constant, moderate
#: gamma and sizes)
TRAJECTORY_OPTIONS = dict(losses=global_pl_losses(), gamma=(0.05, 0.95), max_dim=5, scales=(-1.0, 1.0))
