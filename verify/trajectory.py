"""Trajectory records of gradient flow and gradient descent (docs/theory.md, section 4): the
:class:`Trajectory` a run returns, the recorder that evaluates and stores its rows, and the memory
rule that refuses oversized requests up front."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import MEMORY_LIMIT
from .convergence import RateTracker
from .gradients import DEQObjective, DEQState

#: largest memory the records of one trajectory may take; a request above it is refused up front
RECORD_MEMORY_LIMIT = MEMORY_LIMIT


def record_bytes(m: int, m_y: int, record_parameters: bool = False) -> int:
    """Estimated memory of one trajectory record: 7 scalars, the column sums (m), W (m_y x m) and,
    with ``record_parameters``, A and B; stored as a tuple of numpy objects (about 1 KiB of
    object overhead) and copied once into the final arrays (hence twice the float64 payload)."""
    floats = 7 + m + m_y * m + ((m * m + m_y * m) if record_parameters else 0)
    return 1024 + 16 * floats


def check_record_memory(what: str, records: int, per_record: int, advice: str) -> None:
    """Refuse, before any work, a number of records whose memory exceeds RECORD_MEMORY_LIMIT."""
    need = records * per_record  # Python ints: no overflow
    if need > RECORD_MEMORY_LIMIT:
        raise ValueError(
            f"{what} gives {records} records, about {need / 2**30:.3g} GiB "
            f"(limit {RECORD_MEMORY_LIMIT / 2**30:.3g} GiB at about {per_record} bytes per record); "
            f"{advice}"
        )


@dataclass
class Trajectory:
    """A recorded trajectory of gradient flow or gradient descent.

    Arrays are indexed by record k: ``t`` (time; k-th step times lr for descent), ``loss`` (L),
    ``excess_loss`` (L - L*), ``rate`` (lambda(A_t)), ``grad_norm`` (||grad L0(W_t)||_F),
    ``param_grad_norm_sq`` (||dL/dA||^2 + ||dL/dB||^2), ``column_sums`` (k x m), ``W`` (k x m_y x m),
    ``rate_integral`` (int_0^t lambda(A_s) ds; for a flow by Gauss-Legendre quadrature on each
    step's dense output, see :func:`gradient_flow`; trapezoid rule over the steps for descent).
    lambda is computed by :class:`verify.convergence.RateTracker` (the dense SVD for m <= 48,
    above warm-started inverse iteration (m <= 96) or a block Krylov method, with a Kato-Temple
    certificate of relative error <= (m + 3) eps, plus the Rayleigh quotient's rounding; values
    the Krylov method certifies only conditionally, counted in ``info["rate_tracker"]``, to
    <= 2 (m + 3) eps).
    ``A`` and ``B`` are the
    final parameters. ``info["status"]`` says how the run ended ("finished", "event", "converged", "budget" for
    a flow stopped by its evaluation budget, "completed" or "diverged" for descent) and
    ``message`` says it in words.
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
    """The rows of a trajectory. lambda comes from a :class:`RateTracker`, warm-started from the
    previous record (records are nearby states, in time order)."""

    def __init__(
        self,
        objective: DEQObjective,
        record_parameters: bool = False,
        tracker: RateTracker | None = None,
        record_excess: bool = True,
    ):
        self.objective = objective
        self.rows = []
        self.record_parameters = record_parameters
        self.params = []
        self.tracker = RateTracker(objective.problem.m) if tracker is None else tracker
        self.record_excess = record_excess
        self.excess_known = record_excess and self._excess_known()

    def record(self, t: float, A: np.ndarray, B: np.ndarray, rate_integral: float, rate: float | None = None):
        """Evaluate the state (A, B) and add it as a row; returns the evaluation."""
        # L* is not computed for partially separable cross-entropy data: excess is then NaN.
        st = self.objective.evaluate(A, B, with_excess=self.excess_known)
        self.add(t, st, rate_integral, self.tracker(st.layer.U) if rate is None else rate)
        return st

    def add(self, t: float, st: DEQState, rate_integral: float, rate: float) -> None:
        """Add an evaluated state (with its excess when it is known) and its lambda as a row."""
        self.rows.append(
            (
                t,
                st.loss,
                st.excess,
                rate,
                float(np.linalg.norm(st.grad_L0)),
                st.grad_norm_sq,
                st.A.sum(axis=0),
                st.W,
                rate_integral,
            )
        )
        if self.record_parameters:
            self.params.append((st.A.copy(), st.B.copy()))

    def build(self, A, B, kind, **extra) -> Trajectory:
        cols = list(zip(*self.rows))
        arrays = [np.asarray(c, dtype=float) for c in cols]
        if self.record_parameters:
            extra["A_t"] = np.array([p[0] for p in self.params])
            extra["B_t"] = np.array([p[1] for p in self.params])
        return Trajectory(*arrays, A=A, B=B, optimal_loss=self._optimal_loss(), kind=kind, **extra)

    def _excess_known(self) -> bool:
        problem = self.objective.problem
        return problem.loss.optimum_known(problem)

    def _optimal_loss(self) -> float:
        if not self.record_excess:
            return float("nan")
        try:
            return self.objective.problem.optimal_loss
        except ValueError:  # partially separable cross-entropy: L* not computed
            return float("nan")
