"""The scale tier's configurations (``python -m verify --scale``): the samplers of widths 2-1024,
n up to 1e5 and m_y up to 10 in every width regime, the real data (scikit-learn's bundled 8x8
digits; MNIST-format IDX files given with ``--idx``), the arrays a configuration stands for, and
the checks of a replayed scale configuration. The checks themselves are in :mod:`verify.scale`.
"""

from __future__ import annotations

import os

import numpy as np

from .sampling import PROPER_REGIMES, Case

EPS = np.finfo(np.float64).eps

#: largest m^2 n of a scale configuration (the reference SVD of Phi costs a few times that)
SCALE_WORK = 2e10
MAX_WIDTH, MAX_SAMPLES, MAX_OUTPUTS = 1024, 100_000, 10
#: ARPACK's relative stopping tolerance on Ritz residuals (eigs and eigsh in the trust-region check)
ARPACK_TOL = 1e-11

#: MNIST-format IDX files to include as real data (set by ``--idx``; empty: none), as
#: (images, labels, n, m, m_y): the paths as given, the samples used, pixels and classes
IDX_FILES: list[tuple[str, str, int, int, int]] = []
#: most IDX samples a scale configuration uses (the first ones of the file)
IDX_SAMPLES = 10_000


# ---- configurations ----------------------------------------------------------------------------
def _log_int(rng, low: int, high: int) -> int:
    return int(np.clip(round(float(np.exp(rng.uniform(np.log(low), np.log(high))))), low, high))


def scale_shape(rng: np.random.Generator, regime: str) -> tuple[int, int, int]:
    """(m, m_y, n) in a width regime, m and n log-uniform, m^2 n <= SCALE_WORK; the samples are at
    least twice or at most half the width (Gaussian features then have a condition number below
    about 6)."""
    if regime == "m<m_y":
        m = int(rng.integers(2, MAX_OUTPUTS))
        return m, int(rng.integers(m + 1, MAX_OUTPUTS + 1)), _log_int(rng, max(10, 2 * m), MAX_SAMPLES)
    m_y = int(rng.integers(1, MAX_OUTPUTS + 1))
    if regime == "m<n":  # (a rejection loop in the sampler applies the caps)
        m = _log_int(rng, 2, MAX_WIDTH)
        n_max = int(min(MAX_SAMPLES, SCALE_WORK / m**2))
        return m, m_y, _log_int(rng, 2 * m, max(2 * m, n_max))
    if regime == "m>n":
        m = _log_int(rng, 20, MAX_WIDTH)
        return m, m_y, _log_int(rng, 10, m // 2)
    raise ValueError(f"regime must be one of {PROPER_REGIMES}; got {regime!r}")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.T / 16.0, d.target.astype(np.int64)  # pixels in [0, 1], samples as columns


def _idx(images: str, labels: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    from .implicit_bias import load_idx_dataset

    X, y = load_idx_dataset(images, labels)
    X = X.reshape(len(X), -1)[:n]
    return (X.astype(np.float64) / max(float(X.max()), 1.0)).T, y[:n]


def check_idx_files(images, labels) -> tuple[int, int, int]:
    """(n, m, m_y) of an IDX data set the scale tier can use: the files valid IDX with as many
    labels as images (verify.implicit_bias.load_idx_dataset: magic number, sizes, header size,
    finite pixels, labels >= 0), images of at least 2 dimensions with 1 to MAX_WIDTH pixels,
    labels in [0, MAX_OUTPUTS) with at least 2 classes among the first n = min(count, IDX_SAMPLES)
    samples, which must not all be zero (Phi = 0 has no nonzero singular value: kappa would not
    exist). Raises ValueError naming the file and the rule."""
    from .implicit_bias import load_idx_dataset

    X, y = load_idx_dataset(images, labels)
    if X.ndim < 2:
        raise ValueError(f"{images}: images must have at least 2 dimensions (count, pixels...); got shape {X.shape}")
    n = min(len(X), IDX_SAMPLES)
    m = int(np.prod(X.shape[1:]))
    if not 1 <= m <= MAX_WIDTH:
        raise ValueError(f"{images}: {m} pixels per image; the scale tier's widths are 1-{MAX_WIDTH} pixels")
    y = y[:n]
    if int(y.max()) >= MAX_OUTPUTS:
        raise ValueError(
            f"{labels}: label {int(y.max())} is too large; the scale tier has at most {MAX_OUTPUTS} "
            f"classes (labels 0-{MAX_OUTPUTS - 1})"
        )
    m_y = int(y.max()) + 1
    if m_y < 2:
        raise ValueError(
            f"{labels}: every one of the first {n} labels is {int(y.max())}; the claims need at least 2 classes"
        )
    if not np.any(X[:n]):
        raise ValueError(
            f"{images}: every pixel of the first {n} images is 0 (Phi = 0: no nonzero singular value, "
            "so kappa does not exist)"
        )
    return n, m, m_y


def principal_components(Phi: np.ndarray, k: int) -> np.ndarray:
    """The centred features on their top k principal directions: U_k^T (Phi - mean), k x n.

    Raw pixels are too ill-conditioned for a gradient flow to 6 decades (the digits' nonzero
    singular values span 3.4 decades: a stiffness ratio of 6.5e6, where a stiff solver's
    finite-difference Jacobian of the m^2 + m_y m states costs that many gradients per step).
    Centred and cut at k = 32 the digits' singular values span a factor 6.5."""
    centred = Phi - Phi.mean(axis=1, keepdims=True)
    U, _, _ = np.linalg.svd(centred, full_matrices=False)
    return U[:, :k].T @ centred


def scale_case(config: dict) -> Case:
    """The arrays of a scale configuration. Synthetic: Phi ~ N(0, 1/n) phi_scale (well conditioned
    for n >= 2m or n <= m/2), Y ~ N(0, 1) or one-hot labels; real: pixels in [0, 1] as features and
    one-hot class targets (regression targets for the square loss). A ~ N(0, a_scale^2),
    B ~ N(0, 1/m) (so the outputs stay of order one at every width)."""
    rng = np.random.default_rng(config["seed"])
    loss, dataset = config["loss"], config.get("dataset", "synthetic")
    if dataset == "synthetic":
        m, m_y, n = config["m"], config["m_y"], config["n"]
        Phi = config.get("phi_scale", 1.0) * rng.standard_normal((m, n)) / np.sqrt(n)
        labels = rng.integers(0, m_y, n) if loss == "cross_entropy" else None
        Y = rng.standard_normal((m_y, n)) if labels is None else None
    else:
        if dataset == "digits":
            Phi, labels = _digits()
        else:
            Phi, labels = _idx(config["idx_images"], config["idx_labels"], config["n"])
        if config.get("pca"):
            Phi = principal_components(Phi, int(config["pca"]))
        m, n = Phi.shape
        m_y = int(labels.max()) + 1
        Y = None
    if Y is None:
        Y = np.zeros((m_y, n))
        Y[labels, np.arange(n)] = 1.0
    A = config.get("a_scale", 1.0) * rng.standard_normal((m, m))
    B = rng.standard_normal((m_y, m)) / np.sqrt(m)
    return Case(A, B, Phi, Y, float(config["gamma"]), loss, config["seed"], {"dataset": dataset})


def scale_sampler(
    losses=("square", "cross_entropy"),
    gamma=(0.05, 0.95),
    regimes=PROPER_REGIMES,
    real_every=4,
    real_losses=("square", "cross_entropy"),
    max_work: float = SCALE_WORK,
    max_width: int = MAX_WIDTH,
    real_pca: int | None = None,
    **options,
):
    """Synthetic configurations over the regimes, and at every ``real_every``-th index the digits
    (or, when given, an IDX data set) with one of ``real_losses``; with ``real_pca`` = k the real
    features are their top k centred principal components (:func:`principal_components`)."""

    def sample(rng, index):
        seed = int(rng.integers(2**32))
        if real_every and index % real_every == real_every - 1:
            config = {
                "seed": seed,
                "dataset": "digits",
                "loss": str(rng.choice(real_losses)),
                "gamma": float(rng.uniform(*gamma)),
                "a_scale": 1.0,
                "m": real_pca or 64,
                "m_y": 10,
                "n": 1797,
            }
            if IDX_FILES and (index // real_every) % 2 == 1:
                images, labels, n, m, m_y = IDX_FILES[0]
                config.update(
                    dataset="idx", idx_images=images, idx_labels=labels, n=n, m=min(m, real_pca or m), m_y=m_y
                )
            if real_pca:
                config["pca"] = real_pca
            return {**config, **options}
        regime = str(regimes[int(rng.integers(len(regimes)))])
        while True:
            m, m_y, n = scale_shape(rng, regime)
            if m * m * n <= max_work and m <= max_width:
                break
        loss = str(rng.choice(losses))
        if loss == "cross_entropy":
            m_y = max(m_y, 2)
        return {
            "seed": seed,
            "regime": regime,
            "m": m,
            "m_y": m_y,
            "n": n,
            "gamma": float(rng.uniform(*gamma)),
            "loss": loss,
            "a_scale": float(rng.choice([0.1, 1.0, 3.0])),
            "dataset": "synthetic",
            "phi_scale": float(10 ** rng.uniform(-1, 1)),
            **options,
        }

    return sample


#: INTEGRATED's widest run: a gradient flow with 2 x 512^2 + 2 x 512 parameters to 6 decades below
#: its start (the random widths stop at 128, where a flow costs seconds; this one costs minutes:
#: docs/scale.md). Checked in every scale run, whatever the seed.
WIDE_INTEGRATED = {
    "seed": 7,
    "regime": "m<n",
    "m": 512,
    "m_y": 2,
    "n": 2048,
    "gamma": 0.3,
    "loss": "square",
    "a_scale": 1.0,
    "dataset": "synthetic",
    "phi_scale": 1.0,
}


#: The default run's slice of this tier (``python -m verify`` runs one configuration of each
#: scale claim there): widths from SLICE_WIDTH, synthetic data, m^2 n at most SLICE_WORK.
SLICE_WIDTH, SLICE_WORK = 256, 1e9


def slice_sampler(sampler=None, *, min_width: int = SLICE_WIDTH, **options):
    """Configurations of ``sampler`` (default: :func:`scale_sampler` on synthetic data with m^2 n <=
    SLICE_WORK and ``options``) at widths m >= ``min_width``, by rejection."""
    base = sampler or scale_sampler(real_every=0, **{"max_work": SLICE_WORK, **options})

    def sample(rng, index):
        while True:
            config = base(rng, index)
            if config["m"] >= min_width and config.get("dataset", "synthetic") == "synthetic":
                return config

    return sample


def uniform_scale_sampler(rng, index):
    m = _log_int(rng, 2, MAX_WIDTH)
    if index % 2:
        return {"m": m, "gamma": float(rng.uniform(0.5, 0.99)), "concentrated": True}
    return {
        "seed": int(rng.integers(2**32)),
        "m": m,
        "gamma": float(rng.uniform(0.01, 0.99)),
        "a_scale": float(rng.choice([0.1, 1.0, 10.0])),
    }


def set_idx_files(images: str | None, labels: str | None) -> None:
    """Include MNIST-format IDX files as real data in the scale tier, checked in full first
    (:func:`check_idx_files`: ValueError naming the file and the rule). The paths are kept as
    given (a report names no directory the user did not)."""
    IDX_FILES.clear()
    if images and labels:
        for p in (images, labels):
            if not os.path.exists(p):
                raise FileNotFoundError(f"{p} does not exist (this suite never downloads data)")
        IDX_FILES.append((os.fspath(images), os.fspath(labels), *check_idx_files(images, labels)))


def check_scale_replay(config: dict) -> None:
    """A replayed scale configuration's real data: the digits are 1797 images of 64 pixels in 10
    classes (m = pca when the features are cut); an IDX data set must pass :func:`check_idx_files`
    and have the n, m and m_y recorded (the files may have changed since). Raises ValueError."""
    dataset = config.get("dataset", "synthetic")
    if dataset == "synthetic":
        for key in ("idx_images", "idx_labels", "pca"):
            if key in config:
                raise ValueError(f"key '{key}' applies to real data only (dataset 'digits' or 'idx')")
        return
    if dataset == "digits":
        n, m, m_y = 1797, 64, 10
    else:
        if "idx_images" not in config or "idx_labels" not in config:
            raise ValueError("dataset 'idx' needs the keys 'idx_images' and 'idx_labels' (the IDX files)")
        for key in ("idx_images", "idx_labels"):
            if not os.path.isfile(config[key]):
                raise ValueError(
                    f"key '{key}': {config[key]!r} is not a readable file (this suite never downloads "
                    "data; give the path as printed, from the directory the run started in)"
                )
        n, m, m_y = check_idx_files(config["idx_images"], config["idx_labels"])
    m = min(m, config.get("pca", m))
    for key, value in (("n", n), ("m", m), ("m_y", m_y)):
        if key in config and config[key] != value:
            raise ValueError(
                f"key '{key}' is {config[key]}, but the {dataset} data give {key} = {value}"
                + (" (pca cuts m)" if key == "m" and "pca" in config else "")
            )
