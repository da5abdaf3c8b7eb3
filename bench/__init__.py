"""Benchmarks (``python -m bench.<name>``); each prints JSON.

Like the worker, a benchmark process uses one BLAS thread (``streams.blas``): the
in-process phases then measure what a worker would do.
"""

from streams.blas import use_one_blas_thread

use_one_blas_thread()  # before numpy is first imported
