"""deq-verify: derive and measure the claims about deep equilibrium linear models.

f(x) = B (I - gamma sigma(A))^{-1} phi(x), sigma the column softmax. See docs/theory.md for the
notation (samples are columns) and the README for the claims this suite verifies.
"""

from .convergence import naive_bound_counterexample, rate_constant, uniform_rate_bound
from .dynamics import Trajectory, gradient_descent, gradient_flow, preconditioner, preconditioner_matvec
from .gradients import loss_and_grad, unrolled_loss_and_grad
from .losses import NotAttainedError, ShallowProblem, optimal_loss
from .model import column_softmax, end_to_end_weight, equilibrium, fixed_point_iterates, predict

__version__ = "0.1.0"

__all__ = [
    "NotAttainedError",
    "ShallowProblem",
    "Trajectory",
    "column_softmax",
    "end_to_end_weight",
    "equilibrium",
    "fixed_point_iterates",
    "gradient_descent",
    "gradient_flow",
    "loss_and_grad",
    "naive_bound_counterexample",
    "optimal_loss",
    "predict",
    "preconditioner",
    "preconditioner_matvec",
    "rate_constant",
    "unrolled_loss_and_grad",
    "uniform_rate_bound",
]
