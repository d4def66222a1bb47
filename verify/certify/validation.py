"""Arguments of the certificates and their size budget.

Bad input raises ValueError naming the argument and the rule (the array rules are the float64
API's, :mod:`verify._validation`: real, finite, 2-D, non-empty, converting to float64 without
loss; nothing is coerced). An instance whose estimated cost exceeds :data:`COST_LIMIT` is refused
before any work, with its size and the limit named.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_matrix, check_gamma, check_positive, check_square_weight

#: Largest estimated cost of one certificate at its first precision, in ball multiply-adds
#: (:func:`estimated_cost`). Measured on the development machine (benchmarks/certify_sizes.py):
#: a product of two d x d ball matrices costs about 1e-8 d^3 s at 53 bits and 1.2e-8 d^3 s at
#: 106 bits, an inverse about four products, so 3e9 is at most about 30-120 s per precision (the
#: estimate is pessimistic for the exact Gram matrices: STATE-WISE at m = 256, m_y = 10, n = 1000
#: is estimated at 1e9 and takes 6 s). ENERGY at m = 256, m_y = 10, n = 1000 costs 1.7e9; an
#: explicit (m m_y)^2 metric at m = 100, m_y = 10 would have cost 2e10.
COST_LIMIT = 3.0e9

#: Largest precision accepted (bits); the default loop ends at 424.
MAX_BITS = 8192


def check_state(A, B, Phi, Y, gamma) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """A (m x m), B (m_y x m), Phi (m x n), Y (m_y x n), gamma in (0, 1): real, finite float64."""
    A = check_square_weight(A)
    m = A.shape[0]
    B = as_matrix("B", B)
    if B.shape[1] != m:
        raise ValueError(f"B must be m_y x m with m = {m} (A is {m} x {m}); got shape {B.shape}")
    Phi = as_matrix("Phi", Phi)
    if Phi.shape[0] != m:
        raise ValueError(f"Phi must be m x n with m = {m} rows (A is {m} x {m}); got shape {Phi.shape}")
    Y = as_matrix("Y", Y)
    if Y.shape != (B.shape[0], Phi.shape[1]):
        raise ValueError(
            f"Y must be m_y x n = {B.shape[0]} x {Phi.shape[1]} (rows of B, columns of Phi); got shape {Y.shape}"
        )
    return A, B, Phi, Y, check_gamma(gamma)


def check_weight(A, gamma) -> tuple[np.ndarray, float]:
    return check_square_weight(A), check_gamma(gamma)


def check_real(name: str, value, *, positive: bool = True, allow_zero: bool = False) -> float:
    """A finite real scalar (not a bool), > 0 (or >= 0 with allow_zero) when ``positive``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    x = float(value)
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if positive and not (x > 0 or (allow_zero and x == 0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}")
    return x


def check_fraction(name: str, value) -> float:
    x = check_real(name, value)
    if not x < 1:
        raise ValueError(f"{name} must lie in the open interval (0, 1); got {value!r}")
    return x


def check_width(name: str, value) -> int:
    return int(check_positive(name, value, integer=True))


def check_precisions(precisions) -> tuple[int, ...]:
    """A non-empty, strictly increasing sequence of integer precisions in [16, MAX_BITS] bits."""
    try:
        values = tuple(precisions)
    except TypeError:
        raise ValueError(f"precisions must be a sequence of integers; got {precisions!r}") from None
    if not values:
        raise ValueError("precisions must not be empty")
    for p in values:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Integral) or not 16 <= p <= MAX_BITS:
            raise ValueError(f"precisions must be integers in [16, {MAX_BITS}] bits; got {p!r}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"precisions must be strictly increasing; got {values}")
    return tuple(int(p) for p in values)


def estimated_cost(claim: str, m: int, m_y: int = 1, n: int = 1) -> int:
    """Ball multiply-adds of one certificate at one precision (leading terms, exact integers; a
    rational multiply-add of the exact Gram matrices counts 10: they are slower than ball ones).

    UNIFORM-RATE, NAIVE-BOUND-FALSE   4 m^3        (U^T U and its lambda_max enclosure)
    STATE-WISE                        12 m^3 + 10 (m^2 n + m_y m n) + 8 min(m, n)^3
                                      + 10 n^2 m (m > n: Phi^T Phi) + 3 m^2 m_y
    ENERGY                            STATE-WISE + 2 m^2 m_y^2 (the N_j) + 16 m^2 m_y (products with K)
                                      + one Schur bound (verify.certify.kronecker: 4 d^3, d = m m_y,
                                      for d <= DENSE_Z; else 2 m^3 + k m_y^2 m^2 + k^2 m_y^3 m + 4 (k m_y)^3
                                      with k the largest SCHUR_DIRECTIONS)
    TRUST-REGION                      ENERGY's terms with two Schur bounds, + 12 m^3 (lambda_max of
                                      Q and Phi Phi^T, lambda(A)) + m m_y^3 (the M_j^{-1})
    """
    from .metric import DENSE_Z, SCHUR_DIRECTIONS

    m, m_y, n = int(m), int(m_y), int(n)
    if claim in ("UNIFORM-RATE", "NAIVE-BOUND-FALSE"):
        return 4 * m**3
    state = 12 * m**3 + 10 * (m * m * n + m_y * m * n) + 8 * min(m, n) ** 3 + 3 * m * m * m_y
    if m > n:
        state += 10 * n * n * m
    if claim == "STATE-WISE":
        return state
    d, k = m * m_y, min(m, SCHUR_DIRECTIONS[-1])
    schur = 4 * d**3
    if d > DENSE_Z:
        schur = 2 * m**3 + k * m_y**2 * m * m + k * k * m_y**3 * m + 4 * (k * m_y) ** 3
    metric = 2 * m * m * m_y**2 + 16 * m * m * m_y
    if claim == "ENERGY":
        return state + metric + schur
    if claim == "TRUST-REGION":
        return state + metric + 2 * schur + 12 * m**3 + m * m_y**3
    raise ValueError(f"claim must be one of the certified claims; got {claim!r}")


def check_budget(claim: str, m: int, m_y: int = 1, n: int = 1) -> None:
    """Refuse an instance whose :func:`estimated_cost` exceeds COST_LIMIT (integer arithmetic:
    no overflow at any size)."""
    cost = estimated_cost(claim, m, m_y, n)
    if cost > COST_LIMIT:
        shown = f"{cost:.2g}" if cost < 10**300 else "more than 1e300"
        size = f"m = {m}" if claim in ("UNIFORM-RATE", "NAIVE-BOUND-FALSE") else f"m = {m}, m_y = {m_y}, n = {n}"
        raise ValueError(
            f"{claim} at {size} would cost about {shown} ball operations per precision "
            f"(limit {COST_LIMIT:.2g}, see verify.certify.validation.estimated_cost); "
            "certify a smaller instance"
        )


def check_instance(instance) -> dict | None:
    """The optional description of the instance for the report: None or a dict."""
    if instance is not None and not isinstance(instance, dict):
        raise ValueError(f"instance must be a dict describing the instance, or None; got {type(instance).__name__}")
    return instance
