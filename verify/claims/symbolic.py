"""The SYMBOLIC claim: every derivation of :mod:`theory` is run; exact ones must simplify to exactly
zero, lambdified ones must agree with the numerical core to rounding.

theory/ imports nothing from verify/: the derivations are pure SymPy, and this module is where
they meet the core.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory.catalogue import DERIVATIONS

from ..results import DERIVED, EPS, equal, exact, outcome
from .spec import ClaimSpec, Tier


def _is_zero(x) -> bool:
    if isinstance(x, sp.MatrixBase):
        return x == sp.zeros(*x.shape)
    return x == 0


def run_derivation(name: str, seed: int):
    """Run one derivation of theory/ and judge it (see the module docstring)."""
    from theory import dynamics as tdyn
    from theory import gradients as tgrad
    from theory import trust_region as ttr

    rng = np.random.default_rng(seed)
    if name not in DERIVATIONS:
        raise ValueError(f"unknown derivation {name!r}; known: {list(DERIVATIONS)}")
    if name == "softmax Jacobian":
        return outcome([exact(name, _is_zero(tgrad.softmax_jacobian_residual(3)))])
    if name == "conservation (column homogeneity)":
        return outcome([exact(name, _is_zero(tgrad.column_scaling_residual(3)))])
    if name == "metric K = J J^T (exact rational point)":
        from theory.symbolic_model import build, random_rational_point

        D = tdyn.derive_metric(2, 2)
        point = random_rational_point(build(2, 2, 1, "square"), rng)
        first, second = tdyn.closed_form_metric_terms(D, point)
        JA, JB = D.J_A.xreplace(point), D.J_B.xreplace(point)
        return outcome([exact("J_A J_A^T = gamma^2 sum_j (U^-T e_j e_j^T U^-1) (x) (W J_j^2 W^T)", JA * JA.T == second),
                        exact("J_B J_B^T = (U^-T U^-1) (x) I", JB * JB.T == first)])
    if name == "metric K lambdified = verify.dynamics.preconditioner":
        from ..dynamics import preconditioner
        from ..rounding import metric_tolerance
        meas = []
        for m, m_y in ((2, 2), (2, 1), (1, 3)):
            A = rng.standard_normal((m, m)) * 3
            B = rng.standard_normal((m_y, m))
            gamma = float(rng.uniform(0.05, 0.99))
            K_sym = tdyn.metric_function(m, m_y)(A, B, gamma)
            W = np.linalg.solve((np.eye(m) - gamma * np.exp(A - A.max(0)) / np.exp(A - A.max(0)).sum(0)).T, B.T).T
            # the lambdified expression is a rational function evaluated in float64: an
            # adjugate/determinant evaluation of U^{-1}, accurate to about m! cond eps
            tol = metric_tolerance(W, m, gamma) * 10
            meas.append(equal(f"derived K = core K (m={m}, m_y={m_y})",
                              float(np.linalg.norm(K_sym - preconditioner(A, B, gamma=gamma))), tol))
        return outcome(meas)
    if name == "PL constant of the square loss":
        return outcome([exact(name, _is_zero(tdyn.square_loss_pl_residual()[0]))])
    if name == "comparison ODE solved by dsolve":
        d_ratio, initial = tdyn.comparison_ode()
        return outcome([exact("d/dt (dsolve solution / E_0 exp(-2 kappa int_0^t lambda)) = 0", _is_zero(d_ratio)),
                        exact("the claimed solution starts at E_0", _is_zero(initial))],
                       "comparison principle: proof in docstring (theory.dynamics.comparison_ode)")
    if name == "uniform bound: columns of sigma(A) sum to 1":
        return outcome([exact(name, _is_zero(tdyn.softmax_column_sums(3)))],
                       "norm inequalities: proof in docstring (theory.dynamics.softmax_column_sums)")
    if name == "square-loss Hessian = (Phi Phi^T) (x) I":
        H, W, Phi, Y = ttr.derived_hessian(2, 2, 3, "square")
        closed = sp.kronecker_product(Phi * Phi.T, sp.eye(2))
        return outcome([exact(name, _is_zero((H - closed).applyfunc(sp.expand)))])
    if name == "KKT stationarity solved at multiplier 1":
        return outcome([exact("v(1) + dt K g = 0", _is_zero(ttr.kkt_solution(2)[0]))])
    if name == "second-order condition: Lagrangian Hessian at multiplier 1":
        return outcome([exact("hessian_v(Lagrangian)|_{mu=1} dt K - I = 0", _is_zero(ttr.second_order_condition(2)))])
    if name == "KKT solution lambdified = verify.trust_region solver":
        from ..trust_region import solve_trust_region

        f = ttr.kkt_function(2)
        meas = []
        for trial in range(3):
            X = rng.standard_normal((2, 2))
            K = X @ X.T + 0.1 * np.eye(2)
            M = rng.standard_normal((2, 2))
            H = M @ M.T
            g = rng.standard_normal(2)
            top = float(np.linalg.eigvalsh(np.linalg.cholesky(K).T @ H @ np.linalg.cholesky(K))[-1])
            dt = 0.5 / top
            G = np.linalg.inv(K) / dt - H
            v_sym = f(K, H, g, dt, 1.0)
            v_star = -dt * K @ g
            delta = float(np.sqrt(v_star @ G @ v_star))
            sol = solve_trust_region(g, H, 0.5 * (G + G.T), delta)
            cond = float(np.linalg.cond(K))
            # the derived v(1) is a rational function of the factors evaluated in float64
            tol = 100 * cond ** 2 * EPS * float(np.linalg.norm(v_star))
            meas.append(equal(f"derived v(1) = -dt K g (trial {trial})", float(np.linalg.norm(v_sym - v_star)), tol))
            meas.append(equal(f"core solver = derived v(1) (trial {trial})", float(np.linalg.norm(sol.v - v_sym)),
                              10 * cond * (1e-12 + 200 * EPS) * float(np.linalg.norm(v_star)) + tol))
        return outcome(meas)
    if name == "admissible step (congruence)":
        return outcome([exact("R^T G R - (I/dt - R^T H R) = 0", _is_zero(ttr.congruence_residual(2)))])
    if name == "admissible step in one dimension (solved inequality)":
        cond, dt, k, h = ttr.scalar_step_condition()
        return outcome([exact("{dt > 0 : 1/(k dt) - h > 0} = {dt < 1/(h k)}", bool(cond == (dt < 1 / (h * k))))])
    if name == "steepest descent in metric K^-1":
        res = ttr.steepest_descent_in_metric(2)
        return outcome([exact("one positive multiplier, v = -r K g / sqrt(g^T K g)", len(res) == 1 and _is_zero(res[0]))])
    raise AssertionError(name)  # pragma: no cover - every name of DERIVATIONS is handled above


def check_symbolic(config):
    """Runs one derivation of theory/ and reports whether its residual is exactly zero (or, for
    the lambdified derivations, whether they agree with the core to rounding)."""
    return run_derivation(config["derivation"], config["seed"])


def _cycle_sampler():
    def sample(rng, index):
        return {"derivation": DERIVATIONS[index % len(DERIVATIONS)], "seed": int(rng.integers(2**32))}
    return sample


SPECS = [
    ClaimSpec(id="SYMBOLIC", theorem="symbolic", provenance=DERIVED, symbolic="exact",
              statement="SymPy derivations (theory/) reduce to exactly zero residuals; lambdified ones agree with the "
                        "core",
              default=Tier(sample=_cycle_sampler(), check=check_symbolic, quick=len(DERIVATIONS),
                           thorough=len(DERIVATIONS))),
]
