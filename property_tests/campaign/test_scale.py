"""The scale tier (verify/scale.py, ``python -m verify --scale``) as Hypothesis properties.

Under the default profile the widths stop at 48 and n at 2000 (seconds per example); under
``HYPOTHESIS_PROFILE=scale`` they are drawn log-uniformly from 2 to 1024 and n from 10 to 1e5
(m^2 n capped at verify.scale.SCALE_WORK, as in the campaign), m_y up to 10, in every width regime.
Each check is the campaign's own (same references, same derived tolerances); the tests add that a
wrong formula fails it, and the command-line wiring (--scale, --idx).
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verify.scale as scale
from verify.__main__ import main
from verify.gradients import softmax_vjp
from verify.model import ImplicitLayer

AT_SCALE = os.environ.get("HYPOTHESIS_PROFILE") == "scale"
MAX_WIDTH = scale.MAX_WIDTH if AT_SCALE else 48
MAX_SAMPLES = scale.MAX_SAMPLES if AT_SCALE else 2000
EXAMPLES = None if AT_SCALE else 4  # None: the profile's own max_examples


def _log_uniform(low: int, high: int):
    return st.floats(np.log(low), np.log(high)).map(lambda x: int(np.clip(round(np.exp(x)), low, high)))


@st.composite
def scale_configs(draw, losses=("square", "cross_entropy"), max_width=MAX_WIDTH):
    """A synthetic scale configuration in one width regime, with samples at least twice or at most
    half the width (so that Gaussian features are well conditioned, as in the campaign)."""
    regime = draw(st.sampled_from(scale.PROPER_REGIMES))
    loss = draw(st.sampled_from(losses))
    if regime == "m<m_y":
        m = draw(st.integers(2, scale.MAX_OUTPUTS - 1))
        m_y = draw(st.integers(m + 1, scale.MAX_OUTPUTS))
        n = draw(_log_uniform(max(10, 2 * m), MAX_SAMPLES))
    elif regime == "m<n":
        m = draw(_log_uniform(2, min(max_width, MAX_SAMPLES // 2)))
        m_y = draw(st.integers(1, scale.MAX_OUTPUTS))
        n = draw(_log_uniform(2 * m, max(2 * m, int(min(MAX_SAMPLES, scale.SCALE_WORK / m**2)))))
    else:
        m = draw(_log_uniform(20, max(20, max_width)))
        m_y = draw(st.integers(1, scale.MAX_OUTPUTS))
        n = draw(_log_uniform(10, m // 2))
    if loss == "cross_entropy":
        m_y = max(m_y, 2)
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "regime": regime,
        "m": m,
        "m_y": m_y,
        "n": n,
        "gamma": draw(st.floats(0.05, 0.95)),
        "loss": loss,
        "a_scale": draw(st.sampled_from([0.1, 1.0, 3.0])),
        "dataset": "synthetic",
        "phi_scale": float(10 ** draw(st.floats(-1, 1))),
    }


def _holds(outcome):
    assert outcome.passed, outcome.summary()


@settings(max_examples=EXAMPLES)
@given(scale_configs())
def test_energy_at_scale(config):
    _holds(scale.check_energy_scale(config))


@settings(max_examples=EXAMPLES)
@given(scale_configs(losses=("square",)))
def test_state_wise_at_scale(config):
    _holds(scale.check_state_wise_scale(config))


@settings(max_examples=EXAMPLES)
@given(
    _log_uniform(2, scale.MAX_WIDTH if AT_SCALE else 256),
    st.floats(0.01, 0.99),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.1, 1.0, 10.0]),
    st.booleans(),
)
def test_uniform_rate_at_scale(m, gamma, seed, a_scale, concentrated):
    config = (
        {"m": m, "gamma": gamma, "concentrated": True}
        if concentrated
        else {"seed": seed, "m": m, "gamma": gamma, "a_scale": a_scale}
    )
    _holds(scale.check_uniform_rate_scale(config))


@settings(max_examples=EXAMPLES)
@given(scale_configs(losses=("square",), max_width=min(MAX_WIDTH, 128)))
def test_gd_step_at_scale(config):
    _holds(scale.check_gd_step_scale(config))


@settings(max_examples=EXAMPLES)
@given(scale_configs(max_width=min(MAX_WIDTH, 256)))
def test_trust_region_at_scale(config):
    _holds(scale.check_trust_region_scale(config))


@pytest.mark.slow
@settings(max_examples=EXAMPLES)
@given(
    scale_configs(losses=("square",), max_width=min(MAX_WIDTH, 128)).map(lambda c: {**c, "gamma": min(c["gamma"], 0.8)})
)
def test_integrated_at_scale(config):
    _holds(scale.check_integrated_scale(config))


def test_uniform_rate_config_keys_match_the_sampler():
    """The property above builds UNIFORM-RATE's configurations by hand: they must be the sampler's."""
    rng = np.random.default_rng(0)
    assert set(scale.uniform_scale_sampler(rng, 0)) == {"seed", "m", "gamma", "a_scale"}
    assert set(scale.uniform_scale_sampler(rng, 1)) == {"m", "gamma", "concentrated"}


def test_digits_in_full_hold():
    """The real-data configuration: all 1797 digits, 64 pixels, 10 classes, both losses."""
    for loss in ("square", "cross_entropy"):
        config = {
            "seed": 3,
            "dataset": "digits",
            "loss": loss,
            "gamma": 0.7,
            "a_scale": 1.0,
            "m": 64,
            "m_y": 10,
            "n": 1797,
        }
        case = scale.scale_case(config)
        assert case.Phi.shape == (64, 1797) and case.Y.shape == (10, 1797)
        _holds(scale.check_energy_scale(config))


def test_a_wrong_metric_fails_energy_at_scale(monkeypatch):
    """K's second term with gamma instead of gamma^2 (a one-factor slip) must fail ENERGY at scale."""

    def wrong(A, B, G, *, gamma):  # preconditioner_apply with gamma in place of gamma^2
        layer = ImplicitLayer.from_weights(A, gamma=gamma)
        W = layer.end_to_end_weight(B)
        X = layer.right_solve_transposed(G)
        second = W @ softmax_vjp(layer.S, softmax_vjp(layer.S, W.T @ X))
        return layer.right_solve(X + gamma * second)

    monkeypatch.setattr(scale, "preconditioner_matvec", wrong)
    config = {
        "seed": 1,
        "regime": "m<n",
        "m": 12,
        "m_y": 3,
        "n": 60,
        "gamma": 0.6,
        "loss": "square",
        "a_scale": 1.0,
        "dataset": "synthetic",
        "phi_scale": 1.0,
    }
    assert not scale.check_energy_scale(config).passed


def test_a_weakened_uniform_bound_fails_at_scale(monkeypatch):
    """1/(1 + gamma m)^2 in place of 1/(1 + gamma sqrt m)^2 in the core must fail UNIFORM-RATE at
    scale (the bound is checked against its formula, not only below lambda)."""
    monkeypatch.setattr(scale, "uniform_rate_bound", lambda m, *, gamma: 1.0 / (1.0 + gamma * m) ** 2)
    config = {"m": 256, "gamma": 0.9, "concentrated": True}
    assert not scale.check_uniform_rate_scale(config).passed


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + array.tobytes())
    return str(path)


def test_cli_scale_tier_with_idx_files(tmp_path):
    """--scale --idx: the IDX data set is one of the real-data configurations; the report says the
    tier and the wall time; a failure would be reproduced with --scale."""
    rng = np.random.default_rng(0)
    images = _write_idx(tmp_path / "images.idx", rng.integers(0, 256, (300, 6, 6)).astype(np.uint8), 0x08)
    labels = _write_idx(tmp_path / "labels.idx", rng.integers(0, 4, 300).astype(np.uint8), 0x08)
    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "--scale",
                "--idx",
                images,
                labels,
                "--only",
                "STATE-WISE",
                "--count",
                "8",
                "--workers",
                "1",
                "--json",
                str(report_path),
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["tier"] == "scale" and report["wall_time"] > 0
    datasets = [r["config"].get("dataset") for r in report["claims"][0]["records"]]
    assert "idx" in datasets and "digits" in datasets and "synthetic" in datasets


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--idx", "a", "b"], "--idx needs --scale"),
        (["--scale", "--idx", "/nonexistent/images", "/nonexistent/labels"], "--idx IMAGES"),
        (["--scale", "--only", "WELL-POSED"], "unknown claim(s) ['WELL-POSED'] in the scale tier"),
        (["--scale", "--certify"], "--certify does not apply with --scale"),
    ],
)
def test_cli_scale_refusals(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err + captured.out


def test_record_excess_off_never_computes_the_optimum(monkeypatch):
    """record_excess=False: no separability LP, no L*, the excess column is NaN; the loss and the
    parameters are those of the default run. A non-boolean flag is refused by name."""
    from verify import gradient_descent, gradient_flow
    from verify.losses import CrossEntropyLoss, ShallowProblem

    rng = np.random.default_rng(0)
    Phi, labels = rng.standard_normal((3, 40)), np.eye(4)[:, rng.integers(0, 4, 40)]  # one-hot columns
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((4, 3))
    reference = gradient_descent(A, B, ShallowProblem(Phi, labels, "cross_entropy"), gamma=0.5, lr=0.01, steps=3)

    def no_lp(self, problem):
        raise AssertionError("the separability LP ran")

    monkeypatch.setattr(CrossEntropyLoss, "_analysis", no_lp)  # the one route to separability and L*
    problem = ShallowProblem(Phi, labels, "cross_entropy")
    gd = gradient_descent(A, B, problem, gamma=0.5, lr=0.01, steps=3, record_excess=False)
    flow = gradient_flow(A, B, problem, gamma=0.5, T=0.01, num_points=3, record_excess=False)
    assert np.all(np.isnan(gd.excess_loss)) and np.all(np.isnan(flow.excess_loss))
    assert np.array_equal(gd.loss, reference.loss) and np.array_equal(gd.A, reference.A)
    with pytest.raises(AssertionError, match="LP ran"):
        gradient_descent(A, B, problem, gamma=0.5, lr=0.01, steps=1)
    with pytest.raises(ValueError, match="record_excess must be True or False"):
        gradient_descent(A, B, problem, gamma=0.5, lr=0.01, steps=1, record_excess="no")


@pytest.mark.parametrize("method", ["LSODA", "Radau", "BDF"])
def test_implicit_solver_with_a_huge_jacobian_is_refused(method):
    """m = 200, m_y = 2: 40400 states, a dense Jacobian of 12 GiB: refused by name before any
    allocation (LSODA allocated it up front and failed with a 12 GiB MemoryError)."""
    from verify import gradient_flow

    rng = np.random.default_rng(0)
    m = 200
    with pytest.raises(ValueError, match=f"method '{method}' needs a dense 40400 x 40400 Jacobian"):
        gradient_flow(
            0.1 * rng.standard_normal((m, m)),
            rng.standard_normal((2, m)),
            rng.standard_normal((m, 5)),
            rng.standard_normal((2, 5)),
            gamma=0.5,
            T=1.0,
            method=method,
        )


# ---- INTEGRATED extends its run where rtol 1e-10 could not be resolved ----------------------------------
#: the slice configuration of seed 11 that left no record judged at rtol 1e-10 (a priori slack 0.0499 at E_0)
UNRESOLVED_AT_1E10 = {"a_scale": 3.0, "dataset": "synthetic", "gamma": 0.14170875185763443, "loss": "square",
                      "m": 294, "m_y": 2, "n": 12, "phi_scale": 5.80880659721889, "regime": "m>n",
                      "seed": 1330747369}  # fmt: skip


def _resolving(config):
    c = scale.scale_case(config)
    s = np.linalg.svd(c.Phi, compute_uv=False)
    W0 = scale.ref.end_to_end_weight(c.A, c.B, c.gamma)
    _, _, Vt = np.linalg.svd(c.Phi, full_matrices=False)
    E0 = 0.5 * float(np.sum((W0 @ c.Phi - (c.Y @ Vt.T) @ Vt) ** 2))
    return scale.resolving_tolerances(c, W0, E0, float(s.max()) ** 2)


def test_integrated_lowers_its_ode_tolerances_only_where_the_records_could_not_be_resolved():
    rtol, atol = _resolving(UNRESOLVED_AT_1E10)
    # a priori slack 0.0499 at E_0, so 0.158 a decade below: rtol lowered by sqrt(10) / 0.05 * 0.0499
    assert 3.0e-11 < rtol < 3.4e-11 and atol == 1e-2 * rtol
    assert _resolving(UNRESOLVED_AT_1E10 | {"phi_scale": 0.3}) == (1e-10, 1e-12)  # slack 0.006: unchanged


@pytest.mark.slow
def test_the_seed_11_integrated_configuration_holds():
    outcome = scale.check_integrated_scale(UNRESOLVED_AT_1E10)
    assert outcome.passed, outcome.detail
