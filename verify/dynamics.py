"""Gradient dynamics of (A, B) and their image in function space (docs/theory.md, section 4).

Gradient flow dA/dt = -dL/dA, dB/dt = -dL/dB moves the shallow weight W = B U^{-1} by

    vec(dW/dt) = -K g,   g = vec(grad L0(W))   (column-major vec)
    K = (U^{-T} U^{-1}) (x) I_{m_y} + gamma^2 sum_j (U^{-T} e_j e_j^T U^{-1}) (x) (W J_j^2 W^T)

and dL/dt = -||dL/dA||^2 - ||dL/dB||^2 = -g^T K g.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.optimize import brentq

from . import rounding
from ._blas import small_matrix_threads
from ._validation import MEMORY_LIMIT, all_finite, as_matrix, check_flag, check_model, check_positive, check_times
from .convergence import RateTracker
from .gradients import DEQObjective, softmax_vjp
from .losses import ShallowProblem
from .model import ImplicitLayer, column_softmax
from .trajectory import RECORD_MEMORY_LIMIT, Trajectory, _Recorder, check_record_memory, record_bytes

EPS = np.finfo(np.float64).eps

#: the smallest rtol scipy's Runge-Kutta solvers accept (100 eps); below it they clip silently
RTOL_FLOOR = 100 * np.finfo(np.float64).eps

#: above this size (m m_y) the explicit K is refused; use :func:`preconditioner_matvec`.
EXPLICIT_K_MAX_SIZE = 4096

#: default budget of right-hand-side evaluations for :func:`gradient_flow`. After convergence an
#: explicit solver still spends a fixed number of evaluations per unit time (its step is limited
#: by stability, not accuracy), so the cost of a flow is linear in T: T = 1e12 would never end.
#: 10^6 evaluations take about 100 s at m = 3 (measured); the campaign's flows use at most ~4000.
DEFAULT_MAX_NFEV = 1_000_000

#: solver classes by name, as solve_ivp accepts them
_METHODS = {
    "RK23": integrate.RK23,
    "RK45": integrate.RK45,
    "DOP853": integrate.DOP853,
    "Radau": integrate.Radau,
    "BDF": integrate.BDF,
    "LSODA": integrate.LSODA,
}
#: solvers that build a dense Jacobian of the (m^2 + m_y m) states
IMPLICIT_METHODS = (integrate.Radau, integrate.BDF, integrate.LSODA)


def preconditioner_apply(layer: ImplicitLayer, W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """K applied to a matrix G (m_y x m), matrix-free, O(m^3 + m_y m^2) per product:

    K[G] = G U^{-T} U^{-1} + gamma^2 W [J_j^2 (W^T G U^{-T})_j]_j U^{-1}.
    """
    X = layer.right_solve_transposed(G)  # G U^{-T}
    Gamma = W.T @ X
    S = layer.S
    second = W @ softmax_vjp(S, softmax_vjp(S, Gamma))  # J_j applied twice, column by column
    return layer.right_solve(X + layer.gamma**2 * second)


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
            "use verify.dynamics.preconditioner_matvec for large problems"
        )
    V = layer.solve_transposed(np.eye(m))  # columns v_j = U^{-T} e_j (explicit K only, small m)
    S = layer.S
    # W J_j = W diag(s_j) - (W s_j) s_j^T, stacked over j: WJ[j] is m_y x m.
    WJ = W[None, :, :] * S.T[:, None, :] - (W @ S).T[:, :, None] * S.T[:, None, :]
    T = np.einsum("jam,jbm->jab", WJ, WJ)  # W J_j^2 W^T (J_j is symmetric)
    K4 = np.einsum("pj,qj,jab->paqb", V, V, T) * layer.gamma**2
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


def _make_objective(A0, B0, Phi, Y, gamma, loss) -> tuple[DEQObjective, np.ndarray, np.ndarray]:
    problem = Phi if isinstance(Phi, ShallowProblem) else ShallowProblem(Phi, Y, loss)
    objective = DEQObjective(problem, gamma=gamma)
    A0, B0 = objective.check_params(A0, B0, names=("A0", "B0"))
    return objective, A0, B0


def _implicit_matrix(A: np.ndarray, gamma: float) -> np.ndarray:
    """U = I - gamma sigma(A) alone (no factorisation): what lambda(A) needs."""
    return np.eye(A.shape[0]) - gamma * column_softmax(A)


#: steps of the flow between two tests of convergence (each costs about one gradient evaluation;
#: DOP853 spends 15 per step, so the test adds about 2%)
CONVERGENCE_CHECK_EVERY = 4


def excess_rounding_floor(problem: ShallowProblem, W: np.ndarray, gamma: float) -> float:
    """The level below which the computed excess L - L* at W = B U^{-1} is rounding noise: the
    loss's own rule (``Loss.excess_rounding``: square loss, the cancellation-free 1/2 ||(W - W*)
    R^T||^2 to its rounding; a difference L0(W) - L* otherwise), for W formed by one solve with
    relative error rho = verify.rounding.solve_rounding(m, gamma)."""
    return problem.loss.excess_rounding(problem, W, rounding.solve_rounding(problem.m, gamma))


#: order p of each one-step solver (local error O(h^{p+1})); LSODA and BDF vary their order from
#: step to step, and their dense output carries it
_SOLVER_ORDER = {integrate.RK23: 3, integrate.RK45: 5, integrate.DOP853: 8, integrate.Radau: 5}


def _dense_order(dense) -> int | None:
    """The polynomial order of a variable-order solver's dense output (LSODA, BDF), else None."""
    if hasattr(dense, "p"):  # scipy's LsodaDenseOutput: powers 0..q
        return len(dense.p) - 1
    return getattr(dense, "order", None)


def quadrature_nodes(solver_class, dense=None) -> int:
    """Gauss-Legendre nodes per step for the rate integral: the smallest k >= 1 with 2k >= p,
    p the order of the step (fixed for the Runge-Kutta methods; LSODA's and BDF's current
    order, read from the step's dense output).

    A k-node rule on a step of length h errs by c_k h^{2k+1} max|lambda^(2k)| (c_4 = 2.9e-10 on
    [0, h]), so with 2k >= p it is of the same or higher order than the solver's own local error
    O(h^{p+1}), the error r(t) had when it was integrated as an extra ODE state. DOP853: 4 nodes.
    """
    order = _SOLVER_ORDER.get(solver_class)
    if order is None and dense is not None and solver_class in (integrate.LSODA, integrate.BDF):
        order = _dense_order(dense)
    if order is None:
        order = getattr(solver_class, "order", None) or 12  # unknown solver: LSODA's largest order
    return max(1, -(-int(order) // 2))


class _RateIntegral:
    """int lambda(A_s) ds over pieces [t_0, t_1] of one step, by Gauss-Legendre quadrature on the
    step's dense output; lambda at the nodes from a warm-started :class:`RateTracker`."""

    def __init__(self, unpack, gamma: float, solver_class, tracker: RateTracker):
        self.unpack, self.gamma, self.solver_class, self.tracker = unpack, gamma, solver_class, tracker
        self._rules = {}
        self.nodes_used = 0

    def __call__(self, dense, t0: float, t1: float) -> float:
        if t1 <= t0:
            return 0.0
        k = quadrature_nodes(self.solver_class, dense)
        if k not in self._rules:
            self._rules[k] = np.polynomial.legendre.leggauss(k)
        x, w = self._rules[k]
        half = 0.5 * (t1 - t0)
        values = [self.tracker(_implicit_matrix(self.unpack(dense(t))[0], self.gamma)) for t in t0 + half * (1.0 + x)]
        self.nodes_used += k
        return half * float(np.dot(w, values))


def gradient_flow(
    A0,
    B0,
    Phi,
    Y=None,
    *,
    gamma,
    T,
    loss: str = "square",
    rtol: float = 1e-10,
    atol: float | None = None,
    method: str = "DOP853",
    t_eval=None,
    num_points: int = 201,
    target_excess: float | None = None,
    record_parameters: bool = False,
    max_nfev: int = DEFAULT_MAX_NFEV,
    record_excess: bool = True,
    stop_when_converged: bool = True,
) -> Trajectory:
    """Integrate dA/dt = -dL/dA, dB/dt = -dL/dB on [0, T] with a SciPy ODE solver.

    The right-hand side is one gradient evaluation (:meth:`DEQObjective.evaluate`), nothing
    else. The rate integral r(t) = int_0^t lambda(A_s) ds of the integrated bound of Theorem 1
    is accumulated after each accepted step [t_n, t_n + h] by Gauss-Legendre quadrature of
    lambda(A(t)) on the step's dense output, with :func:`quadrature_nodes` nodes (4 for
    DOP853; ``info["quadrature_nodes"]`` counts them): of the same order as the solver's local
    error, which is the accuracy r(t) had as an extra ODE state. (Radau's dense output is cubic:
    there the quadrature is limited to the interpolant's O(h^5) per step, one order below the
    step's.) A record inside a step gets r by the same rule on [t_n, t]. lambda comes from a
    warm-started :class:`verify.convergence.RateTracker`. DOP853 builds its dense output from 3
    extra right-hand-side evaluations per step (counted in ``info["nfev"]``); RK45, RK23 and
    LSODA get it free.

    ``Phi`` may be a :class:`ShallowProblem` (then ``Y`` and ``loss`` are ignored and its cached
    statistics are reused). Records at ``t_eval`` (default ``num_points`` >= 2 equispaced times, 0
    and T included) from the dense output of each step, as the integration passes them.
    ``target_excess`` adds a terminal event at L - L* = target_excess.
    ``record_parameters`` also stores A_t and B_t at every record (memory k (m^2 + m_y m)).
    ``record_excess=False`` leaves the excess column NaN and never computes L* (for the
    cross-entropy that is a Newton solve and, when it yields no separability certificate, a
    separability LP over the n samples: tens of seconds at n = 1e4-1e5).

    Convergence: with ``stop_when_converged`` (default) the integration stops once the excess
    L - L* at the end of a step (tested every CONVERGENCE_CHECK_EVERY steps) is at or below its
    floor: its rounding (:func:`excess_rounding_floor`) plus the level the ODE's error control
    leaves near a minimiser (rtol and atol through the weight's sensitivity; see ``converged``
    below). The state is then a minimiser as far as the integration resolves it, and an explicit
    solver would only spend evaluations at its stability limit (T = 1e12 ran to the budget, 80 s).
    ``info["status"] == "converged"``, ``message`` says when, and records
    requested after that time are absent. Not tested when the excess is not known
    (``record_excess=False``, partially separable cross-entropy data); separable data (L* = 0)
    never converge (the excess is the loss, above its own rounding).

    Budget: the integration stops after ``max_nfev`` right-hand-side evaluations (checked before
    each step, so at most one step more). The trajectory then ends at the time reached, with
    ``info["status"] == "budget"`` and a ``message`` saying so; records requested after that
    time are absent. Records whose memory would exceed RECORD_MEMORY_LIMIT are refused up front.

    Raises RuntimeError with the solver's message if the integration fails.
    """
    objective, A0, B0 = _make_objective(A0, B0, Phi, Y, gamma, loss)
    T = check_positive("T", T)
    rtol = check_positive("rtol", rtol, upper=1.0)
    if rtol < RTOL_FLOOR:
        # solve_ivp would silently raise it to this floor; refuse instead of coercing
        raise ValueError(f"rtol must lie in [100 eps, 1) = [{RTOL_FLOOR:.3g}, 1); got {rtol!r}")
    atol = rtol * 1e-2 if atol is None else check_positive("atol", atol)
    max_nfev = check_positive("max_nfev", max_nfev, integer=True)
    if isinstance(method, type) and issubclass(method, integrate.OdeSolver):
        solver_class = method
    elif isinstance(method, str) and method in _METHODS:
        solver_class = _METHODS[method]
    else:
        raise ValueError(f"method must be one of {sorted(_METHODS)} or an OdeSolver subclass; got {method!r}")
    m, m_y = A0.shape[0], B0.shape[0]
    gamma = objective.gamma
    states = m * m + m_y * m
    if solver_class in IMPLICIT_METHODS and 8 * states**2 > MEMORY_LIMIT:
        # Radau, BDF and LSODA keep a dense Jacobian of the states (and LSODA allocates it up front)
        name = solver_class.__name__
        raise ValueError(
            f"method {name!r} needs a dense {states} x {states} Jacobian "
            f"({8 * states**2 / 2**30:.3g} GiB > {MEMORY_LIMIT / 2**30:.3g} GiB) for m^2 + m_y m = "
            f"{states} states; use an explicit method (DOP853, RK45, RK23)"
        )
    per_record = record_bytes(m, m_y, record_parameters)
    if t_eval is None:
        # 0 and T are both records, so fewer than 2 points cannot be honoured (not silently raised)
        num_points = check_positive("num_points", num_points, integer=True, lower=2)
        check_record_memory(f"num_points = {num_points}", num_points, per_record + 8, "ask for fewer num_points")
        t_eval = np.linspace(0.0, T, num_points)
    else:
        t_eval = check_times(t_eval, T)
        check_record_memory(f"len(t_eval) = {len(t_eval)}", len(t_eval), per_record, "pass fewer times in t_eval")

    def unpack(y):
        return y[: m * m].reshape(m, m), y[m * m :].reshape(m_y, m)

    def rhs(_t, y):
        A, B = unpack(y)
        st = objective.evaluate(A, B, with_excess=False)
        return np.concatenate([-st.dA.ravel(), -st.dB.ravel()])

    reached = None
    if target_excess is not None:
        target_excess = check_positive("target_excess", target_excess)

        def reached(_t, y):
            A, B = unpack(y)
            W = ImplicitLayer.from_weights(A, gamma=gamma, validate=False).end_to_end_weight(B)
            return objective.problem.excess(W) - target_excess

    recorder = _Recorder(objective, record_parameters, record_excess=check_flag("record_excess", record_excess))
    watch = check_flag("stop_when_converged", stop_when_converged) and recorder.excess_known

    def converged(y) -> bool:
        """Whether the excess at the state y is at its floor: its rounding, plus what the ODE's
        error control leaves. Near the minimiser an explicit solver steps at its stability limit,
        where the stiff components hover at the local tolerance, ||d theta|| <= sqrt(N) (atol +
        rtol max|theta|) (RMS error norm <= 1 over the N states), instead of decaying (measured:
        m = 3, rtol = 1e-10: E fluctuating between 1e-24 and 1e-18 from t = 80 on). W moves by
        weight_sensitivity times that, and E = 1/2 ||(W - W*) Phi||^2 (square; the cross-entropy's
        Hessian is smaller, <= ||Phi||_2^2 / 2) by 1/2 ||Phi||_2^2 ||d W||^2."""
        A, B = unpack(y)
        W = ImplicitLayer.from_weights(A, gamma=gamma, validate=False).end_to_end_weight(B)
        problem = objective.problem
        dW = (
            rounding.weight_sensitivity(m, gamma, float(np.linalg.norm(W)))
            * np.sqrt(y.size)
            * (atol + rtol * float(np.abs(y).max()))
        )
        ode_floor = 0.5 * float(problem.feature_singular_values[0]) ** 2 * dW * dW
        return problem.excess(W) <= excess_rounding_floor(problem, W, gamma) + ode_floor

    step_integral = _RateIntegral(unpack, gamma, solver_class, RateTracker(m))  # over whole steps
    record_integral = _RateIntegral(unpack, gamma, solver_class, recorder.tracker)  # a step's start to a record

    def record(t, y, r):
        A, B = unpack(y)
        recorder.record(float(t), A, B, float(r))

    y0 = np.concatenate([A0.ravel(), B0.ravel()])
    # The loop of solve_ivp, with the records taken as the steps pass them (no dense output of the
    # whole run is kept: its memory grows with the number of steps) and an evaluation budget.
    # one BLAS thread at small m from the first evaluation on, the first record's dense rate
    # (the tracker's cold start) included (see verify._blas)
    with small_matrix_threads(m):
        solver = solver_class(rhs, 0.0, y0, T, rtol=rtol, atol=atol)
        i = 0  # next record time
        if t_eval[0] == 0.0:
            record(0.0, y0, 0.0)
            i = 1
        g = reached(0.0, y0) if reached is not None else None
        status, event_time, t_end, y_end, r_end = "finished", None, 0.0, y0, 0.0
        steps = 0
        while solver.status == "running":
            if solver.nfev >= max_nfev:
                status = "budget"
                break
            message = solver.step()
            if solver.status == "failed":
                raise RuntimeError(f"gradient_flow: the ODE solver failed: {message}")
            t_old, r_old = solver.t_old, r_end
            t_new, y_new = solver.t, solver.y
            dense = solver.dense_output()
            t_end, y_end = t_new, y_new
            if reached is not None:
                g_new = reached(t_new, y_new)
                if (g <= 0 <= g_new) or (g >= 0 >= g_new):  # solve_ivp's test for a sign change
                    event_time = brentq(
                        lambda t: reached(t, dense(t)),
                        t_old,
                        t_new,
                        xtol=4 * np.finfo(float).eps,
                        rtol=4 * np.finfo(float).eps,
                    )
                    t_end, y_end, status = event_time, dense(event_time), "event"
                g = g_new
            r_end = r_old + step_integral(dense, t_old, t_end)
            # records strictly before the end of this step (or the event) from its dense output
            j = int(np.searchsorted(t_eval, t_end, side="left"))
            for t in t_eval[i:j]:
                record(t, dense(t), r_old + record_integral(dense, t_old, t))
            i = max(i, j)
            if status == "event":
                break
            steps += 1
            if watch and steps % CONVERGENCE_CHECK_EVERY == 0 and solver.status == "running" and converged(y_new):
                status = "converged"
                break
    # A requested time equal to the end is recorded from the final state itself (not interpolated);
    # a run stopped early (event, budget) also records its final state as the last record.
    if i < len(t_eval) and t_eval[i] == t_end:
        record(t_end, y_end, r_end)
        i += 1
    elif status != "finished" and (not recorder.rows or recorder.rows[-1][0] < t_end):
        record(t_end, y_end, r_end)
    A_end, B_end = unpack(y_end)
    messages = {
        "finished": "The solver successfully reached the end of the integration interval.",
        "event": "A termination event occurred.",
        "budget": (
            f"stopped at t = {t_end:.6g} < T = {T:.6g}: the budget of max_nfev = {max_nfev} right-hand-side "
            f"evaluations is spent ({len(t_eval) - i} requested records after t = {t_end:.6g} are absent); "
            "raise max_nfev or shorten T"
        ),
        "converged": (
            f"converged at t = {t_end:.6g} < T = {T:.6g}: the excess L - L* reached its floor (its "
            "rounding and the ODE tolerance: the state is a minimiser as far as the integration resolves "
            f"it; {len(t_eval) - i} requested records after t = {t_end:.6g} are absent; "
            "stop_when_converged=False integrates on)"
        ),
    }
    return recorder.build(
        A_end.copy(),
        B_end.copy(),
        "flow",
        message=messages[status],
        event_time=event_time,
        info={
            "nfev": int(solver.nfev),
            "rtol": rtol,
            "atol": atol,
            "method": method,
            "gamma": gamma,
            "status": status,
            "max_nfev": max_nfev,
            "quadrature_nodes": step_integral.nodes_used,
            "rate_tracker": dict(step_integral.tracker.stats),
        },
    )


def gradient_descent(
    A0,
    B0,
    Phi,
    Y=None,
    *,
    gamma,
    lr,
    steps,
    loss: str = "square",
    record_every: int = 1,
    on_divergence: str = "raise",
    record_excess: bool = True,
    track_rate: bool = True,
) -> Trajectory:
    """Gradient descent A <- A - lr dL/dA, B <- B - lr dL/dB for ``steps`` steps.

    Records every ``record_every`` steps (and the last); ``t`` is step * lr, the flow time it
    approximates, and ``rate_integral`` the trapezoid rule lr sum_k (lambda_k + lambda_{k+1}) / 2
    over all steps. Each step costs one gradient evaluation and one lambda(A) from a
    :class:`verify.convergence.RateTracker` warm-started from the previous steps (nothing more
    when the step is not recorded). Records whose memory would exceed RECORD_MEMORY_LIMIT are
    refused up front (with the smallest ``record_every`` that fits). Divergence -- a step that
    makes A or B non-finite, or a non-finite loss or gradient -- raises FloatingPointError, or,
    with ``on_divergence="stop"``, ends the run at the last finite state with ``message`` saying
    so (the diverged state is neither recorded nor returned). ``record_excess`` as in
    :func:`gradient_flow`.

    ``track_rate=False`` drops the per-step lambda(A_k): a step then costs one gradient, lambda
    is computed at the records only, and ``rate_integral`` is NaN at every record after the first
    (the integral needs lambda at every step). The Theorem 1 checks need it on (the default).
    """
    objective, A, B = _make_objective(A0, B0, Phi, Y, gamma, loss)
    track_rate = check_flag("track_rate", track_rate)
    lr = check_positive("lr", lr)
    steps = check_positive("steps", steps, integer=True)
    record_every = check_positive("record_every", record_every, integer=True)
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop'; got {on_divergence!r}")
    per_record = record_bytes(A.shape[0], B.shape[0])
    fits = max(RECORD_MEMORY_LIMIT // per_record - 2, 1)
    check_record_memory(
        f"steps = {steps} with record_every = {record_every}",
        steps // record_every + 2,
        per_record,
        f"use record_every >= {-(-steps // fits)}",
    )
    recorder = _Recorder(objective, record_excess=check_flag("record_excess", record_excess))
    rate_of = recorder.tracker  # one tracker for the steps and the records: the same states
    # one BLAS thread at small m, the first record's dense rate (the tracker's cold start)
    # included (see verify._blas); divergence is detected and reported below
    with small_matrix_threads(A.shape[0]), np.errstate(over="ignore", invalid="ignore"):
        st = recorder.record(0.0, A, B, 0.0)
        status, message = "completed", f"completed {steps} steps"
        integral, prev_rate = 0.0, recorder.rows[-1][3]
        for k in range(1, steps + 1):
            A_new = A - lr * st.dA
            B_new = B - lr * st.dB
            # checked before anything factorises A_new: SciPy's own finiteness check would fire first
            diverged = not (all_finite(A_new) and all_finite(B_new))
            if not diverged:
                recording = k % record_every == 0 or k == steps
                st_new = objective.evaluate(A_new, B_new, with_excess=recording and recorder.excess_known)
                diverged = not (np.isfinite(st_new.loss) and all_finite(st_new.dA) and all_finite(st_new.dB))
            if diverged:
                if on_divergence == "raise":
                    raise FloatingPointError(
                        f"gradient_descent diverged at step {k} with lr={lr} (non-finite parameters, loss or gradient)"
                    )
                status, message = (
                    "diverged",
                    (
                        f"diverged at step {k} (non-finite parameters, loss or gradient); "
                        f"A and B are the last finite state, step {k - 1}"
                    ),
                )
                break
            if track_rate:
                rate = rate_of(st_new.layer.U)
                integral += 0.5 * lr * (prev_rate + rate)
            else:  # lambda at the records only; the integral is unknown
                rate = rate_of(st_new.layer.U) if recording else float("nan")
                integral = float("nan")
            if recording:
                recorder.add(k * lr, st_new, integral, rate)
            A, B, st, prev_rate = A_new, B_new, st_new, rate
    if status == "diverged" and recorder.rows[-1][0] < (k - 1) * lr:
        # the last finite state closes the records
        recorder.record((k - 1) * lr, A, B, integral, rate=prev_rate if track_rate else None)
    return recorder.build(
        A,
        B,
        "descent",
        message=message,
        info={"lr": lr, "steps": steps, "status": status, "rate_tracker": dict(rate_of.stats)},
    )
