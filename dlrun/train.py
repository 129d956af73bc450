"""Training: build everything from the config, run the mini-batch loop, write the run directory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, data, diagnose, metrics, runlock, runs
from .config import ExperimentConfig
from .data.augment import build_augmenter
from .engine.init import INITIALIZERS
from .engine.network import Network
from .engine.optim import OPTIMIZERS
from .engine.registry import build
from .engine.schedules import SCHEDULES
from .error_analysis import check_human_error
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
    augment: object = None  # changes training mini-batches (data.augment), or None
    dropout_rng: np.random.Generator | None = None  # the dropout layers draw their masks from it


def output_for(config: ExperimentConfig, dataset: data.Dataset) -> tuple[str, int]:
    """The output activation and the number of output units."""
    output = config.model.output
    if output == "auto":
        output = OUTPUT_FOR_TASK[dataset.task]
    n_classes = len(dataset.classes)
    if output == "sigmoid" and dataset.task != "binary":
        raise ConfigError(f"model.output: sigmoid needs two classes; the data is {dataset.task} "
                          "(use softmax or linear)", key="model.output")
    if output == "softmax":
        if dataset.task == "regression":
            raise ConfigError("model.output: softmax needs class labels; the data is regression",
                              key="model.output")
        return output, n_classes
    if output == "linear" and dataset.task != "regression":
        raise ConfigError(f"model.output: linear needs real-valued targets; the data is "
                          f"{dataset.task} (use sigmoid or softmax)", key="model.output")
    return output, dataset.n_outputs


def load_data(config: ExperimentConfig) -> data.Dataset:
    """The run's data set; the seed's first stream makes the same split every time."""
    data_seed = np.random.SeedSequence(config.seed).spawn(1)[0]
    return data.load(config.data, np.random.default_rng(data_seed), np.dtype(config.dtype))


def build_network(config: ExperimentConfig, n_features: int, output: str, n_outputs: int,
                  init_rng: np.random.Generator, dropout_rng: np.random.Generator) -> Network:
    """The network the config's model and regularization sections describe."""
    model = config.model
    return Network.build(
        [n_features, *model.hidden_layers, n_outputs], model.activation,
        build(INITIALIZERS, "init", model.init), output, init_rng, dropout_rng,
        dtype=np.dtype(config.dtype), batch_norm=model.batch_norm, keep_probs=model.keep_probs(),
        l2=config.regularization.l2, l1=config.regularization.l1)


def prepare(config: ExperimentConfig) -> Experiment:
    """Data, network, optimizer and schedule from the config; seeded, so the same every time."""
    _, init_seed, shuffle_seed, dropout_seed, augment_seed = \
        np.random.SeedSequence(config.seed).spawn(5)
    dataset = load_data(config)
    output, n_outputs = output_for(config, dataset)
    model = config.model
    dropout_rng = np.random.default_rng(dropout_seed)
    network = build_network(config, dataset.n_features, output, n_outputs,
                            np.random.default_rng(init_seed), dropout_rng)
    stopping = config.train.early_stopping
    problem = stopping and metrics.check_monitored(stopping.metric, dataset.task)
    if problem:
        raise ConfigError(f"train.early_stopping.metric: {problem}",
                          key="train.early_stopping.metric")
    problem = check_human_error(config.diagnose.human_error, dataset.task)
    if problem:  # refused before training, not after it when the diagnosis is drawn
        raise ConfigError(f"diagnose.human_error: {problem}", key="diagnose.human_error")
    if model.init_from is not None:
        try:
            state, _ = runs.load_params(model.init_from)
            network.load_state(state, source=str(model.init_from))
        except (RunDirError, ValueError) as error:
            raise ConfigError(f"model.init_from: {error}", key="model.init_from") from None
    augment = build_augmenter(config.data.augment, dataset.n_features, dataset.mean, dataset.std,
                              np.random.default_rng(augment_seed))
    return Experiment(config, dataset, network,
                      build(OPTIMIZERS, "optimizer", config.train.optimizer),
                      build(SCHEDULES, "decay schedule", config.train.decay),
                      np.random.default_rng(shuffle_seed), augment, dropout_rng)


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Loss (without the penalty), error (the misclassified fraction, or RMSE) and the task's
    other metrics (dlrun.metrics)."""
    if len(X) == 0:
        return {"loss": float("nan"), "error": float("nan")}
    Z = network.logits(X)
    loss = network.loss.value(Z, y)
    if task == "regression":
        predicted = network.loss.predict(Z)
    elif network.output == "sigmoid":
        predicted = (Z[:, 0] > 0).astype(np.int64)
    else:
        predicted = Z.argmax(axis=1)
    return {"loss": loss, **metrics.score(task, y, predicted, max(Z.shape[1], 2))}


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
                           seconds=time.perf_counter() - started)
                outcome.seconds = row["seconds"]
                row.update({column: results[split][name]
                            for column, (split, name) in extra_columns.items()})
                stop_request = on_epoch(row)
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
                    outcome.best_state = _snapshot(network)
                    outcome.patience_left = stopping.patience if stopping else None
                elif stopping:
                    outcome.patience_left -= 1
                    if outcome.patience_left == 0:
                        outcome.stop_reason = (f"early stopping: dev {outcome.monitor} did not "
                                               f"improve by {stopping.min_delta:g} for "
                                               f"{stopping.patience} epochs")
                        break
                if stop_request:
                    outcome.status, outcome.stop_reason = "pruned", stop_request
                    break
                if on_epoch_end is not None:
                    on_epoch_end(outcome)
        except Diverged as error:
            outcome.status, outcome.divergence = "diverged", error.detail
            outcome.stop_reason = error.detail["message"]
        except KeyboardInterrupt:
            outcome.status, outcome.stop_reason = "interrupted", "interrupted by the user"
    # The dev set chooses: restore the best weights whenever the last ones are not trustworthy.
    if outcome.status == "diverged" or stopping:
        network.load_state(outcome.best_state)
    return outcome


def _train_epoch(experiment: Experiment, epoch: int, outcome: Outcome, on_step) -> dict:
    """One pass over the shuffled training split; the start of the epoch's metrics row."""
    network, cfg = experiment.network, experiment.config.train
    X, y = experiment.dataset.splits["train"]
    m = len(X)
    batch_size = m if cfg.batch_size == "full" else min(cfg.batch_size, m)
    order = experiment.shuffle_rng.permutation(m) if cfg.shuffle else np.arange(m)
    norms = np.zeros(len(network.dense))
    costs = []
    epoch_lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
    # take() gathers a batch faster than fancy indexing; memory-mapped rows gather themselves.
    gather = (lambda rows: X.take(rows, axis=0)) if isinstance(X, np.ndarray) else X.__getitem__
    for start in range(0, m, batch_size):
        batch = order[start:start + batch_size]
        lr = experiment.schedule.lr(cfg.learning_rate, epoch, outcome.steps)
        inputs = gather(batch)
        if experiment.augment is not None:
            inputs = experiment.augment(inputs)
        cost, penalty = network.train_step_gradients(inputs, y[batch])
        if outcome.steps == 0:
            outcome.first_step = {"cost": cost + penalty, "examples": len(batch)}
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


def run(config: ExperimentConfig, runs_dir: str | Path = "runs",
        reporter: Reporter | None = None, stop_check=None) -> tuple[Path, dict]:
    """Train the experiment into a new run directory; returns (run directory, summary).

    `stop_check(row)`, called after every epoch, may return a reason to stop: the run then ends
    with status "pruned" and that reason."""
    experiment = prepare(config)  # every input error surfaces here, before any file exists
    network, dataset = experiment.network, experiment.dataset
    run_dir = runs.create(runs_dir, config.name)
    lock = runlock.acquire(run_dir, wait=True)  # before "running" is written: a dead holder = stale
    try:
        started_at = time.time()
        summary = {"status": "running", "name": config.name, "seed": config.seed,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
                   "task": dataset.task, "n_features": dataset.n_features,
                   "n_outputs": network.dense[-1].W.shape[0], "classes": dataset.classes,
                   "examples": {name: len(X) for name, (X, _) in dataset.splits.items()},
                   "versions": runs.environment(), "command": runs.command_line()}
        runs.write_atomic(run_dir / runs.CONFIG, config.to_yaml().encode("utf-8"))
        runs.write_json(run_dir / runs.SUMMARY, summary)
    except BaseException:
        lock.release()
        raise
    return train_in(run_dir, experiment, summary, lock, reporter, stop_check)


def _extra(summary: dict, what: str, write, *args):
    """Write one of the extras drawn from a trained run (diagnosis, figures). Parameters and
    metrics are already saved, so a failure here is recorded under summary["problems"] and the
    run keeps its status: `dlrun diagnose` and `dlrun plot` can write them again later."""
    try:
        return write(*args)
    except Exception as error:  # noqa: BLE001 - whatever broke, the trained run stands
        summary.setdefault("problems", {})[what] = f"{type(error).__name__}: {error}"
        return None


def train_in(run_dir: Path, experiment: Experiment, summary: dict, lock,
             reporter: Reporter | None = None, stop_check=None,
             resumed: Outcome | None = None) -> tuple[Path, dict]:
    """Train in a run directory this process holds the lock of, then write its results;
    `resumed` (restored from a checkpoint) goes on from its epoch, appending to metrics.csv."""
    reporter = reporter or Reporter()
    network, dataset, config = experiment.network, experiment.dataset, experiment.config
    started_at = time.time() - (resumed.seconds if resumed else 0.0)
    append = resumed is not None
    writer = steps = None
    keeper = None
    try:
        writer = runs.MetricsWriter(run_dir / runs.METRICS, metric_columns(network, dataset),
                                    append=append)
        steps = (runs.MetricsWriter(run_dir / runs.STEPS, runs.STEP_COLUMNS, flush_every=100,
                                    append=append) if config.train.record_steps else None)
        keeper = checkpoint.Keeper(run_dir, experiment, config.train.checkpoint_every,
                                   [writer.flush, *([steps.flush] if steps else [])])
        reporter.start(config.train.epochs)

        def on_epoch(row):
            writer.write(row)
            reporter.epoch(row)
            return stop_check(row) if stop_check else None

        outcome = fit(experiment, on_epoch, steps.write if steps else None, resumed,
                      keeper.epoch_end)
        keeper.finish(outcome.status)
        if steps:
            steps.close()
        reporter.finish()
        final = {name: evaluate(network, X, y, dataset.task)
                 for name, (X, y) in dataset.splits.items() if len(X)}
        meta = {"classes": np.array(dataset.classes, dtype=str), "task": np.array(dataset.task),
                "features": np.array(dataset.features, dtype=str)}
        if dataset.mean is not None:
            meta.update(mean=dataset.mean, std=dataset.std)
        runs.save_params(run_dir / runs.PARAMS, network.state(), meta)
        summary.update(
            status=outcome.status, epochs_run=outcome.epochs_run, steps=outcome.steps,
            best_epoch=outcome.best_epoch or None,
            best_dev_loss=outcome.best_dev_loss if outcome.best_epoch else None,
            best_dev_metric={"name": outcome.monitor, "value": outcome.best_dev_value},
            stop_reason=outcome.stop_reason, divergence=outcome.divergence, final=final,
            first_step=outcome.first_step,
            duration_seconds=round(time.time() - started_at, 3))
        verdict = _extra(summary, "diagnosis", diagnose.after_training, run_dir, summary,
                         experiment)  # diagnosis.json, .md
        if verdict:
            summary["bias_variance"] = verdict
        from . import plots
        _extra(summary, "figures", plots.draw, run_dir, network, dataset, summary)
        runs.write_json(run_dir / runs.SUMMARY, summary)  # last: a final status means all is there
        return run_dir, summary
    except BaseException as error:
        if keeper is not None:
            _keep_latest(keeper)
        summary.update(status="failed", error=f"{type(error).__name__}: {error}",
                       duration_seconds=round(time.time() - started_at, 3))
        runs.write_json(run_dir / runs.SUMMARY, summary)
        raise
    finally:
        if writer:
            writer.close()
        if steps:
            steps.close()
        lock.release()


def _keep_latest(keeper) -> None:
    """Write the last finished epoch's checkpoint of a run that failed, if it can be written."""
    try:
        keeper.write()
    except Exception:  # the failure being reported matters more than the checkpoint
        pass
