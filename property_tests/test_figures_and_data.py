"""The figure script (small setting), the IDX loader and the implicit-bias experiment."""

import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from verify.implicit_bias import (MODELS, load_digits_split, load_idx, load_idx_split,
                                  synthetic_overparameterised, train_three_models)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ["theorem1_excess_loss", "rate_constant", "theorem2_trust_region", "implicit_bias", "conservation"]


def test_figure_script_writes_every_figure(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "figures", "make_figures.py"), "--out", str(tmp_path),
                             "--small"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    for name in FIGURES:
        for ext in ("png", "pdf"):
            path = tmp_path / f"{name}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path
    assert (tmp_path / "numbers.json").exists()
    assert "direction" in result.stdout


def _write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    payload = header + array.astype(dtype).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(payload)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 4, 5)).astype(np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    ip, lp = tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}"
    _write_idx(ip, images)
    _write_idx(lp, labels)
    np.testing.assert_array_equal(load_idx(str(ip)), images)
    np.testing.assert_array_equal(load_idx(str(lp)), labels)
    split = load_idx_split(str(ip), str(lp), rng, n_train=10, n_test=20)
    assert split.Phi_train.shape == (20, 10) and split.Y_test.shape == (10, 20)
    assert np.all(split.Y_train.sum(axis=0) == 1) and split.Phi_train.max() <= 1.0


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="header promises 10 bytes"):
        load_idx(str(short))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_idx_split(str(tmp_path / "nope"), str(tmp_path / "nope2"), np.random.default_rng(0))


def test_three_models_start_from_the_same_function_and_all_train():
    rng = np.random.default_rng(1)
    split = synthetic_overparameterised(rng, m=12, n_train=6, n_test=30)
    out = train_three_models(split, rng, steps=400, record_every=50)
    starts = [out[m]["train"][0] for m in MODELS]
    assert np.ptp(starts) <= 1e-12 * max(starts)  # W_0 is the same for the three models
    for m in MODELS:
        assert out[m]["train"][-1] < 1e-2 * out[m]["train"][0]
    # m > n: many interpolating solutions; the DEQ does not end at the linear model's one
    assert np.linalg.norm(out["final_W"]["deq"] - out["final_W"]["linear"]) > 1e-6


def test_digits_split_is_bundled():
    split = load_digits_split(np.random.default_rng(0), n_train=50, n_test=50)
    assert split.Phi_train.shape == (64, 50) and split.Y_train.shape == (10, 50)
    assert split.loss == "cross_entropy"
