"""Helpers shared by the certificate tests: enclosure assertions and instances."""

import numpy as np
from flint import arb, arb_mat
from strategies import make_case

from verify import certify as C

EPS = np.finfo(float).eps
PROOF_VERDICTS = (C.CERTIFIED, C.CONSISTENT)


def assert_encloses(ball: arb, value: float, float_error: float = 0.0, what: str = "") -> None:
    """value lies in the ball, widened by float_error (the float64 value's own rounding bound)."""
    lo, hi = float(ball.lower()), float(ball.upper())
    assert lo - float_error <= value <= hi + float_error, f"{what}: {value!r} not in {ball} (+- {float_error:.1e})"


def assert_matrix_encloses(balls: arb_mat, values: np.ndarray, float_error: float, what: str) -> None:
    values = np.asarray(values).reshape(balls.nrows(), balls.ncols())
    for (i, j), x in np.ndenumerate(values):
        assert_encloses(balls[i, j], float(x), float_error, f"{what}[{i},{j}]")


def statuses(cert) -> dict:
    return {it.statement: it.status for it in cert.items}


def cond_bound(gamma):
    """cond_1(U) <= (1 + gamma) / (1 - gamma) (docs/theory.md, section 2)."""
    return (1 + gamma) / (1 - gamma)


def state(shape, seed=0, gamma=0.9):
    case = make_case(seed, *shape, gamma)
    return case.A, case.B, case.Phi, case.Y
