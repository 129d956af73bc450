"""The final model: once the dev set has chosen how long to train, train on train + dev.

A dev set is held out to choose: the epoch count (early stopping), the hyperparameters. Once it
has chosen, its examples are more use as training data: on small data the dev set is a quarter
of the labelled rows. `refit` trains again from the same initial weights (the same seed) on
train + dev, without early stopping, for the chosen number of epochs, and reports the test error
of that model — the figure to quote for it. Its dev figures are measured on examples it trained
on and are recorded as not held out.

How many epochs on the larger set (train.refit_scale):
    epochs  the same number of passes over the data (the default): E' = E. Early stopping stops
            before each example has been fitted too closely, which is a matter of how often it
            has been seen; a larger set gets proportionally more steps, as it would have had
            with the selection run, whose step count grows with the data too.
    steps   the same number of optimizer steps: E' = round(E · ⌈m/b⌉ / ⌈m'/b⌉), each example
            seen fewer times (m, m': train and train + dev examples, b: the batch size).
benchmarks/bench_refit.py measures both.

The refit lives in the run's `refit/` directory, an ordinary run directory (config.yaml with
train.epochs set to E', no early stopping; summary.json with "refit_of" and
"held_out": {"dev": false}); the selection run's summary.json keeps its own figures under
"final" and gains a "refit" entry with the refit model's test figures and its
"dev_not_held_out" ones.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import config as config_module
from ..config import ExperimentConfig
from ..errors import ConfigError, RunDirError
from ..rundir import layout, reader, runlock
from .experiment import Experiment, prepare

DIRECTORY = "refit"


def chosen_epochs(summary: dict) -> int:
    """The epochs whose weights the selection run kept: early stopping's best epoch, else all
    the epochs it ran."""
    stopped_early = (summary.get("stop_reason") or "").startswith("early stopping")
    best = summary.get("best_epoch")
    return int(best) if stopped_early and best else int(summary["epochs_run"])


def scaled_epochs(epochs: int, scale: str, batch_size, m_train: int, m_all: int) -> int:
    """Epochs on train + dev (m_all examples) matching `epochs` on train (m_train)."""
    if scale == "epochs":
        return epochs

    def steps_per_epoch(m: int) -> int:
        return 1 if batch_size == "full" else math.ceil(m / min(batch_size, m))

    return max(1, round(epochs * steps_per_epoch(m_train) / steps_per_epoch(m_all)))


def refit_config(config: ExperimentConfig, epochs: int) -> ExperimentConfig:
    """The selection run's config for the final model: `epochs` epochs, no early stopping."""
    data = config.model_dump(mode="json")
    data["train"].update(epochs=epochs, early_stopping=None, refit=False)
    return config_module.validate(data, "the refit config")


def merge_dev_into_train(experiment: Experiment) -> None:
    """Train on train + dev: the dev rows join the training split (normalized, like every split,
    with the training split's statistics). The dev split stays, for the record, not held out."""
    splits = experiment.dataset.splits
    (X_train, y_train), (X_dev, y_dev) = splits["train"], splits["dev"]
    gathered = [X if isinstance(X, np.ndarray) else X[np.arange(len(X))] for X in (X_train, X_dev)]
    splits["train"] = (np.concatenate(gathered), np.concatenate([y_train, y_dev]))


def refit(run_dir: str | Path, reporter=None) -> dict:
    """Train the final model of a completed run on train + dev into run_dir/refit; returns the
    run's summary with its "refit" entry."""
    from .session import begin, train_in

    run_dir = Path(run_dir)
    summary = reader.read_summary(run_dir)
    if summary.get("status") != "completed":
        raise RunDirError(f"{run_dir}: status {summary.get('status')!r}; a refit trains for the "
                          "epochs a completed run chose")
    if summary.get("refit_of") is not None:
        raise RunDirError(f"{run_dir}: is itself a refit (of {summary['refit_of']})")
    target = run_dir / DIRECTORY
    if target.exists():
        raise RunDirError(f"{target}: exists; the run is already refit (remove it to refit again)")
    try:
        config = config_module.load(run_dir / layout.CONFIG)
    except ConfigError as error:
        raise RunDirError(f"{error} (the run's saved config)") from None
    chosen = chosen_epochs(summary)
    examples = summary.get("examples", {})
    m_train, m_dev = int(examples.get("train", 0)), int(examples.get("dev", 0))
    epochs = scaled_epochs(chosen, config.train.refit_scale, config.train.batch_size, m_train,
                           m_train + m_dev)
    experiment = prepare(refit_config(config, epochs))  # the same seed: the same initial weights
    merge_dev_into_train(experiment)
    target.mkdir()
    record, lock = begin(target, experiment, refit_of=str(run_dir.resolve()),
                         held_out={"dev": False, "test": True})
    if reporter is not None and hasattr(reporter, "title"):
        reporter.title = f"{reporter.title} refit"
    _, record = train_in(target, experiment, record, lock, reporter)
    entry = {"directory": DIRECTORY, "status": record["status"], "scale": config.train.refit_scale,
             "selected_epochs": chosen, "epochs": epochs, "examples": m_train + m_dev,
             "train": record["final"].get("train"),
             "dev_not_held_out": record["final"].get("dev"), "test": record["final"].get("test")}
    parent = runlock.acquire(run_dir, wait=True)
    try:
        summary = reader.read_summary(run_dir)
        summary["refit"] = entry
        layout.write_json(run_dir / layout.SUMMARY, summary)
    finally:
        parent.release()
    return summary


def describe(summary: dict) -> str:
    """One line on the final model, for people: what it trained on and its test error."""
    from ..diagnosis.bias_variance import format_error

    entry, task = summary["refit"], summary.get("task", "")
    test = (entry.get("test") or {}).get("error")
    dev = (entry.get("dev_not_held_out") or {}).get("error")
    chosen = f"{entry['selected_epochs']} chosen on dev"
    if entry["epochs"] != entry["selected_epochs"]:
        chosen += f", scaled to the same {entry['scale']}"
    return (f"refit on train + dev ({entry['examples']} examples, {entry['epochs']} epochs: "
            f"{chosen}): test error {format_error(test, task)} (selection run "
            f"{format_error((summary.get('final', {}).get('test') or {}).get('error'), task)}); "
            f"dev error {format_error(dev, task)}, not held out")
