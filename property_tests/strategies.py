"""Reusable Hypothesis strategies for shapes, gamma, data and parameters.

Arrays are drawn from a numpy Generator seeded by Hypothesis (one integer), which keeps every
example reproducible from its printed seed and shrinks sizes and scales, not individual floats.

Width regimes (THEORY.md section 5): "m<m_y" (width below the output dimension), "m<n" (below the
number of samples), "m>n" (more width than samples: minimisers not unique), "m=1".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

REGIMES = ("m<m_y", "m<n", "m>n", "m=1")
MAX_DIM = 6


@st.composite
def shapes(draw, regime: str | None = None, max_dim: int = MAX_DIM):
    """(m, m_y, n) in the given width regime (any regime when None)."""
    regime = draw(st.sampled_from(REGIMES)) if regime is None else regime
    if regime == "m<m_y":
        m = draw(st.integers(1, max_dim - 1))
        return m, draw(st.integers(m + 1, max_dim)), draw(st.integers(1, max_dim))
    if regime == "m<n":
        m = draw(st.integers(1, max_dim - 1))
        return m, draw(st.integers(1, max_dim)), draw(st.integers(m + 1, max_dim + 2))
    if regime == "m>n":
        m = draw(st.integers(2, max_dim))
        return m, draw(st.integers(1, max_dim)), draw(st.integers(1, m - 1))
    if regime == "m=1":
        return 1, draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    raise ValueError(f"unknown regime {regime!r}")


def gammas(low: float = 0.01, high: float = 0.99):
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


seeds = st.integers(min_value=0, max_value=2**32 - 1)


@dataclass(frozen=True)
class Case:
    """One random configuration; ``seed`` reproduces its arrays."""

    A: np.ndarray
    B: np.ndarray
    Phi: np.ndarray
    Y: np.ndarray
    gamma: float
    loss: str
    seed: int

    @property
    def m(self):
        return self.A.shape[0]

    @property
    def m_y(self):
        return self.B.shape[0]

    @property
    def n(self):
        return self.Phi.shape[1]


def overlapping_labels(rng: np.random.Generator, m_y: int, n: int) -> np.ndarray:
    """One-hot labels for the replicated-feature design of :func:`make_case` (cross-entropy)."""
    return np.eye(m_y)[:, rng.integers(0, m_y, n)]


def conditioned_features(rng: np.random.Generator, m: int, n: int, low: float = 0.6, high: float = 1.2) -> np.ndarray:
    """Phi = Q1 diag(s) Q2^T with random orthogonal factors and singular values in [low, high]:
    kappa = s_min^2 >= low^2, so trajectories converge in bounded time (trajectory tests)."""
    k = min(m, n)
    Q1, _ = np.linalg.qr(rng.standard_normal((m, k)))
    Q2, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return (Q1 * rng.uniform(low, high, k)) @ Q2.T


def make_case(seed: int, m: int, m_y: int, n: int, gamma: float, loss: str = "square",
              a_scale: float = 1.0, non_separable: bool = False,
              well_conditioned: bool = False) -> Case:
    """Random A, B ~ N(0, a_scale^2), N(0, 1); Phi ~ N(0, 1/n) (so Phi Phi^T is O(1));
    Y ~ N(0, 1) (square) or one-hot labels (cross-entropy).

    ``non_separable`` (cross-entropy) repeats every feature column once per class with each
    label, plus random extra copies, so no direction separates any pair: L* is attained.
    """
    rng = np.random.default_rng(seed)
    A = a_scale * rng.standard_normal((m, m))
    B = rng.standard_normal((m_y, m))
    Phi = rng.standard_normal((m, n)) / np.sqrt(n)
    if well_conditioned:
        Phi = conditioned_features(rng, m, n)
    if loss == "square":
        Y = rng.standard_normal((m_y, n))
    elif non_separable:
        base = Phi
        labels = np.concatenate([np.tile(np.arange(m_y), n), rng.integers(0, m_y, n)])
        Phi = np.concatenate([np.repeat(base, m_y, axis=1), base], axis=1)
        Y = np.eye(m_y)[:, labels]
    else:
        Y = overlapping_labels(rng, m_y, n)
    return Case(A, B, Phi, Y, float(gamma), loss, seed)


@st.composite
def cases(draw, regime: str | None = None, loss: str | None = None, gamma_range=(0.01, 0.99),
          a_scales=(0.1, 1.0, 3.0), non_separable: bool = False, max_dim: int = MAX_DIM,
          well_conditioned: bool = False):
    m, m_y, n = draw(shapes(regime, max_dim=max_dim))
    loss = draw(st.sampled_from(("square", "cross_entropy"))) if loss is None else loss
    if loss == "cross_entropy" and m_y == 1:
        m_y = 2  # one class makes cross-entropy identically zero
    return make_case(draw(seeds), m, m_y, n, draw(gammas(*gamma_range)), loss,
                     a_scale=draw(st.sampled_from(a_scales)), non_separable=non_separable,
                     well_conditioned=well_conditioned)


def budget(ci: int, thorough: int = 500):
    """Hypothesis settings with ``ci`` examples under the default profile and ``thorough``
    under HYPOTHESIS_PROFILE=thorough (expensive properties use fewer examples by default)."""
    import os

    from hypothesis import settings

    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    return settings(max_examples=thorough if profile == "thorough" else ci)
