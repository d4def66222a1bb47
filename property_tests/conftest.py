"""Hypothesis profiles: `ci` (default; derandomised and fast) and `thorough` (many examples).

Select with HYPOTHESIS_PROFILE=thorough (see the README). The `slow` marker holds long
trajectory runs; it is deselected by default (pyproject addopts) and selected by
`make test-thorough` or `pytest -m slow`.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=20, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
