"""Hypothesis profiles: `ci` (default; derandomised and fast), `thorough` (many examples) and
`scale` (the scale tier's widths and data sizes in property_tests/campaign/test_scale.py).

Select with HYPOTHESIS_PROFILE=thorough (see the README). The `slow` marker holds long
trajectory runs; it is deselected by default (pyproject addopts) and selected by
`make test-thorough` or `pytest -m slow`.
"""

import os
import signal

import scipy.linalg  # noqa: F401  (load SciPy's OpenBLAS before limiting it)
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# The tests' matrices are small: one BLAS thread each for NumPy's and SciPy's OpenBLAS, which
# otherwise spin against each other on two cores (100x slower on a busy machine).
threadpool_limits(limits=1)

# The campaign's tests patch claims and core functions in this process (mutants, counting checks,
# Ctrl-C raised by a check): they run the serial path unless they ask for --workers or --scheduler
# (property_tests/campaign/test_parallel.py). DEQ_VERIFY_WORKERS=2 pytest ... runs them in parallel instead.
os.environ.setdefault("DEQ_VERIFY_WORKERS", "1")
# ... and the default tier only (the slice of the scale tier and the certificate plan, which the
# default `python -m verify` adds, are run by their own tests: test_campaign_coverage.py)
os.environ.setdefault("DEQ_VERIFY_TIERS", "default")

# A run started in the background by a non-interactive shell (`make test &`, some CI runners)
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the Ctrl-C tests,
# which send this process a real SIGINT, would wait forever. Restore Python's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile(
    "ci",
    max_examples=20,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
# `scale`: property_tests/campaign/test_scale.py draws widths 2-1024 and n up to 1e5 (the scale tier's
# ranges) instead of its default 48 and 2000; the other properties run as under `ci`.
settings.register_profile(
    "scale",
    max_examples=20,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
