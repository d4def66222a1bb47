"""The SymPy derivations of section 3 against the closed forms and the numerical core."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import verify
from theory.gradients import (closed_form_gradients, column_scaling_residual, derive_gradients,
                              max_abs_difference, softmax_jacobian_residual)
from theory.symbolic_model import random_rational_point
from strategies import make_case, seeds

# Small fully symbolic sizes (m, m_y, n): covers m < m_y, m < n, m > n and m = 1.
SIZES = [(1, 2, 2), (2, 1, 1), (2, 2, 1), (2, 3, 2), (3, 2, 2)]
CE_SIZES = [(1, 2, 2), (2, 2, 1), (2, 3, 2), (3, 2, 2)]


@pytest.mark.parametrize("m", [1, 2, 3])
def test_softmax_jacobian_derived_equals_closed_form(m):
    assert softmax_jacobian_residual(m) == sp.zeros(m, m)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_conservation_law_from_column_homogeneity(m):
    assert column_scaling_residual(m) == sp.zeros(m, m)


@pytest.mark.parametrize("size", SIZES)
def test_square_loss_gradients_equal_closed_form_exactly(size):
    derived = derive_gradients(*size, "square")
    rng = np.random.default_rng(sum(size))
    for _ in range(3):
        point = random_rational_point(derived.model, rng)
        dA, dB = derived.at(point)
        cA, cB = closed_form_gradients(derived.model, point)
        # Exact rational arithmetic: the difference is the integer 0, not a small float.
        assert (dA - cA).applyfunc(sp.nsimplify) == sp.zeros(*dA.shape)
        assert (dB - cB).applyfunc(sp.nsimplify) == sp.zeros(*dB.shape)
        # Conservation law at the point, exactly.
        assert all(sum(dA[:, j]) == 0 for j in range(dA.cols))


@pytest.mark.parametrize("size", CE_SIZES)
def test_cross_entropy_gradients_equal_closed_form_at_50_digits(size):
    derived = derive_gradients(*size, "cross_entropy")
    rng = np.random.default_rng(sum(size) + 100)
    point = random_rational_point(derived.model, rng)
    dA, dB = derived.at(point)
    cA, cB = closed_form_gradients(derived.model, point)
    # Both sides are exact expressions in exp(.) of rationals, evaluated at 50 digits: any true
    # discrepancy would be O(1); rounding at 50 digits is ~1e-48.
    assert max_abs_difference(dA, cA) < 1e-40
    assert max_abs_difference(dB, cB) < 1e-40


_NUMERIC = {}


def _derived_numeric(size, loss):
    key = (size, loss)
    if key not in _NUMERIC:
        _NUMERIC[key] = derive_gradients(*size, loss).numeric()
    return _NUMERIC[key]


@settings(max_examples=10)
@given(st.sampled_from(SIZES + [(s, "ce") for s in CE_SIZES]), seeds, st.floats(0.05, 0.95))
def test_numerical_core_matches_lambdified_derivation(spec, seed, gamma):
    if spec[1] == "ce":
        size, loss = spec[0], "cross_entropy"
    else:
        size, loss = spec, "square"
    case = make_case(seed, *size, gamma, loss)
    L_sym, dA_sym, dB_sym = _derived_numeric(size, loss)(case.A, case.B, case.Phi, case.Y, gamma)
    L, dA, dB = verify.loss_and_grad(case.A, case.B, case.Phi, case.Y, gamma=gamma, loss=loss)
    # The lambdified expression is a different evaluation order (adjugate/determinant, no LU):
    # both are accurate to about cond(U) * (terms) * eps; 1e-12 is the acceptance level.
    scale = max(np.abs(dA).max(), np.abs(dB).max())
    assert abs(L_sym - L) <= 1e-12 * max(1.0, abs(L))
    assert np.abs(dA_sym - dA).max() <= 1e-12 * scale
    assert np.abs(dB_sym - dB).max() <= 1e-12 * scale
