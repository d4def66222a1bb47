"""BLAS threads in the dynamics' inner loops.

NumPy's and SciPy's wheels each ship an OpenBLAS with its own thread pool. A trajectory step
alternates small calls into both (SciPy's LU, NumPy's products, LAPACK in the rate tracker): on
two cores the idle threads of one pool spin while the other library works, and every call pays
for it. Measured along gradient descent at m = 256, n = 1e4, before this module: with both pools
at their default 2 threads a step cost 2.17 gradients in `python benchmarks/bench.py --only
dynamics` (4.3 in a direct timing of 40 steps), with one thread 1.45; the threads bought nothing
at this size (the gradient alone took 1.53 ms with 2 threads and 1.38 ms with one). So the loops of
:func:`verify.gradient_descent` and :func:`verify.gradient_flow` run with one BLAS thread for widths
up to SINGLE_THREAD_MAX_WIDTH, and leave the user's setting alone above it, where one factorisation
is large enough for threads to pay on a machine with many cores.

The limit starts before the first record: its rate is the tracker's cold start (a dense SVD and
eigendecomposition, SciPy and NumPy alternating), whose time with both pools at 2 threads varied
from 20 to 110 ms at m = 256 between runs and made the benchmark's marginal step (the
difference of a 42-step and a 2-step run) noise; with one thread it takes 13 ms.

The limit is process-wide while the loop runs (threadpoolctl) and restored afterwards; another
Python thread doing BLAS work meanwhile runs with one thread too (slower, never wrong).
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

#: widths m up to which the dynamics' loops use one BLAS thread (see the module docstring)
SINGLE_THREAD_MAX_WIDTH = 512


@lru_cache(maxsize=1)
def _controller():
    # created once: it scans the loaded libraries (NumPy's and SciPy's are loaded by then)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def small_matrix_threads(m: int):
    """A context manager: one BLAS thread inside it if m <= SINGLE_THREAD_MAX_WIDTH, else no change."""
    if m > SINGLE_THREAD_MAX_WIDTH:
        return nullcontext()
    return _controller().limit(limits=1, user_api="blas")
