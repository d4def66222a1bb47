"""The implicit-bias experiment (docs/theory.md, section 7) and its data sets.

Three models with the same function class W phi(x), trained by gradient descent from the same
end-to-end start W_0:

    DEQ-linear   W = B (I - gamma sigma(A))^{-1}   A_0 small random, B_0 = W_0 U_0
    linear       W                                 W_0
    deep linear  W = W_2 W_1 (hidden width m)       W_1 = I, W_2 = W_0

All use the same learning rate. Where minimisers of the training loss are not unique (square
loss with m > n; cross-entropy), they can reach different solutions, and their test losses
differ. The direction of the gap is measured, not assumed.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .gradients import implicit_gradients
from .losses import ShallowProblem
from .model import ImplicitLayer

MODELS = ("deq", "linear", "deep_linear")


@dataclass(frozen=True)
class Split:
    Phi_train: np.ndarray
    Y_train: np.ndarray
    Phi_test: np.ndarray
    Y_test: np.ndarray
    loss: str
    name: str


# ---- data -------------------------------------------------------------------------------
def synthetic_overparameterised(
    rng: np.random.Generator, *, m: int = 40, n_train: int = 20, n_test: int = 200, m_y: int = 3, noise: float = 0.1
) -> Split:
    """Square-loss regression with m > n_train: y = W_true phi + noise, phi ~ N(0, I), W_true ~ N(0, 1/m)."""
    W_true = rng.standard_normal((m_y, m)) / np.sqrt(m)

    def draw(n):
        Phi = rng.standard_normal((m, n))
        return Phi, W_true @ Phi + noise * rng.standard_normal((m_y, n))

    Ptr, Ytr = draw(n_train)
    Pte, Yte = draw(n_test)
    return Split(Ptr, Ytr, Pte, Yte, "square", f"synthetic (m={m} > n={n_train})")


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """classes x n one-hot targets (no classes x classes identity is formed)."""
    Y = np.zeros((classes, len(labels)))
    Y[labels, np.arange(len(labels))] = 1.0
    return Y


def check_labels(labels, classes: int | None = None) -> np.ndarray:
    """Class labels as int64: a 1-D array of integers >= 0 (integral floats accepted, nothing
    truncated or wrapped). Without ``classes`` the number of classes is max + 1, and a label
    beyond the number of labels is refused: it would mean more (empty) classes than samples
    (one corrupt label of 1e9 would ask for a 1e9-row one-hot matrix)."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array; got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"labels must be integers; got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"labels must be integers; label {i} is {arr[i]!r}")
    low, high = arr.min(), arr.max()
    if low < 0:
        raise ValueError(f"labels must be >= 0; label {int(np.argmin(arr))} is {low!r}")
    limit = len(arr) if classes is None else classes
    if high >= limit:
        rule = (
            f"for classes={classes}"
            if classes is not None
            else f"for {len(arr)} labels (a label must be below the number of labels: classes with no sample "
            "beyond that point to a corrupt label)"
        )
        raise ValueError(f"label {int(high) if float(high).is_integer() else high} is too large {rule}")
    return arr.astype(np.int64)


def split_classification(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    n_train: int,
    n_test: int,
    name: str,
    classes: int | None = None,
) -> Split:
    """Features are pixels scaled to [0, 1] (columns = samples); targets one-hot; cross-entropy.

    Labels go through :func:`check_labels`; images must be finite (NaN pixels are refused). Only
    the n_train + n_test drawn images are converted to float64.
    """
    labels = check_labels(labels, classes)
    images = np.asarray(images)
    if images.dtype.kind not in "iuf":
        raise ValueError(f"images must be real numbers; got dtype {images.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    X = images.reshape(len(images), -1)
    if X.shape[1] == 0:
        raise ValueError(f"images have no pixels (shape {images.shape})")
    if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
        raise ValueError(
            f"images must be finite; image {int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])} "
            "has NaN or inf pixels"
        )
    classes = int(labels.max()) + 1 if classes is None else classes
    if n_train + n_test > len(X):
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {len(X)} samples available")
    top = max(float(X.max()), 1.0)
    order = rng.permutation(len(X))
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    features = lambda idx: (X[idx].astype(np.float64) / top).T  # noqa: E731
    return Split(
        features(tr), _one_hot(labels[tr], classes), features(te), _one_hot(labels[te], classes), "cross_entropy", name
    )


def load_digits_split(rng: np.random.Generator, *, n_train: int = 200, n_test: int = 500) -> Split:
    """scikit-learn's bundled 8x8 digits (1797 images, shipped inside the package: no download)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - installed with the dev/figures extra
        raise ImportError("the digits experiment needs scikit-learn (pip install 'deq-verify[figures]')") from err
    d = load_digits()
    return split_classification(
        d.images,
        d.target,
        rng,
        n_train=n_train,
        n_test=n_test,
        name=f"8x8 digits (m=64, n_train={n_train})",
        classes=10,
    )


#: IDX type codes and their big-endian dtypes
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: largest data payload load_idx accepts; the MNIST-format training images are 47 MB, EMNIST's
#: largest split about 0.6 GB
IDX_MAX_BYTES = 2**30


def _read_exactly(fh, size: int, path: str, what: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise ValueError(f"{path}: not an IDX file: the {what} is truncated ({len(data)} of {size} bytes)")
    return data


def load_idx(path, *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (the MNIST / Kuzushiji-MNIST format), optionally gzip-compressed (.gz).

    Header: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one big-endian
    uint32 per dimension; the data follow in big-endian order.

    The file is streamed: the header is read first, the data size it promises is computed in
    Python integers (no wrap-around) and refused above ``max_bytes`` before anything is allocated,
    then exactly that many bytes are read and one more is asked for, so a compressed file that
    expands beyond its header (a gzip bomb) is refused after at most header + 1 bytes. Every
    malformed file raises ValueError naming the path.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise ValueError(f"path must be a str or os.PathLike; got {path!r}") from None
    name = os.fsdecode(path)
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = _read_exactly(fh, 4, name, "header")
            if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise ValueError(f"{name}: not an IDX file (bad magic number {head!r})")
            ndim = head[3]
            if ndim == 0:
                raise ValueError(f"{name}: not an IDX file: the header declares no dimensions")
            dims = struct.unpack(">" + "I" * ndim, _read_exactly(fh, 4 * ndim, name, "header"))
            dtype = np.dtype(IDX_TYPES[head[2]])
            nbytes = math.prod(dims) * dtype.itemsize  # Python ints: 65536^4 does not wrap to 0
            if nbytes > max_bytes:
                raise ValueError(
                    f"{name}: header promises {nbytes} bytes of data (dims {dims}), more than the "
                    f"limit of {max_bytes} bytes (max_bytes)"
                )
            buffer = bytearray(nbytes)
            view, got = memoryview(buffer), 0
            while got < nbytes:
                chunk = fh.readinto(view[got:])
                if not chunk:
                    break
                got += chunk
            if got != nbytes:
                raise ValueError(f"{name}: header promises {nbytes} bytes of data, file has {got}")
            if fh.read(1):
                raise ValueError(
                    f"{name}: the file holds more data than its header promises ({nbytes} bytes); stopped reading there"
                )
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"{name}: corrupt or truncated gzip stream ({err})") from None
    return np.frombuffer(buffer, dtype=dtype).reshape(dims)


def load_idx_dataset(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from local MNIST-format IDX files, validated (same count, labels by
    :func:`check_labels`, finite pixels) before anything is trained on them."""
    for p in (images_path, labels_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p} does not exist (this suite never downloads data)")
    images, labels = load_idx(images_path), load_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels must be 1-D; got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels")
    try:
        labels = check_labels(labels)
    except ValueError as err:
        raise ValueError(f"{labels_path}: {err}") from None
    if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
        raise ValueError(f"{images_path}: images must be finite (found NaN or inf pixels)")
    return images, labels


def load_idx_split(
    images_path: str,
    labels_path: str,
    rng: np.random.Generator,
    *,
    n_train: int = 1000,
    n_test: int = 2000,
    name: str | None = None,
) -> Split:
    """MNIST-format images/labels from local IDX files (e.g. train-images-idx3-ubyte.gz)."""
    images, labels = load_idx_dataset(images_path, labels_path)
    return split_classification(
        images, labels, rng, n_train=n_train, n_test=n_test, name=name or os.path.basename(os.fspath(images_path))
    )


# ---- training -------------------------------------------------------------------------------
def mean_loss(problem: ShallowProblem, W: np.ndarray) -> float:
    return problem.value(W) / problem.n


def train_three_models(
    split: Split,
    rng: np.random.Generator,
    *,
    gamma: float = 0.5,
    steps: int = 500,
    lr: float | None = None,
    record_every: int = 10,
    init_scale: float = 0.01,
    a_scale: float = 1.0,
    record_states: bool = False,
) -> dict:
    """Gradient descent on the three models from the same W_0; returns per-model arrays
    ``iterations``, ``train`` and ``test`` (mean loss per sample) and the final W.

    The default learning rate 0.2 / lambda_max(Phi Phi^T / n) (per-sample-mean loss) leaves room
    for the DEQ metric (K <= (1 - gamma)^-2 (1 + ...) I) and the deep linear network's
    (I + W_2 W_2^T ...); the same step is used for all three. A model that diverges anyway
    gets NaN losses from then on (reported, not hidden). With ``record_states`` the parameters at
    every record are kept too (``states``: per model a list of (A, B), W or (W_1, W_2)), so each
    recorded step can be judged on its own (the IMPLICIT-BIAS claim).
    """
    train = ShallowProblem(split.Phi_train, split.Y_train, split.loss)
    test = ShallowProblem(split.Phi_test, split.Y_test, split.loss) if split.loss == "cross_entropy" else None
    m, m_y, n = train.m, train.m_y, train.n
    curvature = np.linalg.norm(split.Phi_train, 2) ** 2 / n
    lr = 0.2 / curvature if lr is None else lr
    W0 = init_scale * rng.standard_normal((m_y, m))
    A = a_scale * rng.standard_normal((m, m))
    B = W0 @ ImplicitLayer.from_weights(A, gamma=gamma).U
    W_lin = W0.copy()
    W1, W2 = np.eye(m), W0.copy()

    def test_loss(W):
        if test is not None:
            return mean_loss(test, W)
        R = W @ split.Phi_test - split.Y_test
        return 0.5 * float(np.sum(R * R)) / split.Phi_test.shape[1]

    out = {k: {"iterations": [], "train": [], "test": []} for k in MODELS}

    states = {k: [] for k in MODELS}

    def record(k, W_deq, W_lin, W_dln):
        for name, W in (("deq", W_deq), ("linear", W_lin), ("deep_linear", W_dln)):
            out[name]["iterations"].append(k)
            out[name]["train"].append(mean_loss(train, W))
            out[name]["test"].append(test_loss(W))
        if record_states:
            states["deq"].append((A.copy(), B.copy()))
            states["linear"].append(W_lin.copy())
            states["deep_linear"].append((W1.copy(), W2.copy()))

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging model records NaN, not a crash
        for k in range(steps + 1):
            layer = ImplicitLayer.from_weights(A, gamma=gamma, validate=False)
            W_deq = layer.end_to_end_weight(B)
            if k % record_every == 0 or k == steps:
                record(k, W_deq, W_lin, W2 @ W1)
            if k == steps:
                break
            # per-sample-mean loss: gradients divided by n
            dA, dB = implicit_gradients(layer, W_deq, train.gradient(W_deq) / n)
            A, B = A - lr * dA, B - lr * dB
            W_lin = W_lin - lr * train.gradient(W_lin) / n
            G = train.gradient(W2 @ W1) / n
            W1, W2 = W1 - lr * (W2.T @ G), W2 - lr * (G @ W1.T)
    for name in MODELS:
        out[name] = {key: np.asarray(v) for key, v in out[name].items()}
    out["final_W"] = {"deq": W_deq, "linear": W_lin, "deep_linear": W2 @ W1}
    out["lr"] = lr
    if record_states:
        out["states"] = states
    return out
