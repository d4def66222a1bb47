"""Gradient dynamics of (A, B) and their image in function space (THEORY.md section 4).

Gradient flow dA/dt = -dL/dA, dB/dt = -dL/dB moves the shallow weight W = B U^{-1} by

    vec(dW/dt) = -K g,   g = vec(grad L0(W))   (column-major vec)
    K = (U^{-T} U^{-1}) (x) I_{m_y} + gamma^2 sum_j (U^{-T} e_j e_j^T U^{-1}) (x) (W J_j^2 W^T)

and dL/dt = -||dL/dA||^2 - ||dL/dB||^2 = -g^T K g.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from ._validation import as_matrix, check_gamma, check_model, check_positive
from .convergence import rate_constant_unchecked
from .gradients import DEQObjective, softmax_vjp
from .losses import ShallowProblem
from .model import ImplicitLayer

#: the smallest rtol scipy's Runge-Kutta solvers accept (100 eps); below it they clip silently
RTOL_FLOOR = 100 * np.finfo(np.float64).eps

#: above this size (m m_y) the explicit K is refused; use :func:`preconditioner_matvec`.
EXPLICIT_K_MAX_SIZE = 4096


def preconditioner_apply(layer: ImplicitLayer, W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """K applied to a matrix G (m_y x m), matrix-free, O(m^3 + m_y m^2) per product:

    K[G] = G U^{-T} U^{-1} + gamma^2 W [J_j^2 (W^T G U^{-T})_j]_j U^{-1}.
    """
    X = layer.right_solve_transposed(G)  # G U^{-T}
    Gamma = W.T @ X
    S = layer.S
    second = W @ softmax_vjp(S, softmax_vjp(S, Gamma))  # J_j applied twice, column by column
    return layer.right_solve(X + layer.gamma ** 2 * second)


def preconditioner_matvec(A, B, G, *, gamma) -> np.ndarray:
    """K[G] for a single state (A, B); G is an m_y x m matrix (the unvec of a vector)."""
    A, B, gamma = check_model(A, B, gamma)
    G = as_matrix("G", G, shape=B.shape)
    layer = ImplicitLayer.from_weights(A, gamma=gamma, validate=False)
    return preconditioner_apply(layer, layer.end_to_end_weight(B), G)


def preconditioner_from_layer(layer: ImplicitLayer, W: np.ndarray) -> np.ndarray:
    m, m_y = layer.m, W.shape[0]
    if m * m_y > EXPLICIT_K_MAX_SIZE:
        raise ValueError(
            f"the explicit K has size m*m_y = {m * m_y} > {EXPLICIT_K_MAX_SIZE}; "
            "use verify.dynamics.preconditioner_matvec for large problems")
    V = layer.solve_transposed(np.eye(m))  # columns v_j = U^{-T} e_j (explicit K only, small m)
    S = layer.S
    # W J_j = W diag(s_j) - (W s_j) s_j^T, stacked over j: WJ[j] is m_y x m.
    WJ = W[None, :, :] * S.T[:, None, :] - (W @ S).T[:, :, None] * S.T[:, None, :]
    T = np.einsum("jam,jbm->jab", WJ, WJ)  # W J_j^2 W^T (J_j is symmetric)
    K4 = np.einsum("pj,qj,jab->paqb", V, V, T) * layer.gamma ** 2
    first = V @ V.T  # U^{-T} U^{-1}
    K4 += np.einsum("pq,ab->paqb", first, np.eye(m_y))
    return K4.reshape(m * m_y, m * m_y)


def preconditioner(A, B, *, gamma) -> np.ndarray:
    """The explicit (m m_y) x (m m_y) matrix K in column-major vec(W) coordinates (small m only)."""
    A, B, gamma = check_model(A, B, gamma)
    layer = ImplicitLayer.from_weights(A, gamma=gamma, validate=False)
    return preconditioner_from_layer(layer, layer.end_to_end_weight(B))


def vec(M: np.ndarray) -> np.ndarray:
    """Column-major vectorisation, the convention of K and H."""
    return M.reshape(-1, order="F")


def unvec(v: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return v.reshape(shape, order="F")


@dataclass
class Trajectory:
    """A recorded trajectory of gradient flow or gradient descent.

    Arrays are indexed by record k: ``t`` (time; k-th step times lr for descent), ``loss`` (L),
    ``excess_loss`` (L - L*), ``rate`` (lambda(A_t)), ``grad_norm`` (||grad L0(W_t)||_F),
    ``param_grad_norm_sq`` (||dL/dA||^2 + ||dL/dB||^2), ``column_sums`` (k x m), ``W`` (k x m_y x m),
    ``rate_integral`` (int_0^t lambda(A_s) ds; trapezoid rule for descent). ``A`` and ``B`` are the
    final parameters.
    """

    t: np.ndarray
    loss: np.ndarray
    excess_loss: np.ndarray
    rate: np.ndarray
    grad_norm: np.ndarray
    param_grad_norm_sq: np.ndarray
    column_sums: np.ndarray
    W: np.ndarray
    rate_integral: np.ndarray
    A: np.ndarray
    B: np.ndarray
    optimal_loss: float
    kind: str
    message: str = ""
    event_time: float | None = None
    info: dict = field(default_factory=dict)
    A_t: np.ndarray | None = None  # (k, m, m), only with record_parameters=True
    B_t: np.ndarray | None = None  # (k, m_y, m)

    def __len__(self) -> int:
        return len(self.t)


class _Recorder:
    def __init__(self, objective: DEQObjective, record_parameters: bool = False):
        self.objective = objective
        self.rows = []
        self.record_parameters = record_parameters
        self.params = []

    def record(self, t: float, A: np.ndarray, B: np.ndarray, rate_integral: float):
        # L* is not computed for partially separable cross-entropy data: excess is then NaN.
        st = self.objective.evaluate(A, B, with_excess=self._excess_known())
        self.rows.append((t, st.loss, st.excess, rate_constant_unchecked(A, self.objective.gamma),
                          float(np.linalg.norm(st.grad_L0)), st.grad_norm_sq, A.sum(axis=0),
                          st.W, rate_integral))
        if self.record_parameters:
            self.params.append((A.copy(), B.copy()))
        return st

    def build(self, A, B, kind, **extra) -> Trajectory:
        cols = list(zip(*self.rows))
        arrays = [np.asarray(c, dtype=float) for c in cols]
        if self.record_parameters:
            extra["A_t"] = np.array([p[0] for p in self.params])
            extra["B_t"] = np.array([p[1] for p in self.params])
        return Trajectory(*arrays, A=A, B=B, optimal_loss=self._optimal_loss(), kind=kind, **extra)

    def _excess_known(self) -> bool:
        problem = self.objective.problem
        return problem.loss == "square" or problem.separability.status != "partially separable"

    def _optimal_loss(self) -> float:
        try:
            return self.objective.problem.optimal_loss
        except ValueError:  # partially separable cross-entropy: L* not computed
            return float("nan")


def _make_objective(A0, B0, Phi, Y, gamma, loss) -> tuple[DEQObjective, np.ndarray, np.ndarray]:
    problem = Phi if isinstance(Phi, ShallowProblem) else ShallowProblem(Phi, Y, loss)
    objective = DEQObjective(problem, gamma=gamma)
    A0, B0 = objective.check_params(A0, B0, names=("A0", "B0"))
    return objective, A0, B0


def gradient_flow(A0, B0, Phi, Y=None, *, gamma, T, loss: str = "square", rtol: float = 1e-10,
                  atol: float | None = None, method: str = "DOP853", t_eval=None,
                  num_points: int = 201, target_excess: float | None = None,
                  record_parameters: bool = False) -> Trajectory:
    """Integrate dA/dt = -dL/dA, dB/dt = -dL/dB on [0, T] with scipy's solve_ivp.

    The state is augmented with r(t) = int_0^t lambda(A_s) ds (dr/dt = lambda(A_t)), integrated at
    the same tolerance, for the integrated bound of Theorem 1. ``Phi`` may be a
    :class:`ShallowProblem` (then ``Y`` and ``loss`` are ignored and its cached statistics are
    reused). Records at ``t_eval`` (default ``num_points`` equispaced times) from the dense
    output. ``target_excess`` adds a terminal event at L - L* = target_excess.
    ``record_parameters`` also stores A_t and B_t at every record (memory k (m^2 + m_y m)).

    Raises RuntimeError with the solver's message if the integration fails.
    """
    objective, A0, B0 = _make_objective(A0, B0, Phi, Y, gamma, loss)
    T = check_positive("T", T)
    rtol = check_positive("rtol", rtol, upper=1.0)
    if rtol < RTOL_FLOOR:
        # solve_ivp would silently raise it to this floor; refuse instead of coercing
        raise ValueError(f"rtol must lie in [100 eps, 1) = [{RTOL_FLOOR:.3g}, 1); got {rtol!r}")
    atol = rtol * 1e-2 if atol is None else check_positive("atol", atol)
    m, m_y = A0.shape[0], B0.shape[0]
    gamma = objective.gamma
    if t_eval is None:
        num_points = check_positive("num_points", num_points, integer=True)
        t_eval = np.linspace(0.0, T, max(num_points, 2))
    else:
        t_eval = np.asarray(t_eval, dtype=float)
        if t_eval.ndim != 1 or np.any(np.diff(t_eval) <= 0) or t_eval[0] < 0 or t_eval[-1] > T:
            raise ValueError("t_eval must be strictly increasing within [0, T]")

    def unpack(y):
        return y[: m * m].reshape(m, m), y[m * m: m * m + m_y * m].reshape(m_y, m)

    def rhs(_t, y):
        A, B = unpack(y)
        st = objective.evaluate(A, B, with_excess=False)
        return np.concatenate([-st.dA.ravel(), -st.dB.ravel(), [rate_constant_unchecked(A, gamma)]])

    events = None
    if target_excess is not None:
        target_excess = check_positive("target_excess", target_excess)

        def reached(_t, y):
            A, B = unpack(y)
            W = ImplicitLayer.from_weights(A, gamma=gamma, validate=False).end_to_end_weight(B)
            return objective.problem.excess(W) - target_excess

        reached.terminal = True
        events = [reached]

    y0 = np.concatenate([A0.ravel(), B0.ravel(), [0.0]])
    sol = solve_ivp(rhs, (0.0, T), y0, method=method, rtol=rtol, atol=atol, dense_output=True,
                    events=events)
    if sol.status == -1:
        raise RuntimeError(f"gradient_flow: the ODE solver failed: {sol.message}")
    t_end = sol.t[-1]
    times = t_eval[t_eval <= t_end]
    if sol.status == 1 and (len(times) == 0 or times[-1] < t_end):
        times = np.append(times, t_end)
    recorder = _Recorder(objective, record_parameters)
    for t in times:
        y = sol.sol(t) if t < t_end else sol.y[:, -1]
        A, B = unpack(y)
        recorder.record(float(t), A, B, float(y[-1]))
    A_end, B_end = unpack(sol.y[:, -1])
    event_time = float(sol.t_events[0][0]) if (events and len(sol.t_events[0])) else None
    return recorder.build(A_end.copy(), B_end.copy(), "flow", message=sol.message,
                          event_time=event_time,
                          info={"nfev": int(sol.nfev), "rtol": rtol, "atol": atol, "method": method,
                                "gamma": gamma})


def gradient_descent(A0, B0, Phi, Y=None, *, gamma, lr, steps, loss: str = "square",
                     record_every: int = 1, on_divergence: str = "raise") -> Trajectory:
    """Gradient descent A <- A - lr dL/dA, B <- B - lr dL/dB for ``steps`` steps.

    Records every ``record_every`` steps (and the last); ``t`` is step * lr, the flow time it
    approximates. A non-finite loss raises FloatingPointError, or, with
    ``on_divergence="stop"``, ends the run with ``message`` saying so.
    """
    objective, A, B = _make_objective(A0, B0, Phi, Y, gamma, loss)
    lr = check_positive("lr", lr)
    steps = check_positive("steps", steps, integer=True)
    record_every = check_positive("record_every", record_every, integer=True)
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop'; got {on_divergence!r}")
    recorder = _Recorder(objective)
    st = recorder.record(0.0, A, B, 0.0)
    message = f"completed {steps} steps"
    integral, prev_rate = 0.0, rate_constant_unchecked(A, objective.gamma)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
        for k in range(1, steps + 1):
            A = A - lr * st.dA
            B = B - lr * st.dB
            rate = rate_constant_unchecked(A, objective.gamma) if np.all(np.isfinite(A)) else np.nan
            integral += 0.5 * lr * (prev_rate + rate)
            prev_rate = rate
            if k % record_every == 0 or k == steps:
                st = recorder.record(k * lr, A, B, integral)
            else:
                st = objective.evaluate(A, B, with_excess=False)
            if not np.isfinite(st.loss):
                if on_divergence == "raise":
                    raise FloatingPointError(f"gradient_descent diverged at step {k} with lr={lr}")
                message = f"diverged at step {k}"
                break
    return recorder.build(A, B, "descent", message=message, info={"lr": lr, "steps": steps})
