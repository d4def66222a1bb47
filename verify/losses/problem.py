"""The shallow model L0(W) = sum_i l(W phi_i, y_i) on one data set, for any registered loss.

docs/theory.md, sections 1 and 3: grad L0(W) = G Phi^T with G = dL0/d(outputs). A
:class:`ShallowProblem` validates (Phi, Y) once, keeps read-only copies, and asks its
:class:`~verify.losses.registry.Loss` for everything else: the loss's ``prepare`` caches what
later evaluations need (``problem.state``: the square loss's sufficient statistics, the
cross-entropy's labels and separability analysis, ...), and value, gradient, Hessian, the optimum
and the PL constant are the loss's methods applied to this problem.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.linalg as sla

from .._validation import as_matrix, check_data
from .registry import Loss

EPS = np.finfo(np.float64).eps

#: above this size (m m_y) the explicit Hessian is refused (as the explicit metric K is): at 4096 it
#: takes 128 MiB, and a Newton solve for L* costs (m m_y)^3
EXPLICIT_HESSIAN_MAX_SIZE = 4096


class NotAttainedError(ValueError):
    """Raised when a quantity needs a minimiser of L0 that does not exist."""


class ShallowProblem:
    """A data set (Phi, Y) and a loss, with L0, grad L0, its Hessian and the optimum L*.

    Parameters
    ----------
    Phi : (m, n) array, features as columns.
    Y : (m_y, n) array, targets as columns (one-hot for ``loss="cross_entropy"``).
    loss : a registered name ("square", "cross_entropy", "pseudo_huber") or a
        :class:`verify.losses.Loss`; ``problem.loss`` is the Loss object (it compares equal to
        its name).
    """

    def __init__(self, Phi, Y, loss: str | Loss = "square"):
        from .registry import get_loss

        loss = get_loss(loss)
        # a loss that checks finiteness itself (the square loss: through its Gram products) saves a pass
        Phi, Y = check_data(Phi, Y, loss, finite=not getattr(loss, "checks_finite_data", False))
        self.loss = loss
        self.m, self.n = Phi.shape
        self.m_y = Y.shape[0]
        # Own read-only copies: the caches (the loss's state, W*, L*) must not go stale if the
        # caller later edits the arrays it passed. Phi and Y are two views of one (m + m_y) x n
        # array ``data`` (the square loss gets Phi Phi^T, Y Phi^T and Y Y^T from one syrk of it).
        data = np.empty((self.m + self.m_y, self.n))
        data[: self.m] = Phi
        data[self.m :] = Y
        data.flags.writeable = False
        self.data = data
        self.Phi, self.Y = data[: self.m], data[self.m :]
        self.state = loss.prepare(self)

    # ---- shapes --------------------------------------------------------------------------
    def check_weight(self, W, name: str = "W") -> np.ndarray:
        return as_matrix(name, W, shape=(self.m_y, self.m))

    # ---- loss values and gradients -------------------------------------------------------
    def outputs(self, W: np.ndarray) -> np.ndarray:
        return W @ self.Phi

    def value(self, W: np.ndarray) -> float:
        """L0(W) = sum_i l(W phi_i, y_i)."""
        return self.loss.value(self, W)

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """grad L0(W) = G Phi^T."""
        return self.loss.gradient(self, W)

    def value_and_gradient(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        return self.loss.value_and_gradient(self, W)

    def output_gradient(self, W: np.ndarray) -> np.ndarray:
        """G = dL0/d(outputs) at Q = W Phi: W Phi - Y (square), softmax(W Phi) - Y (cross-entropy),
        (W Phi - Y) / sqrt(1 + (W Phi - Y)^2) entrywise (pseudo-Huber)."""
        return self.loss.output_gradient(self, W)

    def excess(self, W: np.ndarray) -> float:
        """L0(W) - L*: cancellation-free where the loss has such a form (square: 1/2 ||(W - W*)
        R^T||_F^2; pseudo-Huber: a sum of Bregman divergences), else a difference whose absolute
        error is about eps * L0."""
        return self.loss.excess(self, W)

    def hessian(self, W: np.ndarray | None = None) -> np.ndarray:
        """Hessian of L0 in column-major vec(W) coordinates, size (m m_y) x (m m_y):
        sum_i (phi_i phi_i^T) (x) C_i, C_i the output Hessian of l at (W phi_i, y_i)."""
        if not self.loss.constant_hessian and self.m * self.m_y > EXPLICIT_HESSIAN_MAX_SIZE:
            raise ValueError(
                f"the explicit {self.loss.name} Hessian has size m*m_y = {self.m * self.m_y} > "
                f"{EXPLICIT_HESSIAN_MAX_SIZE} ({8 * (self.m * self.m_y) ** 2 / 2**30:.3g} GiB per "
                "copy); use hessian_vector"
            )
        return self.loss.hessian(self, W)

    def hessian_vector(self, W: np.ndarray, V: np.ndarray) -> np.ndarray:
        """The Hessian of L0 at W applied to the direction V (m_y x m), as an m_y x m matrix."""
        return self.loss.hessian_vector(self, W, V)

    # ---- the optimum -------------------------------------------------------------------
    @property
    def gram(self) -> np.ndarray:
        """Phi Phi^T (cached by losses that keep it, e.g. the square loss)."""
        cached = getattr(self.state, "gram", None)
        if cached is not None:
            return cached
        return self._gram

    @cached_property
    def _gram(self) -> np.ndarray:
        return self.Phi @ self.Phi.T

    @property
    def factorization(self) -> str | None:
        """Which factorization of Phi^T gave the cached factor R (square loss), else None."""
        return getattr(self.state, "factorization", None)

    @cached_property
    def feature_singular_values(self) -> np.ndarray:
        """The singular values of Phi, largest first (from the cached factor R with Phi Phi^T =
        R^T R where the loss keeps one, O(m^3); else of Phi itself)."""
        factor = getattr(self.state, "gram_factor", None)
        return sla.svdvals(self.Phi if factor is None else factor)

    def pl_constant_at(self, level: float | None = None) -> float:
        """A PL constant of L0: global (square loss; ``level`` ignored) or valid on the sublevel
        set {W : L0(W) <= level} (pseudo-Huber: ``level`` required). Raises ValueError for a loss
        with no derived constant (cross-entropy)."""
        return self.loss.pl_constant(self, level)

    @cached_property
    def pl_constant(self) -> float:
        """The global PL constant kappa (square loss: the smallest nonzero eigenvalue of Phi Phi^T):
        ||grad L0(W)||_F^2 >= 2 kappa (L0(W) - L*) for every W. Losses whose constant holds only on
        a sublevel set use :meth:`pl_constant_at`."""
        if self.loss.pl != "global":
            raise ValueError(
                f"pl_constant is a global constant, which the {self.loss.name} loss does not have; "
                + (
                    "use pl_constant_at(level), valid on the sublevel set {L0 <= level}"
                    if self.loss.pl == "sublevel"
                    else "use verify.convergence.local_pl_estimate"
                )
            )
        return self.loss.pl_constant(self, None)

    @property
    def separability(self):
        """(Partial) separability of the classes (cross-entropy; :mod:`verify.separability`)."""
        analysis = getattr(self.loss, "separability", None)
        if analysis is None:
            raise ValueError(f"separability applies to the cross-entropy loss only, not to {self.loss.name}")
        return analysis(self)

    @cached_property
    def _optimum(self) -> tuple[float, np.ndarray | None]:
        return self.loss.optimum(self)

    @property
    def optimal_loss(self) -> float:
        """L* = inf_W L0(W) (0 exactly for separable cross-entropy data, not attained)."""
        return self._optimum[0]

    @property
    def minimiser(self) -> np.ndarray:
        """A minimiser W* of L0 (square and pseudo-Huber: the minimum-norm one)."""
        W = self._optimum[1]
        if W is None:
            raise NotAttainedError("the data are separable: L* = 0 is not attained by any W")
        if not np.all(np.isfinite(W)):
            raise ValueError(
                "the minimiser W* overflows float64 at this scale of Phi (|W*| ~ 1 / |Phi|); "
                "rescale Phi (L* itself is computed scale-free)"
            )
        return W

    @property
    def attained(self) -> bool:
        return self.loss.attained(self)


def optimal_loss(Phi, Y, *, loss: str | Loss = "square") -> float:
    """L* = inf_W L0(W) of the shallow model (equal to inf_{A,B} L, by expressivity).

    Square loss: least squares with the pseudo-inverse, L* = 1/2 ||Y Phi^+ Phi - Y||_F^2.
    Cross-entropy: a damped Newton solve on non-separable data; 0 on separable data, where L*
    is not attained (a warning-free, documented value: check ``ShallowProblem.separability``).
    Partially separable data raise :class:`NotAttainedError`. Pseudo-Huber: a damped Newton
    solve (always attained).
    """
    return ShallowProblem(Phi, Y, loss).optimal_loss
