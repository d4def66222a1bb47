"""Input validation shared by the public entry points.

Every check raises :class:`ValueError` naming the offending argument and the rule it broke.
Arrays are converted to float64 only when that is lossless (integer, float16 and float32 input);
nothing else is coerced: longdouble is refused (values beyond float64 would change), a masked
array with masked entries is refused (the mask would be dropped), a 1-D array is not reshaped, a
non-one-hot target is not repaired, a gamma outside (0, 1) is not clipped. Which targets a loss
accepts is the loss's own rule (``Loss.check_targets``, :mod:`verify.losses.registry`).
"""

from __future__ import annotations

import numbers

import numpy as np

#: largest array (or set of records) an entry point allocates on request; above it the request
#: is refused up front with the size named, instead of failing or swapping later
MEMORY_LIMIT = 2**30


def all_finite(X: np.ndarray) -> bool:
    """Whether every entry of X is finite: a finite sum says so in one reduction (a NaN or inf
    entry makes the sum NaN or inf); only a non-finite sum, which overflow can also cause, takes
    the elementwise test. For inner loops, where np.isfinite(X).all() costs twice as much. (The
    sum's overflow warns unless the caller runs under np.errstate(over="ignore").)"""
    return bool(np.isfinite(X.sum())) or bool(np.isfinite(X).all())


def check_memory(what: str, nbytes: int, advice: str) -> None:
    """Refuse a request whose memory (Python int, no overflow) exceeds MEMORY_LIMIT."""
    if nbytes > MEMORY_LIMIT:
        raise ValueError(
            f"{what} needs about {nbytes / 2**30:.3g} GiB (limit {MEMORY_LIMIT / 2**30:.3g} GiB); {advice}"
        )


def as_array(name: str, value) -> np.ndarray:
    """``value`` as a real numeric ndarray that converts to float64 without loss, or raise.

    Refuses what numpy would silently alter: masked entries (np.asarray drops the mask), ragged
    nested lists (numpy's own message names no argument), complex, boolean and object data, and
    dtypes wider than float64 (longdouble: a finite 1e400 would become inf).
    """
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        raise ValueError(
            f"{name} is a masked array with masked entries; the model has no value for them (fill or drop them first)"
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} must be a rectangular numeric array; numpy cannot convert the {type(value).__name__} given ({err})"
        ) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise ValueError(f"{name} must be a real numeric array, not boolean")
    if not np.can_cast(arr.dtype, np.float64, casting="safe"):
        raise ValueError(
            f"{name} has dtype {arr.dtype}, which does not convert to float64 without loss "
            "(values beyond float64's range or precision would change); convert it explicitly"
        )
    # numpy calls int64 -> float64 "safe", but integers beyond 2^53 are rounded
    if (
        arr.dtype.kind in "iu"
        and arr.dtype.itemsize >= 8
        and arr.size
        and max(abs(int(arr.max())), abs(int(arr.min()))) > 2**53
    ):
        raise ValueError(
            f"{name} holds integers beyond 2^53, which float64 cannot represent exactly; convert it explicitly"
        )
    return arr


def as_matrix(
    name: str, value, *, shape: tuple[int | None, int | None] | None = None, finite: bool = True
) -> np.ndarray:
    """Return ``value`` as a finite float64 2-D array, or raise naming ``name``. With
    ``finite=False`` the (one pass over the data) finiteness check is left to the caller."""
    arr = as_array(name, value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples are columns); got ndim={arr.ndim}, shape={arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty; got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(f"{name} has shape {arr.shape}, but axis {axis} must have length {want}")
    return arr


def check_flag(name: str, value) -> bool:
    """A bool (or numpy bool); anything else, 0 and 1 included, is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_gamma(gamma) -> float:
    """gamma must be a real scalar in the open interval (0, 1)."""
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"gamma must be a real scalar in (0, 1); got {gamma!r}")
    g = float(gamma)
    if not np.isfinite(g) or not (0.0 < g < 1.0):
        raise ValueError(f"gamma must lie in the open interval (0, 1); got {gamma!r}")
    return g


def check_loss(loss):
    """The :class:`verify.losses.Loss` of a registered name or a Loss object; an unknown name is
    refused by :func:`verify.losses.get_loss` (ValueError listing the registered losses)."""
    from .losses.registry import get_loss

    return get_loss(loss)


def loss_names() -> tuple[str, ...]:
    """The registered losses' names (for the configuration schema: read when a key is checked)."""
    from .losses import loss_names as names

    return names()


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


def check_output_rows(B: np.ndarray, Y: np.ndarray) -> None:
    """B (m_y x m) and the targets Y (m_y x n) must agree on m_y."""
    if Y.shape[0] != B.shape[0]:
        raise ValueError(f"Y has {Y.shape[0]} rows but B has {B.shape[0]}: both must equal m_y")


def check_data(Phi, Y, loss, *, m: int | None = None, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate the data: Phi is m x n, Y is m_y x n with targets the loss accepts (finite reals;
    one-hot columns for the cross-entropy: ``Loss.check_targets``).

    ``finite=False`` skips the finiteness check of Phi and Y (two passes over the data) for a
    caller that checks it itself more cheaply (a square-loss ShallowProblem: a NaN or inf makes
    Phi Phi^T or Y Y^T non-finite). Any other failure is reported exactly as with ``finite=True``:
    the full check is then re-run, so the first error in the usual order is the one raised.
    """
    if not finite:
        try:
            loss = check_loss(loss)
            Phi_ = as_matrix("Phi", Phi, shape=(m, None), finite=False)
            Y_ = as_matrix("Y", Y, shape=(None, Phi_.shape[1]), finite=False)
            loss.check_targets("Y", Y_)
            return Phi_, Y_
        except ValueError:
            pass  # re-checked below in the usual order
    loss = check_loss(loss)
    Phi = as_matrix("Phi", Phi, shape=(m, None))
    Y = as_matrix("Y", Y, shape=(None, Phi.shape[1]))
    loss.check_targets("Y", Y)
    return Phi, Y


def check_positive(
    name: str, value, *, integer: bool = False, upper: float | None = None, lower: int = 1
) -> float | int:
    """A strictly positive finite scalar (an integer >= ``lower`` when ``integer``), optionally < upper."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if integer:
        if not isinstance(value, numbers.Integral) or value < lower:
            raise ValueError(f"{name} must be an integer >= {lower}; got {value!r}")
        return int(value)
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    if upper is not None and value >= upper:
        raise ValueError(f"{name} must lie in (0, {upper}); got {value!r}")
    return float(value)


def check_times(t_eval, T: float) -> np.ndarray:
    """Record times: a non-empty 1-D array of finite reals, strictly increasing, within [0, T]."""
    try:
        t = np.asarray(t_eval)
    except (ValueError, TypeError) as err:
        raise ValueError(f"t_eval must be a 1-D array of real numbers; numpy cannot convert it ({err})") from None
    if t.dtype == object or t.dtype.kind not in "iuf":
        raise ValueError(f"t_eval must be a 1-D array of real numbers; got dtype {t.dtype}")
    if t.ndim != 1:
        raise ValueError(f"t_eval must be 1-D; got shape {t.shape}")
    if t.size == 0:
        raise ValueError("t_eval must hold at least one time")
    if not np.can_cast(t.dtype, np.float64, casting="safe"):
        raise ValueError(f"t_eval has dtype {t.dtype}, which does not convert to float64 without loss")
    t = t.astype(np.float64)
    if not np.all(np.isfinite(t)):
        raise ValueError("t_eval must contain only finite times (found NaN or inf)")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_eval must be strictly increasing")
    if t[0] < 0 or t[-1] > T:
        raise ValueError(f"t_eval must lie within [0, T] = [0, {T!r}]; got [{t[0]!r}, {t[-1]!r}]")
    return t
