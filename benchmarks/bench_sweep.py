"""Sweep throughput: trials per second with 1 and 2 local worker processes (and optionally Dask).

    python benchmarks/bench_sweep.py [--trials 24] [--repeats 3] [--cluster]
    python benchmarks/bench_sweep.py --search [--seeds 3]

--search times `dlrun sweep configs/search.yaml --trials 40 --workers 2` as a user runs it,
unpruned, pruned (--prune: asynchronous successive halving) and with --sampler tpe, for each
sweep seed in turn, and reads each sweep's sweep.csv and sweep.json: wall time, epochs trained,
the dev error of the trial the sweep chose, and the best dev error among the completed trials
of the first 10, 20 and 40 points; "trials' s" is the sweep's own duration in sweep.json, from
its first trial sent to its last stored, without the command's start-up, report and figures.
Pruned and unpruned sweeps of one seed draw the same 40
points, so their wall times are paired: the ratio per seed, its median and range. The issue's
bar: pruned well under unpruned in wall time, its chosen trial as good within the spread over
the seeds.

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


SEARCH = {"unpruned": [], "pruned": ["--prune"], "tpe": ["--sampler", "tpe"]}


def search_sweep(seed: int, extra: list[str], runs_dir: str) -> dict:
    """One `dlrun sweep` of configs/search.yaml: wall seconds, epochs, best dev error so far."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd
    command = [sys.executable, "-m", "dlrun", "sweep", "configs/search.yaml", "--trials", "40",
               "--workers", "2", "--seed", str(seed), "-q", "--runs-dir", runs_dir, *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    directory = Path(done.stdout.strip().splitlines()[-1])
    frame = pd.read_csv(directory / "sweep.csv")
    completed = frame[frame["status"] == "completed"]
    best = {n: completed[completed["trial"] < n]["dev_error"].min() for n in (10, 20, 40)}
    info = json.loads((directory / "sweep.json").read_text())
    return {"seconds": seconds, "epochs": int(frame["epochs_run"].sum()), "best": best,
            "chosen": info["best"]["dev_error"], "sweep": info["duration_seconds"]}


def search(seeds: int) -> None:
    import statistics
    console = Console()
    load_before = os.getloadavg()[0]
    found: dict[str, list[dict]] = {label: [] for label in SEARCH}
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in range(seeds):  # the set-ups take turns: load falls on all of them alike
            for label, extra in SEARCH.items():
                found[label].append(search_sweep(seed, extra, runs_dir))
    table = Table(title=f"configs/search.yaml, 40 trials, 2 workers, sweep seeds 0..{seeds - 1}")
    for column in ("sweep", "wall s (median, range)", "trials' s", "epochs", "chosen dev error",
                   "best dev error after 10 / 20 / 40 trials"):
        table.add_column(column, justify="left" if column == "sweep" else "right")

    def spread(values, digits):
        return (f"{statistics.median(values):.{digits}f} "
                f"({min(values):.{digits}f}-{max(values):.{digits}f})")
    for label, rows in found.items():
        table.add_row(label, spread([r["seconds"] for r in rows], 1),
                      spread([r["sweep"] for r in rows], 1),
                      spread([r["epochs"] for r in rows], 0),
                      spread([r["chosen"] for r in rows], 3),
                      " / ".join(spread([r["best"][n] for r in rows], 3) for n in (10, 20, 40)))
    console.print(table)
    for label, rows in found.items():
        console.print(f"{label}: seconds {[round(r['seconds'], 1) for r in rows]}, chosen dev "
                      f"error {[round(r['chosen'], 4) for r in rows]}, epochs "
                      f"{[r['epochs'] for r in rows]}")
    for key, what in (("seconds", "wall time"), ("sweep", "trials' time")):
        ratios = [p[key] / u[key] for p, u in zip(found["pruned"], found["unpruned"])]
        console.print(f"pruned / unpruned {what}, paired by seed: {[round(r, 2) for r in ratios]}"
                      f", median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-"
                      f"{max(ratios):.2f})")
    console.print(f"{os.cpu_count()} cores; load average {load_before:.2f} before, "
                  f"{os.getloadavg()[0]:.2f} after (other programs compete for the cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--cluster", action="store_true", help="also 2 workers on a Dask LocalCluster")
    parser.add_argument("--search", action="store_true",
                        help="pruned vs unpruned, random vs TPE on configs/search.yaml")
    parser.add_argument("--seeds", type=int, default=3, help="sweep seeds for --search")
    args = parser.parse_args()
    if args.search:
        return search(args.seeds)
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
