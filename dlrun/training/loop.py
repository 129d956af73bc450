"""The mini-batch training loop: epochs of optimizer steps, per-epoch metrics, early stopping,
divergence and Ctrl-C, all ending in an Outcome that says how the loop ended."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import data, metrics
from ..engine.layers import Activation
from ..engine.network import Network
from .batches import batch_rows
from .experiment import Experiment, evaluate


class Reporter:
    """What the loop tells the outside world; the CLI draws a progress bar from it."""

    def start(self, epochs: int) -> None: ...
    def epoch(self, row: dict) -> None: ...
    def finish(self) -> None: ...


class Diverged(Exception):
    def __init__(self, detail: dict):
        super().__init__(detail["message"])
        self.detail = detail


@dataclass
class Outcome:
    status: str = "completed"
    epochs_run: int = 0
    steps: int = 0
    best_epoch: int = 0
    best_dev_loss: float = float("inf")
    monitor: str = "loss"  # the dev metric that picks the best epoch
    best_dev_value: float | None = None  # its value then
    best_state: dict = field(default_factory=dict)
    stop_reason: str = "all epochs run"
    divergence: dict | None = None
    best_score: float = float("inf")  # the monitored value turned so that lower is better
    patience_left: int | None = None  # epochs early stopping still waits for an improvement
    seconds: float = 0.0  # spent in the loop, over every session of a resumed run
    # Step 1 before any update, {cost, examples}: where the first epoch's mean cost starts
    # from, so an epoch whose steps blew up can be told from one that merely started high.
    first_step: dict | None = None
    # The epoch whose weights the run keeps (0: the initial ones), and whether they were
    # restored from the best epoch rather than being the last epoch's.
    kept_epoch: int = 0
    restored: bool = False


def _snapshot(network: Network) -> dict[str, np.ndarray]:
    return {name: array.copy() for name, array in network.state().items()}


def fit(experiment: Experiment, on_epoch, on_step=None, resumed: Outcome | None = None,
        on_epoch_end=None) -> Outcome:
    """The mini-batch loop. Ctrl-C, divergence and early stopping end it cleanly: the outcome
    says how.

    on_epoch(row) gets every metrics.csv row and may return a reason to stop (a sweep pruning a
    hopeless trial); on_step(row), if given, gets every mini-batch's cost. `resumed`, the
    outcome restored from a checkpoint, goes on from its epoch; on_epoch_end(outcome) sees the
    state after each epoch has been judged, the point a checkpoint resumes from."""
    network, dataset, cfg = experiment.network, experiment.dataset, experiment.config.train
    stopping = cfg.early_stopping
    outcome = resumed or Outcome(best_state=_snapshot(network),
                                 monitor=stopping.metric if stopping else "loss",
                                 patience_left=stopping.patience if stopping else None)
    extra_columns = _extra_columns(dataset)
    started = time.perf_counter() - outcome.seconds
    # Overflow is how divergence starts: it is detected and reported once, not as warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        try:
            for epoch in range(outcome.epochs_run, cfg.epochs):
                row = _train_epoch(experiment, epoch, outcome, on_step)
                results = {split: evaluate(network, X, y, dataset.task)
                           for split, (X, y) in dataset.splits.items() if split != "test"}
                outcome.epochs_run = epoch + 1
                train, dev = results["train"], results["dev"]
                row.update(train_loss=train["loss"], train_error=train["error"],
                           dev_loss=dev["loss"], dev_error=dev["error"],
                           seconds=time.perf_counter() - started,
                           steps=outcome.steps)  # for the progress bar; not a metrics column
                outcome.seconds = row["seconds"]
                row.update({column: results[split][name]
                            for column, (split, name) in extra_columns.items()})
                stop_request = on_epoch(row)
                if judge_epoch(outcome, epoch, row, dev, stopping, stop_request,
                               lambda: _snapshot(network), on_epoch_end):
                    break
        except Diverged as error:
            outcome.status, outcome.divergence = "diverged", error.detail
            outcome.stop_reason = error.detail["message"]
        except KeyboardInterrupt:
            outcome.status, outcome.stop_reason = "interrupted", "interrupted by the user"
    # The dev set chooses: restore the best weights whenever the last ones are not trustworthy.
    outcome.restored = outcome.status == "diverged" or bool(stopping)
    if outcome.restored:
        network.load_state(outcome.best_state)
    outcome.kept_epoch = outcome.best_epoch if outcome.restored else outcome.epochs_run
    return outcome


def judge_epoch(outcome: Outcome, epoch: int, row: dict, dev: dict, stopping, stop_request,
                snapshot, on_epoch_end=None) -> bool:
    """After an epoch's row is written: raise Diverged for a non-finite dev loss, keep the best
    epoch (snapshot() gives its state), count down early stopping, show the judged state to
    on_epoch_end(outcome) (before a stop request: a paused trial goes on from there); True if
    training stops."""
    if not np.isfinite(dev["loss"]):
        raise Diverged({"step": outcome.steps, "epoch": epoch + 1,
                        "learning_rate": row["learning_rate"], "where": "dev loss",
                        "message": f"dev loss became {dev['loss']} in epoch "
                                   f"{epoch + 1} (learning rate {row['learning_rate']:g})"})
    score = metrics.improvement(outcome.monitor, dev[outcome.monitor])
    if score < outcome.best_score - (stopping.min_delta if stopping else 0.0):
        outcome.best_score = score
        outcome.best_epoch, outcome.best_dev_loss = epoch + 1, dev["loss"]
        outcome.best_dev_value = dev[outcome.monitor]
        outcome.best_state = snapshot()
        outcome.patience_left = stopping.patience if stopping else None
    elif stopping:
        outcome.patience_left -= 1
        if outcome.patience_left == 0:
            outcome.stop_reason = (f"early stopping: dev {outcome.monitor} did not "
                                   f"improve by {stopping.min_delta:g} for "
                                   f"{stopping.patience} epochs")
            return True
    if on_epoch_end is not None:
        on_epoch_end(outcome)
    if stop_request:
        outcome.status, outcome.stop_reason = "pruned", stop_request
        return True
    return False


def _train_epoch(experiment: Experiment, epoch: int, outcome: Outcome, on_step) -> dict:
    """One pass over the shuffled training split; the start of the epoch's metrics row."""
    network, cfg = experiment.network, experiment.config.train
    X, y = experiment.dataset.splits["train"]
    norms = np.zeros(len(network.dense))
    costs = []
    epoch_lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
    # take() gathers a batch faster than fancy indexing; memory-mapped rows gather themselves.
    gather = (lambda rows: X.take(rows, axis=0)) if isinstance(X, np.ndarray) else X.__getitem__
    for batch in batch_rows(cfg, len(X), experiment.shuffle_rng):
        lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
        inputs = gather(batch)
        if experiment.augment is not None:
            inputs = experiment.augment(inputs)
        cost, penalty = network.train_step_gradients(inputs, y[batch])
        if outcome.steps == 0:
            outcome.first_step = {"cost": cost + penalty, "examples": len(batch),
                                  "activation_rms": activation_rms(network)}
        step_norms = network.grad_norms()
        if not (math.isfinite(cost + penalty) and all(map(math.isfinite, step_norms))):
            raise Diverged(_divergence(outcome.steps, epoch, lr, cost + penalty, step_norms))
        experiment.optimizer.step(network.params, network.grads, lr)
        outcome.steps += 1
        costs.append(cost + penalty)
        norms += step_norms
        if on_step is not None:
            on_step({"step": outcome.steps, "epoch": epoch + 1, "learning_rate": lr,
                     "cost": cost + penalty})
    return {"epoch": epoch + 1, "learning_rate": epoch_lr, "train_cost": float(np.mean(costs)),
            **{f"grad_norm_{l + 1}": n / len(costs) for l, n in enumerate(norms)}}


def activation_rms(network: Network) -> list[float | None]:
    """√mean(A²) of each hidden layer on the batch just forwarded (None where it overflowed):
    before any update it shows activations growing or shrinking with depth."""
    with np.errstate(over="ignore", invalid="ignore"):
        rms = [math.sqrt(float(np.mean(np.square(layer.A, dtype=np.float64))))
               for layer in network.layers if isinstance(layer, Activation)]
    return [value if math.isfinite(value) else None for value in rms]


def _divergence(step: int, epoch: int, lr: float, cost: float, norms: list[float]) -> dict:
    bad = [l + 1 for l, n in enumerate(norms) if not np.isfinite(n)]
    where = f"dW{bad[0]}" if bad else "the cost"
    return {"step": step + 1, "epoch": epoch + 1, "learning_rate": lr, "where": where,
            "message": f"non-finite {'gradient ' + where if bad else 'cost'} at step {step + 1} "
                       f"(epoch {epoch + 1}, learning rate {lr:g}): lower the learning rate or "
                       "the init scale"}


def _extra_columns(dataset: data.Dataset) -> dict[str, tuple[str, str]]:
    """metrics.csv columns after `seconds`: {column: (split, metric)}."""
    splits = ["train", "dev"]
    columns = {}
    if data.TRAIN_DEV in dataset.splits:
        splits.insert(1, data.TRAIN_DEV)
        columns = {f"{data.TRAIN_DEV}_{name}": (data.TRAIN_DEV, name) for name in ("loss", "error")}
    columns.update({f"{split}_{name}": (split, name)
                    for split in splits for name in metrics.PER_EPOCH[dataset.task]})
    return columns


def metric_columns(network: Network, dataset: data.Dataset | None = None) -> list[str]:
    base = ["epoch", "learning_rate", "train_cost", "train_loss", "train_error", "dev_loss",
            "dev_error", *[f"grad_norm_{d.index}" for d in network.dense], "seconds"]
    return base + (list(_extra_columns(dataset)) if dataset is not None else [])
