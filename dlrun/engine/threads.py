"""Elementwise work on large arrays, split over the cores: NumPy releases the GIL inside its ufunc
loops, so plain threads run the pieces in parallel. Results do not depend on the split."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

MIN_PART = 1 << 15  # elements: below this, handing a piece to a thread costs more than it saves
_ALIGN = 64  # piece boundaries on whole cache lines of float32 and float64

_pool: ThreadPoolExecutor | None = None


def workers() -> int:
    """Threads to use: the cores this process may run on, capped by the usual thread variables."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    for variable in ("DLRUN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return min(cores, int(value))
    return cores


_WORKERS = workers()


def bounds(size: int) -> list[tuple[int, int]]:
    """(start, stop) of the pieces a 1-D array of `size` elements is split into."""
    if size < 2 * MIN_PART or _WORKERS < 2:
        return [(0, size)]
    pieces = min(_WORKERS, size // MIN_PART)
    cuts = [size * k // pieces // _ALIGN * _ALIGN for k in range(pieces)] + [size]
    return list(zip(cuts[:-1], cuts[1:]))


def run(function, pieces: list) -> None:
    """function(piece) for every piece; the calling thread takes the first one itself."""
    global _pool
    if len(pieces) == 1:
        function(pieces[0])
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_WORKERS - 1, thread_name_prefix="dlrun")
    futures = [_pool.submit(function, piece) for piece in pieces[1:]]
    try:
        function(pieces[0])
    finally:
        for future in futures:
            future.result()
