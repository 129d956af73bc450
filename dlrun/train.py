"""Training: build everything from the config, run the mini-batch loop, write the run directory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data, runs
from .config import ExperimentConfig
from .diagnose import bias_variance
from .engine.init import INITIALIZERS
from .engine.network import Network
from .engine.optim import OPTIMIZERS
from .engine.registry import build
from .engine.schedules import SCHEDULES
from .errors import ConfigError, RunDirError

OUTPUT_FOR_TASK = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}


class Reporter:
    """What the loop tells the outside world; the CLI draws a progress bar from it."""

    def start(self, epochs: int) -> None: ...
    def epoch(self, row: dict) -> None: ...
    def finish(self) -> None: ...


@dataclass
class Experiment:
    """Everything a run needs, built and checked before any file is written."""

    config: ExperimentConfig
    dataset: data.Dataset
    network: Network
    optimizer: object
    schedule: object
    shuffle_rng: np.random.Generator


def output_for(config: ExperimentConfig, dataset: data.Dataset) -> tuple[str, int]:
    """The output activation and the number of output units."""
    output = config.model.output
    if output == "auto":
        output = OUTPUT_FOR_TASK[dataset.task]
    n_classes = len(dataset.classes)
    if output == "sigmoid" and dataset.task != "binary":
        raise ConfigError(f"model.output: sigmoid needs two classes; the data is {dataset.task} "
                          "(use softmax or linear)")
    if output == "softmax":
        if dataset.task == "regression":
            raise ConfigError("model.output: softmax needs class labels; the data is regression")
        return output, n_classes
    if output == "linear" and dataset.task != "regression":
        raise ConfigError(f"model.output: linear needs real-valued targets; the data is "
                          f"{dataset.task} (use sigmoid or softmax)")
    return output, dataset.n_outputs


def prepare(config: ExperimentConfig) -> Experiment:
    """Data, network, optimizer and schedule from the config; seeded, so the same every time."""
    data_seed, init_seed, shuffle_seed, dropout_seed = np.random.SeedSequence(config.seed).spawn(4)
    dtype = np.dtype(config.dtype)
    dataset = data.load(config.data, np.random.default_rng(data_seed), dtype)
    output, n_outputs = output_for(config, dataset)
    model = config.model
    network = Network.build(
        [dataset.n_features, *model.hidden_layers, n_outputs], model.activation,
        build(INITIALIZERS, "init", model.init), output, np.random.default_rng(init_seed),
        np.random.default_rng(dropout_seed), dtype=dtype, batch_norm=model.batch_norm,
        keep_probs=model.keep_probs(), l2=config.regularization.l2, l1=config.regularization.l1)
    if model.init_from is not None:
        try:
            state, _ = runs.load_params(model.init_from)
            network.load_state(state, source=str(model.init_from))
        except (RunDirError, ValueError) as error:
            raise ConfigError(f"model.init_from: {error}") from None
    return Experiment(config, dataset, network,
                      build(OPTIMIZERS, "optimizer", config.train.optimizer),
                      build(SCHEDULES, "decay schedule", config.train.decay),
                      np.random.default_rng(shuffle_seed))


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Loss (without the penalty) and error: the misclassified fraction, or RMSE."""
    if len(X) == 0:
        return {"loss": float("nan"), "error": float("nan")}
    Z = network.logits(X)
    loss = network.loss.value(Z, y)
    if task == "regression":
        predicted = network.loss.predict(Z)
        error = float(np.sqrt(np.mean((predicted - y.reshape(predicted.shape)) ** 2)))
    elif network.output == "sigmoid":
        error = float(np.mean((Z[:, 0] > 0) != (y == 1)))
    else:
        error = float(np.mean(Z.argmax(axis=1) != y))
    return {"loss": loss, "error": error}


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
    best_state: dict = field(default_factory=dict)
    stop_reason: str = "all epochs run"
    divergence: dict | None = None


def _snapshot(network: Network) -> dict[str, np.ndarray]:
    return {name: array.copy() for name, array in network.state().items()}


def fit(experiment: Experiment, on_epoch) -> Outcome:
    """The mini-batch loop. Ctrl-C and divergence end it cleanly: the outcome says how."""
    network, dataset, cfg = experiment.network, experiment.dataset, experiment.config.train
    X, y = dataset.splits["train"]
    X_dev, y_dev = dataset.splits["dev"]
    m = len(X)
    batch_size = m if cfg.batch_size == "full" else min(cfg.batch_size, m)
    stopping = cfg.early_stopping
    outcome = Outcome(best_state=_snapshot(network))
    started = time.perf_counter()
    patience_left = stopping.patience if stopping else None
    # Overflow is how divergence starts: it is detected below and reported once, not as warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        try:
            for epoch in range(cfg.epochs):
                order = experiment.shuffle_rng.permutation(m) if cfg.shuffle else np.arange(m)
                norms = np.zeros(len(network.dense))
                costs = []
                epoch_lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
                for start in range(0, m, batch_size):
                    batch = order[start:start + batch_size]
                    lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
                    cost, penalty = network.train_step_gradients(X.take(batch, axis=0), y[batch])
                    step_norms = network.grad_norms()
                    if not (math.isfinite(cost + penalty) and all(map(math.isfinite, step_norms))):
                        raise Diverged(_divergence(outcome.steps, epoch, lr, cost + penalty, step_norms))
                    experiment.optimizer.step(network.params, network.grads, lr)
                    outcome.steps += 1
                    costs.append(cost + penalty)
                    norms += step_norms
                train, dev = evaluate(network, X, y, dataset.task), evaluate(network, X_dev, y_dev, dataset.task)
                outcome.epochs_run = epoch + 1
                row = {"epoch": epoch + 1, "learning_rate": epoch_lr, "train_cost": float(np.mean(costs)),
                       "train_loss": train["loss"], "train_error": train["error"],
                       "dev_loss": dev["loss"], "dev_error": dev["error"],
                       **{f"grad_norm_{l + 1}": n / len(costs) for l, n in enumerate(norms)},
                       "seconds": time.perf_counter() - started}
                on_epoch(row)
                if not np.isfinite(dev["loss"]):
                    raise Diverged({"step": outcome.steps, "epoch": epoch + 1, "learning_rate": lr,
                                    "where": "dev loss", "message": f"dev loss became {dev['loss']} "
                                    f"in epoch {epoch + 1} (learning rate {lr:g})"})
                if dev["loss"] < outcome.best_dev_loss - (stopping.min_delta if stopping else 0.0):
                    outcome.best_epoch, outcome.best_dev_loss = epoch + 1, dev["loss"]
                    outcome.best_state = _snapshot(network)
                    patience_left = stopping.patience if stopping else None
                elif stopping:
                    patience_left -= 1
                    if patience_left == 0:
                        outcome.stop_reason = (f"early stopping: dev loss did not improve by "
                                               f"{stopping.min_delta:g} for {stopping.patience} epochs")
                        break
        except Diverged as error:
            outcome.status, outcome.divergence = "diverged", error.detail
            outcome.stop_reason = error.detail["message"]
        except KeyboardInterrupt:
            outcome.status, outcome.stop_reason = "interrupted", "interrupted by the user"
    # The dev set chooses: restore the best weights whenever the last ones are not trustworthy.
    if outcome.status == "diverged" or stopping:
        network.load_state(outcome.best_state)
    return outcome


def _divergence(step: int, epoch: int, lr: float, cost: float, norms: list[float]) -> dict:
    bad = [l + 1 for l, n in enumerate(norms) if not np.isfinite(n)]
    where = f"dW{bad[0]}" if bad else "the cost"
    return {"step": step + 1, "epoch": epoch + 1, "learning_rate": lr, "where": where,
            "message": f"non-finite {'gradient ' + where if bad else 'cost'} at step {step + 1} "
                       f"(epoch {epoch + 1}, learning rate {lr:g}): lower the learning rate or "
                       "the init scale"}


def metric_columns(network: Network) -> list[str]:
    return ["epoch", "learning_rate", "train_cost", "train_loss", "train_error", "dev_loss",
            "dev_error", *[f"grad_norm_{d.index}" for d in network.dense], "seconds"]


def run(config: ExperimentConfig, runs_dir: str | Path = "runs",
        reporter: Reporter | None = None) -> tuple[Path, dict]:
    """Train the experiment into a new run directory; returns (run directory, summary)."""
    reporter = reporter or Reporter()
    experiment = prepare(config)  # every input error surfaces here, before any file exists
    network, dataset = experiment.network, experiment.dataset
    run_dir = runs.create(runs_dir, config.name)
    started_at = time.time()
    summary = {"status": "running", "name": config.name, "seed": config.seed,
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
               "task": dataset.task, "n_features": dataset.n_features,
               "n_outputs": network.dense[-1].W.shape[0], "classes": dataset.classes,
               "examples": {name: len(X) for name, (X, _) in dataset.splits.items()},
               "versions": runs.environment(), "command": runs.command_line()}
    (run_dir / runs.CONFIG).write_text(config.to_yaml(), encoding="utf-8")
    runs.write_json(run_dir / runs.SUMMARY, summary)
    writer = runs.MetricsWriter(run_dir / runs.METRICS, metric_columns(network))
    try:
        reporter.start(config.train.epochs)

        def on_epoch(row):
            writer.write(row)
            reporter.epoch(row)

        outcome = fit(experiment, on_epoch)
        reporter.finish()
        final = {name: evaluate(network, X, y, dataset.task)
                 for name, (X, y) in dataset.splits.items() if len(X)}
        meta = {"classes": np.array(dataset.classes, dtype=str), "task": np.array(dataset.task)}
        if dataset.mean is not None:
            meta.update(mean=dataset.mean, std=dataset.std)
        runs.save_params(run_dir / runs.PARAMS, network.state(), meta)
        summary.update(
            status=outcome.status, epochs_run=outcome.epochs_run, steps=outcome.steps,
            best_epoch=outcome.best_epoch or None,
            best_dev_loss=outcome.best_dev_loss if outcome.best_epoch else None,
            stop_reason=outcome.stop_reason, divergence=outcome.divergence, final=final,
            duration_seconds=round(time.time() - started_at, 3))
        if "train" in final and "dev" in final and dataset.task != "regression":
            summary["bias_variance"] = bias_variance(final["train"]["error"], final["dev"]["error"])
        runs.write_json(run_dir / runs.SUMMARY, summary)
        return run_dir, summary
    except BaseException as error:
        summary.update(status="failed", error=f"{type(error).__name__}: {error}",
                       duration_seconds=round(time.time() - started_at, 3))
        runs.write_json(run_dir / runs.SUMMARY, summary)
        raise
    finally:
        writer.close()
