"""Stacked against one-by-one training: where stacking K trials pays, and how much.

    python benchmarks/bench_stacked.py [--sizes 1,2,4,8,16,32,64] [--hidden 10,5] [--rounds 3]

For each group size K, K trials of one architecture with different learning rates, β1, λ,
keep_prob and init scale are trained by loop.fit one after another, and by fit_stacked at once
(BLAS on one thread, as in a sweep worker); the rounds alternate the two, and the table gives the
median time per trial and the median of the per-round ratios. dlrun/sweep/stacked.py takes its
group size (GROUP) and its size limit (MAX_PARAMETERS) from these figures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from dlrun import config
from dlrun.training.experiment import prepare
from dlrun.training.loop import fit
from dlrun.training.stacked_fit import fit_stacked


def trial_configs(count: int, hidden: list[int], epochs: int) -> list:
    rng = np.random.default_rng(0)
    return [config.validate({
        "name": f"t{k}", "seed": 1,
        "data": {"generator": {"name": "moons", "n_samples": 1000, "noise": 0.2}},
        "model": {"hidden_layers": hidden, "keep_prob": float(rng.uniform(0.7, 1.0)),
                  "init": {"name": "random", "scale": float(10 ** rng.uniform(-2, 0))}},
        "regularization": {"l2": float(10 ** rng.uniform(-4, 0))},
        "train": {"epochs": epochs, "batch_size": 64, "learning_rate": float(10 ** rng.uniform(-4, -1)),
                  "optimizer": {"name": "adam", "beta1": float(1 - 10 ** rng.uniform(-2, -0.7))}},
    }, "bench") for k in range(count)]


def one_by_one(configs) -> float:
    experiments = [prepare(c) for c in configs]
    started = time.perf_counter()
    for experiment in experiments:
        fit(experiment, lambda row: None)
    return time.perf_counter() - started


def stacked(configs) -> float:
    experiments = [prepare(c) for c in configs]
    started = time.perf_counter()
    fit_stacked(experiments)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8,16,32,64")
    parser.add_argument("--hidden", default="10,5")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    hidden = [int(n) for n in args.hidden.split(",")]
    print(f"network 2-{'-'.join(map(str, hidden))}-1, {args.epochs} epochs, batch 64, "
          f"600 training rows; median of {args.rounds} rounds")
    print(f"{'K':>4} {'alone ms/trial':>15} {'stacked ms/trial':>17} {'speed-up':>9} {'spread':>14}")
    with threadpool_limits(limits=1):
        for size in [int(k) for k in args.sizes.split(",")]:
            configs = trial_configs(size, hidden, args.epochs)
            alone, together, ratios = [], [], []
            for round_ in range(args.rounds):
                a, s = (one_by_one(configs), stacked(configs)) if round_ % 2 else \
                    reversed((stacked(configs), one_by_one(configs)))
                alone.append(a / size)
                together.append(s / size)
                ratios.append(a / s)
            print(f"{size:>4} {1000 * statistics.median(alone):>15.2f} "
                  f"{1000 * statistics.median(together):>17.2f} "
                  f"{statistics.median(ratios):>8.2f}x {min(ratios):>6.2f}-{max(ratios):.2f}x")


if __name__ == "__main__":
    main()
