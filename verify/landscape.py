"""Facts about the loss landscape of L(A, B) (docs/theory.md, section 2 and 3).

- Expressivity: for fixed A, B -> W = B U^{-1} is onto (B = W U), so inf L = inf L0 = L*.
- Non-convexity: L is not convex for m >= 2 (for m = 1, sigma(A) = 1 and L is convex in B).
- No spurious stationary points: grad L0(W) = dL/dB U^T, so dL/dB = 0 forces grad L0(W) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gradients import DEQObjective
from .losses import ShallowProblem
from .model import ImplicitLayer

EPS = np.finfo(np.float64).eps


def minimiser_excess_floor(problem: ShallowProblem, *, gamma: float) -> float:
    """Rounding floor of the excess loss at (A, W* U) for any A (square loss).

    W = (W* U) U^{-1} is W* up to delta = 20 m cond_1(U) eps max(1, max|W*|) per entry,
    cond_1(U) <= (1 + gamma)/(1 - gamma), so the excess is <= 1/2 ||Phi Phi^T||_2 m m_y delta^2.
    """
    cond = (1 + gamma) / (1 - gamma)
    delta = 20 * problem.m * cond * EPS * max(1.0, float(np.abs(problem.minimiser).max()))
    return 0.5 * float(np.linalg.norm(problem.gram, 2)) * problem.m * problem.m_y * delta**2


@dataclass(frozen=True)
class MidpointViolation:
    """Two parameter points and their midpoint with L(mid) > (L(p1) + L(p2)) / 2."""

    A1: np.ndarray
    B1: np.ndarray
    A2: np.ndarray
    B2: np.ndarray
    loss_1: float
    loss_2: float
    loss_mid: float

    @property
    def gap(self) -> float:
        """L(mid) - (L(p1) + L(p2)) / 2  (> 0 is a violation of convexity)."""
        return self.loss_mid - 0.5 * (self.loss_1 + self.loss_2)


def midpoint_violation(
    problem: ShallowProblem, *, gamma: float, rng: np.random.Generator, scale: float = 3.0
) -> MidpointViolation:
    """Exhibit non-convexity: two global minimisers whose midpoint is not one.

    Take a minimiser W* and two weight matrices A1, A2, and B_k = W* U_k so that both points have
    L = L*. The midpoint has U_mid = I - gamma sigma((A1 + A2)/2) != (U1 + U2)/2 because sigma is
    not affine, so W_mid = W* (U1 + U2)/2 U_mid^{-1} differs from W* and L(mid) > L* whenever
    (W_mid - W*) Phi != 0. Needs m >= 2; the gap is measured as an excess loss (no cancellation).
    """
    if problem.m < 2:
        raise ValueError("non-convexity needs m >= 2: with m = 1, sigma(A) = 1 and L is convex in B")
    objective = DEQObjective(problem, gamma=gamma)
    W_star = problem.minimiser
    m = problem.m
    A1 = scale * rng.standard_normal((m, m))
    A2 = scale * rng.standard_normal((m, m))
    B1 = W_star @ ImplicitLayer.from_weights(A1, gamma=gamma).U
    B2 = W_star @ ImplicitLayer.from_weights(A2, gamma=gamma).U
    e1 = objective.evaluate(A1, B1).excess
    e2 = objective.evaluate(A2, B2).excess
    e_mid = objective.evaluate(0.5 * (A1 + A2), 0.5 * (B1 + B2)).excess
    return MidpointViolation(A1, B1, A2, B2, e1, e2, e_mid)
