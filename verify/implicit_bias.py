"""The implicit-bias experiment (THEORY.md section 7) and its data sets.

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
import os
import struct
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
def synthetic_overparameterised(rng: np.random.Generator, *, m: int = 40, n_train: int = 20, n_test: int = 200,
                                m_y: int = 3, noise: float = 0.1) -> Split:
    """Square-loss regression with m > n_train: y = W_true phi + noise, phi ~ N(0, I), W_true ~ N(0, 1/m)."""
    W_true = rng.standard_normal((m_y, m)) / np.sqrt(m)
    def draw(n):
        Phi = rng.standard_normal((m, n))
        return Phi, W_true @ Phi + noise * rng.standard_normal((m_y, n))
    Ptr, Ytr = draw(n_train)
    Pte, Yte = draw(n_test)
    return Split(Ptr, Ytr, Pte, Yte, "square", f"synthetic (m={m} > n={n_train})")


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[:, labels]


def split_classification(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, n_train: int,
                         n_test: int, name: str, classes: int | None = None) -> Split:
    """Features are pixels scaled to [0, 1] (columns = samples); targets one-hot; cross-entropy."""
    X = images.reshape(len(images), -1).astype(np.float64)
    X = X / max(X.max(), 1.0)
    classes = int(labels.max()) + 1 if classes is None else classes
    if n_train + n_test > len(X):
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds the {len(X)} samples available")
    order = rng.permutation(len(X))
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    return Split(X[tr].T, _one_hot(labels[tr], classes), X[te].T, _one_hot(labels[te], classes),
                 "cross_entropy", name)


def load_digits_split(rng: np.random.Generator, *, n_train: int = 200, n_test: int = 500) -> Split:
    """scikit-learn's bundled 8x8 digits (1797 images, shipped inside the package: no download)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - installed with the dev/figures extra
        raise ImportError("the digits experiment needs scikit-learn (pip install 'deq-verify[figures]')") from err
    d = load_digits()
    return split_classification(d.images, d.target, rng, n_train=n_train, n_test=n_test,
                                name=f"8x8 digits (m=64, n_train={n_train})", classes=10)


def load_idx(path: str) -> np.ndarray:
    """Read an IDX file (the MNIST / Kuzushiji-MNIST format), optionally gzip-compressed.

    Header: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one big-endian
    uint32 per dimension; the data follow in big-endian order.
    """
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    dtype = np.dtype(types[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    data = raw[4 + 4 * ndim:]
    if len(data) != expected:
        raise ValueError(f"{path}: header promises {expected} bytes of data, file has {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(dims)


def load_idx_split(images_path: str, labels_path: str, rng: np.random.Generator, *, n_train: int = 1000,
                   n_test: int = 2000, name: str | None = None) -> Split:
    """MNIST-format images/labels from local IDX files (e.g. train-images-idx3-ubyte.gz)."""
    for p in (images_path, labels_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p} does not exist (this suite never downloads data)")
    images, labels = load_idx(images_path), load_idx(labels_path).astype(int)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return split_classification(images, labels, rng, n_train=n_train, n_test=n_test,
                                name=name or os.path.basename(images_path))


# ---- training -------------------------------------------------------------------------------
def mean_loss(problem: ShallowProblem, W: np.ndarray) -> float:
    return problem.value(W) / problem.n


def train_three_models(split: Split, rng: np.random.Generator, *, gamma: float = 0.5, steps: int = 500,
                       lr: float | None = None, record_every: int = 10, init_scale: float = 0.01,
                       a_scale: float = 1.0) -> dict:
    """Gradient descent on the three models from the same W_0; returns per-model arrays
    ``iterations``, ``train`` and ``test`` (mean loss per sample) and the final W.

    The default learning rate 0.2 / lambda_max(Phi Phi^T / n) (per-sample-mean loss) leaves room
    for the DEQ metric (K <= (1 - gamma)^-2 (1 + ...) I) and the deep linear network's
    (I + W_2 W_2^T ...); the same step is used for all three. A model that diverges anyway
    gets NaN losses from then on (reported, not hidden).
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

    def record(k, W_deq, W_lin, W_dln):
        for name, W in (("deq", W_deq), ("linear", W_lin), ("deep_linear", W_dln)):
            out[name]["iterations"].append(k)
            out[name]["train"].append(mean_loss(train, W))
            out[name]["test"].append(test_loss(W))

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
    return out
