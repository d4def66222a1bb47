"""The SYMBOLIC claim's derivations (theory/, judged by verify/claims/symbolic.py): each passes as
is, and each fails when one ingredient it is named for is wrong (in theory/ or in the core)."""

import numpy as np
import pytest
import sympy as sp

import theory.admissible_step as tadm
import theory.dynamics as tdyn
import theory.gradients as tgrad
import theory.pl_inequality as tpl
import theory.trust_region as ttr
import theory.uniform_bound as tub
import verify.convergence as vconv
import verify.dynamics as vdyn
import verify.losses as vlosses
import verify.trust_region as vtr
from theory.catalogue import DERIVATIONS
from theory.exact import definiteness_witness, is_positive_definite, is_positive_semidefinite, rational_bracket
from verify.claims.symbolic import run_derivation

SEED = 20240607


def judged(name, seed=SEED):
    return run_derivation(name, seed)


def by_prefix(prefix):
    (name,) = [d for d in DERIVATIONS if d.startswith(prefix)]
    return name


# ---- every derivation as is -------------------------------------------------------------------
@pytest.mark.parametrize("name", DERIVATIONS)
def test_each_derivation_passes(name):
    out = judged(name)
    assert out.passed, out.summary()
    assert out.measurements


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("prefix", ["PL constant at", "lambda(A) at", "admissible step at", "trust-region subproblem"])
def test_instance_derivations_pass_at_more_seeds(prefix, seed):
    out = judged(by_prefix(prefix), seed)
    assert out.passed, out.summary()


def test_paper_steps_are_labelled_proof_on_paper():
    for prefix in ("PL inequality", "comparison ODE", "uniform bound", "admissible step:", "trust-region subproblem"):
        assert "proof on paper" in judged(by_prefix(prefix)).detail, prefix


# ---- exact decision helpers ------------------------------------------------------------------
def test_definiteness_witness_is_exact():
    assert is_positive_definite(sp.Matrix([[2, 1], [1, 1]]))
    X = sp.Matrix([[2, 1, 0], [1, 3, 1], [0, 1, -5]])
    holds, x = definiteness_witness(X)
    assert not holds and (x.T * X * x)[0, 0] < 0
    # a PSD matrix with a zero eigenvalue: not PD, but PSD by all principal minors
    P = sp.Matrix([[1, 1], [1, 1]])
    assert not is_positive_definite(P) and is_positive_semidefinite(P)
    # leading minors >= 0 but not PSD (the trailing principal minor is negative)
    assert not is_positive_semidefinite(sp.Matrix([[0, 0], [0, -1]]))
    with pytest.raises(ValueError, match="symmetric"):
        is_positive_definite(sp.Matrix([[1, 2], [0, 1]]))
    with pytest.raises(ValueError, match="rational"):
        is_positive_definite(sp.Matrix([[sp.sqrt(2), 0], [0, 1]]))


def test_rational_bracket_contains_the_value():
    lo, hi = rational_bracket(sp.sqrt(2), sp.Rational(1, 10**9))
    assert lo.is_Rational and hi.is_Rational and lo**2 < 2 < hi**2
    with pytest.raises(ValueError, match="nonzero"):
        rational_bracket(sp.Integer(0), sp.Rational(1, 10))


# ---- Theorem 2: a wrong H, K, threshold or metric G fails --------------------------------------
def _scaled_hessian(monkeypatch, transform):
    original = ttr.derived_hessian

    def wrong(m, m_y, n, loss):
        H, W, Phi, Y = original(m, m_y, n, loss)
        return transform(H), W, Phi, Y

    monkeypatch.setattr(ttr, "derived_hessian", wrong)


def _indefinite(H):
    H = H.copy()
    H[0, 0] = -H[0, 0]
    return H


HESSIAN_MUTANTS = {"3 H": lambda H: 3 * H, "-H": lambda H: -H, "H dropped": lambda H: 0 * H, "indefinite": _indefinite}
STEP_DERIVATIONS = ["admissible step at", "trust-region subproblem", "square-loss Hessian"]


@pytest.mark.parametrize("mutant", list(HESSIAN_MUTANTS))
@pytest.mark.parametrize("prefix", STEP_DERIVATIONS)
def test_wrong_hessian_in_theory_fails(monkeypatch, prefix, mutant):
    _scaled_hessian(monkeypatch, HESSIAN_MUTANTS[mutant])
    assert not judged(by_prefix(prefix)).passed


@pytest.mark.parametrize("prefix", ["admissible step at", "trust-region subproblem"])
def test_metric_without_its_A_part_fails(monkeypatch, prefix):
    def only_B_part(self, point):
        J_B = self.J_B.xreplace(point)
        return J_B * J_B.T

    monkeypatch.setattr(tdyn.DerivedMetric, "K_at", only_B_part)
    assert not judged(by_prefix(prefix)).passed


@pytest.mark.parametrize("prefix", ["admissible step at", "trust-region subproblem"])
def test_G_with_the_wrong_sign_of_H_fails(monkeypatch, prefix):
    monkeypatch.setattr(tadm.StepInstance, "G", lambda self, dt: self.K.LUsolve(sp.eye(self.K.rows)) / dt + self.H)
    assert not judged(by_prefix(prefix)).passed


@pytest.mark.parametrize("prefix", ["admissible step:", "admissible step at", "trust-region subproblem"])
def test_smaller_root_as_lambda_max_fails(monkeypatch, prefix):
    original = tadm.ordered_roots
    monkeypatch.setattr(tadm, "ordered_roots", lambda trace, disc: original(trace, disc)[::-1])
    assert not judged(by_prefix(prefix)).passed


@pytest.mark.parametrize("top", ["lambda_min", "transposed congruence"])
def test_wrong_core_step_bound_fails(monkeypatch, top):
    import scipy.linalg as sla

    def wrong(K, H):
        R = sla.cholesky(K, lower=True)
        if top == "lambda_min":
            value = float(sla.eigh(R.T @ H @ R, eigvals_only=True)[0])
        else:
            value = float(sla.eigh(R @ H @ R.T, eigvals_only=True)[-1])
        return float("inf") if value <= 0 else 1.0 / value

    monkeypatch.setattr(vtr, "admissible_step_bound", wrong)
    assert not judged(by_prefix("admissible step at")).passed


def test_subproblem_facts_on_both_sides_of_the_threshold():
    inst = tadm.step_instance(2, 1, 2, np.random.default_rng(SEED))
    assert inst.dt_below < inst.dt_above
    assert is_positive_definite(inst.G(inst.dt_below)) and not is_positive_definite(inst.G(inst.dt_above))
    facts = tadm.subproblem_instance(inst)
    assert all(facts.values()), facts
    # the identities hold for every H; only the definiteness of G depends on it
    assert any("every H" in name for name in facts) and any("depends on H" in name for name in facts)


def test_step_instance_rejects_sizes_other_than_two():
    with pytest.raises(ValueError, match="m \\* m_y must be 2"):
        tadm.step_instance(2, 2, 2, np.random.default_rng(0))


# ---- PL: a wrong kappa fails --------------------------------------------------------------------
@pytest.mark.parametrize("wrong", ["2 x smallest", "largest", "half of smallest"])
@pytest.mark.parametrize("prefix", ["PL inequality", "PL constant at"])
def test_wrong_pl_constant_in_theory_fails(monkeypatch, prefix, wrong):
    original = tpl.pl_constant
    factor = {"2 x smallest": 2, "half of smallest": sp.Rational(1, 2)}.get(wrong)
    if factor is None:
        monkeypatch.setattr(tpl, "pl_constant", lambda ls: sp.Max(*[x for x in ls if x.is_zero is not True]))
    else:
        monkeypatch.setattr(tpl, "pl_constant", lambda ls: factor * original(ls))
    out = judged(by_prefix(prefix))
    if wrong == "half of smallest" and prefix == "PL constant at":
        # kappa/2 is a valid (not the best) constant at the instance: the core comparison catches it
        assert any("core pl_constant" in name for name in out.failing)
    assert not out.passed


@pytest.mark.parametrize("wrong", ["2 x", "zero singular value kept"])
def test_wrong_core_pl_constant_fails(monkeypatch, wrong):
    original = vlosses.ShallowProblem.__dict__["pl_constant"].func
    if wrong == "2 x":
        monkeypatch.setattr(vlosses.ShallowProblem, "pl_constant", property(lambda self: 2 * original(self)))
    else:
        import scipy.linalg as sla

        monkeypatch.setattr(
            vlosses.ShallowProblem, "pl_constant", property(lambda self: float(np.min(sla.svdvals(self.Phi)) ** 2))
        )
    assert not judged(by_prefix("PL constant at")).passed


def test_pl_derivation_with_an_excess_off_by_a_factor_fails(monkeypatch):
    # the gradient is derived from the excess: E = d C d^T (no 1/2) breaks grad E = d C
    monkeypatch.setattr(tpl, "square_loss_excess", lambda d, C: (d * C * d.T)[0, 0])
    out = judged(by_prefix("PL inequality"))
    assert "grad E = d C (derived by differentiating the excess)" in out.failing


# ---- the uniform bound and lambda at the concentrated softmax -------------------------------------
def test_row_normalised_softmax_fails_the_norm_facts(monkeypatch):
    def row_normalised(E):
        sums = [sum(E[i, :]) for i in range(E.rows)]
        return sp.Matrix(E.rows, E.cols, lambda i, j: E[i, j] / sums[i])

    monkeypatch.setattr(tub, "column_softmax_from_exponentials", row_normalised)
    assert not judged(by_prefix("uniform bound")).passed


@pytest.mark.parametrize("wrong", ["0.95 lambda", "1/||U||", "other A"])
def test_wrong_core_lambda_at_the_concentrated_softmax_fails(monkeypatch, wrong):
    if wrong == "0.95 lambda":
        original = vconv.rate_constant
        monkeypatch.setattr(vconv, "rate_constant", lambda A, *, gamma: 0.95 * original(A, gamma=gamma))
    elif wrong == "1/||U||":
        monkeypatch.setattr(
            vconv,
            "rate_constant",
            lambda A, *, gamma: 1.0 / float(np.linalg.norm(np.eye(A.shape[0]) - gamma * vconv.column_softmax(A), 2)),
        )
    else:
        original_weight = vconv.concentrated_weight
        monkeypatch.setattr(vconv, "concentrated_weight", lambda m: original_weight(m, logit_gap=20.0))
    assert not judged(by_prefix("lambda(A) at")).passed


def test_concentrated_rate_without_gamma_fails(monkeypatch):
    original = tub.gram_of_implicit_matrix
    monkeypatch.setattr(tub, "gram_of_implicit_matrix", lambda s, gamma: original(s, 1))  # U = I - S
    assert not judged(by_prefix("lambda(A) at")).passed


def test_concentrated_rate_agrees_with_the_core_at_the_documented_instance():
    """docs/theory.md, section 4: m = 30, gamma = 0.9 gives lambda ~ 0.0408 < 0.277 (naive)."""
    m, gamma = 30, sp.Rational(9, 10)
    rate = tub.concentrated_rate(m, gamma)
    assert all(rate.facts.values()) and rate.naive_bound_fails
    assert abs(float(rate.lam) - 0.0408) < 5e-4
    # gamma = 0.9 is not a binary fraction: the core's gamma differs by <= eps/2 relative, which
    # moves lambda by about 2 gamma ||S|| ||U^-1|| eps relative; 1e-13 covers it with room
    core = vconv.rate_constant(vconv.concentrated_weight(m), gamma=0.9)
    assert abs(float(rate.lam) - core) <= 1e-13 * core


def test_concentrated_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="m must be >= 3"):
        tub.concentrated_rate(2, sp.Rational(1, 2))
    with pytest.raises(ValueError, match="gamma"):
        tub.concentrated_rate(5, 1)


# ---- the remaining derivations: one wrong ingredient each ------------------------------------------
def test_wrong_softmax_jacobian_fails(monkeypatch):
    monkeypatch.setattr(tgrad, "closed_form_softmax_jacobian", lambda s: sp.diag(*s) - s * s.T / 2)
    assert not judged("softmax Jacobian").passed


def test_conservation_fails_for_a_row_normalised_softmax(monkeypatch):
    def row_normalised(E):
        sums = [sum(E[i, :]) for i in range(E.rows)]
        return sp.Matrix(E.rows, E.cols, lambda i, j: E[i, j] / sums[i])

    monkeypatch.setattr(tgrad, "column_softmax_from_exponentials", row_normalised)
    assert not judged("conservation (column homogeneity)").passed


def test_metric_closed_form_without_gamma_squared_fails(monkeypatch):
    original = tdyn.closed_form_metric_terms

    def wrong(metric, point):
        first, second = original(metric, point)
        return first, second / point[metric.gamma] ** 2

    monkeypatch.setattr(tdyn, "closed_form_metric_terms", wrong)
    assert not judged("metric K = J J^T (exact rational point)").passed


def test_wrong_core_preconditioner_fails(monkeypatch):
    original = vdyn.preconditioner
    monkeypatch.setattr(vdyn, "preconditioner", lambda A, B, *, gamma: 1.001 * original(A, B, gamma=gamma))
    assert not judged("metric K lambdified = verify.dynamics.preconditioner").passed


def test_comparison_solution_without_the_factor_two_fails(monkeypatch):
    monkeypatch.setattr(
        tdyn,
        "claimed_comparison_solution",
        lambda E0, kappa, lam, t, s: E0 * sp.exp(-kappa * sp.Integral(lam(s), (s, 0, t))),
    )
    assert not judged("comparison ODE solved by dsolve").passed


def test_euclidean_steepest_descent_fails(monkeypatch):
    monkeypatch.setattr(ttr, "claimed_steepest_descent", lambda K, g, r: -r * g / sp.sqrt((g.T * g)[0, 0]))
    assert not judged("steepest descent in metric K^-1").passed
