"""When an optimizer steps through the compiled one-pass kernels (compiled.py) instead of NumPy.

Only where it pays. numba is an optional extra (`pip install "dlrun[fast]"`); importing it and
reading the cached kernels costs LOAD_SECONDS once per process, and on the course's small
networks a NumPy step already takes microseconds. So the kernels are used when numba is
installed, the network has at least MIN_PARAMS parameters, and the steps still to run save more
than the load costs (or the kernels are loaded already). DLRUN_FUSED=0 always keeps NumPy,
DLRUN_FUSED=1 always takes the kernels when numba is there. Deciding imports nothing (numba is
looked up, not loaded), so the command line never starts slower.

The numbers come from benchmarks/bench_fused.py (Adam, float32, 2 shared cores): loading 0.2 to
0.3 s; a step saves about 1 ns per parameter (50k parameters 0.06 → 0.02 ms, 235k 0.46 → 0.14 ms,
1M 3.8 → 0.65 ms). Below 50k a step saves under 0.04 ms: tens of thousands of steps to repay.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

MIN_PARAMS = 50_000
LOAD_SECONDS = 0.3
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
