"""Gradients by implicit differentiation (docs/theory.md, section 3): against the complex step,
the SymPy derivation and back-propagation through the unrolled model; the conservation law and
the absence of spurious stationary points."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import reference as ref
from .. import rounding
from ..dynamics import gradient_flow
from ..finite_differences import gradient_check
from ..gradients import loss_and_grad, unrolled_loss_and_grad
from ..losses import ShallowProblem, SquareLoss
from ..model import ImplicitLayer
from ..results import DERIVED, EPS, PAPER, Measurement, Outcome, equal, outcome
from ._shared import ReferenceState, case_of, log_uniform, norm, sampler, shape_key
from .spec import ClaimSpec, Tier


# ---- section 3 -------------------------------------------------------------------------------
def check_gradient(config):
    """loss_and_grad against the complex-step derivative of the reference forward pass."""
    c = case_of(config)
    L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
    tL, tA, tB = 2 * r.errors["L"], 2 * r.errors["dA"], 2 * r.errors["dB"]
    # a second opinion: fourth-order central differences of the reference loss (verify.
    # finite_differences), to 1e-7 relative (their truncation error is ~eps^(4/5)) plus, absolutely,
    # their rounding 3 rho |L| sqrt(N) / h (rho = m cond_1(U) eps, one solve per evaluation) and
    # the core's own rounding: gradients below the rounding of L (a saturated softmax) are compared
    # to what the differences can resolve, not relatively
    fd = gradient_check(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss, dA=dA, dB=dB)
    rho = c.m * rounding.cond_bound(c.gamma) * EPS
    meas = [
        equal("L = reference L", abs(L - r.L), tL),
        equal("dL/dA = complex-step derivative", norm(dA - r.dA), tA),
        equal("dL/dB = complex-step derivative", norm(dB - r.dB), tB),
    ]
    for name, core, diff, h, t_core in (
        ("dL/dA", dA, fd["fd_A"], fd["h_A"], tA),
        ("dL/dB", dB, fd["fd_B"], fd["h_B"], tB),
    ):
        meas.append(
            equal(
                f"{name} = finite differences of the reference loss",
                norm(core - diff),
                1e-7 * norm(diff) + 3 * rho * abs(fd["L"]) * np.sqrt(core.size) / h + t_core,
            )
        )
    return outcome(
        meas,
        f"relative errors dA {norm(dA - r.dA) / max(norm(r.dA), 1e-300):.1e}, "
        f"dB {norm(dB - r.dB) / max(norm(r.dB), 1e-300):.1e}",
    )


_SYMBOLIC_CACHE: dict = {}


def check_gradient_symbolic(config):
    """The SymPy derivation (sympy.diff of the scalar loss), evaluated in mpmath at high precision
    (no overflow, no cancellation), against the core: the core's own rounding bound."""
    from theory.gradients import derive_gradients

    size, loss = (config["m"], config["m_y"], config["n"]), config["loss"]
    if (size, loss) not in _SYMBOLIC_CACHE:
        _SYMBOLIC_CACHE[(size, loss)] = derive_gradients(*size, loss).high_precision()
    c = case_of(config)
    L_s, dA_s, dB_s, digits = _SYMBOLIC_CACHE[(size, loss)](c.A, c.B, c.Phi, c.Y, c.gamma)
    L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=loss)
    W = ref.end_to_end_weight(c.A, c.B, c.gamma)
    e = rounding.forward_errors(W, c.Phi, ref.output_gradient(W @ c.Phi, c.Y, loss), c.gamma, c.Y)
    return outcome(
        [
            equal("L = SymPy derivation", abs(L - L_s), e["L"]),
            equal("dL/dA = SymPy derivation", norm(dA - dA_s), e["dA"]),
            equal("dL/dB = SymPy derivation", norm(dB - dB_s), e["dB"]),
        ],
        f"derivation evaluated at {digits} digits",
    )


def _symbolic_sampler(sizes, width_one=((1, 2, 2), "square")):
    """Sizes small enough for the symbolic model; m = 1 only at every tenth index."""

    def sample(rng, index):
        size, loss = width_one if index % 10 == 9 else sizes[int(rng.integers(len(sizes)))]
        return {
            "seed": int(rng.integers(2**32)),
            "m": size[0],
            "m_y": size[1],
            "n": size[2],
            "gamma": float(rng.uniform(0.01, 0.99)),
            "loss": loss,
            "a_scale": float(rng.choice([0.1, 1.0, 3.0, 30.0])),
            "phi_scale": log_uniform(rng, -1, 1.5),
            "y_scale": log_uniform(rng, -1, 1),
        }

    return sample


def _conservation_measurements(S, Gamma, dA, dA_ref, ref_error) -> list[Measurement]:
    m = S.shape[0]
    # column j of the VJP is s o Gamma_j - s (s . Gamma_j); its sum is (1 - sum s)(s . Gamma_j)
    # up to (2m + 4) eps sum_i |s_i Gamma_ij| per implementation step: 2 (2m + 4) eps in all
    tol = 2 * (2 * m + 4) * EPS * np.abs(S * Gamma).sum(axis=0)
    # the reference's column sums: ||1^T E||_2 <= sqrt(m) ||E||_F for its error E
    return [
        equal(
            "1^T dL/dA = 0 (core; worst column's |sum| / its tolerance)",
            float(np.max(np.abs(dA.sum(axis=0)) / (tol + 1e-300))),
            1.0,
        ),
        equal("1^T dL/dA = 0 (complex-step derivative)", norm(dA_ref.sum(axis=0)), np.sqrt(m) * ref_error + 1e-300),
    ]


def check_conservation(config):
    """1^T dL/dA = 0 for the core's gradient and for the complex-step derivative of the reference
    loss, and the column sums of A kept along the (batched) gradient flow. Structural: any VJP
    through the column softmax conserves column sums, so this check is no evidence for the VALUE
    of dL/dA (GRAD-FD judges that). One configuration: :func:`check_conservation_batch` of one."""
    return check_conservation_batch([config])[0]


def _flow_horizon(c) -> float:
    """A horizon over which the flow moves, but no further than the start can vouch for: the
    shorter of three curvature time scales 3 (1 - gamma)^2 / ||Phi||^2 (the B-block's Hessian is
    U^-1 Phi Phi^T U^-T (x) l'' with ||U^-1|| <= 1 / (1 - gamma) and l'' <= Loss.curvature_bound
    <= 1 for every registered loss) and the time theta / ||grad L(A, B)|| the initial speed needs
    to move the parameters by their own size theta = max(|A|, |B|, 1). The curvature time scale
    alone ignores the growth of B: with small Phi and large Y the flow drives ||B|| towards
    ||Y|| / ||Phi||, the A-block's curvature grows like ||B||^2 ||Phi||^2, and an explicit solver
    run over the long horizon 1 / ||Phi||^2 turns stiff (it spent its whole evaluation budget)."""
    curvature = 3.0 * (1 - c.gamma) ** 2 / max(float(np.linalg.norm(c.Phi, 2)) ** 2, 1e-300)
    _, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    theta = max(float(np.abs(c.A).max()), float(np.abs(c.B).max()), 1.0)
    speed = float(np.sqrt(norm(dA) ** 2 + norm(dB) ** 2))
    return curvature if speed == 0.0 else min(curvature, theta / speed)


def _batched_flow_measurements(cases) -> list[list]:
    """One batched gradient flow of the stack (verify.batched.batched_gradient_flow, which
    promises rtol for EACH configuration by asking rtol / sqrt(k) of the whole state) against
    each configuration's own flow (verify.dynamics.gradient_flow at rtol 1e-12) at T: the
    difference must stay within both runs' ODE error models; and the column sums of A_T must
    equal those of A_0 (conserved along the flow) to the same error."""
    from ..batched import batched_gradient_flow

    rtol, rtol_single = 1e-8, 1e-12
    T = min(_flow_horizon(c) for c in cases)
    t, A_t, B_t = batched_gradient_flow(
        np.stack([c.A for c in cases]),
        np.stack([c.B for c in cases]),
        np.stack([c.Phi for c in cases]),
        np.stack([c.Y for c in cases]),
        np.array([c.gamma for c in cases]),
        T=T,
        loss=cases[0].loss,
        rtol=rtol,
        t_eval=np.array([0.0, T]),
    )
    out = []
    for k, c in enumerate(cases):
        single = gradient_flow(
            c.A,
            c.B,
            c.Phi,
            c.Y,
            gamma=c.gamma,
            T=T,
            loss=c.loss,
            rtol=rtol_single,
            atol=1e-2 * rtol_single,
            t_eval=np.array([0.0, T]),
            record_parameters=True,
            record_excess=False,
        )
        theta = max(float(np.abs(c.A).max()), float(np.abs(c.B).max()), 1.0)
        size = c.A.size + c.B.size
        # the batched solve asked rtol / sqrt(k) and atol 1e-2 of that of the stacked state
        tol = rounding.ode_state_error(rtol, 1e-2 * rtol, theta, size) + rounding.ode_state_error(
            rtol_single, 1e-2 * rtol_single, theta, size
        )
        diff = norm(A_t[-1, k] - single.A_t[-1]) + norm(B_t[-1, k] - single.B_t[-1])
        drift = norm(A_t[-1, k].sum(axis=0) - c.A.sum(axis=0))
        out.append(
            [
                equal("batched flow = single flow at T, per configuration", diff, tol),
                equal(
                    "column sums of A kept along the batched flow",
                    drift,
                    np.sqrt(c.m) * rounding.ode_state_error(rtol, 1e-2 * rtol, theta, size),
                ),
            ]
        )
    return out


def check_conservation_batch(configs: list[dict]) -> list[Outcome]:
    """The check on a stack of same-shape configurations: conservation for the single and the
    batched gradient, the batched values against the single-configuration path, and the batched
    flow against each configuration's own flow."""
    from ..batched import batched_loss_and_grad

    cases = [case_of(c) for c in configs]
    A = np.stack([c.A for c in cases])
    B = np.stack([c.B for c in cases])
    gammas = np.array([c.gamma for c in cases])
    L_b, dA_b, dB_b = batched_loss_and_grad(
        A, B, np.stack([c.Phi for c in cases]), np.stack([c.Y for c in cases]), gammas, cases[0].loss
    )
    flows = _batched_flow_measurements(cases)
    outcomes = []
    for k, c in enumerate(cases):
        L, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
        r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
        Gamma = c.gamma * r.W.T @ r.dB
        S = ref.softmax_columns(c.A)
        meas = _conservation_measurements(S, Gamma, dA, r.dA, r.errors["dA"])[:1]
        meas += [
            dataclasses.replace(m, name=m.name.replace("(core;", "(batched;"))
            for m in _conservation_measurements(S, Gamma, dA_b[k], r.dA, r.errors["dA"])
        ]
        meas += [
            equal("batched L = single L", abs(L_b[k] - L), 2 * r.errors["L"]),
            equal("batched dL/dA = single dL/dA", norm(dA_b[k] - dA), 2 * r.errors["dA"]),
            equal("batched dL/dB = single dL/dB", norm(dB_b[k] - dB), 2 * r.errors["dB"]),
        ]
        outcomes.append(outcome(meas + flows[k]))
    return outcomes


def check_stationary(config):
    """grad L0(W) = dL/dB U^T for the complex-step derivative (so dL/dB = 0 forces grad L0 = 0:
    stationary points are global minima of the convex L0), and the core's grad L0 = reference."""
    c = case_of(config)
    problem = ShallowProblem(c.Phi, c.Y, c.loss)
    r = ReferenceState.at(c.A, c.B, c.Phi, c.Y, c.gamma, c.loss)
    U = ref.implicit_matrix(c.A, c.gamma)
    W_core = ImplicitLayer.from_weights(c.A, gamma=c.gamma).end_to_end_weight(c.B)
    _, _, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=c.gamma, loss=c.loss)
    e = r.errors
    U_norm = norm(U)
    # the core's square-loss gradient is (W - W*) Phi Phi^T = W Phi Phi^T - Y P Phi^T
    s = np.linalg.svd(c.Phi, compute_uv=False)
    proj = rounding.projection_rounding(s, c.m, c.n) * norm(c.Y) * s.max()
    value = problem.value(W_core)
    if isinstance(problem.loss, SquareLoss):
        # the core's absolute value is L* + 1/2 ||(W - W*) R^T||^2: L* errs like the reference
        # least-squares residual, the excess by excess_tolerance (W within W's rounding)
        L_star_ref, W_star_ref = ref.least_squares(c.Phi, c.Y)
        dr = rounding.residual_rounding(norm(c.Phi), norm(c.Y), norm(W_star_ref), c.m, c.n)
        D_norm = norm((r.W - W_star_ref) @ c.Phi)
        value_tol = (
            2 * e["L"]
            + 2 * (np.sqrt(2 * L_star_ref) * dr + dr**2 / 2)
            + rounding.excess_tolerance(D_norm, norm(r.W), norm(c.Y), s.max(), c.m, c.gamma, s, c.n)
        )
    else:  # the same per-sample terms as the reference (log-sum-exp, pseudo-Huber), from the core's W
        value_tol = 2 * e["L"]
    return outcome(
        [
            equal("L0(W) (ShallowProblem.value, the absolute loss) = reference L", abs(value - r.L), value_tol),
            equal(
                "grad L0(W) = dL/dB U^T (reference derivative)",
                norm(r.grad_L0 - r.dB @ U.T),
                e["grad_L0"] + (e["dB"] + c.m * EPS * norm(r.dB)) * U_norm,
            ),
            equal(
                "core grad L0(W) = reference", norm(problem.gradient(W_core) - r.grad_L0), 2 * e["grad_L0"] + 2 * proj
            ),
            equal(
                "core dL/dB U^T = reference grad L0",
                norm(dB @ U.T - r.grad_L0),
                2 * e["grad_L0"] + 2 * (e["dB"] + c.m * EPS * norm(r.dB)) * U_norm,
            ),
        ]
    )


def check_unrolled(config):
    """Back-propagation through H weight-tied layers: the core's unrolled gradient equals the
    reference's (explicit softmax Jacobians) at the same H, and as H grows the reference tends to
    the core's implicit gradient (checked at H with H gamma^H below eps)."""
    c = case_of(config)
    gamma = c.gamma
    _, dA, dB = loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=gamma, loss=c.loss)
    H1 = int(np.ceil(np.log(1e-3) / np.log(gamma)))
    H_inf = int(np.ceil(np.log(EPS / 100) / np.log(gamma)))
    while H_inf * gamma**H_inf > EPS / 100:
        H_inf += 1
    _, a1, b1 = unrolled_loss_and_grad(c.A, c.B, c.Phi, c.Y, gamma=gamma, layers=H1, loss=c.loss)
    _, a1_ref, b1_ref = ref.unrolled_gradients(c.A, c.B, c.Phi, c.Y, gamma, H1, c.loss)
    _, a_inf, b_inf = ref.unrolled_gradients(c.A, c.B, c.Phi, c.Y, gamma, H_inf, c.loss)
    r_W = ref.end_to_end_weight(c.A, c.B, gamma)
    e = rounding.forward_errors(r_W, c.Phi, ref.output_gradient(r_W @ c.Phi, c.Y, c.loss), gamma, c.Y)
    Z_norm = norm(ref.fixed_point(c.A, c.Phi, gamma, H1))
    G_norm = norm(ref.output_gradient(c.B @ ref.fixed_point(c.A, c.Phi, gamma, H1), c.Y, c.loss))
    # each layer rounds its (m + 1)-term products by (m + 1) eps relative; H layers accumulate
    # linearly; the magnitudes are ||G|| ||Z|| (dB) and gamma ||B|| ||G|| ||Z|| / (1 - gamma) (dS)
    scale = G_norm * Z_norm * (1 + gamma * norm(c.B) / (1 - gamma)) + norm(b1_ref) + norm(a1_ref)

    def unrolled_tol(H):
        return 2 * H * (c.m + c.n + c.m_y + 2) * EPS * scale

    err_H1 = norm(a1_ref - dA) + norm(b1_ref - dB)
    return outcome(
        [
            equal(
                f"core unrolled = reference unrolled (H = {H1})",
                norm(a1 - a1_ref) + norm(b1 - b1_ref),
                unrolled_tol(H1),
            ),
            equal(
                f"reference unrolled (H = {H_inf}, H gamma^H < eps/100) = core implicit gradient",
                norm(a_inf - dA) + norm(b_inf - dB),
                e["dA"] + e["dB"] + unrolled_tol(H_inf),
            ),
        ],
        f"error at H = {H1}: {err_H1:.2e} (gamma^H = {gamma**H1:.1e})",
    )


SPECS = [
    ClaimSpec(
        id="GRAD-FD",
        theorem="gradients",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="implicit gradients dL/dA, dL/dB (and L) equal the complex-step derivative of an "
        "independent forward pass, to a derived rounding bound",
        default=Tier(
            sample=sampler(a_scales=(0.1, 1.0, 3.0, 30.0), spreads=(None, 4.0)),
            check=check_gradient,
            quick=40,
            thorough=500,
        ),
    ),
    ClaimSpec(
        id="GRAD-SYMBOLIC",
        theorem="gradients",
        provenance=DERIVED,
        symbolic="exact: theory.gradients.derive_gradients",
        statement="the SymPy derivation (differentiating the scalar loss), evaluated at high precision, "
        "equals the numerical core to its rounding bound",
        default=Tier(
            sample=_symbolic_sampler(
                [
                    ((2, 1, 1), "square"),
                    ((2, 2, 1), "square"),
                    ((2, 3, 2), "square"),
                    ((3, 2, 2), "square"),
                    ((2, 2, 1), "cross_entropy"),
                    ((2, 3, 2), "cross_entropy"),
                    ((2, 2, 1), "pseudo_huber"),
                    ((2, 3, 2), "pseudo_huber"),
                ]
            ),
            check=check_gradient_symbolic,
            quick=14,
            thorough=140,
        ),
    ),
    ClaimSpec(
        id="CONSERVATION",
        theorem="gradients",
        provenance=DERIVED,
        symbolic="exact: theory.gradients.column_scaling_residual",
        statement="1^T dL/dA = 0: the column sums of A are invariants of gradient flow and descent "
        "(structural: also holds for a wrong dL/dS; GRAD-FD judges the values)",
        default=Tier(
            sample=sampler(max_dim=4),
            check=check_conservation,
            quick=60,
            thorough=1000,
            check_batch=check_conservation_batch,
            batch_key=shape_key,
        ),
    ),
    ClaimSpec(
        id="STATIONARY",
        theorem="gradients",
        provenance=PAPER,
        symbolic="not applicable",
        statement="grad L0(W) = dL/dB U^T: every stationary point is a global minimum (convex loss)",
        default=Tier(sample=sampler(), check=check_stationary, quick=40, thorough=500),
    ),
    ClaimSpec(
        id="UNROLLED",
        theorem="gradients",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="back-propagation through H weight-tied layers converges to the implicit gradient (error "
        "O(H gamma^H); checked at the limit)",
        default=Tier(sample=sampler(gamma=(0.3, 0.99)), check=check_unrolled, quick=20, thorough=300),
    ),
]
