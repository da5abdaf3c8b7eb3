"""One BLAS thread per process.

A worker is one busy thread (scale out by partitions): BLAS thread pools would
only fight over the cores (a 64x64 matrix product took 4-10 ms instead of
0.25 ms on a loaded 2-core box).  Benchmarks do the same, so their in-process
phases measure what a worker does.
"""

from __future__ import annotations

import os

__all__ = ["use_one_blas_thread"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def use_one_blas_thread() -> None:
    """Ask the BLAS libraries for one thread; call before numpy is first imported.

    An explicit setting in the environment wins.
    """
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
