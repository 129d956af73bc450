"""K-fold cross-validation for small data (data.folds: K).

A dev set of 36 examples measures an error to within several points; on small data every
labelled example counts twice over. With data.folds: K the train and dev splits are pooled and
dealt into K stratified folds (the test split is left alone); run k trains on the other K − 1
folds with early stopping on fold k (data.fold: k). The dev figures are reported as their mean ±
std over the K runs, and the epoch count for the final model is the mean of the epochs the K
runs chose (each run's best epoch when early stopping restored it). With train.refit: true the
final model is then trained on all K folds (train + dev) for that many epochs, from the same
initial weights, and its test error is reported.

The K runs are ordinary run directories, grouped in runs/<name>-cv-<stamp>-<id>/ beside
cv.json (every fold's dev figures, their mean and std, the chosen epochs, the final model's test
figures) and, with refit, final/ (a run directory whose dev figures are not held out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as config_module
from ..config import ExperimentConfig
from ..rundir import layout

SUMMARY, FINAL = "cv.json", "final"
SPEC = "cv.yaml"  # the experiment; not config.yaml, which would make this a run directory


@dataclass
class CrossValidation:
    directory: Path
    task: str
    folds: list[dict]  # {run, status, epochs, dev: {metric: value}}
    mean: dict[str, float]
    std: dict[str, float]
    epochs: int  # for the final model: the mean of the folds' chosen epochs
    final: dict | None  # {directory, test, dev_not_held_out} with refit


def _variant(config: ExperimentConfig, **changes) -> ExperimentConfig:
    data = config.model_dump(mode="json")
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return config_module.validate(data, "the cross-validation config")


def cross_validate(config: ExperimentConfig, runs_dir: str | Path = "runs",
                   reporter_for=lambda title: None, source=None) -> CrossValidation:
    """Train the config's K fold runs (and the final model, with train.refit) in one directory;
    `source`, the config file, goes into each run's provenance."""
    from ..training import session
    from ..training.experiment import prepare
    from ..training.refit import chosen_epochs, merge_dev_into_train

    k = config.data.folds
    prepare(_variant(config, data__fold=0, train__refit=False))  # bad input: before any file
    directory = layout.create(runs_dir, f"{config.name}-cv")
    layout.write_atomic(directory / SPEC, config.to_yaml().encode("utf-8"))
    folds, task = [], ""
    for fold in range(k):
        variant = _variant(config, data__fold=fold, train__refit=False)
        variant.name = f"{config.name}-fold{fold}"[:64]
        run_dir, summary = session.run(variant, directory, reporter_for(variant.name),
                                       source=source)
        task = summary["task"]
        folds.append({"run": run_dir.name, "status": summary["status"],
                      "epochs": chosen_epochs(summary) if summary["status"] == "completed"
                      else None, "dev": summary.get("final", {}).get("dev", {})})
    done = [f for f in folds if f["status"] == "completed"]
    metrics = sorted({name for f in done for name in f["dev"]})
    mean = {m: float(np.mean([f["dev"][m] for f in done])) for m in metrics}
    std = {m: float(np.std([f["dev"][m] for f in done], ddof=1)) if len(done) > 1 else 0.0
           for m in metrics}
    epochs = max(1, round(float(np.mean([f["epochs"] for f in done])))) if done else 0
    final = None
    if config.train.refit and done:
        final_config = _variant(config, data__folds=0, data__fold=0, train__refit=False,
                                train__epochs=epochs, train__early_stopping=None)
        experiment = prepare(final_config)  # folds 0: the same split, train + dev = every fold
        merge_dev_into_train(experiment)
        target = directory / FINAL
        target.mkdir()
        record, lock = session.begin(target, experiment, source,
                                     held_out={"dev": False, "test": True},
                                     cross_validated=str(directory.resolve()))
        _, record = session.train_in(target, experiment, record, lock,
                                     reporter_for(f"{config.name} final"))
        final = {"directory": FINAL, "status": record["status"], "epochs": epochs,
                 "examples": record["examples"]["train"], "test": record["final"].get("test"),
                 "dev_not_held_out": record["final"].get("dev")}
    result = CrossValidation(directory, task, folds, mean, std, epochs, final)
    layout.write_json(directory / SUMMARY, {"folds": folds, "mean": mean, "std": std,
                                            "epochs": epochs, "final": final, "task": task,
                                            "k": k})
    return result
