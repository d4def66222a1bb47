"""Theorem 2's admissible step and trust-region subproblem, derived in SymPy (docs/theory.md, section 6).

**The theorem (2 x 2, every symmetric H).** With K = R R^T (R lower triangular, positive diagonal),
H = [[h00, h01], [h01, h11]] real symbols and mu = 1/dt, :func:`admissible_step_theorem` derives

1. R^T G R = I/dt - M, M = R^T H R (a congruence; an identity for every H);
2. det(mu I - M) = (mu - l1)(mu - l2), l1,2 = (tr M -+ sqrt(disc))/2;
3. disc = (M00 - M11)^2 + 4 M01^2 >= 0 (SymPy decides the sign): l1 <= l2 are real and
   l2 - l1 = sqrt(disc) >= 0, so l2 = lambda_max(M) = lambda_max(K^{1/2} H K^{1/2});
4. charpoly_M(M00) = -M01^2 <= 0 and (x - l1)(x - l2) > 0 for x outside [l1, l2]: l1 <= M00 <= l2
   (interlacing);
5. with l1 = a, M00 = a + u, l2 = a + u + w (u, w >= 0): for mu = l2 + p (p > 0) both leading
   minors mu - M00 and det(mu I - M) of mu I - M are > 0; for mu <= l2, mu - M00 > 0 forces
   det <= 0 (SymPy decides every sign);
6. mu > l2 iff dt < 1/l2 for l2 > 0 (solve_univariate_inequality); every dt > 0 when l2 <= 0.

Proof on paper (standard facts, not SymPy): a congruence by an invertible R preserves
definiteness; Sylvester's criterion (X > 0 iff its leading principal minors are > 0). The theorem
holds for every symmetric H: it is a theorem about the bound's formula, not evidence for the
Hessian.

**Instances (evidence for K and H).** :func:`step_instance` takes the model's *derived* K
(:func:`theory.dynamics.derive_metric` at an exact rational point, m m_y = 2) and the *derived*
Hessian of L0 (:func:`theory.trust_region.derived_hessian`, sympy.hessian of the loss), gets the
threshold 1/lambda_max(K H) exactly (an algebraic number: the largest root of a quadratic with
rational coefficients), and decides G_dt > 0 at a rational dt just below it and G_dt not > 0 (a
rational x with x^T G x < 0) just above. The threshold is compared with the numerical core in
verify/claims/symbolic.py; there a wrong H or K fails.

**The subproblem.** :func:`subproblem_instance`: at dt below the threshold G > 0, delta^2 =
v*^T G v* > 0, and the exact identity q(v) - q(v*) = 1/2 (v - v*)^T (H + G)(v - v*) +
1/2 (delta^2 - v^T G v) with H + G = K^{-1}/dt > 0 makes v* = -dt K g the unique global minimiser
over the bounded ellipsoid v^T G v <= delta^2 (stationarity and the identity hold for every H);
above the threshold G is no metric: for g = -K^{-1} x / dt the Euler step is x and delta^2 =
x^T G x < 0, no real radius. That G > 0 is the part that depends on H.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import dynamics, trust_region
from .exact import definiteness_witness, is_positive_definite, is_zero, rational_bracket
from .symbolic_model import build, random_rational_point

#: how far (relative) the rational step sizes of an instance sit below and above the threshold
THRESHOLD_GAP = sp.Rational(1, 10**9)


# ---- the theorem ------------------------------------------------------------------------------
def ordered_roots(trace: sp.Expr, disc: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """(l1, l2) = ((trace - sqrt(disc)) / 2, (trace + sqrt(disc)) / 2): the roots of
    x^2 - trace x + det, disc = trace^2 - 4 det, the larger second."""
    root = sp.sqrt(disc)
    return (trace - root) / 2, (trace + root) / 2


def eigenvalues_2x2(M: sp.Matrix) -> tuple[sp.Expr, sp.Expr]:
    """(l1, l2), the roots of charpoly(M) by :func:`ordered_roots`; l2 = lambda_max when they are real."""
    return ordered_roots(M.trace(), M.trace() ** 2 - 4 * M.det())


def admissible_step_theorem() -> dict[str, bool]:
    """The steps 1-6 of the module docstring; each value is a truth value SymPy decided."""
    dt, mu = sp.symbols("dt mu", positive=True)
    r00, r11 = sp.symbols("r00 r11", positive=True)
    r10, h00, h01, h11 = sp.symbols("r10 h00 h01 h11", real=True)
    R = sp.Matrix([[r00, 0], [r10, r11]])
    H = sp.Matrix([[h00, h01], [h01, h11]])
    K = R * R.T
    G = K.inv() / dt - H
    M = R.T * H * R
    steps = {}
    steps["congruence R^T G R = I/dt - R^T H R (identity, every H)"] = is_zero(
        (R.T * G * R - (sp.eye(2) / dt - M)).applyfunc(sp.cancel)
    )

    X = mu * sp.eye(2) - M
    disc = sp.expand(M.trace() ** 2 - 4 * M.det())
    sos = (M[0, 0] - M[1, 1]) ** 2 + 4 * M[0, 1] ** 2
    steps["disc = tr(M)^2 - 4 det M = (M00 - M11)^2 + 4 M01^2 >= 0: real roots"] = (
        is_zero(sp.expand(disc - sos)) and sos.is_nonnegative is True
    )
    # the roots of eigenvalues_2x2, with the discriminant in its sum-of-squares form
    l1, l2 = ordered_roots(M.trace(), sos)
    steps["det(mu I - M) = (mu - l1)(mu - l2)"] = is_zero(sp.expand(X.det() - (mu - l1) * (mu - l2)))
    steps["l2 - l1 = sqrt(disc) >= 0: l2 = lambda_max(M)"] = (l2 - l1).is_nonnegative is True

    charpoly_at_m00 = X.det().subs(mu, M[0, 0])
    steps["charpoly_M(M00) = -M01^2 <= 0"] = (
        is_zero(sp.expand(charpoly_at_m00 + M[0, 1] ** 2)) and (-(M[0, 1] ** 2)).is_nonpositive is True
    )
    a = sp.Symbol("a", real=True)
    u, p, q = sp.symbols("u p q", positive=True)
    w, s = sp.symbols("w s", nonnegative=True)
    lo, hi = a, a + w  # l1 <= l2
    steps["(x - l1)(x - l2) > 0 for x < l1 and x > l2: l1 <= M00 <= l2"] = all(
        ((x - lo) * (x - hi)).is_positive is True for x in (lo - u, hi + u)
    )

    # ordered parameters: l1 = a, M00 = a + u, l2 = a + u + w (u, w >= 0 by the interlacing)
    u0 = sp.Symbol("u0", nonnegative=True)
    L1, M00, L2 = a, a + u0, a + u0 + w
    mu_above = L2 + p
    steps["mu > l2: mu - M00 > 0 and det(mu I - M) > 0"] = (mu_above - M00).is_positive is True and (
        (mu_above - L1) * (mu_above - L2)
    ).is_positive is True
    # mu <= l2 with mu - M00 = q > 0: then w = q + s (s >= 0) and mu = l2 - s
    mu_below = M00 + q
    det_below = ((mu_below - L1) * (mu_below - L2)).subs(w, q + s)
    steps["mu <= l2 and mu - M00 > 0: det(mu I - M) <= 0"] = det_below.is_nonpositive is True

    lam = sp.Symbol("lambda_max", positive=True)
    solved = sp.solve_univariate_inequality(1 / dt - lam > 0, dt, relational=True)
    steps["1/dt > lambda_max > 0 iff dt < 1/lambda_max (solved)"] = bool(solved == (dt < 1 / lam))
    lam_np = sp.Symbol("lambda_np", nonpositive=True)
    steps["lambda_max <= 0: 1/dt > lambda_max for every dt > 0"] = (1 / dt - lam_np).is_positive is True
    return steps


# ---- instances at the derived K and H -----------------------------------------------------
@dataclass(frozen=True)
class StepInstance:
    """Exact K (derived metric) and H (derived Hessian of L0) at a rational point.

    ``threshold`` is 1/lambda_max(K H) (sympy.oo when lambda_max <= 0), ``dt_below`` < threshold
    < ``dt_above`` rationals (None when the threshold is infinite); ``facts`` maps statements to
    the truth values SymPy decided; ``gamma``, ``E`` (e_ij = exp(A_ij)) and ``B`` the rational
    point of K; ``Phi``, ``Y`` and ``W`` the data and the shallow weight at which H and g are
    evaluated.
    """

    m: int
    m_y: int
    n: int
    gamma: sp.Rational
    E: sp.Matrix
    B: sp.Matrix
    Phi: sp.Matrix
    Y: sp.Matrix
    W: sp.Matrix
    K: sp.Matrix
    H: sp.Matrix
    lambda_max: sp.Expr
    threshold: sp.Expr
    dt_below: sp.Rational | None
    dt_above: sp.Rational | None
    facts: dict = field(default_factory=dict)

    def G(self, dt) -> sp.Matrix:
        """G_dt = K^{-1}/dt - H, exactly (K^{-1} by an exact LU solve)."""
        return self.K.LUsolve(sp.eye(self.K.rows)) / dt - self.H


def _rational_matrix(rng: np.random.Generator, rows: int, cols: int, denominator: int = 16) -> sp.Matrix:
    return sp.Matrix(
        rows, cols, lambda i, j: sp.Rational(int(rng.integers(-2 * denominator, 2 * denominator + 1)), denominator)
    )


def step_instance(m: int, m_y: int, n: int, rng: np.random.Generator) -> StepInstance:
    """The derived K and H at a rational point, the exact threshold, and G_dt on both sides of it."""
    if m * m_y != 2:
        raise ValueError(f"m * m_y must be 2 (2 x 2 K and H); got m={m}, m_y={m_y}")
    D = dynamics.derive_metric(m, m_y)
    point = random_rational_point(build(m, m_y, 1, "square"), rng)
    K = D.K_at(point)
    head = (m, m_y, n, point[D.gamma], D.E.xreplace(point), D.B.xreplace(point))
    H_sym, W_sym, Phi_sym, Y_sym = trust_region.derived_hessian(m, m_y, n, "square")
    Phi, Y, W = _rational_matrix(rng, m, n), _rational_matrix(rng, m_y, n), _rational_matrix(rng, m_y, m)
    data = dict(zip(list(W_sym) + list(Phi_sym) + list(Y_sym), list(W) + list(Phi) + list(Y)))
    H = H_sym.xreplace(data)
    facts = {
        "K = J J^T > 0 (derived metric; exact)": is_positive_definite(K),
        "H symmetric (derived Hessian of L0)": H == H.T,
    }

    # lambda(K^{1/2} H K^{1/2}) = lambda(R^T H R) = lambda(K H) (R^T H R = R^{-1} (K H) R)
    R = K.cholesky(hermitian=False)
    M = R.T * H * R
    KH = K * H
    facts["charpoly(R^T H R) = charpoly(K H)"] = (
        sp.radsimp(sp.expand(M.trace() - KH.trace())) == 0 and sp.radsimp(sp.expand(M.det() - KH.det())) == 0
    )
    x = sp.Symbol("x")
    poly = sp.Poly(KH.charpoly(x).as_expr(), x)
    _, lam = eigenvalues_2x2(KH)
    facts["lambda_max is a root of charpoly(K H)"] = sp.simplify(poly.as_expr().subs(x, lam)) == 0

    if lam.is_positive is not True:
        # lambda_max <= 0: G_dt > 0 for every dt (theorem); spot-check two step sizes
        facts["lambda_max <= 0: G_dt > 0 at dt = 1 and 10^6"] = all(
            is_positive_definite(K.LUsolve(sp.eye(2)) / dt - H) for dt in (sp.Integer(1), sp.Integer(10**6))
        )
        return StepInstance(*head, Phi, Y, W, K, H, lam, sp.oo, None, None, facts)

    lam_lo, lam_hi = rational_bracket(lam, THRESHOLD_GAP)
    facts["one root of charpoly(K H) between lam_lo and lam_hi, none above (Sturm)"] = (
        poly.eval(lam_lo) != 0
        and poly.eval(lam_hi) != 0
        and poly.count_roots(lam_lo, lam_hi) == 1
        and poly.count_roots(lam_hi, None) == 0
    )
    dt_below, dt_above = 1 / lam_hi, 1 / lam_lo
    inst = StepInstance(*head, Phi, Y, W, K, H, lam, 1 / lam, dt_below, dt_above, facts)
    facts["G_dt > 0 at dt just below the threshold (exact)"] = is_positive_definite(inst.G(dt_below))
    holds, witness = definiteness_witness(inst.G(dt_above))
    facts["G_dt not > 0 just above: x^T G x <= 0 at a rational x"] = (not holds) and witness is not None
    return inst


def subproblem_instance(inst: StepInstance) -> dict[str, bool]:
    """The trust-region subproblem min q(v) = g^T v + 1/2 v^T H v s.t. v^T G v <= delta^2 at the
    derived K and H on both sides of the threshold (see the module docstring); g = vec(grad L0(W))
    derived by differentiating L0."""
    L0, W_sym, Phi_sym, Y_sym = trust_region.derived_loss(inst.m, inst.m_y, inst.n, "square")
    data = dict(zip(list(W_sym) + list(Phi_sym) + list(Y_sym), list(inst.W) + list(inst.Phi) + list(inst.Y)))
    w = [W_sym[i, j] for j in range(inst.m) for i in range(inst.m_y)]  # column-major vec(W)
    g = sp.Matrix([sp.diff(L0, wi).xreplace(data) for wi in w])
    size = inst.K.rows
    v = sp.Matrix(sp.symbols(f"v0:{size}", real=True))
    facts = {}

    # lambda_max <= 0: every dt is admissible (the theorem); the below-side facts at dt = 1
    dt = inst.dt_below if inst.dt_below is not None else sp.Integer(1)
    G = inst.G(dt)
    v_star = -dt * inst.K * g
    delta_sq = (v_star.T * G * v_star)[0, 0]
    q = lambda x: (g.T * x)[0, 0] + sp.Rational(1, 2) * (x.T * inst.H * x)[0, 0]  # noqa: E731
    facts["below: G > 0 (depends on H)"] = is_positive_definite(G)
    facts["below: delta^2 = v*^T G v* > 0 (a real radius)"] = bool(delta_sq > 0)
    facts["below: (H + 1 G) v* + g = 0 (identity, every H)"] = is_zero(sp.expand((inst.H + G) * v_star + g))
    gap = (
        q(v)
        - q(v_star)
        - (
            sp.Rational(1, 2) * ((v - v_star).T * (inst.H + G) * (v - v_star))[0, 0]
            + sp.Rational(1, 2) * (delta_sq - (v.T * G * v)[0, 0])
        )
    )
    facts["below: q(v) - q(v*) = 1/2 |v - v*|^2_(H+G) + 1/2 (delta^2 - |v|^2_G) (identity, every H)"] = is_zero(
        sp.expand(gap)
    )
    facts["below: H + G = K^{-1}/dt > 0 (K only): with the identity, v* is the unique global minimiser"] = (
        is_positive_definite(inst.H + G)
    )

    if inst.dt_above is None:
        facts["lambda_max <= 0: no step size above the threshold"] = True
        return facts
    dt = inst.dt_above
    G = inst.G(dt)
    holds, x = definiteness_witness(G)
    if holds:
        facts["above: a rational x with x^T G x < 0"] = False
        return facts
    g_x = -inst.K.LUsolve(x) / dt
    step = -dt * inst.K * g_x
    radius_sq = (step.T * G * step)[0, 0]
    facts["above: g = -K^{-1} x/dt has Euler step x with x^T G x < 0 (no real radius)"] = step == x and bool(
        radius_sq < 0
    )
    return facts


__all__ = [
    "admissible_step_theorem",
    "ordered_roots",
    "eigenvalues_2x2",
    "StepInstance",
    "step_instance",
    "subproblem_instance",
    "THRESHOLD_GAP",
]
