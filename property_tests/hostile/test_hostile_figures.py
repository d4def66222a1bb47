"""figures/make_figures.py writes strict JSON (found by outside testers: numbers.json held a bare
NaN, which RFC 8259 parsers such as JavaScript's JSON.parse or jq refuse)."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _figures_module():
    spec = importlib.util.spec_from_file_location("make_figures", os.path.join(ROOT, "figures", "make_figures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_numbers_json_is_strict_json():
    numbers = {
        "tightness vs width": {"m=4": float("nan"), "m=8": 1.25},
        "ratio": float("inf"),
        "rows": [[1, float("-inf")]],
    }
    parsed = _strict(_figures_module().numbers_json(numbers))
    assert parsed == {"tightness vs width": {"m=4": "nan", "m=8": 1.25}, "ratio": "inf", "rows": [[1, "-inf"]]}
