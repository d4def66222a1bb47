"""Input validation shared by the public entry points.

Every check raises :class:`ValueError` naming the offending argument and the rule it broke.
Arrays are converted to float64 (a lossless widening for integer and float32 input); nothing
else is coerced: a 1-D array is not reshaped, a non-one-hot target is not repaired, a gamma
outside (0, 1) is not clipped.
"""

from __future__ import annotations

import numbers

import numpy as np

LOSSES = ("square", "cross_entropy")


def as_matrix(name: str, value, *, shape: tuple[int | None, int | None] | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 2-D array, or raise naming ``name``."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise ValueError(f"{name} must be a real numeric array, not boolean")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples are columns); got ndim={arr.ndim}, shape={arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty; got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(f"{name} has shape {arr.shape}, but axis {axis} must have length {want}")
    return arr


def check_gamma(gamma) -> float:
    """gamma must be a real scalar in the open interval (0, 1)."""
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"gamma must be a real scalar in (0, 1); got {gamma!r}")
    g = float(gamma)
    if not np.isfinite(g) or not (0.0 < g < 1.0):
        raise ValueError(f"gamma must lie in the open interval (0, 1); got {gamma!r}")
    return g


def check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
    return loss


def check_one_hot(name: str, Y: np.ndarray) -> None:
    """Each column of Y must be a standard basis vector (exactly one 1, the rest 0)."""
    is_binary = np.all((Y == 0.0) | (Y == 1.0))
    if not is_binary or not np.all(Y.sum(axis=0) == 1.0):
        bad = np.flatnonzero(~(np.all((Y == 0.0) | (Y == 1.0), axis=0) & (Y.sum(axis=0) == 1.0)))
        raise ValueError(
            f"{name} must have one-hot columns for the cross-entropy loss "
            f"(entries 0 or 1, exactly one 1 per column); columns {bad[:5].tolist()} are not"
        )


def check_square_weight(A) -> np.ndarray:
    A = as_matrix("A", A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square (m x m); got shape {A.shape}")
    return A


def check_model(A, B, gamma) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate (A, B, gamma): A is m x m, B is m_y x m, gamma in (0, 1)."""
    A = check_square_weight(A)
    B = as_matrix("B", B, shape=(None, A.shape[0]))
    return A, B, check_gamma(gamma)


def check_data(Phi, Y, loss: str, *, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate the data: Phi is m x n, Y is m_y x n (one-hot columns for cross-entropy)."""
    loss = check_loss(loss)
    Phi = as_matrix("Phi", Phi, shape=(m, None))
    Y = as_matrix("Y", Y, shape=(None, Phi.shape[1]))
    if loss == "cross_entropy":
        check_one_hot("Y", Y)
    return Phi, Y


def check_positive(name: str, value, *, integer: bool = False, upper: float | None = None) -> float | int:
    """A strictly positive finite scalar (an integer >= 1 when ``integer``), optionally < upper."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if integer:
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        return int(value)
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    if upper is not None and value >= upper:
        raise ValueError(f"{name} must lie in (0, {upper}); got {value!r}")
    return float(value)
