"""Well-posedness and expressivity (docs/theory.md, section 2): the equilibrium exists and the
forward iteration contracts; B = W U realises every W; L is not convex."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import reference as ref
from .. import rounding
from ..convergence import concentrated_weight
from ..landscape import midpoint_violation
from ..losses import ShallowProblem, optimal_loss
from ..model import column_softmax, end_to_end_weight, equilibrium, fixed_point_iterates, predict, weight_for
from ..results import DERIVED, EPS, PAPER, at_least, equal, outcome
from ._shared import case_of, norm, sampler, square_excess_ref, tight_configs
from .spec import ClaimSpec, Tier


# ---- section 2 -------------------------------------------------------------------------------
def check_well_posedness(config):
    """S column-stochastic, ||gamma S||_1 = rho(gamma S) = gamma, cond_1(U) <= (1+gamma)/(1-gamma),
    the forward iteration contracts like gamma^l (an equality for m = 1), and the core's S,
    equilibrium and iterates equal the reference ones."""
    c = case_of(config)
    if config.get("concentrated"):  # every column of sigma(A) at e_1: the condition bound is attained
        c = dataclasses.replace(c, A=concentrated_weight(c.m))
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
    Z_norm = norm(z_star)
    err0 = np.abs(iterates[0] - z_star).sum(axis=0)
    # the solve's error in z* and the iteration's own rounding ((m + 2) eps per layer, damped by
    # gamma per layer: sum over layers <= (m + 2) eps / (1 - gamma) times the column's 1-norm)
    floor = (
        (2 * rounding.solve_rounding(m, gamma) + (m + 2) * EPS / (1 - gamma)) * np.abs(z_star).sum(axis=0) * np.sqrt(m)
    )
    meas = [
        equal("sigma(A) = reference softmax", np.abs(S - S_ref).max(), entry_tol),
        equal("column sums of sigma(A) = 1", np.abs(S.sum(axis=0) - 1).max(), (2 * m + 3) * EPS),
        equal("||gamma S||_1 = gamma", abs(np.linalg.norm(gamma * S, 1) - gamma), gamma * (2 * m + 4) * EPS),
        equal("rho(gamma S) = gamma", abs(np.abs(np.linalg.eigvals(gamma * S)).max() - gamma), rho_tol),
        at_least(
            "cond_1(U) <= (1+gamma)/(1-gamma)",
            rounding.cond_bound(gamma),
            np.linalg.cond(U, 1),
            # cond via an explicit inverse: relative error <= m cond eps
            m * rounding.cond_bound(gamma) * EPS,
        ),
        equal(
            "equilibrium U^{-1} Phi = reference solve",
            norm(equilibrium(c.A, c.Phi, gamma=gamma) - z_star),
            2 * rounding.solve_rounding(m, gamma) * Z_norm * rounding.cond_bound(gamma),
        ),
        equal(
            "iterates z^(l) = reference iteration",
            norm(iterates[-1] - z_layers),
            2 * (m + 2) * EPS / (1 - gamma) * Z_norm * np.sqrt(m) * layers,
        ),
    ]
    W_ref = ref.end_to_end_weight(c.A, c.B, gamma)
    e = rounding.forward_errors(W_ref, c.Phi, np.zeros((c.m_y, c.n)), gamma)
    meas += [
        equal(
            "W = B U^-1 (verify.end_to_end_weight) = reference",
            norm(end_to_end_weight(c.A, c.B, gamma=gamma) - W_ref),
            2 * e["W"],
        ),
        equal(
            "outputs W Phi (verify.predict) = reference",
            norm(predict(c.A, c.B, c.Phi, gamma=gamma) - W_ref @ c.Phi),
            2 * e["Q"],
        ),
    ]
    cond_ratio = rounding.cond_bound(gamma) / np.linalg.cond(U, 1)
    if config.get("concentrated") and m > 1:
        # U = I - gamma s 1^T with s = e_1 up to (m - 1) e^-50: ||U||_1 = 1 + gamma and ||U^-1||_1 =
        # 1/(1 - gamma) up to that (Sherman-Morrison), so the bound is attained: two-sided
        meas.append(
            equal(
                "concentrated A: cond_1(U) = (1+gamma)/(1-gamma) (attained; relative)",
                abs(cond_ratio - 1),
                m * rounding.cond_bound(gamma) * EPS + 4 * m * np.exp(-50.0) * rounding.cond_bound(gamma),
            )
        )
    # every layer l = 0..layers, not the last alone: gamma^40 < eps for gamma < 0.4, where both
    # sides of the last layer's comparison sit below the rounding floor and decide nothing
    errs = np.abs(iterates - z_star).sum(axis=1)  # (layers + 1, n): ||z^(l) - z*||_1 per column
    powers = gamma ** np.arange(layers + 1)[:, None]
    if m == 1:
        # sigma(A) = 1: z^(l) - z* = -gamma^l z* exactly
        meas.append(
            equal(
                "m = 1: ||z^(l) - z*||_1 = gamma^l ||z^(0) - z*||_1 (every layer)",
                float(np.max(np.abs(errs - powers * err0))),
                float(np.max(floor)),
            )
        )
    else:
        meas.append(
            at_least(
                "||z^(l) - z*||_1 <= gamma^l ||z^(0) - z*||_1 (every layer, worst column)",
                float(np.min((powers * err0 + floor) / np.maximum(errs, 1e-300))),
                1.0,
            )
        )
    tight = config.get("tight") or (
        f"WELL-POSED/concentrated m={m}, gamma={gamma:g}" if config.get("concentrated") else None
    )
    return outcome(meas, ratio=float(cond_ratio), tight=tight)


def check_expressivity(config):
    """B = W U realises W (judged by the reference forward pass), and L(A, W* U) = L* with L*
    from the reference least squares."""
    c = case_of(config)
    m, gamma = c.m, c.gamma
    problem = ShallowProblem(c.Phi, c.Y)
    W_target = np.random.default_rng(c.seed + 1).standard_normal((c.m_y, m))
    B = weight_for(c.A, W_target, gamma=gamma)
    W_back = ref.end_to_end_weight(c.A, B, gamma)
    # B = W U rounds by m eps |W||U|; solving back amplifies by cond_2(U) <= sqrt(m) cond_1 bound
    tol_W = 2 * (rounding.solve_rounding(m, gamma) + m * EPS * np.sqrt(m) * rounding.cond_bound(gamma)) * norm(W_target)
    L_star_ref, W_star_ref = ref.least_squares(c.Phi, c.Y)
    B_star = weight_for(c.A, problem.minimiser, gamma=gamma)
    E, D_norm = square_excess_ref(ref.end_to_end_weight(c.A, B_star, gamma), c.Phi, c.Y)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    proj = rounding.projection_rounding(s, m, c.n)
    # W* U U^{-1} = W* up to tol_W relative, W* itself to proj relative: E is second order
    delta = (tol_W / max(norm(W_target), 1e-300) + proj) * norm(W_star_ref) * s.max() + proj * norm(c.Y)
    residual_norm = np.sqrt(2 * L_star_ref)
    dr = rounding.residual_rounding(norm(c.Phi), norm(c.Y), norm(W_star_ref), m, c.n)
    return outcome(
        [
            equal("W(A, W U) = W (reference forward pass)", norm(W_back - W_target), tol_W),
            equal(
                "L* (verify.optimal_loss) = reference least squares",
                abs(optimal_loss(c.Phi, c.Y) - L_star_ref),
                2 * (residual_norm * dr + dr**2 / 2),
            ),
            equal(
                "L(A, W* U) - L* = 0 (reference excess)", E, 2 * (0.5 * delta**2 + residual_norm * 0 + delta * D_norm)
            ),
        ]
    )


def check_nonconvexity(config):
    """Two global minimisers (A_k, W* U_k) whose midpoint has a larger loss, all three evaluated
    by the reference (m >= 2; for m = 1, sigma(A) = 1 and L is convex in B)."""
    c = case_of(config)
    problem = ShallowProblem(c.Phi, c.Y)
    v = midpoint_violation(problem, gamma=c.gamma, rng=np.random.default_rng(c.seed))
    e1, _ = square_excess_ref(ref.end_to_end_weight(v.A1, v.B1, c.gamma), c.Phi, c.Y)
    e2, _ = square_excess_ref(ref.end_to_end_weight(v.A2, v.B2, c.gamma), c.Phi, c.Y)
    e_mid, _ = square_excess_ref(ref.end_to_end_weight(0.5 * (v.A1 + v.A2), 0.5 * (v.B1 + v.B2), c.gamma), c.Phi, c.Y)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    W_star_norm = norm(ref.least_squares(c.Phi, c.Y)[1])
    # rounding floor of an excess at a minimiser: W is W* up to (solve + projection) rounding
    delta = (
        (4 * rounding.solve_rounding(c.m, c.gamma) + rounding.projection_rounding(s, c.m, c.n))
        * W_star_norm
        * s.max()
        * np.sqrt(c.m)
        * rounding.cond_bound(c.gamma)
    )
    floor = 0.5 * delta**2 + 1e-300
    gap = e_mid - 0.5 * (e1 + e2)
    return outcome(
        [
            equal("L(A_1, B_1) = L* (endpoint 1 is a global minimiser)", e1, floor),
            equal("L(A_2, B_2) = L* (endpoint 2 is a global minimiser)", e2, floor),
            at_least("L(midpoint) - mean > rounding floor", gap, floor),
        ],
        f"L(mid) - mean = {gap:.3e}, floor {floor:.1e}",
    )


SPECS = [
    ClaimSpec(
        id="WELL-POSED",
        theorem="well-posedness",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="sigma(A) is column-stochastic, ||gamma S||_1 = rho(gamma S) = gamma, cond_1(U) <= "
        "(1+gamma)/(1-gamma), and the forward iteration contracts like gamma^l (equality for m = 1) "
        "to U^{-1} Phi",
        default=Tier(
            sample=sampler(a_scales=(0.1, 1.0, 3.0, 30.0)),
            check=check_well_posedness,
            quick=40,
            thorough=400,
            fixed=tight_configs("WELL-POSED")
            + tuple(
                {"seed": 0, "m": m, "m_y": 2, "n": 3, "gamma": g, "loss": "square", "concentrated": True}
                for m, g in ((4, 0.5), (30, 0.9), (8, 0.99))
            ),
        ),
    ),
    ClaimSpec(
        id="EXPRESSIVITY",
        theorem="well-posedness",
        provenance=PAPER,
        symbolic="not applicable",
        statement="for every A, B = W U realises any W; so inf L = inf L0 = L* whatever the width",
        default=Tier(
            sample=sampler(losses=("square",), spreads=(None, 2.0)), check=check_expressivity, quick=30, thorough=300
        ),
    ),
    ClaimSpec(
        id="NONCONVEX",
        theorem="well-posedness",
        provenance=DERIVED,
        symbolic="not applicable",
        statement="L(A, B) is not convex (m >= 2): two global minimisers with a worse midpoint",
        default=Tier(
            sample=sampler(losses=("square",), gamma=(0.3, 0.99), m1_every=None),
            check=check_nonconvexity,
            quick=20,
            thorough=200,
        ),
    ),
]
