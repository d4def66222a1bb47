"""Seeded random configurations shared by the campaign, the figures and the property tests.

Every array comes from ``numpy.random.default_rng(seed)``, so a configuration is reproduced from
(seed, m, m_y, n, gamma, loss, options) alone.

Width regimes (docs/theory.md, section 5): "m<m_y" (width below the output dimension), "m<n" (below
the number of samples), "m>n" (more width than samples: minimisers not unique) and "m=1", where
sigma(A) = 1, dL/dA = 0 and K = lambda I (a degenerate width: the bounds of Theorem 1 are
equalities there). The three proper regimes draw m >= 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import get_loss

REGIMES = ("m<m_y", "m<n", "m>n", "m=1")
PROPER_REGIMES = ("m<m_y", "m<n", "m>n")


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
        return {
            "seed": self.seed,
            "m": self.m,
            "m_y": self.m_y,
            "n": self.n,
            "gamma": self.gamma,
            "loss": self.loss,
            **self.options,
        }


def overlapping_labels(rng: np.random.Generator, m_y: int, n: int) -> np.ndarray:
    """One-hot labels drawn uniformly (the cross-entropy's sample_targets draws the same)."""
    return np.eye(m_y)[:, rng.integers(0, m_y, n)]


def orthonormal_columns(rng: np.random.Generator, rows: int, cols: int, first: np.ndarray | None = None) -> np.ndarray:
    """A random rows x cols matrix with orthonormal columns; the first column is ``first`` if given."""
    X = rng.standard_normal((rows, cols))
    if first is not None:
        X[:, 0] = first
    Q, R = np.linalg.qr(X)
    return Q * np.sign(np.diag(R))  # fixes the signs, so Q[:, 0] = first / ||first||


def conditioned_features(rng: np.random.Generator, m: int, n: int, low: float = 0.6, high: float = 1.2) -> np.ndarray:
    """Phi = Q1 diag(s) Q2^T with random orthogonal factors and singular values in [low, high]:
    kappa = s_min^2 >= low^2, so trajectories converge in bounded time (trajectory tests)."""
    k = min(m, n)
    return (orthonormal_columns(rng, m, k) * rng.uniform(low, high, k)) @ orthonormal_columns(rng, n, k).T


def spread_features(rng: np.random.Generator, m: int, n: int, decades: float) -> np.ndarray:
    """Phi = Q1 diag(s) Q2^T with singular values log-spaced from 1 down to 10^-decades
    (ill-conditioned features: the Gram matrix Phi Phi^T spans 2 x decades)."""
    k = min(m, n)
    s = np.geomspace(1.0, 10.0 ** (-decades), k) if k > 1 else np.ones(1)
    return (orthonormal_columns(rng, m, k) * rng.permutation(s)) @ orthonormal_columns(rng, n, k).T


def make_case(
    seed: int,
    m: int,
    m_y: int,
    n: int,
    gamma: float,
    loss="square",
    a_scale: float = 1.0,
    non_separable: bool = False,
    well_conditioned: bool = False,
    phi_scale: float = 1.0,
    y_scale: float = 1.0,
    spread: float | None = None,
) -> Case:
    """Random A, B ~ N(0, a_scale^2), N(0, 1); Phi ~ N(0, 1/n) (so Phi Phi^T is O(1)), or with
    singular values in [0.6, 1.2] (``well_conditioned``) or log-spaced over ``spread`` decades;
    then scaled by ``phi_scale``. Y from the loss's ``sample_targets``: N(0, y_scale^2) for real
    targets (square, pseudo-Huber), one-hot labels drawn uniformly (cross-entropy).

    ``non_separable`` (one-hot targets) repeats every feature column once per class with each
    label, plus random extra copies, so no direction separates any pair: L* is attained.
    """
    rng = np.random.default_rng(seed)
    A = a_scale * rng.standard_normal((m, m))
    B = rng.standard_normal((m_y, m))
    Phi = rng.standard_normal((m, n)) / np.sqrt(n)
    if well_conditioned:
        Phi = conditioned_features(rng, m, n)
    if spread is not None:
        Phi = spread_features(rng, m, n, spread)
    Phi = phi_scale * Phi
    targets = get_loss(loss).targets
    if non_separable and targets == "one-hot":
        base = Phi
        labels = np.concatenate([np.tile(np.arange(m_y), n), rng.integers(0, m_y, n)])
        Phi = np.concatenate([np.repeat(base, m_y, axis=1), base], axis=1)
        Y = np.eye(m_y)[:, labels]
    else:
        Y = get_loss(loss).sample_targets(rng, m_y, n, y_scale)
    options = {"a_scale": a_scale, "non_separable": non_separable, "well_conditioned": well_conditioned}
    if phi_scale != 1.0 or y_scale != 1.0 or spread is not None:
        options.update(phi_scale=phi_scale, y_scale=y_scale, spread=spread)
    return Case(A, B, Phi, Y, float(gamma), loss, seed, options)


def tight_state_wise_case(
    seed: int, m: int, m_y: int, n: int, gamma: float, a_scale: float = 1.0, phi_scale: float = 1.0, spread: float = 0.0
) -> Case:
    """A state where the state-wise inequality of Theorem 1 is an equality (square loss).

    With B = 0 (so W = 0) the second term of K vanishes and K = (U^{-T} U^{-1}) (x) I. Take u the
    unit eigenvector of U^{-T} U^{-1} for its smallest eigenvalue lambda(A) (the top left singular
    vector of U), data with Phi Phi^T u = kappa u where kappa is the smallest nonzero eigenvalue,
    and targets Y = W* Phi with W* = c u^T (so L* = 0). Then g = -W* Phi Phi^T = -kappa c u^T,
    ||dL/dtheta||^2 = g^T K g = kappa^2 lambda ||c||^2 and L - L* = kappa ||c||^2 / 2, so
    ||dL/dA||^2 + ||dL/dB||^2 = 2 kappa lambda(A) (L - L*) exactly.
    """
    rng = np.random.default_rng(seed)
    A = a_scale * rng.standard_normal((m, m))
    S = np.exp(A - A.max(axis=0))
    S /= S.sum(axis=0)
    u = np.linalg.svd(np.eye(m) - gamma * S)[0][:, 0]
    k = min(m, n)
    s = np.geomspace(1.0, 10.0 ** (-spread), k) if k > 1 else np.ones(1)
    Q1 = orthonormal_columns(rng, m, k, first=u)  # u gets the smallest singular value s[-1]
    Phi = phi_scale * (Q1 * np.concatenate([[s[-1]], rng.permutation(s[:-1])])) @ orthonormal_columns(rng, n, k).T
    c = rng.standard_normal(m_y)
    Y = np.outer(c, u) @ Phi
    options = {"a_scale": a_scale, "phi_scale": phi_scale, "spread": spread, "tight": True}
    return Case(A, np.zeros((m_y, m)), Phi, Y, float(gamma), "square", seed, options)


def random_shape(rng: np.random.Generator, regime: str, max_dim: int = 6) -> tuple[int, int, int]:
    """(m, m_y, n) in a width regime, uniformly over the sizes allowed up to max_dim; the proper
    regimes have m >= 2 (m = 1 is its own regime)."""
    if max_dim < 3 and regime != "m=1":
        raise ValueError(f"max_dim must be >= 3 for regime {regime!r}; got {max_dim}")
    if regime == "m<m_y":
        m = int(rng.integers(2, max_dim))
        return m, int(rng.integers(m + 1, max_dim + 1)), int(rng.integers(1, max_dim + 1))
    if regime == "m<n":
        m = int(rng.integers(2, max_dim))
        return m, int(rng.integers(1, max_dim + 1)), int(rng.integers(m + 1, max_dim + 3))
    if regime == "m>n":
        m = int(rng.integers(2, max_dim + 1))
        return m, int(rng.integers(1, max_dim + 1)), int(rng.integers(1, m))
    if regime == "m=1":
        return 1, int(rng.integers(1, max_dim + 1)), int(rng.integers(1, max_dim + 1))
    raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")


def regime_for_index(
    rng: np.random.Generator, index: int, *, m1_every: int | None = 10, regimes: tuple[str, ...] = PROPER_REGIMES
) -> str:
    """The width regime of configuration ``index``: "m=1" exactly at indices m1_every - 1,
    2 m1_every - 1, ... (so at most 1/m1_every of any prefix), otherwise one of ``regimes``."""
    if m1_every is not None and index % m1_every == m1_every - 1:
        return "m=1"
    return str(regimes[int(rng.integers(len(regimes)))])
