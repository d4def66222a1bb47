"""The loss interface and its registry (docs/theory.md, section 1).

A loss is an object, not a string: a :class:`Loss` subclass registered under a name. Everything
that depends on the loss -- its value and output gradient, its Hessian, the optimum L* and W*,
its Polyak-Lojasiewicz constant, the rule its targets obey and how to draw them, and the
properties that decide which claims apply -- is a method or an attribute of that object, so the
rest of the suite asks the loss instead of branching on its name. The public API accepts either
the registered name ("square", "cross_entropy", "pseudo_huber") or a Loss object; an unknown name
is refused in one place, :func:`get_loss`, which lists the registered losses.

The independent reference (:mod:`verify.reference`) and the SymPy side (:mod:`theory.losses`)
keep their own implementations under the same names; ``property_tests/test_loss_registry.py``
fails, naming the loss, when one of the three is missing.
"""

from __future__ import annotations

import numpy as np

#: how Theorem 1's Polyak-Lojasiewicz constant is known for a loss (docs/theory.md, section 5)
PL_KINDS = ("global", "sublevel", "estimate")

EPS = np.finfo(np.float64).eps


class Loss:
    """One loss l(q, y) of the shallow model L0(W) = sum_i l(W phi_i, y_i).

    Class attributes (what decides which claims apply):

    - ``name``: the registered name (also what a configuration's "loss" key holds);
    - ``targets``: "real" (any finite targets) or "one-hot";
    - ``pl``: "global" (one PL constant for every W: :meth:`pl_constant` ignores ``level``),
      "sublevel" (a constant derived on the sublevel set {L0 <= level}) or "estimate" (no derived
      constant: Theorem 1's hypothesis is not checkable, only estimated);
    - ``attainment``: "always" (L* is attained for all data) or "data-dependent";
    - ``constant_hessian``: whether the Hessian of L0 does not depend on W;
    - ``curvature_bound``: sup over q of ||d^2 l / dq^2||_2, so that H(W) <= curvature_bound
      (Phi Phi^T) (x) I for every W;
    - ``min_outputs``: the fewest outputs m_y the samplers draw for it (cross-entropy: 2 classes);
    - ``saturates_in_outputs``: the curvature vanishes as the outputs W Phi grow, whatever the
      targets (cross-entropy): the trust-region claims then start from shrunk outputs.

    Array methods work on the last two axes, (..., m_y, n), as the batched path needs:
    :meth:`terms` returns the per-stack value sum_i l(q_i, y_i) and G = dL/dQ, :meth:`output_hvp`
    the output Hessian applied to a direction. Problem methods take a
    :class:`verify.losses.ShallowProblem`; their defaults are built from the array methods, and a
    loss overrides them where it has a faster or more accurate form.
    """

    name: str = ""
    targets: str = "real"
    pl: str = "estimate"
    attainment: str = "always"
    constant_hessian: bool = False
    curvature_bound: float = 1.0
    min_outputs: int = 1
    saturates_in_outputs: bool = False

    # ---- identity: a Loss compares equal to its registered name ----------------------------
    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return other == self.name
        return isinstance(other, Loss) and type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---- targets ---------------------------------------------------------------------------
    def check_targets(self, name: str, Y: np.ndarray) -> None:
        """Raise ValueError naming ``name`` and the rule when Y (finite float64, (..., m_y, n))
        does not fit the loss. Real targets: nothing beyond finiteness (checked by the caller)."""

    def sample_targets(self, rng: np.random.Generator, m_y: int, n: int, scale: float = 1.0) -> np.ndarray:
        """Targets for the campaign's samplers and the Hypothesis strategies: Y ~ N(0, scale^2)."""
        return scale * rng.standard_normal((m_y, n))

    # ---- per-output terms (stack-aware) ----------------------------------------------------
    def terms(self, Q: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray | float, np.ndarray]:
        """(sum_i l(q_i, y_i) over the last two axes, G = dL/dQ) for outputs Q (..., m_y, n)."""
        raise NotImplementedError

    def output_hvp(self, Q: np.ndarray, Y: np.ndarray, dQ: np.ndarray) -> np.ndarray:
        """The output Hessian applied to dQ, column by column: [d^2 l(q_i, y_i)/dq^2] dq_i."""
        raise NotImplementedError

    # ---- on a ShallowProblem -----------------------------------------------------------------
    def prepare(self, problem):
        """Whatever this loss caches per data set (its return value is ``problem.state``)."""
        return None

    def value(self, problem, W: np.ndarray) -> float:
        return float(self.terms(W @ problem.Phi, problem.Y)[0])

    def output_gradient(self, problem, W: np.ndarray) -> np.ndarray:
        return self.terms(W @ problem.Phi, problem.Y)[1]

    def value_and_gradient(self, problem, W: np.ndarray) -> tuple[float, np.ndarray]:
        value, G = self.terms(W @ problem.Phi, problem.Y)
        return float(value), G @ problem.Phi.T

    def gradient(self, problem, W: np.ndarray) -> np.ndarray:
        return self.output_gradient(problem, W) @ problem.Phi.T

    def excess(self, problem, W: np.ndarray) -> float:
        """L0(W) - L*: a difference, whose absolute error is about eps L0 (override where a
        cancellation-free form exists)."""
        return self.value(problem, W) - problem.optimal_loss

    def hessian_vector(self, problem, W: np.ndarray, V: np.ndarray) -> np.ndarray:
        """The Hessian of L0 at W applied to V (both m_y x m): output_hvp(Q, Y, V Phi) Phi^T."""
        return self.output_hvp(W @ problem.Phi, problem.Y, V @ problem.Phi) @ problem.Phi.T

    def hessian(self, problem, W: np.ndarray | None) -> np.ndarray:
        """The Hessian of L0 in column-major vec(W), column by column from :meth:`hessian_vector`."""
        if W is None:
            raise ValueError(f"W is required for the {self.name} Hessian (it depends on W)")
        m, m_y = problem.m, problem.m_y
        H = np.empty((m * m_y, m * m_y))
        for k in range(m * m_y):
            E = np.zeros(m * m_y)
            E[k] = 1.0
            H[:, k] = self.hessian_vector(problem, W, E.reshape((m_y, m), order="F")).reshape(-1, order="F")
        return 0.5 * (H + H.T)

    def optimum(self, problem) -> tuple[float, np.ndarray | None]:
        """(L*, a minimiser W* or None where L* is not attained)."""
        raise NotImplementedError

    def attained(self, problem) -> bool:
        return True

    def optimum_known(self, problem) -> bool:
        """Whether this suite computes L* for these data (cross-entropy: not on partially
        separable data, where it is not attained)."""
        return True

    def optimum_tolerance(self, problem) -> float:
        """Accuracy of the computed L*: a Newton solve stopped where its decrement no longer
        exceeds the rounding of L0, 64 eps max(1, L*) (override with the loss's own rule)."""
        return 64 * EPS * max(1.0, problem.optimal_loss)

    def excess_rounding(self, problem, W: np.ndarray, rho: float) -> float:
        """The level below which the computed excess L0(W) - L* is rounding noise, W = B U^{-1}
        formed with relative error ``rho`` (verify.rounding.solve_rounding). Default, for an excess
        computed as a difference: L0 errs by ||G|| e_Q + 4 n m_y eps L0 (the outputs Q = W Phi to
        e_Q = (rho + m eps) ||W|| ||Phi||_F, G = dL0/dQ; n m_y terms of a few operations each),
        and L* by :meth:`optimum_tolerance`."""
        value, G = problem.value(W), problem.output_gradient(W)
        e_Q = (rho + problem.m * EPS) * float(np.linalg.norm(W)) * float(np.linalg.norm(problem.Phi))
        return (
            float(np.linalg.norm(G)) * e_Q
            + 4 * problem.n * problem.m_y * EPS * abs(value)
            + self.optimum_tolerance(problem)
        )

    def pl_constant(self, problem, level: float | None = None) -> float:
        """A PL constant kappa: ||grad L0(W)||^2 >= 2 kappa (L0(W) - L*), for every W ("global")
        or for every W with L0(W) <= level ("sublevel")."""
        raise ValueError(
            f"the {self.name} loss has no derived PL constant (only an estimate: verify.convergence.local_pl_estimate)"
        )


_REGISTRY: dict[str, Loss] = {}


def armijo_step(problem, W, V, value: float, decrement: float):
    """W + t V for the largest t in {1, 1/2, 1/4, ...} (down to 1e-12) with
    L0(W + t V) <= L0(W) - t decrement / 4 (a damped Newton step; ``decrement`` = -grad^T V)."""
    t = 1.0
    while problem.value(W + t * V) > value - 0.25 * t * decrement and t > 1e-12:
        t *= 0.5
    return W + t * V


def register(loss: Loss, *, replace: bool = False) -> Loss:
    """Register ``loss`` (an instance) under ``loss.name``; returns it."""
    if not isinstance(loss, Loss) or not isinstance(loss.name, str) or not loss.name.isidentifier():
        raise ValueError(f"register needs a Loss instance whose name is an identifier; got {loss!r}")
    if (
        loss.targets not in ("real", "one-hot")
        or loss.pl not in PL_KINDS
        or loss.attainment not in ("always", "data-dependent")
    ):
        raise ValueError(
            f"loss {loss.name!r}: targets must be 'real' or 'one-hot', pl one of {PL_KINDS}, "
            "attainment 'always' or 'data-dependent'"
        )
    if loss.name in _REGISTRY and not replace:
        raise ValueError(f"a loss named {loss.name!r} is already registered")
    _REGISTRY[loss.name] = loss
    return loss


def unregister(name: str) -> None:
    """Remove a registered loss (tests that register a toy loss clean up with it)."""
    _REGISTRY.pop(name, None)


def loss_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


def get_loss(loss) -> Loss:
    """The Loss for a registered name, or ``loss`` itself when it is a Loss object. The one place
    where an unknown loss is refused: ValueError naming ``loss`` and listing the registered ones."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _REGISTRY:
        return _REGISTRY[loss]
    raise ValueError(f"loss must be one of {loss_names()} or a verify.losses.Loss; got {loss!r}")
