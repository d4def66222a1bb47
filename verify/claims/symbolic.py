"""The SYMBOLIC claim: every derivation of :mod:`theory` is run and judged.

Two kinds of evidence, never mixed up:

- ``exact``: a residual SymPy simplifies to exactly 0, or a truth value SymPy decides (a sign
  under assumptions, a Sturm root count, an exact rational definiteness test). A step that holds
  for every H (or every K) is named so: it is no evidence for the Hessian (or the metric).
- ``equality``: an exact (or 30-digit) value of a derivation at an instance against the numerical
  core, to a rounding tolerance derived here from the core's floating-point operations.

Steps that stay on paper are named in the outcome's detail as "proof on paper". theory/ imports
nothing from verify/: this module is where the derivations meet the core.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory.catalogue import DERIVATIONS
from theory.symbolic_model import column_softmax_from_exponentials

from ..results import DERIVED, EPS, condition, equal, exact, outcome
from .spec import ClaimSpec, Tier


def _is_zero(x) -> bool:
    if isinstance(x, sp.MatrixBase):
        return x == sp.zeros(*x.shape)
    return x == 0


def _facts(facts: dict, prefix: str = "") -> list:
    return [exact(prefix + name, bool(value)) for name, value in facts.items()]


def _float_matrix(M: sp.Matrix) -> np.ndarray:
    return np.array([[float(x) for x in M.row(i)] for i in range(M.rows)], dtype=float)


# ---- Theorem 2: the admissible step against the core ------------------------------------------
def threshold_tolerance(inst, threshold: float) -> float:
    """|dt_core - dt_exact| for dt = 1/lambda_max(K^{1/2} H K^{1/2}), core: K = preconditioner(A, B),
    H = kron(Phi Phi^T, I), then Cholesky K = R R^T and eigh(R^T H R) (p = m m_y = size of K).

    For SPD K' with ||K' - K||_2 <= e, (1 -+ e/lambda_min(K)) K bounds K', so lambda_max moves by a
    relative e/lambda_min(K) (H >= 0); an absolute error E_H in H moves it by <= ||K||_2 ||E_H||_2.
    Terms (relative): K from :func:`verify.rounding.metric_tolerance` (a bound on the difference of
    two float computations of K, so on one computation's error twice over; the rounding of
    A = log(e), <= eps |A| relative in e, is far below the other half, (3 m + m + 3) eps); H from
    n-term inner products, ||E_H|| <= n eps ||Phi||_F^2; Cholesky backward error (p + 1) p eps
    ||K||_2 (Higham, Thm. 10.3), i.e. (p + 1) p eps cond(K); forming R^T H R (2 p eps ||K|| ||H||)
    and eigh (p eps ||R^T H R|| <= p eps ||K|| ||H||). The threshold's relative error is the
    same to first order, and 1/(1 - delta) covers the second.
    """
    from ..rounding import metric_tolerance

    m, m_y, n = inst.m, inst.m_y, inst.n
    p = m * m_y
    K, H = _float_matrix(inst.K), _float_matrix(inst.H)
    eig_K = np.linalg.eigvalsh(K)  # of the exact K: the tolerance does not use the core's values
    lam_max = 1.0 / threshold
    U = sp.eye(m) - inst.gamma * column_softmax_from_exponentials(inst.E)
    W = _float_matrix(inst.B * U.inv())
    Phi = _float_matrix(inst.Phi)
    norm_K, norm_H = eig_K[-1], float(np.linalg.norm(H, 2))
    delta = (
        metric_tolerance(W, m, float(inst.gamma)) / eig_K[0]
        + norm_K * n * EPS * float(np.sum(Phi * Phi)) / lam_max
        + (p + 1) * p * EPS * norm_K / eig_K[0]
        + 3 * p * EPS * norm_K * norm_H / lam_max
    )
    return threshold * delta / (1 - delta)


def threshold_against_core(inst) -> list:
    """The exact threshold of a :class:`theory.admissible_step.StepInstance` against
    ``verify.trust_region.admissible_step_bound`` with the core's K and H at the same point."""
    from ..dynamics import preconditioner
    from ..losses import ShallowProblem
    from ..trust_region import admissible_step_bound

    A = np.log(_float_matrix(inst.E))
    K_core = preconditioner(A, _float_matrix(inst.B), gamma=float(inst.gamma))
    H_core = ShallowProblem(_float_matrix(inst.Phi), _float_matrix(inst.Y), "square").hessian()
    core = admissible_step_bound(K_core, H_core)
    name = f"exact 1/lambda_max(K^1/2 H K^1/2) = core admissible_step_bound (m={inst.m}, m_y={inst.m_y})"
    if inst.threshold == sp.oo:
        return [condition(name + " (both infinite)", core == float("inf"))]
    exact_value = float(sp.N(inst.threshold, 30))
    if not np.isfinite(core):
        return [equal(name, float("inf"), 0.0)]
    return [equal(name, abs(core - exact_value), threshold_tolerance(inst, exact_value))]


def _step_instances(rng):
    from theory.admissible_step import step_instance

    # m m_y = 2: (2, 1) has a full 2 x 2 K, (1, 2) has K = I/(1 - gamma)^2 and a double eigenvalue
    return [step_instance(2, 1, 2, rng), step_instance(1, 2, 2, rng)]


# ---- Theorem 1: kappa and lambda against the core ---------------------------------------------
def kappa_against_core(inst) -> list:
    from ..losses import ShallowProblem
    from ..rounding import kappa_tolerance

    Phi = _float_matrix(inst.Phi)
    m, n = Phi.shape
    core = ShallowProblem(Phi, _float_matrix(inst.Y), "square").pl_constant
    exact_value = float(sp.N(inst.kappa, 30))
    # the exact singular values of Phi: square roots of the eigenvalues of the smaller Gram matrix
    small = inst.Phi.T * inst.Phi if m > n else inst.Phi * inst.Phi.T
    x = sp.Symbol("x")
    s = np.sqrt([float(sp.N(r, 30)) for r in sp.Poly(small.charpoly(x).as_expr(), x).all_roots()])
    return [equal(f"exact kappa = core pl_constant (m={m}, n={n})", abs(core - exact_value), kappa_tolerance(s, m, n))]


def rate_tolerance_concentrated(lam: float, m: int, gamma: float, S: np.ndarray) -> float:
    """|lambda_core - lambda_exact| for the core's lambda = 1/||fl(I - gamma fl(sigma(A)))||_2^2 by SVD.

    fl(sigma(A)): exp, an m-term column sum and a division, relative (m + 3) eps per entry; U =
    I - gamma S adds eps |U| + eps gamma |S| entrywise, so ||dU||_F <= eps ||U||_F + (m + 4) eps gamma
    ||S||_F; the SVD's sigma_max has relative error <= (m + 3) eps (backward stable, Weyl).
    lambda = 1/sigma^2 doubles the relative error of sigma, and the square and division add 2 eps.
    """
    U = np.eye(m) - gamma * S
    sigma = float(np.linalg.norm(U, 2))
    rel_sigma = (m + 3) * EPS + (EPS * np.linalg.norm(U) + (m + 4) * EPS * gamma * np.linalg.norm(S)) / sigma
    return lam * (2 * rel_sigma + 2 * EPS)


def concentrated_against_core(rate) -> list:
    from ..convergence import concentrated_weight, rate_constant

    A_core = concentrated_weight(rate.m)
    gamma = float(rate.gamma)
    lam_exact = float(sp.N(rate.lam, 30))
    S = _float_matrix(rate.S.applyfunc(lambda x: sp.N(x, 30)))
    return [
        condition(
            "the core's concentrated_weight(m) is the derivation's A",
            bool(np.array_equal(A_core, _float_matrix(rate.A))),
        ),
        equal(
            f"exact lambda = core rate_constant (m={rate.m}, gamma={gamma})",
            abs(rate_constant(A_core, gamma=gamma) - lam_exact),
            rate_tolerance_concentrated(lam_exact, rate.m, gamma, S),
        ),
    ]


# ---- the derivations ------------------------------------------------------------------------
PAPER_UNIFORM = (
    "proof on paper: ||S||_2 <= sqrt(||S||_1 ||S||_inf), ||U||_2 <= 1 + gamma ||S||_2, hence "
    "lambda(A) >= 1/(1 + gamma sqrt(m))^2"
)
PAPER_ADMISSIBLE = (
    "proof on paper: congruence by an invertible R preserves definiteness; Sylvester's criterion "
    "(X > 0 iff its leading principal minors are > 0); theorem holds for every symmetric H"
)
PAPER_PL = "proof on paper: any size and m_y > 1 by the same identity in eigen-coordinates, row by row"
PAPER_SUBPROBLEM = (
    "proof on paper: delta^2 >= v^T G v on the feasible set, so the identity gives q(v) >= q(v*), "
    "equality only at v = v* (H + G > 0)"
)


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
        return outcome(
            [
                exact("J_A J_A^T = gamma^2 sum_j (U^-T e_j e_j^T U^-1) (x) (W J_j^2 W^T)", JA * JA.T == second),
                exact("J_B J_B^T = (U^-T U^-1) (x) I", JB * JB.T == first),
            ]
        )
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
            meas.append(
                equal(
                    f"derived K = core K (m={m}, m_y={m_y})",
                    float(np.linalg.norm(K_sym - preconditioner(A, B, gamma=gamma))),
                    tol,
                )
            )
        return outcome(meas)
    if name == "PL inequality: kappa = smallest nonzero eigenvalue (2 x 2)":
        from theory.pl_inequality import pl_derivation

        return outcome(_facts(pl_derivation()), PAPER_PL)
    if name == "PL constant at rational data = verify.losses pl_constant":
        from theory.pl_inequality import pl_instance

        meas = []
        # m > n: a zero eigenvalue; m < n: L* > 0; rank 2 < min(m, n): a zero singular value in floats
        for m, n, rank in ((3, 2, 2), (2, 3, 2), (3, 3, 2)):
            inst = pl_instance(m, n, rng, rank)
            meas += _facts(inst.facts, f"(m={m}, n={n}, rank {rank}) ") + kappa_against_core(inst)
        return outcome(meas)
    if name == "comparison ODE solved by dsolve":
        d_ratio, initial = tdyn.comparison_ode()
        return outcome(
            [
                exact("d/dt (dsolve solution / E_0 exp(-2 kappa int_0^t lambda)) = 0", _is_zero(d_ratio)),
                exact("the claimed solution starts at E_0", _is_zero(initial)),
            ],
            "proof on paper: the comparison principle (theory.dynamics.comparison_ode)",
        )
    if name == "uniform bound: ||sigma(A)||_1 = 1, ||sigma(A)||_inf <= m":
        from theory.uniform_bound import softmax_norm_facts

        return outcome(_facts(softmax_norm_facts(3)), PAPER_UNIFORM)
    if name == "lambda(A) at the concentrated softmax = verify.convergence.rate_constant":
        from theory.uniform_bound import concentrated_rate

        # m >= 10 and gamma >= 3/4 (exact binary fractions): there the naive bound fails by a factor
        # >= 2 (NAIVE-BOUND-FALSE), so deciding lambda < 1/(1 + gamma)^2 is a fact of every sample
        m, gamma = int(rng.integers(10, 41)), sp.Rational(int(rng.integers(48, 64)), 64)
        rate = concentrated_rate(m, gamma)
        return outcome(
            _facts(rate.facts)
            + [exact("lambda(A) < 1/(1 + gamma)^2: the naive bound fails here", rate.naive_bound_fails)]
            + concentrated_against_core(rate),
            "proof on paper: none (the spectrum of U^T U is derived on span{1, s} and its complement)",
        )
    if name == "square-loss Hessian = (Phi Phi^T) (x) I":
        H, W, Phi, Y = ttr.derived_hessian(2, 2, 3, "square")
        closed = sp.kronecker_product(Phi * Phi.T, sp.eye(2))
        return outcome([exact(name, _is_zero((H - closed).applyfunc(sp.expand)))])
    if name == "admissible step: G_dt > 0 iff dt < 1/lambda_max (2 x 2, every symmetric H)":
        from theory.admissible_step import admissible_step_theorem

        return outcome(_facts(admissible_step_theorem()), PAPER_ADMISSIBLE)
    if name == "admissible step at the derived K and H = verify.trust_region.admissible_step_bound":
        meas = []
        for inst in _step_instances(rng):
            meas += _facts(inst.facts, f"(m={inst.m}, m_y={inst.m_y}) ") + threshold_against_core(inst)
        return outcome(meas)
    if name == "trust-region subproblem at the derived K and H, both sides of the threshold":
        from theory.admissible_step import subproblem_instance

        meas = []
        for inst in _step_instances(rng):
            meas += _facts(subproblem_instance(inst), f"(m={inst.m}, m_y={inst.m_y}) ") + threshold_against_core(inst)
        return outcome(meas, PAPER_SUBPROBLEM)
    if name == "steepest descent in metric K^-1":
        res = ttr.steepest_descent_in_metric(2)
        return outcome(
            [
                exact(
                    "one positive multiplier, v = -r K g / sqrt(g^T K g) (every SPD K)",
                    len(res) == 1 and _is_zero(res[0]),
                )
            ]
        )
    raise AssertionError(name)  # pragma: no cover - every name of DERIVATIONS is handled above


def check_symbolic(config):
    """Runs one derivation of theory/ and reports whether its residuals are exactly zero and its
    decided facts true (and, for instances, whether they agree with the core to rounding)."""
    return run_derivation(config["derivation"], config["seed"])


def _cycle_sampler():
    def sample(rng, index):
        return {"derivation": DERIVATIONS[index % len(DERIVATIONS)], "seed": int(rng.integers(2**32))}

    return sample


SPECS = [
    ClaimSpec(
        id="SYMBOLIC",
        theorem="symbolic",
        provenance=DERIVED,
        symbolic="exact",
        statement="SymPy derivations (theory/): residuals exactly zero and signs decided; exact instances at "
        "the derived K, H and kappa agree with the core",
        default=Tier(sample=_cycle_sampler(), check=check_symbolic, quick=len(DERIVATIONS), thorough=len(DERIVATIONS)),
    )
]
