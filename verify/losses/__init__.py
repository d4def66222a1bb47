"""Losses of the shallow model L0(W) = sum_i l(W phi(x_i), y_i) and their optimum L*.

docs/theory.md, sections 1, 3 and 5. A loss is a :class:`Loss` object registered under a name
(:mod:`verify.losses.registry`); one module per loss:

    square         l(q, y) = 1/2 ||q - y||^2                      (verify.losses.square)
    cross_entropy  l(q, y) = -sum_k y_k log softmax(q)_k           (verify.losses.cross_entropy)
    pseudo_huber   l(q, y) = sum_k (sqrt(1 + (q_k - y_k)^2) - 1)   (verify.losses.pseudo_huber)

:class:`ShallowProblem` (verify.losses.problem) holds one data set and asks its loss for the
rest. To add a loss, add its module here (it is imported, and registers itself, with the
package); see :mod:`verify.losses.registry` and CONTRIBUTING.md.
"""

from ..separability import Separability  # noqa: I001 - the built-in losses register in the order below
from .problem import EXPLICIT_HESSIAN_MAX_SIZE, NotAttainedError, ShallowProblem, optimal_loss
from .registry import Loss, get_loss, loss_names, register, unregister
from .square import SQUARE, SquareLoss
from .cross_entropy import CROSS_ENTROPY, CrossEntropyLoss, column_log_softmax, cross_entropy_terms
from .pseudo_huber import PSEUDO_HUBER, PseudoHuberLoss

import importlib as _importlib
import pkgutil as _pkgutil

# Any other module of this package is a loss that registers itself on import: adding a loss is
# adding its module (and its reference and symbolic forms), with no edit here.
_BUILT_IN = {"problem", "registry", "square", "cross_entropy", "pseudo_huber"}
for _module in sorted(info.name for info in _pkgutil.iter_modules(__path__)):
    if _module not in _BUILT_IN:
        _importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "CROSS_ENTROPY",
    "CrossEntropyLoss",
    "EXPLICIT_HESSIAN_MAX_SIZE",
    "Loss",
    "NotAttainedError",
    "PSEUDO_HUBER",
    "PseudoHuberLoss",
    "SQUARE",
    "Separability",
    "ShallowProblem",
    "SquareLoss",
    "column_log_softmax",
    "cross_entropy_terms",
    "get_loss",
    "loss_names",
    "optimal_loss",
    "register",
    "unregister",
]
