"""Sweep throughput: trials per second with 1 and 2 local worker processes (and optionally Dask).

    python benchmarks/bench_sweep.py [--trials 24] [--repeats 3] [--cluster]

Each worker keeps BLAS on one thread, so on a machine with two idle cores two workers should finish
the same trials close to twice as fast; the target is at least 1.8x. Every run trains the very same
trials (same sweep seed) in fresh worker processes whose start-up time is counted; the set-ups take
turns, so load from other programs falls on all of them alike, and each keeps its best time. The
workers' CPU seconds per trial show whether they got in each other's way: they should not grow
with the number of workers, even when a busy machine keeps the speed-up down.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from rich.console import Console
from rich.table import Table

from dlrun.sweep import run
from dlrun.sweep.space import SearchSpace
from dlrun.sweep.workers import ProcessBackend
from dlrun.yamlio import parse

SPACE = """\
name: bench
seed: 0
data:
  generator: {name: moons, n_samples: 1000, noise: 0.2}
model:
  hidden_layers: {choice: [[16, 8], [10, 5], [20]]}
train:
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [32, 64]}
  epochs: 100
"""
TARGET = 1.8


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_sweep(space: SearchSpace, trials: int, backend) -> tuple[float, float]:
    """(wall seconds from the first trial submitted to the last stored, worker CPU seconds)."""
    with tempfile.TemporaryDirectory() as runs_dir:
        swept = run.create(space, runs_dir, run.Options(trials=trials), backend.description)
        cpu = _children_cpu()
        started = time.perf_counter()
        try:
            run.run(swept, backend)
        finally:
            backend.close()  # waits for the worker processes, so their CPU time is counted
        elapsed = time.perf_counter() - started
        statuses = {t.summary["status"] for t in swept.finished.values()}
        assert len(swept.finished) == trials and statuses <= {"completed", "diverged"}, statuses
    return elapsed, _children_cpu() - cpu


def local_backend(workers: int):
    return lambda: ProcessBackend(workers)


def dask_backend():
    from distributed import LocalCluster

    from dlrun.sweep.cluster import DaskBackend
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    backend = DaskBackend(cluster.scheduler_address)
    close = backend.close

    def close_both(abort: bool = False):
        close(abort)
        cluster.close()

    backend.close = close_both
    return backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--cluster", action="store_true", help="also 2 workers on a Dask LocalCluster")
    args = parser.parse_args()
    data, lines = parse(SPACE, "bench")
    space = SearchSpace.from_data(data, "bench", lines)
    setups = [("1 local process", local_backend(1)), ("2 local processes", local_backend(2))]
    if args.cluster:
        setups.append(("2 Dask workers (LocalCluster)", dask_backend))
    console = Console()
    load_before = os.getloadavg()[0]
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):
        for label, make in setups:
            seconds, cpu = timed_sweep(space, args.trials, make())
            if label not in best or seconds < best[label][0]:
                best[label] = (seconds, cpu)
    table = Table(title=f"sweep throughput, {args.trials} trials, best of {args.repeats}")
    for column in ("workers", "seconds", "trials / s", "speed-up", "worker CPU s / trial"):
        table.add_column(column, justify="left" if column == "workers" else "right")
    baseline = best[setups[0][0]][0]
    ratios = {}
    for label, (seconds, cpu) in best.items():
        ratios[label] = baseline / seconds
        table.add_row(label, f"{seconds:.2f}", f"{args.trials / seconds:.2f}",
                      f"{ratios[label]:.2f}x", f"{cpu / args.trials:.3f}" if cpu else "-")
    console.print(table)
    console.print(f"{os.cpu_count()} cores; load average {load_before:.2f} before, "
                  f"{os.getloadavg()[0]:.2f} after (other programs compete for the cores)")
    ratio = ratios["2 local processes"]
    verdict = "[green]meets[/green]" if ratio >= TARGET else "[red]misses[/red]"
    console.print(f"2 workers vs 1: {ratio:.2f}x, {verdict} the {TARGET}x target")


if __name__ == "__main__":
    main()
