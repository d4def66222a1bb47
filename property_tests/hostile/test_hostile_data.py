"""Hostile IDX files and figure-script arguments: refused before any work, with a
ValueError (or exit status 2) naming the file and the rule; nothing decompressed or allocated
beyond what the header allows."""

import gzip
import os
import pathlib
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from verify.implicit_bias import load_idx, load_idx_split, split_classification

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODES = {0x08: ">u1", 0x09: ">i1", 0x0C: ">i4", 0x0D: ">f4"}


def _write_idx(path, array, code=0x08, dims=None, extra=b""):
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    payload = header + np.asarray(array).astype(CODES[code]).tobytes() + extra
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return str(path)


def _images(n=30):
    return np.random.default_rng(0).integers(0, 256, (n, 4, 5)).astype(np.uint8)


def test_gzip_bomb_is_not_decompressed_past_the_header(tmp_path):
    """A header promising 20 bytes followed by 256 MiB of zeros (about 250 KiB compressed)."""
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 20) + bytes(20))
        chunk = bytes(1 << 20)
        for _ in range(256):
            fh.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="more data than its header promises"):
            load_idx(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak allocation {peak / 2**20:.1f} MiB"


def test_dims_product_that_wraps_in_int64_is_refused(tmp_path):
    path = _write_idx(tmp_path / "wrap", np.zeros(0), dims=(65536, 65536, 65536, 65536))
    with pytest.raises(ValueError, match="header promises 18446744073709551616 bytes"):
        load_idx(path)


def test_header_beyond_the_size_limit_is_refused_before_reading(tmp_path):
    path = _write_idx(tmp_path / "big", np.zeros(0), dims=(10**9, 28, 28))
    with pytest.raises(ValueError, match="more than the limit"):
        load_idx(path)


@pytest.mark.parametrize(
    "labels, code, match",
    [
        (np.array([0, 1, -1] * 10), 0x09, "labels must be >= 0"),
        (np.array([0.0, 1.0, 2.5] * 10), 0x0D, "labels must be integers"),
        (np.array([0.0, 1.0, np.nan] * 10), 0x0D, "labels must be integers"),
        (np.array([0, 1, 10**9] * 10), 0x0C, "label 1000000000 is too large"),
    ],
)
def test_bad_labels_are_refused(tmp_path, labels, code, match):
    ip = _write_idx(tmp_path / "img", _images())
    lp = _write_idx(tmp_path / "lab", labels, code=code)
    with pytest.raises(ValueError, match=match):
        load_idx_split(ip, lp, np.random.default_rng(0), n_train=10, n_test=10)


def test_nan_pixels_are_refused(tmp_path):
    images = _images().astype(np.float32)
    images[3, 1, 2] = np.nan
    ip = _write_idx(tmp_path / "img", images, code=0x0D)
    lp = _write_idx(tmp_path / "lab", np.arange(30) % 10)
    with pytest.raises(ValueError, match="images must be finite"):
        load_idx_split(ip, lp, np.random.default_rng(0), n_train=10, n_test=10)


def test_explicit_classes_bound_the_labels():
    with pytest.raises(ValueError, match="label 12 is too large for classes=10"):
        split_classification(
            _images(), np.array([12] + [0] * 29), np.random.default_rng(0), n_train=5, n_test=5, name="x", classes=10
        )


@pytest.mark.parametrize(
    "content, match",
    [
        (bytes([0, 0, 8, 3]) + struct.pack(">I", 5), "header is truncated"),  # struct.error before
        (bytes([0, 0, 8]), "header is truncated"),
        (bytes([0, 0, 8, 0]), "no dimensions"),
    ],
)
def test_truncated_headers_are_value_errors(tmp_path, content, match):
    path = tmp_path / "t"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_idx(str(path))


def test_truncated_gzip_is_a_value_error(tmp_path):
    full = tmp_path / "full.gz"
    _write_idx(full, _images())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(full.read_bytes()[:-30])  # EOFError inside gzip before
    with pytest.raises(ValueError, match="cut.gz"):
        load_idx(str(cut))
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="garbage.gz"):
        load_idx(str(garbage))


def test_path_objects_are_accepted(tmp_path):
    path = pathlib.Path(_write_idx(tmp_path / "img.gz", _images()))
    np.testing.assert_array_equal(load_idx(path), _images())


def test_one_hot_targets_do_not_allocate_classes_squared():
    """200 labels, explicit classes=10000: the one-hot targets are classes x n, not built from eye(classes)."""
    labels = np.arange(200)
    images = np.random.default_rng(0).integers(0, 256, (200, 2, 2))
    tracemalloc.start()
    try:
        split = split_classification(
            images, labels, np.random.default_rng(0), n_train=2, n_test=2, name="x", classes=10000
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert split.Y_train.shape == (10000, 2)
    assert peak < 8 * 10000 * 2 * 4  # a few copies of classes x n, never classes x classes (800 MB)


# ---- the figure script validates every input before the first figure ------------------------------
def _run_figures(*args, out):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "figures", "make_figures.py"), "--out", str(out), "--small", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_figure_script_checks_idx_files_before_any_figure(tmp_path):
    out = tmp_path / "out"
    bad = tmp_path / "labels"
    bad.write_bytes(b"\x01\x02\x03\x04")
    ip = _write_idx(tmp_path / "img", _images())
    result = _run_figures("--idx", ip, str(bad), out=out)
    assert result.returncode == 2, result.stderr
    assert "--idx" in result.stderr and "not an IDX file" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_figure_script_checks_idx_sample_count_before_any_figure(tmp_path):
    out = tmp_path / "out"
    ip = _write_idx(tmp_path / "img", _images())
    lp = _write_idx(tmp_path / "lab", np.arange(30) % 10)
    result = _run_figures("--idx", ip, lp, out=out)
    assert result.returncode == 2 and "3000" in result.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args", [["--seed", "-1"]])
def test_figure_script_bad_arguments_exit_2(tmp_path, args):
    result = _run_figures(*args, out=tmp_path / "out")
    assert result.returncode == 2 and "--seed" in result.stderr


def test_figure_script_output_that_is_a_file_exits_2(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    result = _run_figures(out=f)
    assert result.returncode == 2 and "--out" in result.stderr
