"""When training runs on the compiled kernels (compiled.py: one-pass optimizer steps, bias +
ReLU) instead of NumPy alone.

Only where it pays. numba is an optional extra (`pip install "dlrun[fast]"`); importing it and
reading the cached kernels costs LOAD_SECONDS once per process, and on the course's small
networks a NumPy step already takes microseconds. So the kernels are used when numba is
installed, the network has at least MIN_PARAMS parameters, and the steps still to run save more
than the load costs (or the kernels are loaded already). DLRUN_FUSED=0 always keeps NumPy,
DLRUN_FUSED=1 always takes the kernels when numba is there. Deciding imports nothing (numba is
looked up, not loaded), so the command line never starts slower.

The numbers come from benchmarks/bench_fused.py (Adam, float32, 2 shared cores): importing numba
and loading the three kernels a ReLU network calls from their cache, 0.5 s; a step saves about
1 ns per parameter (50k parameters 0.067 → 0.024 ms, 235k 0.52 → 0.15 ms, 1M 3.1 → 0.61 ms). So
a 235k-parameter network gains from about 2,000 steps on, a 50k one from 10,000; below 50k a
step saves under 0.04 ms, and a run seldom has the hundreds of thousands of steps that would
repay the load.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

MIN_PARAMS = 50_000
LOAD_SECONDS = 0.5
SAVED_SECONDS_PER_PARAM = 1e-9  # per step, the NumPy step's time minus the kernel's
ENVIRONMENT = "DLRUN_FUSED"


def installed() -> bool:
    """numba can be imported (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


def wanted(n_params: int, steps: int | None = None) -> bool:
    """Whether an optimizer over n_params parameters, with `steps` steps still to run (None:
    unknown), should step through the compiled kernels."""
    setting = os.environ.get(ENVIRONMENT, "").strip()
    if setting == "0":
        return False
    if setting != "1":
        if n_params < MIN_PARAMS:
            return False
        loaded = __name__.rpartition(".")[0] + ".compiled" in sys.modules
        if not loaded and steps is not None and \
                steps * n_params * SAVED_SECONDS_PER_PARAM < LOAD_SECONDS:
            return False
    return installed()


def kernels(n_params: int, steps: int | None = None) -> ModuleType | None:
    """The compiled kernels (see wanted), or None: step with NumPy."""
    if not wanted(n_params, steps):
        return None
    try:
        from . import compiled  # lazy: imports numba (0.2 s), only for networks that gain
    except ImportError:  # a broken or incompatible numba: the NumPy rules are always there
        return None
    return compiled
