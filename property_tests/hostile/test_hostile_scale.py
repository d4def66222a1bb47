"""Hostile and careless use of the scale tier's real data (--scale --idx) and of --replay.

Found by outside testers: a bad --idx file was not refused up front (it surfaced minutes later as
"STATE-WISE NO", exit 1, with a traceback); the --replay line printed for a scale failure always
exited 2 (dataset, idx_* and pca were not in the schema); the IDX configuration recorded the cap
n = 10000 instead of the data size, and absolute paths; phi_scale = 1e100 was inside the schema,
where the checks are not designed to work.
"""

import dataclasses
import json
import os
import struct

import numpy as np
import pytest

from verify import claims as claims_module
from verify import scale
from verify.__main__ import main
from verify.claims import condition, outcome

RNG = np.random.default_rng(0)


def _idx_bytes(array, code=0x08, dims=None):
    dims = array.shape if dims is None else dims
    return bytes([0, 0, code, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims) + array.tobytes()


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _good_images(count=300):
    return RNG.integers(0, 256, (count, 6, 6)).astype(np.uint8)


def _good_labels(count=300, classes=4):
    return RNG.integers(0, classes, count).astype(np.uint8)


def _exit(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


BAD_FILES = {
    "bad magic": (lambda: b"\x01\x02" + _idx_bytes(_good_images())[2:], _good_labels, "bad magic number"),
    "count mismatch": (lambda: _idx_bytes(_good_images(299)), _good_labels, "299 images but"),
    "label too large": (
        lambda: _idx_bytes(_good_images()),
        lambda: np.where(np.arange(300) == 7, 12, _good_labels()),
        "label 12 is too large; the scale tier has at most 10 classes",
    ),
    "label beyond the count": (
        lambda: _idx_bytes(_good_images()),
        lambda: np.where(np.arange(300) == 7, 250, _good_labels()),
        "label 250 is too large",
    ),
    "NaN pixels": (
        lambda: _idx_bytes(np.where(np.arange(300 * 36).reshape(300, 6, 6) == 40, np.nan, 1.0).astype(">f8"), 0x0E),
        _good_labels,
        "NaN or inf pixels",
    ),
    "oversized header": (
        lambda: _idx_bytes(np.zeros(4, np.uint8), dims=(60000, 4096, 4096)),
        _good_labels,
        "header promises 1006632960000 bytes",
    ),
    "all-zero images": (lambda: _idx_bytes(np.zeros((300, 6, 6), np.uint8)), _good_labels, "every pixel of the first"),
    "one class": (lambda: _idx_bytes(_good_images()), lambda: np.zeros(300, np.uint8), "at least 2 classes"),
    "1-D images": (lambda: _idx_bytes(np.arange(300, dtype=np.uint8)), _good_labels, "at least 2 dimensions"),
    "too many pixels": (lambda: _idx_bytes(np.ones((300, 33, 33), np.uint8)), _good_labels, "1089 pixels per image"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_idx_file_is_refused_before_any_work(name, tmp_path, monkeypatch, capsys):
    """Exit 2 and one line on stderr naming the file and the rule, before a configuration is
    checked (every scale check is replaced by one that fails the test if called)."""
    images_of, labels_of, message = BAD_FILES[name]
    monkeypatch.setattr(scale, "IDX_FILES", [])
    images = _write(tmp_path / "images.idx", images_of())
    labels = _write(tmp_path / "labels.idx", _idx_bytes(np.asarray(labels_of(), dtype=np.uint8)))

    def never(config):
        raise AssertionError("a configuration was checked")

    for claim_id, claim in list(claims_module.SCALE_CLAIMS_BY_ID.items()):
        monkeypatch.setitem(claims_module.SCALE_CLAIMS_BY_ID, claim_id, dataclasses.replace(claim, check=never))
    assert _exit(["--scale", "--idx", images, labels, "--only", "STATE-WISE", "--count", "8", "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "--idx" in err[0] and message in err[0], err
    assert "images.idx" in err[0] or "labels.idx" in err[0]


def _idx_pair(tmp_path, count=300):
    images = _write(tmp_path / "images.idx", _idx_bytes(_good_images(count)))
    labels = _write(tmp_path / "labels.idx", _idx_bytes(_good_labels(count)))
    return images, labels


def test_a_scale_failure_prints_a_replay_line_that_replays(tmp_path, monkeypatch, capsys):
    """A failing IDX configuration: its --replay line is accepted (it exited 2 before: 'dataset'
    was not a schema key) and reproduces the check; the configuration records the data's own n,
    m and m_y and the paths as given (relative here), not the cap and absolute paths."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(scale, "IDX_FILES", [])
    images, labels = _idx_pair(tmp_path)
    images, labels = os.path.basename(images), os.path.basename(labels)
    claim = claims_module.SCALE_CLAIMS_BY_ID["STATE-WISE"]

    def fails_on_idx(config):
        return outcome([condition("the real data pass", config["dataset"] != "idx")])

    monkeypatch.setitem(claims_module.SCALE_CLAIMS_BY_ID, "STATE-WISE", dataclasses.replace(claim, check=fails_on_idx))
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
                "report.json",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    replay = out.split("--replay '")[1].split("'")[0]
    config = json.loads(replay)
    assert config["dataset"] == "idx" and config["n"] == 300 and config["m"] == 36 and config["m_y"] == 4
    assert config["idx_images"] == "images.idx" and config["idx_labels"] == "labels.idx"
    monkeypatch.setitem(claims_module.SCALE_CLAIMS_BY_ID, "STATE-WISE", claim)
    assert main(["--scale", "--only", "STATE-WISE", "--replay", replay]) == 0  # the real check holds there
    assert "STATE-WISE: holds" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n": 299}, "key 'n' is 299, but the idx data give n = 300"),
        ({"idx_images": "missing.idx"}, "key 'idx_images': 'missing.idx' is not a readable file"),
        ({"m": 2000}, "key 'm' = 2000 exceeds 1024, the scale tier's largest"),
        ({"dataset": "digits"}, "key 'n' is 300, but the digits data give n = 1797"),
        ({"dataset": "synthetic"}, "key 'idx_images' applies to real data only"),
    ],
)
def test_a_replayed_idx_configuration_is_checked_against_its_files(change, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _idx_pair(tmp_path)
    config = {
        "seed": 1,
        "dataset": "idx",
        "loss": "square",
        "gamma": 0.5,
        "a_scale": 1.0,
        "m": 36,
        "m_y": 4,
        "n": 300,
        "idx_images": "images.idx",
        "idx_labels": "labels.idx",
        **change,
    }
    assert _exit(["--scale", "--only", "STATE-WISE", "--replay", json.dumps(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("phi_scale", 1e100, "[1e-2, 1e2]"),
        ("phi_scale", 1e-3, "[1e-2, 1e2]"),
        ("y_scale", 1e3, "[1e-2, 1e2]"),
        ("spread", 12.0, "[0, 4]"),
        ("a_scale", 1e300, "[0, 1000]"),
    ],
)
def test_replay_refuses_data_scales_the_checks_are_not_designed_for(key, value, rule, capsys):
    """phi_scale = 1e100 was inside the schema and STATE-WISE then "failed" (found by testers), as
    it did at spread = 12 (found probing); the schema holds each key to the samplers' range, the
    one the tolerances are derived for: phi_scale and y_scale in [1e-2, 1e2], spread <= 4,
    a_scale <= 1000."""
    config = {
        "seed": 3,
        "regime": "m<n",
        "m": 2,
        "m_y": 1,
        "n": 5,
        "gamma": 0.5,
        "loss": "square",
        "a_scale": 1.0,
        "phi_scale": 1.0,
        "y_scale": 1.0,
        "spread": 2.0,
        key: value,
    }
    assert _exit(["--only", "STATE-WISE", "--replay", json.dumps(config)]) == 2
    err = capsys.readouterr().err
    assert f"key '{key}' must lie in {rule}" in err and len(err.strip().splitlines()) == 1


def test_the_sampled_scale_configurations_replay(tmp_path, monkeypatch):
    """Every key the scale samplers emit (with --idx given) is accepted by the replay schema."""
    from verify.config_schema import replay_config

    monkeypatch.chdir(tmp_path)
    images, labels = _idx_pair(tmp_path)
    monkeypatch.setattr(scale, "IDX_FILES", [])
    scale.set_idx_files("images.idx", "labels.idx")
    for claim in claims_module.SCALE_CLAIMS:
        rng = np.random.default_rng(0)
        for index in range(16):
            config = claim.sample(rng, index)
            assert replay_config(json.dumps(config), claim) == config


def test_replay_refuses_an_implicit_flow_it_cannot_finish(capsys):
    """INTEGRATED with Radau at m = 60 printed nothing for 10 minutes: refused up front, naming
    the rule; within the budget the same configuration is accepted."""
    from verify.claims import CLAIMS_BY_ID
    from verify.config_schema import replay_config

    config = {
        "seed": 5,
        "regime": "m<n",
        "m": 60,
        "m_y": 2,
        "n": 180,
        "gamma": 0.5,
        "loss": "square",
        "a_scale": 1.0,
        "phi_scale": 1.0,
        "y_scale": 1.0,
        "well_conditioned": False,
        "spread": 2.0,
        "method": "Radau",
    }
    assert _exit(["--only", "INTEGRATED", "--replay", json.dumps(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "method 'Radau' integrates the flow with a dense finite-difference Jacobian of the "
        "m^2 + m_y m = 3720 states"
        in err[0]
    ), err
    small = {**config, "m": 5, "n": 15}
    assert replay_config(json.dumps(small), CLAIMS_BY_ID["INTEGRATED"]) == small
