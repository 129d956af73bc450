"""The compiled optimizer step against the NumPy one, and what it costs to load: where it pays.

    pip install -e ".[fast]"
    python benchmarks/bench_fused.py                 # Adam, 1k to 1M parameters, float32
    python benchmarks/bench_fused.py --optimizers gd,momentum,rmsprop,adam --dtype float64

For each parameter count: the median milliseconds of one step (NumPy rule, compiled kernel),
over paired rounds of many steps each, and the steps it takes to win back loading the kernels
(importing numba and reading the cached kernels, measured in fresh interpreters). fused.MIN_PARAMS
is read off this table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlrun.engine import fused  # noqa: E402
from dlrun.engine.flat import FlatArrays  # noqa: E402
from dlrun.engine.optim import OPTIMIZERS  # noqa: E402

SIZES = [1_000, 5_000, 20_000, 50_000, 100_000, 235_146, 1_000_000]
LOAD = """
import time
started = time.perf_counter()
import numpy as np
from dlrun.engine import compiled
for dtype in (np.float32,):  # what a float32 ReLU network trained with Adam calls
    x, Z = np.zeros(8, dtype), np.zeros((2, 4), dtype)
    one = dtype(1)
    compiled.adam(x, x, x.copy(), x.copy(), one, one, one, one, one, one)
    compiled.bias_relu(Z, x[:4], Z.copy())
    compiled.relu_backward(Z, Z, Z.copy())
print(time.perf_counter() - started)
"""


def load_seconds(rounds: int) -> list[float]:
    """Seconds to import numba and the kernels and to load the three a float32 ReLU network on
    Adam calls from the cache (their first calls), in a fresh interpreter: what a run pays."""
    subprocess.run([sys.executable, "-c", LOAD], check=True, capture_output=True)  # fill the cache
    return [float(subprocess.run([sys.executable, "-c", LOAD], check=True, capture_output=True,
                                 text=True, cwd=Path(__file__).resolve().parent.parent).stdout)
            for _ in range(rounds)]


def step_seconds(name: str, size: int, dtype, kernels, steps: int) -> float:
    """Seconds per step of optimizer `name` over `size` parameters (kernels False: NumPy)."""
    rng = np.random.default_rng(0)
    params = FlatArrays({"W": rng.standard_normal(size).astype(dtype)}, dtype)
    grads = params.zeros_like()
    grads.flat[:] = rng.standard_normal(size) * 1e-2
    optimizer = OPTIMIZERS[name]()
    optimizer.use_kernels(kernels or None)
    optimizer.step(params, grads, 1e-3)  # slots allocated, kernels compiled or loaded
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step(params, grads, 1e-3)
    return (time.perf_counter() - started) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="adam")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not fused.installed():
        print("numba is not installed: pip install -e '.[fast]'")
        return 1
    from dlrun.engine import compiled  # lazy: after the check that numba is there at all

    loads = load_seconds(args.rounds)
    load = statistics.median(loads)
    print(f"loading the kernels (import numba, first calls of the cached kernels): median {load * 1e3:.0f} ms "
          f"(min {min(loads) * 1e3:.0f}, max {max(loads) * 1e3:.0f}; {args.rounds} fresh "
          f"interpreters); fused.MIN_PARAMS = {fused.MIN_PARAMS:,}")
    dtype = np.dtype(args.dtype)
    for name in args.optimizers.split(","):
        print(f"\n{name}, {dtype}: ms per step, median of {args.rounds} paired rounds [min-max]")
        print(f"  {'parameters':>10}  {'NumPy':>16}  {'compiled':>16}  {'speed-up':>8}  "
              f"{'steps to repay loading':>22}")
        for size in SIZES:
            steps = max(20, 2_000_000 // size)
            numpy_s, compiled_s = [], []
            for round_ in range(args.rounds):
                pair = [(numpy_s, False), (compiled_s, compiled)]
                for times, kernels in pair if round_ % 2 == 0 else pair[::-1]:
                    times.append(step_seconds(name, size, dtype, kernels, steps))
            a, b = statistics.median(numpy_s), statistics.median(compiled_s)
            repay = load / (a - b) if a > b else float("inf")
            print(f"  {size:>10,}  {a * 1e3:7.4f} [{min(numpy_s) * 1e3:.3f}-{max(numpy_s) * 1e3:.3f}]"
                  f"  {b * 1e3:7.4f} [{min(compiled_s) * 1e3:.3f}-{max(compiled_s) * 1e3:.3f}]"
                  f"  {a / b:7.1f}×  {repay:>22,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
