"""Batched evaluation over a stack of k independent configurations of one shape.

Arrays carry a leading batch axis: A (k, m, m), B (k, m_y, m), Phi (k, m, n), Y (k, m_y, n),
gamma (k,). The linear algebra is the same as in :mod:`verify.gradients` (docs/theory.md, section 3):

    W = B U^{-1},  dL/dB = grad L0(W) U^{-T},  Gamma = gamma W^T dL/dB,  dL/dA = S o (Gamma - 1 1^T (S o Gamma))

with one stacked LU solve (numpy.linalg.solve, LAPACK gesv per matrix inside one C loop) for U^T
and one for U. This removes the Python overhead per configuration, which dominates for small m.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_array, check_gamma, check_loss, check_positive, check_times
from .gradients import check_finite_result, softmax_vjp
from .model import column_softmax


def _stack(name: str, x, ndim: int = 3) -> np.ndarray:
    """A non-empty, finite float64 stack of ``ndim`` axes (batch first); the same rules as
    :func:`verify._validation.as_matrix` (no masked entries, no lossy dtype, no ragged lists)."""
    arr = as_array(name, x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a real {ndim}-D array (batch first); got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must be non-empty; got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return arr


def _gammas(gamma, k: int) -> np.ndarray:
    """gamma as k values in (0, 1): a real scalar, or a 1-D array of length k (nothing broadcast
    from another length, nothing converted from strings or complex numbers)."""
    if np.ndim(gamma) == 0 and not isinstance(gamma, np.ndarray):
        return np.full(k, check_gamma(gamma))
    arr = as_array("gamma", gamma)
    if arr.ndim > 1:
        raise ValueError(f"gamma must be a real scalar or a 1-D array of {k} values in (0, 1); got {gamma!r}")
    if arr.ndim == 0:
        return np.full(k, check_gamma(arr.item()))
    if arr.shape != (k,):
        raise ValueError(
            f"gamma must be a scalar or a 1-D array of length k = {k} (one per configuration); got shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    bad = ~(np.isfinite(arr) & (arr > 0) & (arr < 1))
    if np.any(bad):
        raise ValueError(
            f"gamma must lie in the open interval (0, 1); entries {np.flatnonzero(bad)[:5].tolist()} "
            f"do not ({arr[bad][:5].tolist()})"
        )
    return arr


def batched_loss_and_grad(A, B, Phi, Y, gamma, loss="square"):
    """(L, dL/dA, dL/dB) for every configuration in the stack: shapes (k,), (k, m, m), (k, m_y, m).

    gamma is a scalar or a (k,) array of values in (0, 1).
    """
    loss = check_loss(loss)
    A, B, Phi, Y = _stack("A", A), _stack("B", B), _stack("Phi", Phi), _stack("Y", Y)
    k, m, _ = A.shape
    if (
        A.shape[2] != m
        or B.shape[0] != k
        or B.shape[2] != m
        or Phi.shape[:2] != (k, m)
        or Y.shape[0] != k
        or Y.shape[1] != B.shape[1]
        or Y.shape[2] != Phi.shape[2]
    ):
        raise ValueError(f"stack shapes do not fit: A {A.shape}, B {B.shape}, Phi {Phi.shape}, Y {Y.shape}")
    gammas = _gammas(gamma, k)
    loss.check_targets("Y", Y)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is detected and named below
        S = column_softmax(A)
        U = np.eye(m)[None] - gammas[:, None, None] * S
        Ut = U.transpose(0, 2, 1)
        W = np.linalg.solve(Ut, B.transpose(0, 2, 1)).transpose(0, 2, 1)  # B U^{-1}
        Q = W @ Phi
        L, G = loss.terms(Q, Y)  # stack-aware: (k,) values and (k, m_y, n) output gradients
        grad_L0 = G @ Phi.transpose(0, 2, 1)
        dB = np.linalg.solve(U, grad_L0.transpose(0, 2, 1)).transpose(0, 2, 1)  # grad L0 U^{-T}
        Gamma = gammas[:, None, None] * (W.transpose(0, 2, 1) @ dB)
        dA = softmax_vjp(S, Gamma)
    check_finite_result("batched_loss_and_grad", L, dA, dB, Phi=Phi, Y=Y, B=B)
    return L, dA, dB


def batched_rate_constant(A, gamma) -> np.ndarray:
    """lambda(A) = 1 / ||I - gamma sigma(A)||_2^2 for each matrix of the stack."""
    A = _stack("A", A)
    if A.shape[1] != A.shape[2]:
        raise ValueError(f"A must be a stack of square matrices (k, m, m); got shape {A.shape}")
    gammas = _gammas(gamma, A.shape[0])
    U = np.eye(A.shape[1])[None] - gammas[:, None, None] * column_softmax(A)
    return 1.0 / np.linalg.norm(U, ord=2, axis=(1, 2)) ** 2


def batched_gradient_descent(A, B, Phi, Y, gamma, *, lr: float, steps: int, loss="square"):
    """Gradient descent run on the whole stack at once; returns (final A, final B, losses (steps+1, k)).

    lr must be a finite number > 0 and steps an integer >= 1 (as for the single-configuration
    :func:`verify.gradient_descent`); every array is validated by the first evaluation. A step that
    makes any configuration non-finite raises FloatingPointError naming the step.
    """
    lr = check_positive("lr", lr)
    steps = check_positive("steps", steps, integer=True)
    A, B = _stack("A", A).copy(), _stack("B", B).copy()
    L, dA, dB = batched_loss_and_grad(A, B, Phi, Y, gamma, loss)  # validates every argument
    losses = [L]
    for step in range(1, steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            A -= lr * dA
            B -= lr * dB
        try:
            L, dA, dB = batched_loss_and_grad(A, B, Phi, Y, gamma, loss)
        except ValueError as err:  # the arguments were valid at step 0: only a non-finite state fails
            raise FloatingPointError(f"batched_gradient_descent diverged at step {step} with lr={lr}: {err}") from None
        losses.append(L)
    return A, B, np.array(losses)


class _BudgetSpent(Exception):
    pass


def batched_gradient_flow(
    A,
    B,
    Phi,
    Y,
    gamma,
    *,
    T: float,
    loss="square",
    rtol: float = 1e-10,
    t_eval=None,
    method: str = "DOP853",
    max_nfev: int = 1_000_000,
):
    """Integrate k independent gradient flows as one ODE (state = all k parameter sets).

    solve_ivp controls the RMS of the scaled local error over ALL components; one configuration
    can then carry up to sqrt(k) times its share, so the tolerance passed to the solver is
    rtol / sqrt(k), which guarantees rtol for each configuration. Returns (t, A_t, B_t) with
    A_t of shape (len(t), k, m, m). After ``max_nfev`` right-hand-side evaluations (each one
    evaluation of the whole stack) it raises RuntimeError saying so: the cost of a flow grows
    linearly with T even after convergence (see :func:`verify.gradient_flow`).
    """
    from scipy.integrate import solve_ivp

    A, B = _stack("A", A), _stack("B", B)
    T = check_positive("T", T)
    rtol = check_positive("rtol", rtol, upper=1.0)
    if t_eval is not None:
        t_eval = check_times(t_eval, T)
    batched_loss_and_grad(A, B, Phi, Y, gamma, loss)  # validates every argument once, before integrating
    max_nfev = check_positive("max_nfev", max_nfev, integer=True)
    k, m, _ = A.shape
    m_y = B.shape[1]
    na = k * m * m

    calls = [0]

    def rhs(t, y):
        calls[0] += 1
        if calls[0] > max_nfev:
            raise _BudgetSpent(t)
        _, dA, dB = batched_loss_and_grad(y[:na].reshape(k, m, m), y[na:].reshape(k, m_y, m), Phi, Y, gamma, loss)
        return -np.concatenate([dA.ravel(), dB.ravel()])

    tol = rtol / np.sqrt(k)
    try:
        sol = solve_ivp(
            rhs,
            (0.0, T),
            np.concatenate([A.ravel(), B.ravel()]),
            method=method,
            rtol=tol,
            atol=tol * 1e-2,
            t_eval=t_eval,
        )
    except _BudgetSpent as stop:
        raise RuntimeError(
            f"batched_gradient_flow: the budget of max_nfev = {max_nfev} right-hand-side evaluations "
            f"was spent at t = {stop.args[0]:.6g} < T = {T:.6g}; raise max_nfev or shorten T"
        ) from None
    if sol.status == -1:
        raise RuntimeError(f"batched_gradient_flow: the ODE solver failed: {sol.message}")
    Y_t = sol.y.T
    return sol.t, Y_t[:, :na].reshape(-1, k, m, m), Y_t[:, na:].reshape(-1, k, m_y, m)


__all__ = ["batched_loss_and_grad", "batched_rate_constant", "batched_gradient_descent", "batched_gradient_flow"]
