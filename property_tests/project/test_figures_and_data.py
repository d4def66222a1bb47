"""The figure script (small setting), the IDX loader and the implicit-bias experiment."""

import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from verify.implicit_bias import (
    MODELS,
    load_digits_split,
    load_idx,
    load_idx_split,
    synthetic_overparameterised,
    train_three_models,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIGURES = [
    "theorem1_excess_loss",
    "rate_constant",
    "theorem2_trust_region",
    "implicit_bias",
    "conservation",
    "tightness_vs_width",
]
EPS = np.finfo(float).eps
#: the flows are integrated at rtol = 1e-10; over their (at most a few thousand) steps the relative
#: error of log(E_0/E_t) and of int lambda stays below 1e-6, far below what a wrong constant moves
#: the ratio (a dropped factor 2 halves it, a dropped gamma changes lambda by O(1))
FLOW_RATIO_TOL = 1e-6


def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One --small run of the figure script (two worker processes), shared by the tests below."""
    out = tmp_path_factory.mktemp("figures")
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "figures", "make_figures.py"),
            "--out",
            str(out),
            "--small",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout, _strict((out / "numbers.json").read_text())


def test_figure_script_writes_every_figure(small_run):
    out, stdout, _ = small_run
    for name in FIGURES:
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path
    assert "direction" in stdout
    assert "total " in stdout and "tightness_vs_width" in stdout  # the duration and the per-figure timing


def test_theorem1_figure_finding(small_run):
    """The observed decay is at least the integrated bound's (ratio >= 1) and attains it at m = 1."""
    ratios = small_run[2]["tightness (observed/bound exponent)"]
    assert set(ratios) == {"m=2 < m_y=4 < n=8", "m=8 > n=4", "m=1"}
    assert all(r >= 1 - FLOW_RATIO_TOL for r in ratios.values()), ratios
    assert abs(ratios["m=1"] - 1) <= FLOW_RATIO_TOL, ratios
    assert min(ratios["m=2 < m_y=4 < n=8"], ratios["m=8 > n=4"]) > 1.1  # not attained beyond m = 1


def test_rate_figure_shows_the_counterexample(small_run):
    """lambda at the concentrated softmax (m = 30, gamma = 0.9) lies below the naive bound and above
    the uniform one, and agrees with the independent reference; the naive bound fails on a range
    of widths at gamma = 0.9 while the uniform bound holds at every width."""
    from verify import reference
    from verify.convergence import concentrated_weight

    numbers = small_run[2]
    ce = numbers["counterexample"]
    assert (ce["m"], ce["gamma"]) == (30, 0.9)
    assert ce["uniform_bound"] <= ce["lambda"] < ce["naive_bound"]
    assert ce["naive_bound"] == pytest.approx(1 / 1.9**2, rel=4 * EPS)
    # reference: eigvalsh of X^T X, X = U^-1; relative error about m eps cond(U)^2, cond(U) <= 30 here
    expected = reference.rate_constant(concentrated_weight(30), 0.9)
    assert ce["lambda"] == pytest.approx(expected, rel=4 * 30 * 30**2 * EPS)
    fails = numbers["naive bound at the concentrated softmax"]
    assert fails["0.9"]["first failing m"] is not None and fails["0.9"]["fails at"] >= 50  # of m = 1..60
    # the drawn ratio to the uniform bound is lambda (1 + gamma sqrt m)^2, lambda from the reference
    # (attained near m = 60, where it tends to 1: a bound drawn lower or higher by a few percent moves it)
    for g in (0.5, 0.9):
        expected = [_reference_ratio(m, g) for m in range(1, 61)]
        got = fails[str(g)]["min lambda/uniform bound"]
        assert got >= 1 - 1e-12
        assert got == pytest.approx(min(r for r, _ in expected), rel=max(tol for _, tol in expected))


def _reference_ratio(m: int, gamma: float) -> tuple[float, float]:
    """lambda (1 + gamma sqrt m)^2 at the concentrated softmax, lambda = 1/||U^-1||_2^2 from the
    reference, and its relative tolerance: eigenvalues of X^T X (X = U^-1) carry about m eps
    cond(U)^2, cond(U) computed here from the reference's U."""
    from verify import reference
    from verify.convergence import concentrated_weight

    A = concentrated_weight(m)
    cond = np.linalg.cond(reference.implicit_matrix(A, gamma), 2)
    return reference.rate_constant(A, gamma) * (1 + gamma * np.sqrt(m)) ** 2, 4 * m * cond**2 * EPS


def test_theorem2_figure_finding(small_run):
    numbers = small_run[2]
    # the solver stops at relative tol 1e-12; its error is about that times cond(K) (<= 30 here), times 10
    assert numbers["worst solver disagreement"] < 1e-12 * 30 * 10 * 4
    for loss, order in numbers["order in dt"].items():
        assert 0.9 <= order <= 1.1, (loss, order)  # Euler: first order; a wrong metric does not converge


def test_implicit_bias_numbers_follow_the_per_seed_gaps(small_run):
    for key, gap in small_run[2]["implicit bias"].items():
        for other, suffix in (("linear", ""), ("deep_linear", " vs deep_linear")):
            diff = np.array(gap[f"test loss deq - {other} (per seed)"])
            assert len(diff) == 2 and np.all(np.isfinite(diff)), (key, other)
            higher = int(np.sum(diff > 0))
            assert gap["DEQ higher on" + suffix] == f"{higher} of 2 seeds"
            assert gap["direction" + suffix] == {0: "DEQ lower", 2: "DEQ higher"}.get(higher, "mixed")


def test_conservation_figure_finding(small_run):
    # rounding only: a few eps |A| per step over 300 steps; a gradient with nonzero column sums
    # moves them by about lr ||dL/dA|| ~ 1e-3 per step
    assert small_run[2]["max column-sum drift"] < 300 * 10 * EPS * 50


def test_tightness_figure_finding(small_run):
    """Every width's INTEGRATED check holds, the tightness ratio is >= 1 (1 at m = 1), and
    min_t lambda(A_t) is at least the uniform bound."""
    numbers = small_run[2]
    rows = numbers["tightness vs width"]
    assert sorted({r["m"] for r in rows}) == [1, 2, 4, 8, 16]
    assert all(r["holds"] for r in rows), rows
    assert all(r["tightness"] >= 1 - FLOW_RATIO_TOL and r["lambda_ratio"] >= 1 for r in rows), rows
    assert [abs(r["tightness"] - 1) <= FLOW_RATIO_TOL for r in rows if r["m"] == 1] == [True]
    for m, ratio in numbers["lambda/bound at the concentrated softmax"].items():
        expected, tol = _reference_ratio(int(m), 0.5)  # the figure's gamma
        assert ratio >= 1 - 1e-12 and ratio == pytest.approx(expected, rel=tol), m


def test_paired_difference_panel_counts_each_seed(tmp_path):
    """The implicit-bias drawing computes the per-seed gaps, their count and direction from the runs."""
    sys.path.insert(0, os.path.join(ROOT, "figures"))
    import figure_drawing

    it = np.arange(0, 11)

    def run(seed, deq_end, lin_end):
        curve = lambda end: np.linspace(1.0, end, len(it))  # noqa: E731
        return {
            "name": "toy",
            "seed": seed,
            "deq": {"iterations": it, "train": curve(0.1), "test": curve(deq_end)},
            "linear": {"iterations": it, "train": curve(0.1), "test": curve(lin_end)},
            "deep_linear": {"iterations": it, "train": curve(0.05), "test": curve(0.5)},
        }

    runs = [run(0, 0.51, 0.5), run(1, 0.4999, 0.5), run(2, 0.72, 0.5)]
    paths, numbers = figure_drawing.implicit_bias(str(tmp_path), {"toy": runs})
    gap = numbers["implicit bias"]["toy"]
    assert gap["DEQ higher on"] == "2 of 3 seeds" and gap["direction"] == "mixed"
    np.testing.assert_allclose(gap["test loss deq - linear (per seed)"], [0.01, -0.0001, 0.22], rtol=1e-12)
    # the deep linear model ends at 0.5 too: the same gaps, counted under its own keys
    np.testing.assert_allclose(gap["test loss deq - deep_linear (per seed)"], [0.01, -0.0001, 0.22], rtol=1e-12)
    assert gap["DEQ higher on vs deep_linear"] == "2 of 3 seeds" and gap["direction vs deep_linear"] == "mixed"
    assert all(os.path.getsize(p) > 1000 for p in paths)


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
