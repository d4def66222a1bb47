"""Exact gradients of L(A, B) = L0(B U^{-1}) by implicit differentiation (docs/theory.md, section 3).

    dL/dB       = grad L0(W) U^{-T}
    Gamma       = dL/dS = gamma W^T (dL/dB)
    dL/dA[:, j] = J_j Gamma[:, j],  J_j = diag(s_j) - s_j s_j^T
                = S o (Gamma - 1 1^T (S o Gamma))

Everything goes through W = B U^{-1} and one LU of U: Z = U^{-1} Phi is never formed, so the
cost is O(m^3 + m_y m^2) plus one evaluation of grad L0 (O(m_y m n), or O(m_y m^2) with the
square-loss sufficient statistics of :class:`verify.losses.ShallowProblem`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import (
    as_matrix,
    check_data,
    check_gamma,
    check_loss,
    check_memory,
    check_model,
    check_output_rows,
    check_positive,
)
from .losses import ShallowProblem
from .model import ImplicitLayer, column_softmax


def softmax_vjp(S: np.ndarray, Gamma: np.ndarray) -> np.ndarray:
    """Column-wise J_j Gamma[:, j] = s_j o Gamma_j - s_j (s_j . Gamma_j) for all j at once."""
    SG = S * Gamma
    return SG - S * SG.sum(axis=-2, keepdims=True)


def implicit_gradients(layer: ImplicitLayer, W: np.ndarray, grad_L0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dA, dL/dB) from grad L0(W), given the factorised layer at A and W = B U^{-1}."""
    dB = layer.right_solve_transposed(grad_L0)
    Gamma = layer.gamma * (W.T @ dB)
    return softmax_vjp(layer.S, Gamma), dB


@dataclass(frozen=True)
class DEQState:
    """Everything one evaluation of L at (A, B) produces, for reuse by dynamics and checks."""

    A: np.ndarray
    B: np.ndarray
    layer: ImplicitLayer
    W: np.ndarray
    loss: float
    excess: float
    grad_L0: np.ndarray
    dA: np.ndarray
    dB: np.ndarray

    @property
    def grad_norm_sq(self) -> float:
        """||dL/dA||_F^2 + ||dL/dB||_F^2 = -dL/dt along gradient flow."""
        return float(np.sum(self.dA * self.dA) + np.sum(self.dB * self.dB))


class DEQObjective:
    """L(A, B) = L0(B (I - gamma sigma(A))^{-1}) on one :class:`ShallowProblem`.

    Validation happens once here; :meth:`evaluate` then does no checks (it is the inner loop of
    the ODE solver).
    """

    def __init__(self, problem: ShallowProblem, *, gamma):
        self.problem = problem
        self.gamma = check_gamma(gamma)

    def check_params(self, A, B, names=("A", "B")) -> tuple[np.ndarray, np.ndarray]:
        A = as_matrix(names[0], A, shape=(self.problem.m, self.problem.m))
        B = as_matrix(names[1], B, shape=(self.problem.m_y, self.problem.m))
        return A, B

    def evaluate(self, A: np.ndarray, B: np.ndarray, *, with_excess: bool = True) -> DEQState:
        layer = ImplicitLayer.from_weights(A, gamma=self.gamma, validate=False)
        W = layer.end_to_end_weight(B)
        value, grad_L0 = self.problem.value_and_gradient(W)
        excess = self.problem.excess(W) if with_excess else float("nan")
        dA, dB = implicit_gradients(layer, W, grad_L0)
        return DEQState(A, B, layer, W, value, excess, grad_L0, dA, dB)


def output_loss_and_gradient(Q: np.ndarray, Y: np.ndarray, loss) -> tuple[float, np.ndarray]:
    """sum_i l(q_i, y_i) and G = dL/dQ for outputs Q (columns), from the loss's ``terms``."""
    value, G = check_loss(loss).terms(Q, Y)
    return float(value), G


def loss_and_grad(A, B, Phi, Y, *, gamma, loss="square") -> tuple[float, np.ndarray, np.ndarray]:
    """L(A, B) and its exact gradients (dL/dA, dL/dB) by implicit differentiation.

    Parameters
    ----------
    A : (m, m) implicit-layer weight.  B : (m_y, m) output weight.
    Phi : (m, n) features as columns.  Y : (m_y, n) targets as columns (one-hot for cross-entropy).
    gamma : float in (0, 1).  loss : a registered name ("square", "cross_entropy", "pseudo_huber")
    or a :class:`verify.losses.Loss`.

    Returns ``(L, dA, dB)`` with L = sum_i l(B U^{-1} phi_i, y_i). Cost O(m^3 + m_y m n).
    """
    A, B, gamma = check_model(A, B, gamma)
    Phi, Y = check_data(Phi, Y, loss, m=A.shape[0])
    check_output_rows(B, Y)
    layer = ImplicitLayer.from_weights(A, gamma=gamma, validate=False)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is detected and named below
        W = layer.end_to_end_weight(B)
        value, G = output_loss_and_gradient(W @ Phi, Y, loss)
        dA, dB = implicit_gradients(layer, W, G @ Phi.T)
    check_finite_result("loss_and_grad", value, dA, dB, Phi=Phi, Y=Y, B=B)
    return value, dA, dB


def check_finite_result(where: str, value, dA, dB, **inputs) -> None:
    """Finite input can still give a loss or gradient beyond float64 (|Phi| ~ 1e200: the gradient
    G Phi^T ~ 1e400). Raise a ValueError that names the overflow instead of returning inf/NaN."""
    if np.all(np.isfinite(value)) and np.all(np.isfinite(dA)) and np.all(np.isfinite(dB)):
        return
    sizes = ", ".join(f"max |{k}| = {np.abs(v).max():.3g}" for k, v in inputs.items())
    raise ValueError(
        f"{where}: the loss or its gradient overflows float64 at this input ({sizes}); "
        "rescale Phi and Y (the loss is homogeneous in them) or shrink B"
    )


def unrolled_loss_and_grad(A, B, Phi, Y, *, gamma, layers: int, loss="square"):
    """Back-propagation through the weight-tied H-layer model z^(l) = gamma S z^(l-1) + Phi.

    z^(0) = 0 and f_H(x) = B z^(H). Returns (L_H, dA_H, dB_H); as H -> infinity these tend to the
    implicit (L, dA, dB) with an error of order H gamma^H (docs/theory.md, section 3).
    """
    A, B, gamma = check_model(A, B, gamma)
    Phi, Y = check_data(Phi, Y, loss, m=A.shape[0])
    check_output_rows(B, Y)  # (without it a B with too few rows silently dropped classes)
    layers = check_positive("layers", layers, integer=True)
    check_memory(
        f"layers = {layers} (every z^(l), m x n each, is kept for back-propagation)",
        8 * (layers + 1) * Phi.size,
        "ask for fewer layers",
    )
    S = column_softmax(A)
    gS = gamma * S
    zs = [np.zeros_like(Phi)]
    for _ in range(layers):
        zs.append(gS @ zs[-1] + Phi)
    value, G = output_loss_and_gradient(B @ zs[-1], Y, loss)
    dB = G @ zs[-1].T
    adjoint = B.T @ G  # dL/dz^(H)
    dS = np.zeros_like(S)
    for layer in range(layers, 0, -1):
        dS += gamma * adjoint @ zs[layer - 1].T
        adjoint = gS.T @ adjoint
    return value, softmax_vjp(S, dS), dB
