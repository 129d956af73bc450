"""Building an experiment from its config: the data, the network, the optimizer and the schedule,
seeded so the same config gives the same numbers; and scoring a network on a split."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from .. import data, metrics
from ..config import ExperimentConfig
from ..data.augment import build_augmenter
from ..diagnosis.bias_variance import check_human_error
from ..engine.init import INITIALIZERS
from ..engine.network import Network
from ..engine.optim import OPTIMIZERS
from ..engine.registry import build
from ..engine.schedules import SCHEDULES
from ..errors import ConfigError, RunDirError
from ..rundir import layout
from .batches import batch_size

OUTPUT_FOR_TASK = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}


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
    """The run's data set, drawn from the first stream of data.seed (by default the run's seed),
    so the same seed makes the same examples and split every time."""
    seed = config.seed if config.data.seed is None else config.data.seed
    data_seed = np.random.SeedSequence(seed).spawn(1)[0]
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
    """Data, network, optimizer and schedule from the config; seeded, so the same every time.
    The model's streams (init, shuffle, dropout, augment) come from the run's seed alone."""
    _, init_seed, shuffle_seed, dropout_seed, augment_seed = \
        np.random.SeedSequence(config.seed).spawn(5)
    dataset = load_data(config)
    output, n_outputs = output_for(config, dataset)
    model = config.model
    dropout_rng = np.random.default_rng(dropout_seed)
    check_memory(config, dataset.n_features, n_outputs, len(dataset.splits["train"][0]))
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
            state, _ = layout.load_params(model.init_from)
            network.load_state(state, source=str(model.init_from))
        except (RunDirError, ValueError) as error:
            raise ConfigError(f"model.init_from: {error}", key="model.init_from") from None
    augment = build_augmenter(config.data.augment, dataset.n_features, dataset.mean, dataset.std,
                              np.random.default_rng(augment_seed))
    schedule = build(SCHEDULES, "decay schedule", config.train.decay).bind(
        config.train.epochs, steps_per_epoch(config, len(dataset.splits["train"][0])))
    return Experiment(config, dataset, network,
                      build(OPTIMIZERS, "optimizer", config.train.optimizer), schedule,
                      np.random.default_rng(shuffle_seed), augment, dropout_rng)


# Copies of the parameters training holds: the parameters, their gradients, two optimizer
# moments, the checkpoint kept in memory and early stopping's best weights.
PARAMETER_COPIES = 6


def check_memory(config: ExperimentConfig, n_features: int, n_outputs: int, m: int) -> None:
    """Refuse a network that cannot fit in memory before any of it is allocated (numpy would
    fail with a MemoryError, or the system would kill the process, mid-way)."""
    sizes = [n_features, *config.model.hidden_layers, n_outputs]
    weights = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    batch = m if config.train.batch_size == "full" else min(config.train.batch_size, m)
    activations = 4 * max(batch, 1) * sum(sizes)  # forward values, caches and their gradients
    needed = np.dtype(config.dtype).itemsize * (PARAMETER_COPIES * weights + activations)
    available = _memory_available()
    if available is not None and needed > available:
        raise ConfigError(
            f"model.hidden_layers: {config.model.hidden_layers} needs about {_gib(needed)} of "
            f"memory in {config.dtype} ({weights:,} parameters), and {_gib(available)} is "
            "available; give fewer or smaller hidden layers", key="model.hidden_layers")


def _memory_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def steps_per_epoch(config: ExperimentConfig, m: int) -> int:
    """⌈m / batch size⌉: the optimizer steps of one epoch over m training examples."""
    size = batch_size(config.train, m)
    return -(-m // size) if size else 0


def evaluate(network: Network, X: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Loss (without the penalty), error (the misclassified fraction, or RMSE) and the task's
    other metrics (dlrun.metrics)."""
    if len(X) == 0:
        return {"loss": float("nan"), "error": float("nan")}
    return score_logits(network, network.logits(X), y, task)


def score_logits(network: Network, Z: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """What evaluate reports, from the network's logits Z of the rows labelled y."""
    loss = network.loss.value(Z, y)
    if task == "regression":
        predicted = network.loss.predict(Z)
    elif network.output == "sigmoid":
        predicted = (Z[:, 0] > 0).astype(np.int64)
    else:
        predicted = Z.argmax(axis=1)
    return {"loss": loss, **metrics.score(task, y, predicted, max(Z.shape[1], 2))}
