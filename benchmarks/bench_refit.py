"""Test accuracy of dlrun's final model (train.refit) against scikit-learn's MLPClassifier.

On scikit-learn's bundled breast-cancer, digits and wine sets, written as CSV files, each seed s
splits the rows 60/20/20 (stratified, dlrun's split of `seed: s`). The contenders:

    dlrun selection  the config below, trained on train, early stopping on dev
    dlrun refit      the same, then train.refit: train + dev for the chosen epochs
                     (train.refit_scale: epochs, the default; and steps)
    dlrun cv + refit data.folds: 5 over the same train + dev rows, then the final model on
                     all of them for the folds' mean epoch count
    scikit-learn     StandardScaler + MLPClassifier((64, 32)), its defaults (Adam, lr 1e-3,
                     L2 1e-4) with max_iter=500, trained on the same train + dev rows

all scored on the same test rows. Needs scikit-learn (pip install -e ".[bench]").

    python benchmarks/bench_refit.py [--seeds 5] [--only refit,cv,scikit-learn] [--workdir DIR]
                                     [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

from dlrun import config as config_module
from dlrun.training import session
from dlrun.training.experiment import load_data

SETS = ("breast_cancer", "digits", "wine")

CONFIG = """\
name: {name}
seed: {seed}
data:
  path: {path}
  target: target
  split: {{train: 0.6, dev: 0.2, test: 0.2}}
model:
  hidden_layers: [64, 32]
  activation: relu
  init: he
train:
  optimizer: adam
  learning_rate: 0.001
  batch_size: 32
  epochs: 500
  early_stopping: {{patience: 20}}
  refit: true
  refit_scale: {scale}
"""


def write_sets(directory: Path) -> dict[str, Path]:
    import sklearn.datasets

    paths = {}
    for name in SETS:
        frame = getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame
        paths[name] = directory / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def dlrun_accuracy(spec: Path, runs: Path) -> tuple[float, float, dict]:
    """(selection test accuracy, refit test accuracy, rows of each split) of one config."""
    experiment = config_module.load(spec)
    _, summary = session.run(experiment, runs)
    rows = load_data(experiment).rows
    return 1 - summary["final"]["test"]["error"], 1 - summary["refit"]["test"]["error"], rows


def cv_accuracy(spec: Path, runs: Path, folds: int) -> float:
    """Test accuracy of the final model of a K-fold cross-validation over train + dev."""
    from dlrun.strategy.folds import cross_validate

    experiment = config_module.load(spec, [f"data.folds={folds}"])
    return 1 - cross_validate(experiment, runs).final["test"]["error"]


def sklearn_accuracy(path: Path, rows: dict, seed: int) -> float:
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(path)
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    fit_rows = np.concatenate([rows["train"], rows["dev"]])
    model = make_pipeline(StandardScaler(), MLPClassifier((64, 32), max_iter=500,
                                                          random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[fit_rows], y[fit_rows])
    return float(model.score(X[rows["test"]], y[rows["test"]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", default="refit,cv,scikit-learn",
                        help="contenders: refit (selection and both refit scales), cv, "
                             "scikit-learn")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    only = set(args.only.split(","))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-refit-"))
    workdir.mkdir(parents=True, exist_ok=True)
    paths = write_sets(workdir)
    results = {}
    for name, path in paths.items():
        scores = {key: [] for key in ("selection", "refit (epochs)", "refit (steps)")
                  if "refit" in only}
        if "cv" in only:
            scores[f"cv {args.folds} + refit"] = []
        if "scikit-learn" in only:
            scores["scikit-learn"] = []
        for seed in range(args.seeds):
            spec = workdir / f"{name}-{seed}-epochs.yaml"
            spec.write_text(CONFIG.format(name=name, seed=seed, path=path, scale="epochs"))
            rows = load_data(config_module.load(spec)).rows
            if "refit" in only:
                for scale in ("epochs", "steps"):
                    spec = workdir / f"{name}-{seed}-{scale}.yaml"
                    spec.write_text(CONFIG.format(name=name, seed=seed, path=path, scale=scale))
                    selection, refit, _ = dlrun_accuracy(spec, workdir / "runs")
                    scores[f"refit ({scale})"].append(refit)
                scores["selection"].append(selection)
            if "cv" in only:
                scores[f"cv {args.folds} + refit"].append(
                    cv_accuracy(workdir / f"{name}-{seed}-epochs.yaml", workdir / "runs",
                                args.folds))
            if "scikit-learn" in only:
                scores["scikit-learn"].append(sklearn_accuracy(path, rows, seed))
            print(name, seed, {key: round(values[-1], 4) for key, values in scores.items()},
                  flush=True)
        results[name] = scores
    print()
    columns = list(next(iter(results.values())))
    finals = [key for key in columns if key in ("refit (epochs)", f"cv {args.folds} + refit")]
    compared = finals if "scikit-learn" in columns else []
    print("| data set | rows | " + " | ".join(columns) +
          "".join(f" | {key} − scikit-learn" for key in compared) + " |")
    print("|---|---|" + "---|" * (len(columns) + len(compared)))
    for name, scores in results.items():
        rows = len(paths[name].read_text().splitlines()) - 1
        cells = [f"{100 * np.mean(v):.2f} ± {100 * np.std(v, ddof=1):.2f}" for v in scores.values()]
        cells += [f"{100 * (np.mean(scores[key]) - np.mean(scores['scikit-learn'])):+.2f}"
                  for key in compared]
        print(f"| {name} | {rows} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
