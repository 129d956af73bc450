"""Predicting with a finished run: the network rebuilt from config.yaml and params.npz, new data
normalized with the training statistics saved beside the parameters."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .data import labels
from .data.files import SUFFIXES, Table, check_finite, numeric_matrix
from .data.rows import MappedRows, normalized
from .errors import ConfigError, DataError, RunDirError
from .rundir import layout, reader


@dataclass
class Model:
    """A trained network and what it needs to read new data."""

    config: object  # ExperimentConfig
    network: object  # Network
    task: str
    classes: list[str]
    features: list[str]
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def n_features(self) -> int:
        return self.network.dense[0].W.shape[1]


def load_model(run_dir: str | Path) -> Model:
    """The run's network with its trained parameters; RunDirError if the directory cannot serve."""
    from . import config as config_module
    from .training.experiment import OUTPUT_FOR_TASK, build_network

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    if not (run_dir / layout.CONFIG).is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no {layout.CONFIG})")
    try:
        config = config_module.load(run_dir / layout.CONFIG)
    except ConfigError as error:
        raise RunDirError(f"{error} (the run's saved config)") from None
    params = run_dir / layout.PARAMS
    if not params.is_file():
        raise RunDirError(f"{run_dir}: no {layout.PARAMS}; the run ended before saving parameters")
    state, meta = layout.load_params(params)
    task = str(meta["task"]) if "task" in meta else None
    layers = sorted(int(name[1:]) for name in state if name[:1] == "W" and name[1:].isdigit())
    if task not in labels.TASKS or not layers:
        raise RunDirError(f"{params}: not saved by dlrun train (needs W1.. and meta_task)")
    output = config.model.output if config.model.output != "auto" else OUTPUT_FOR_TASK[task]
    n_features, n_outputs = state["W1"].shape[1], state[f"W{layers[-1]}"].shape[0]
    rng = np.random.default_rng(0)  # initial values are overwritten by the saved ones
    network = build_network(config, n_features, output, n_outputs, rng, rng)
    try:
        network.load_state(state, source=str(params))
    except ValueError as error:
        raise RunDirError(f"{error}; was {layout.CONFIG} edited after training?") from None
    features = [str(f) for f in meta["features"]] if "features" in meta else []
    return Model(config, network, task, [str(c) for c in meta.get("classes", [])], features,
                 meta.get("mean"), meta.get("std"))


@dataclass
class Inputs:
    X: object  # (m, n) ndarray or MappedRows, normalized as in training
    y: np.ndarray | None  # the true targets, when the file holds them


def read_inputs(path: str | Path, model: Model) -> Inputs:
    """Rows to predict on from a .csv (columns named as in training), .npy or .npz file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    suffix = path.suffix.lower()
    dtype = model.network.dtype
    if suffix == ".csv":
        X, y = _read_csv(path, model)
    elif suffix in (".npy", ".npz"):
        X, y = _read_array(path, model)
        if isinstance(X, np.memmap):
            return Inputs(MappedRows(X, np.arange(len(X)), model.mean, model.std, dtype), y)
    else:
        raise DataError(f"{path}: unsupported data file type {suffix or '(none)'!r}; allowed: "
                        f"{', '.join(SUFFIXES)}")
    X, beyond = normalized(X, model.mean, model.std, dtype)  # as in training
    if len(beyond):
        row, column = beyond[0]
        name = model.features[column] if column < len(model.features) else f"x{column + 1}"
        raise DataError(f"{path}: feature {name!r} in row {row + 1} is beyond the range of the "
                        f"model's {dtype} (±{np.finfo(dtype).max:.3g}) once normalized")
    return Inputs(X, y)


def _read_csv(path: Path, model: Model) -> tuple[np.ndarray, np.ndarray | None]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a readable CSV file ({first})") from None
    frame.columns = [str(c) for c in frame.columns]
    target = model.config.data.target
    features = model.features or [c for c in frame.columns if c != target]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r}; the model was trained on "
                        f"{', '.join(features)}")
    X = numeric_matrix(frame, features, path)
    check_finite(Table(X, np.zeros(0), features, str(path), first_line=2))
    y = None
    if target and target in frame.columns and frame[target].notna().all():
        y = frame[target].to_numpy()
    return X, y


def _read_array(path: Path, model: Model) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable {path.suffix} file "
                        f"({layout.npz_problem(error)})") from None
    y = None
    if isinstance(loaded, np.ndarray):
        X = loaded
    else:
        with loaded:
            if "X" not in loaded.files:
                raise DataError(f"{path}: no array 'X' (it holds {', '.join(loaded.files)})")
            try:  # an archive's arrays are read only now
                X = loaded["X"]
                y = loaded["y"] if "y" in loaded.files else None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise DataError(f"{path}: not a readable {path.suffix} file "
                                f"({layout.npz_problem(error)})") from None
    if X.ndim > 2 and X.flags.c_contiguous:
        X = X.reshape(len(X), -1)
    if X.ndim != 2 or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{path}: expected numbers of shape (m, {model.n_features}), got "
                        f"{X.dtype} {X.shape}")
    if X.shape[1] != model.n_features:
        raise DataError(f"{path}: rows have {X.shape[1]} features; the model takes "
                        f"{model.n_features}")
    check_finite(Table(X, np.zeros(0), [f"x{j + 1}" for j in range(X.shape[1])], str(path)))
    return X, y


def predictions(model: Model, Z: np.ndarray):
    """A pandas DataFrame from the network's logits Z, one row per example: the predicted
    label and each class's probability, or the predicted values."""
    import pandas as pd

    output = model.network.loss.predict(Z)
    if model.task == "regression":
        values = np.asarray(output).reshape(len(output), -1)
        names = ["prediction"] if values.shape[1] == 1 else \
            [f"prediction_{j + 1}" for j in range(values.shape[1])]
        return pd.DataFrame(values, columns=names)
    probabilities = np.column_stack([1 - output, output]) if np.ndim(output) == 1 else output
    frame = pd.DataFrame({"prediction": np.array(model.classes, dtype=object)[
        probabilities.argmax(axis=1)]})
    for index, name in enumerate(model.classes):
        frame[f"probability_{name}"] = probabilities[:, index]
    return frame


def score(model: Model, frame, Z: np.ndarray, y: np.ndarray, source) -> dict:
    """The loss (as training measured it, without the penalty) and the task's metrics of the
    predictions `frame`, made from logits Z, against the true targets y read from source."""
    if model.task == "regression":
        target = np.asarray(y, dtype=np.float64)
        return {"loss": _loss(model, Z, target), **metrics.regression(target, frame.to_numpy())}
    known = {name: index for index, name in enumerate(model.classes)}
    names = labels.label_names(np.asarray(y).ravel())
    unknown = next((name for name in names if name not in known), None)
    if unknown is not None:
        raise DataError(f"{source}: label {unknown!r} is not a class the model knows "
                        f"({', '.join(model.classes)})")
    truth = np.array([known[name] for name in names], dtype=np.int64)
    predicted = np.array([known[name] for name in frame["prediction"]], dtype=np.int64)
    return {"loss": _loss(model, Z, truth),
            **metrics.classification(truth, predicted, model.task, len(model.classes))}


def _loss(model: Model, Z: np.ndarray, target: np.ndarray) -> float:
    with np.errstate(over="ignore"):  # a huge logit gives an infinite loss, reported as such
        return model.network.loss.value(Z, target)


@dataclass
class Result:
    frame: object  # pandas.DataFrame of predictions
    scores: dict | None  # metrics against the file's targets, when it holds them
    summary: dict | None = None  # the run's summary.json, naming the epoch of its weights


def _summary(run_dir: str | Path) -> dict | None:
    try:
        return reader.read_summary(run_dir)
    except RunDirError:  # predicting needs only config.yaml and params.npz
        return None


def predict(run_dir: str | Path, data_path: str | Path) -> Result:
    """Predictions of the run's network for the rows of data_path."""
    model = load_model(run_dir)
    inputs = read_inputs(data_path, model)
    Z = model.network.logits(inputs.X)  # one pass over the rows, for predictions and loss
    frame = predictions(model, Z)
    scores = score(model, frame, Z, inputs.y, data_path) if inputs.y is not None else None
    return Result(frame, scores, _summary(run_dir))


def output_file(path: str | Path) -> tuple[Path, bool]:
    """Where `-o path` writes, and whether atomically. A regular file (new, or reached through a
    symlink, which stays) is replaced atomically; a device or pipe such as /dev/null is written
    into, never replaced. DataError for a directory, a missing parent or a binary suffix."""
    import os
    import stat

    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz"):
        raise DataError(f"{path}: predictions are written as CSV text; name the file .csv")
    real = Path(os.path.realpath(path))
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        if not real.parent.is_dir():
            raise DataError(f"{path}: no such directory {real.parent}") from None
        return real, True
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory; give a file name for the predictions")
    return real, stat.S_ISREG(mode)


def write_output(path: Path, atomic: bool, text: str) -> None:
    try:
        if atomic:
            layout.write_atomic(path, text.encode())
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    except OSError as error:
        raise DataError(f"{path}: cannot write the predictions ({error.strerror})") from None


def to_csv(frame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue()
