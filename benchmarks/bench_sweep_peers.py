"""dlrun sweep against Optuna + scikit-learn on the same searches, whole commands side by side.

    pip install -e ".[bench]"
    python benchmarks/bench_sweep_peers.py [--rounds 3] [--only search,same] [--json out.json]

Two searches, each run by every contender as one fresh process (imports, data, every trial and
its results on disk, all counted), one worker / one core each:

- *search*: configs/search.yaml, 24 random trials: three architectures, batch sizes 16-128,
  learning rate, β1, λ and keep_prob.
- *same*: 64 random trials of the quick-start network (2-10-5-1, batch 64, 60 epochs, early
  stopping after 15) over learning rate, β1, λ, keep_prob and the init scale.

Contenders: `dlrun sweep` (trials stacked where they share an architecture, the default),
`dlrun sweep --no-stack`, and an Optuna study (RandomSampler, same ranges) whose objective fits
scikit-learn's MLPClassifier (adam, same learning rate, β1, L2 α = λ, batch size, 60 epochs,
n_iter_no_change 15) on the same moons data and returns the dev error. MLPClassifier has no
dropout and no init scale: those are sampled and unused, so the peer does slightly less work.

Rounds are paired: every contender runs once per round, in an order that rotates; the table
gives the median trials per second, the spread over rounds, and the median of the per-round
ratios to the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SAME = """\
name: same-architecture
seed: 1
data:
  generator: {name: moons, n_samples: 1000, noise: 0.2}
  split: {train: 0.6, dev: 0.2, test: 0.2}
  normalize: true
model:
  hidden_layers: [10, 5]
  activation: relu
  init: {name: random, scale: {loguniform: [0.01, 1.0]}}
  keep_prob: {uniform: [0.7, 1.0]}
regularization:
  l2: {loguniform: [1e-4, 1.0]}
train:
  optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}
  learning_rate: {loguniform: [1e-4, 1e-1]}
  batch_size: 64
  epochs: 60
  early_stopping: {patience: 15}
"""

PEER = """\
import sys, warnings
import numpy as np
import optuna
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

mixed, trials = sys.argv[1] == "search", int(sys.argv[2])
warnings.filterwarnings("ignore", category=ConvergenceWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
X, y = make_moons(1000, noise=0.2, random_state=1)
order = np.random.default_rng(1).permutation(len(X))
train, dev = order[:600], order[600:800]
mean, std = X[train].mean(axis=0), X[train].std(axis=0)
X = (X - mean) / std


def objective(trial):
    hidden = ({"10,5": (10, 5), "20,10": (20, 10), "32": (32,)}[
        trial.suggest_categorical("hidden", ["10,5", "20,10", "32"])] if mixed else (10, 5))
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    beta1 = 1 - trial.suggest_float("one_minus_beta1", 0.01, 0.2, log=True)
    l2 = trial.suggest_float("l2", 1e-4, 1.0, log=True)
    trial.suggest_float("keep_prob", 0.7, 1.0)  # MLPClassifier has no dropout
    if not mixed:
        trial.suggest_float("init_scale", 0.01, 1.0, log=True)  # nor an init scale
    batch = trial.suggest_int("batch_size", 16, 128) if mixed else 64
    model = MLPClassifier(hidden, solver="adam", alpha=l2, batch_size=batch,
                          learning_rate_init=lr, beta_1=beta1, max_iter=60,
                          n_iter_no_change=15, random_state=trial.number)
    model.fit(X[train], y[train])
    return 1 - model.score(X[dev], y[dev])


study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
study.optimize(objective, n_trials=trials)
print(f"best dev error {study.best_value:.4f}")
"""


def searches(workdir: Path) -> dict[str, tuple[Path, int]]:
    same = workdir / "same.yaml"
    same.write_text(SAME)
    return {"search": (ROOT / "configs" / "search.yaml", 24), "same": (same, 64)}


def contenders(name: str, space: Path, trials: int, workdir: Path) -> dict[str, list[str]]:
    dlrun = [sys.executable, "-m", "dlrun.cli", "sweep", str(space), "--trials", str(trials),
             "--workers", "1", "-q", "--runs-dir", str(workdir / "runs")]
    peer = workdir / "peer.py"
    peer.write_text(PEER)
    return {"optuna + scikit-learn": [sys.executable, str(peer), name, str(trials)],
            "dlrun --no-stack": [*dlrun, "--no-stack"], "dlrun": dlrun}


def timed(command: list[str]) -> float:
    """Wall time of the command. A dlrun sweep draws its best trials' figures and its report
    after it returns, in a detached child: that is waited for untimed, so that it does not slow
    the next contender."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                 "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    if "dlrun.cli" in command:
        from dlrun import detach

        detach.wait_until_free(result.stdout.strip().splitlines()[-1])
    return elapsed


def measure(name: str, commands: dict[str, list[str]], trials: int, rounds: int) -> dict:
    names = list(commands)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(rounds + 1):  # the first round warms the caches and is dropped
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        times = {n: timed(commands[n]) for n in order}
        if round_:
            for n in names:
                seconds[n].append(times[n])
    peer = names[0]
    rows = {}
    for n in names:
        rates = [trials / s for s in seconds[n]]
        ratios = [seconds[peer][r] / seconds[n][r] for r in range(rounds)]
        rows[n] = {"seconds": seconds[n], "trials_per_second": statistics.median(rates),
                   "spread": [min(rates), max(rates)], "ratio": statistics.median(ratios),
                   "ratio_spread": [min(ratios), max(ratios)]}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="search,same")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        for name, (space, trials) in searches(workdir).items():
            if name not in args.only.split(","):
                continue
            rows = measure(name, contenders(name, space, trials, workdir), trials, args.rounds)
            results[name] = rows
            print(f"\n{name}: {trials} trials, 1 worker, median of {args.rounds} paired rounds")
            print(f"{'contender':<24} {'trials/s':>9} {'spread':>14} {'vs peer':>8} {'spread':>13}")
            for contender, row in rows.items():
                low, high = row["spread"]
                r_low, r_high = row["ratio_spread"]
                print(f"{contender:<24} {row['trials_per_second']:>9.2f} {low:>6.2f}-{high:<7.2f}"
                      f" {row['ratio']:>7.2f}x {r_low:>5.2f}-{r_high:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
