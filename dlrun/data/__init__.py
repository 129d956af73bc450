"""Data sets for training: generated or loaded, split, and normalized with training statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.registry import build
from .split import split_indices
from .synthetic import GENERATORS

SPLITS = ("train", "dev", "test")


@dataclass
class Dataset:
    """Splits of (X, y), rows = examples, plus what predicting on new data needs."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    task: str  # binary, multiclass or regression
    n_outputs: int
    classes: list[str] = field(default_factory=list)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.splits["train"][0].shape[1]

    def normalize(self, X: np.ndarray) -> np.ndarray:
        return X if self.mean is None else (X - self.mean) / self.std


def infer_task(y: np.ndarray) -> str:
    """binary for two integer labels, multiclass for more, regression for real values."""
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "binary" if len(np.unique(y)) <= 2 else "multiclass"


def load(config, rng: np.random.Generator, dtype) -> Dataset:
    """Build the data set that `config` (a DataConfig) describes."""
    generator = build(GENERATORS, "generator", config.generator)
    X, y = generator.generate(rng)
    task = infer_task(y)
    classes = [str(label) for label in np.unique(y)] if task != "regression" else []
    indices = split_indices(y, config.split.model_dump(), rng, stratify=task != "regression")
    splits = {name: (X[idx], y[idx]) for name, idx in indices.items()}
    dataset = Dataset(splits, task, 1 if task != "multiclass" else len(classes), classes)
    if config.normalize:
        X_train = splits["train"][0]
        std = X_train.std(axis=0)
        dataset.mean, dataset.std = X_train.mean(axis=0), np.where(std > 0, std, 1.0)
    dataset.splits = {name: (dataset.normalize(X).astype(dtype), y)
                      for name, (X, y) in splits.items()}
    return dataset
