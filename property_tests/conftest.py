"""Hypothesis profiles: `ci` (default; derandomised and fast) and `thorough` (many examples).

Select with HYPOTHESIS_PROFILE=thorough (see the README). The `slow` marker holds long
trajectory runs; it is deselected by default (pyproject addopts) and selected by
`make test-thorough` or `pytest -m slow`.
"""

import os

from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

import scipy.linalg  # noqa: F401  (load SciPy's OpenBLAS before limiting it)

# The tests' matrices are small: one BLAS thread each for NumPy's and SciPy's OpenBLAS, which
# otherwise spin against each other on two cores (100x slower on a busy machine).
threadpool_limits(limits=1)

# The campaign's tests patch claims and core functions in this process (mutants, counting checks,
# Ctrl-C raised by a check): they run the serial path unless they ask for --workers or --scheduler
# (property_tests/test_parallel.py). DEQ_VERIFY_WORKERS=2 pytest ... runs them in parallel instead.
os.environ.setdefault("DEQ_VERIFY_WORKERS", "1")

settings.register_profile(
    "ci", max_examples=20, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
