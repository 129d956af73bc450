"""The BLAS (and OpenMP) thread pools NumPy uses, found once per process.

Finding them scans every loaded library (about 2 ms); a sweep worker limits them to one thread
for every trial and records them in every trial's provenance, so the scan is done once and each
use reads the pools' current thread counts.
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_thread():
    """A context manager: BLAS on one thread inside it (as threadpool_limits(limits=1))."""
    return controller().limit(limits=1)
