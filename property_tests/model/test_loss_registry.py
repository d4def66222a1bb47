"""The loss registry (verify/losses/registry.py): every loss is one registered object, with a
reference implementation (verify/reference.py) and a symbolic form (theory/losses.py) under the same
name; the pseudo-Huber loss (docs/theory.md, section 5) against the reference; a toy loss added by
one registration works through the public API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theory import losses as symbolic
from verify import reference as ref
from verify.gradients import loss_and_grad
from verify.losses import ShallowProblem, get_loss, loss_names, register, unregister

EPS = np.finfo(np.float64).eps


def test_every_loss_has_a_reference_and_a_symbolic_form():
    for name in loss_names():
        assert name in ref.REFERENCE_LOSSES, f"the reference has no implementation of the {name} loss"
        assert name in symbolic.SYMBOLIC_LOSSES, f"theory/losses.py has no symbolic form of the {name} loss"
        assert get_loss(name) == name and str(get_loss(name)) == name


def test_unknown_loss_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="loss must be one of .*pseudo_huber"):
        ShallowProblem(np.eye(2), np.eye(2), "huber")


@pytest.mark.parametrize("name", ["square", "cross_entropy", "pseudo_huber"])
def test_symbolic_output_gradient_is_the_derivative_of_the_loss(name):
    assert all(r == 0 for r in symbolic.output_gradient_residual(name, 2))


def test_pseudo_huber_curvature_derivation_residuals_vanish():
    assert all(v == 0 for v in symbolic.pseudo_huber_curvature_derivation().values())


def _data(seed, m=3, m_y=2, n=5, y_scale=3.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), y_scale * rng.standard_normal((m_y, n)), rng.standard_normal((m_y, m))


@pytest.mark.parametrize("seed", range(5))
def test_pseudo_huber_value_gradient_hessian_match_the_reference(seed):
    Phi, Y, W = _data(seed)
    problem = ShallowProblem(Phi, Y, "pseudo_huber")
    value, grad = problem.value_and_gradient(W)
    value_ref = float(ref.output_loss(W @ Phi, Y, "pseudo_huber"))
    grad_ref = ref.shallow_gradient(W, Phi, Y, "pseudo_huber")  # complex step of the reference's value
    H_ref = ref.shallow_hessian(W, Phi, Y, "pseudo_huber")
    # rounding: n m_y terms of a few operations each (value); the products G Phi^T and Phi diag(w)
    # Phi^T of n terms, each entry of |G|, |w| <= 1 (gradient and Hessian): (n + 8) eps scaled
    scale = float(np.sum(np.abs(Phi))) * max(1.0, float(np.abs(Phi).max()))
    assert abs(value - value_ref) <= 4 * (Phi.shape[1] * Y.shape[0] + 8) * EPS * value_ref
    assert np.max(np.abs(grad - grad_ref)) <= 4 * (Phi.shape[1] + 8) * EPS * scale
    H = problem.hessian(W)
    assert np.max(np.abs(H - H_ref)) <= 4 * (Phi.shape[1] + 8) * EPS * scale
    V = np.random.default_rng(seed + 100).standard_normal(W.shape)
    hv = get_loss("pseudo_huber").hessian_vector(problem, W, V)
    assert np.allclose(
        hv.reshape(-1, order="F"),
        H_ref @ V.reshape(-1, order="F"),
        rtol=0,
        atol=8 * (Phi.shape[1] + 8) * EPS * scale * float(np.abs(V).sum()),
    )


@pytest.mark.parametrize("seed", range(5))
def test_pseudo_huber_optimum_and_pl_constant(seed):
    Phi, Y, W = _data(seed)
    problem = ShallowProblem(Phi, Y, "pseudo_huber")
    L_star_ref, W_star_ref = ref.optimum(Phi, Y, "pseudo_huber")
    # both minimisers are stationary to rounding; L* is flat there, so the values agree to the
    # rounding of L0 (optimum_tolerance) on each side
    assert abs(problem.optimal_loss - L_star_ref) <= 2 * problem.loss.optimum_tolerance(problem) + 64 * EPS * L_star_ref
    assert np.linalg.norm(problem.gradient(problem.minimiser)) <= 1e-8 * max(1.0, float(np.linalg.norm(Phi)) ** 2)
    # the PL inequality on the sublevel set of W, with the reference's excess (quadrature)
    level = problem.value(W)
    kappa = problem.pl_constant_at(level)
    E = ref.excess(W, Phi, Y, "pseudo_huber")
    g = problem.gradient(W)
    assert float(np.sum(g * g)) >= 2 * kappa * E
    assert kappa == pytest.approx(ref.loss_pl_constant(Phi, Y, "pseudo_huber", level), rel=1e-12)


def test_pseudo_huber_targets_must_be_finite():
    with pytest.raises(ValueError, match="Y"):
        ShallowProblem(np.eye(2), np.array([[0.0, np.nan], [1.0, 2.0]]), "pseudo_huber")
    with pytest.raises(ValueError, match="level"):
        ShallowProblem(np.eye(2), np.eye(2), "pseudo_huber").pl_constant_at(-1.0)


def test_a_loss_is_added_by_one_registration():
    """The toy loss l(q, y) = 1/4 sum_k (q_k - y_k)^4 (TOY_MODULE below), registered from this
    test module and then removed."""
    toy = {}
    exec(TOY_MODULE, toy)  # registers it
    try:
        assert "toy_quartic" in loss_names()
        rng = np.random.default_rng(7)
        m, m_y, n, gamma = 3, 2, 4, 0.5
        A, B = rng.standard_normal((m, m)), rng.standard_normal((m_y, m))
        Phi, Y = rng.standard_normal((m, n)), rng.standard_normal((m_y, n))
        L, dA, dB = loss_and_grad(A, B, Phi, Y, gamma=gamma, loss="toy_quartic")
        # the chain rule of the core against central differences of the loss through the model
        h = 1e-6
        VA, VB = rng.standard_normal((m, m)), rng.standard_normal((m_y, m))
        plus = loss_and_grad(A + h * VA, B + h * VB, Phi, Y, gamma=gamma, loss="toy_quartic")[0]
        minus = loss_and_grad(A - h * VA, B - h * VB, Phi, Y, gamma=gamma, loss="toy_quartic")[0]
        fd = (plus - minus) / (2 * h)
        # central difference: rounding eps |L| / h ~ 2e-10 |L| (|L| < 1e3 here), truncation
        # h^2 |L_3| / 6 ~ 1e-12 |L_3| (L_3 the third derivative along V); 1e-6 relative is above
        # both and far below the O(1) relative error of a wrong chain rule
        assert abs(fd - (np.sum(dA * VA) + np.sum(dB * VB))) <= 1e-6 * max(1.0, abs(fd))
        with pytest.raises(ValueError, match="already registered"):
            register(toy["QuarticLoss"]())
    finally:
        unregister("toy_quartic")
    assert "toy_quartic" not in loss_names()


TOY_MODULE = '''
import numpy as np

from verify.losses.registry import Loss, register


class QuarticLoss(Loss):
    name = "toy_quartic"

    def terms(self, Q, Y):
        R = Q - Y
        return 0.25 * np.sum(R ** 4, axis=(-2, -1)), R ** 3

    def output_hvp(self, Q, Y, dQ):
        return 3 * (Q - Y) ** 2 * dQ

    def optimum(self, problem):
        W = np.linalg.lstsq(problem.Phi.T, problem.Y.T, rcond=None)[0].T
        return self.value(problem, W), W


QUARTIC = register(QuarticLoss())
'''


def test_a_new_loss_module_is_found_without_editing_the_package(tmp_path):
    """CONTRIBUTING.md's recipe: a module dropped into verify/losses/ registers its loss when the
    package is imported (no edit of verify/losses/__init__.py), and the public API takes it."""
    root = Path(__file__).resolve().parents[2]
    for package in ("verify", "theory"):
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "verify" / "losses" / "toy_quartic.py").write_text(TOY_MODULE)
    code = (
        "import numpy as np, verify\n"
        "from verify.losses import loss_names\n"
        "assert 'toy_quartic' in loss_names(), loss_names()\n"
        "r = np.random.default_rng(0)\n"
        "L, dA, dB = verify.loss_and_grad(r.standard_normal((3, 3)), r.standard_normal((2, 3)), "
        "r.standard_normal((3, 4)), r.standard_normal((2, 4)), gamma=0.5, loss='toy_quartic')\n"
        "assert np.isfinite(L) and L > 0\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
