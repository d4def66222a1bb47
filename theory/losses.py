"""The losses, symbolically, from their definitions (docs/theory.md, sections 1 and 5).

This is the SymPy side's own registry of losses, under the names the numerical core uses
(verify.losses): each :class:`SymbolicLoss` gives one sample's loss l(q, y) as an expression in
the output and target symbols, the closed form of dl/dq that docs/theory.md states (compared with
``sympy.diff`` of l by :func:`output_gradient_residual`), and how to draw exact rational targets.
Everything else (the model's gradients, the Hessian of L0) is derived by differentiating l.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class SymbolicLoss:
    """One loss: ``sample(q, y)`` = l(q, y) for one sample's outputs q and targets y (lists of
    m_y expressions), ``gradient(q, y)`` = the closed form of dl/dq (a list), ``targets`` "real"
    or "one-hot"."""

    name: str
    sample: Callable[[list, list], sp.Expr]
    gradient: Callable[[list, list], list]
    targets: str = "real"


SYMBOLIC_LOSSES: dict[str, SymbolicLoss] = {}


def register(loss: SymbolicLoss) -> SymbolicLoss:
    SYMBOLIC_LOSSES[loss.name] = loss
    return loss


def unregister(name: str) -> None:
    SYMBOLIC_LOSSES.pop(name, None)


def symbolic_loss(name: str) -> SymbolicLoss:
    if name not in SYMBOLIC_LOSSES:
        raise ValueError(f"loss must be one of {tuple(SYMBOLIC_LOSSES)}; got {name!r}")
    return SYMBOLIC_LOSSES[name]


def total_loss(Q: sp.Matrix, Y: sp.Matrix, name: str) -> sp.Expr:
    """sum_i l(q_i, y_i) over the columns of Q and Y."""
    loss = symbolic_loss(name)
    return sum(loss.sample(list(Q[:, i]), list(Y[:, i])) for i in range(Q.cols))


def output_gradient(Q: sp.Matrix, Y: sp.Matrix, name: str) -> sp.Matrix:
    """The closed-form G = dL/dQ, column by column."""
    loss = symbolic_loss(name)
    columns = [loss.gradient(list(Q[:, i]), list(Y[:, i])) for i in range(Q.cols)]
    return sp.Matrix(Q.rows, Q.cols, lambda k, i: columns[i][k])


def output_gradient_residual(name: str, m_y: int) -> list:
    """sympy.diff of l(q, y) in q minus the closed form, simplified: all zero when the closed form
    (docs/theory.md, section 1) is right. Targets are generic real symbols (one-hot: y = e_0)."""
    loss = symbolic_loss(name)
    q = list(sp.symbols(f"q0:{m_y}", real=True))
    y = (
        [sp.Integer(int(k == 0)) for k in range(m_y)]
        if loss.targets == "one-hot"
        else list(sp.symbols(f"y0:{m_y}", real=True))
    )
    value = loss.sample(q, y)
    closed = loss.gradient(q, y)
    return [sp.simplify(sp.diff(value, q[k]) - closed[k]) for k in range(m_y)]


# ---- the registered losses -----------------------------------------------------------------
def _softmax(q):
    total = sum(sp.exp(x) for x in q)
    return [sp.exp(x) / total for x in q]


register(
    SymbolicLoss(
        "square",
        lambda q, y: sp.Rational(1, 2) * sum((a - b) ** 2 for a, b in zip(q, y)),
        lambda q, y: [a - b for a, b in zip(q, y)],
    )
)
register(
    SymbolicLoss(
        "cross_entropy",
        lambda q, y: -sum(b * (a - sp.log(sum(sp.exp(x) for x in q))) for a, b in zip(q, y)),
        lambda q, y: [p - b for p, b in zip(_softmax(q), y)],
        targets="one-hot",
    )
)
register(
    SymbolicLoss(
        "pseudo_huber",
        lambda q, y: sum(sp.sqrt(1 + (a - b) ** 2) - 1 for a, b in zip(q, y)),
        lambda q, y: [(a - b) / sp.sqrt(1 + (a - b) ** 2) for a, b in zip(q, y)],
    )
)


# ---- the pseudo-Huber PL constant on a sublevel set (docs/theory.md, section 5) ------------------
def pseudo_huber_curvature_derivation() -> dict:
    """The three facts behind kappa(c) = kappa_Phi / (1 + c)^3, each a residual that must be 0:

    - ``curvature``: l''(r) - (1 + r^2)^(-3/2), with l(r) = sqrt(1 + r^2) - 1 (sympy.diff twice);
    - ``sublevel``: l(R) - c at R = sqrt(c^2 + 2c), and ``increasing``: l'(r) - r / sqrt(1 + r^2)
      (positive for r > 0): l is even and increasing in |r|, so l(r) <= c iff r^2 <= R^2;
    - ``bound``: (1 + R^2)^(-3/2) - (1 + c)^(-3): the least curvature on the sublevel set;
    - ``bregman``: l(r) - l(s) - l'(s)(r - s) - (r - s)^2 / (b (ab + 1 + rs)), a = sqrt(1 + r^2),
      b = sqrt(1 + s^2): the cancellation-free excess of verify.losses.pseudo_huber.
    """
    r, s = sp.symbols("r s", real=True)
    c = sp.Symbol("c", positive=True)
    l = sp.sqrt(1 + r**2) - 1  # noqa: E741
    curvature = sp.simplify(sp.diff(l, r, 2) - (1 + r**2) ** sp.Rational(-3, 2))
    R2 = c**2 + 2 * c
    # sqrt of the factored (1 + c)^2 is 1 + c (c > 0): exact, no numerical root
    sublevel = sp.simplify(sp.sqrt(sp.factor(1 + R2)) - 1 - c)
    increasing = sp.simplify(sp.diff(l, r) - r / sp.sqrt(1 + r**2))
    bound = sp.simplify(sp.factor(1 + R2) ** sp.Rational(-3, 2) - (1 + c) ** -3)
    a, b = sp.sqrt(1 + r**2), sp.sqrt(1 + s**2)
    ls = l.subs(r, s)
    bregman_expr = l - ls - sp.diff(ls, s) * (r - s) - (r - s) ** 2 / (b * (a * b + 1 + r * s))
    # rationalise: multiply by the positive denominator b (ab + 1 + rs), then expand the radicals
    bregman = sp.simplify(sp.expand(sp.radsimp(sp.together(bregman_expr) * b * (a * b + 1 + r * s))))
    return {"curvature": curvature, "sublevel": sublevel, "increasing": increasing, "bound": bound, "bregman": bregman}


__all__ = [
    "SYMBOLIC_LOSSES",
    "SymbolicLoss",
    "output_gradient",
    "output_gradient_residual",
    "pseudo_huber_curvature_derivation",
    "register",
    "symbolic_loss",
    "total_loss",
    "unregister",
]
