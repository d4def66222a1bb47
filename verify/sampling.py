"""Seeded random configurations shared by the campaign, the figures and the property tests.

Every array comes from ``numpy.random.default_rng(seed)``, so a configuration is reproduced from
(seed, m, m_y, n, gamma, loss, options) alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIMES = ("m<m_y", "m<n", "m>n", "m=1")


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
    options: dict


    @property
    def m(self):
        return self.A.shape[0]

    @property
    def m_y(self):
        return self.B.shape[0]

    @property
    def n(self):
        return self.Phi.shape[1]

    def describe(self) -> dict:
        """The scalars that, with the seed, reproduce this configuration."""
        return {"seed": self.seed, "m": self.m, "m_y": self.m_y, "n": self.n, "gamma": self.gamma,
                "loss": self.loss, **self.options}


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
    options = {"a_scale": a_scale, "non_separable": non_separable, "well_conditioned": well_conditioned}
    return Case(A, B, Phi, Y, float(gamma), loss, seed, options)




def random_shape(rng: np.random.Generator, regime: str, max_dim: int = 6) -> tuple[int, int, int]:
    """(m, m_y, n) in a width regime, uniformly over the sizes allowed up to max_dim."""
    if regime == "m<m_y":
        m = int(rng.integers(1, max_dim)); return m, int(rng.integers(m + 1, max_dim + 1)), int(rng.integers(1, max_dim + 1))
    if regime == "m<n":
        m = int(rng.integers(1, max_dim)); return m, int(rng.integers(1, max_dim + 1)), int(rng.integers(m + 1, max_dim + 3))
    if regime == "m>n":
        m = int(rng.integers(2, max_dim + 1)); return m, int(rng.integers(1, max_dim + 1)), int(rng.integers(1, m))
    if regime == "m=1":
        return 1, int(rng.integers(1, max_dim + 1)), int(rng.integers(1, max_dim + 1))
    raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")
