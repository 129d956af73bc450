"""Data sets for training: generated or loaded, split, and normalized with training statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.registry import build
from ..errors import DataError
from . import fingerprint, labels
from .files import Table, feature_names, read
from .labels import infer_task
from .rows import MappedRows, moments, normalized
from .split import carve, folds, split_indices, subsample
from .synthetic import GENERATORS

__all__ = ["Dataset", "SPLITS", "TRAIN_DEV", "infer_task", "load"]

SPLITS = ("train", "dev", "test")
TRAIN_DEV = "train_dev"  # carved out of the training data: its distribution, never trained on


@dataclass
class Dataset:
    """Splits of (X, y), rows = examples, plus what predicting on new data needs.

    X is an ndarray already normalized and cast, or, for memory-mapped files, a MappedRows that
    normalizes the rows it is asked for. Classification labels y are class indices into `classes`.
    """

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    task: str  # binary, multiclass or regression
    n_outputs: int
    classes: list[str] = field(default_factory=list)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    features: list[str] = field(default_factory=list)
    # Where each split's examples come from: row numbers (from 0) in the data file or the
    # generated set, so an example named in an error analysis can be found again.
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    # split: what its examples were (data.fingerprint), to tell runs scored on other data
    fingerprints: dict[str, dict] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.splits["train"][0].shape[1]

    def normalize(self, X: np.ndarray) -> np.ndarray:
        return X if self.mean is None else (X - self.mean) / self.std

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Normalized rows back in the units of the data."""
        return X if self.mean is None else X * self.std + self.mean


def _tables(config, rng: np.random.Generator) -> dict[str, Table]:
    """One table for a generator or a single file (key 'all'), or one per split file."""
    if config.generator is not None:
        generator = build(GENERATORS, "generator", config.generator)
        X, y = generator.generate(rng)
        return {"all": Table(X, y, feature_names(X.shape[1]), f"generator {generator.name!r}")}
    if config.path is not None:
        return {"all": read(config.path, config.target, config.features, "data.path")}
    tables = {}
    for name in SPLITS:
        path = getattr(config, name)
        if path is not None:
            tables[name] = read(path, config.target, config.features, f"data.{name}")
    train = tables["train"]
    for name, table in tables.items():
        if table.features != train.features:
            if sorted(table.features) != sorted(train.features):
                _raise_mismatch(train, table, name)
            order = [table.features.index(feature) for feature in train.features]
            table.X, table.features = table.X[:, order], list(train.features)  # same columns
    return tables


def _raise_mismatch(train: Table, other: Table, name: str) -> None:
    if len(train.features) != len(other.features):
        missing = [f for f in train.features if f not in other.features]
        extra = [f for f in other.features if f not in train.features]
        which = "; ".join(part for part in (
            f"only the training file has {', '.join(missing)}" if missing else "",
            f"only this one has {', '.join(extra)}" if extra else "") if part)
        detail = (f"{len(other.features)} features, the training file has "
                  f"{len(train.features)}" + (f" ({which})" if which else ""))
    else:
        detail = f"its features are {', '.join(other.features)}, the training file's are " \
                 f"{', '.join(train.features)}"
    raise DataError(f"{other.source}: {detail} (data.{name}); every split needs the same features")


def load(config, rng: np.random.Generator, dtype) -> Dataset:
    """Build the data set that `config` (a DataConfig) describes."""
    dtype = np.dtype(dtype)
    tables = _tables(config, rng)
    first = tables.get("all") or tables["train"]
    task = labels.check_task(first.y, config.task, first.source)
    values = labels.distinct(first.y) if task != "regression" else None
    classes = labels.label_names(values) if values is not None else []

    def targets(table: Table) -> np.ndarray:
        if task == "regression":
            with np.errstate(over="ignore"):
                y = table.y.astype(dtype)
            if not np.isfinite(y).all():
                raise DataError(f"{table.source}: target values beyond the range of {dtype} "
                                f"(±{np.finfo(dtype).max:.3g}); use dtype: float64")
            return y
        return labels.encode(table.y, values, table.source)

    stratify = task != "regression"
    pieces: dict[str, tuple[Table, np.ndarray, np.ndarray]] = {}  # split: (table, rows, y)
    if "all" in tables:
        y = targets(first)
        indices = split_indices(y, config.split.model_dump(), rng, stratify=stratify)
        pieces = {name: (first, idx, y[idx]) for name, idx in indices.items()}
    else:
        for name in SPLITS:
            table = tables.get(name)
            if table is None:
                empty = Table(first.X[:0], first.y[:0], first.features, first.source)
                pieces[name] = (empty, np.arange(0), targets(empty))
            else:
                pieces[name] = (table, np.arange(len(table.X)), targets(table))
    if config.folds:  # cross-validation: train + dev pooled, fold `config.fold` is the dev set
        if "all" not in tables:
            raise DataError("data.folds: cross-validation pools train and dev of one source (a "
                            "generator or data.path); with a file per split, leave it out")
        (table, train_rows, train_y), (_, dev_rows, dev_y) = pieces["train"], pieces["dev"]
        rows, y = np.concatenate([train_rows, dev_rows]), np.concatenate([train_y, dev_y])
        held = folds(y, config.folds, rng, stratify) == config.fold
        pieces.update(train=(table, rows[~held], y[~held]), dev=(table, rows[held], y[held]))
    if config.train_dev:
        table, rows, y = pieces["train"]
        kept, carved = carve(np.arange(len(rows)), y, config.train_dev, rng, stratify)
        pieces = {"train": (table, rows[kept], y[kept]), TRAIN_DEV: (table, rows[carved], y[carved]),
                  **{name: piece for name, piece in pieces.items() if name != "train"}}
    if config.subsample < 1:  # drawn last: dev and test stay the examples they are at share 1
        table, rows, y = pieces["train"]
        kept = subsample(y, config.subsample, rng, stratify)
        pieces["train"] = (table, rows[kept], y[kept])

    mean = std = None
    if config.normalize:
        table, rows, _ = pieces["train"]
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = moments(table.X, rows)
        spread = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
        if len(spread):
            raise DataError(f"{table.source}: feature {table.features[spread[0]]!r} is spread too "
                            "wide to normalize in float64 (its variance overflows); rescale it")
        std = np.where(std > 0, std, 1.0)  # a constant feature stays as it is rather than inf
    splits = {name: (_rows(table, rows, mean, std, dtype), y)
              for name, (table, rows, y) in pieces.items()}
    n_outputs = len(classes) if task == "multiclass" else 1
    if task == "regression" and first.y.ndim == 2:
        n_outputs = first.y.shape[1]
    prints = {name: fingerprint.of_rows(table.X, rows, table.y[rows])
              for name, (table, rows, _) in pieces.items()}
    return Dataset(splits, task, n_outputs, classes, mean, std, first.features,
                   {name: rows for name, (_, rows, _) in pieces.items()}, prints)


def _rows(table: Table, rows: np.ndarray, mean, std, dtype) -> np.ndarray:
    """The rows of one split: gathered, normalized and cast now, or on demand for mapped files.

    Normalized in float64 first, so values beyond float32's range can still be used."""
    if isinstance(table.X, np.memmap):
        return MappedRows(table.X, rows, mean, std, dtype)
    picked, beyond = normalized(table.X[rows], mean, std, dtype)
    if len(beyond):
        row, column = min(beyond, key=lambda at: rows[at[0]])  # the first in the file
        once = " once normalized" if mean is not None else ""
        raise DataError(f"{table.source}: feature {table.features[column]!r} at "
                        f"{table.where(int(rows[row]))} is beyond the range of {dtype} "
                        f"(±{np.finfo(dtype).max:.3g}){once}; use dtype: float64")
    return picked
