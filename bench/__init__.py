"""Benchmarks (``python -m bench.<name>``); each prints JSON.

Like the worker (``streams/cli.py``), a benchmark process uses one BLAS thread:
the in-process phases then measure what a worker would do, and thread pools do
not fight over the cores of a small machine.  Set before numpy is imported; an
explicit setting in the environment wins.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
