"""Reading examples from the user's files: CSV tables, memory-mapped .npy arrays, .npz archives.

Every reader returns a Table; every problem with a file is a DataError naming the file, the column
or array, and what would be accepted.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..rundir.layout import npz_problem
from .rows import first_non_finite_row, non_finite_rows

SUFFIXES = (".csv", ".npy", ".npz")


@dataclass
class Table:
    """Examples from one source: X (m, n) in memory or memory-mapped; raw labels y (m,) or
    (m, k)."""

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    source: str
    first_line: int | None = None  # the file line of row 0, for text files

    def where(self, row: int) -> str:
        return f"line {row + self.first_line}" if self.first_line else f"row {row}"


def feature_names(n: int) -> list[str]:
    return [f"x{j + 1}" for j in range(n)]


def read(path: Path, target: str | None, features: list[str] | None, key: str) -> Table:
    """The table at `path` (the config key `key` named it), checked for NaN and inf."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such data file ({key})")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; {key} needs a .csv, .npy or .npz file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_csv(path, target, features)
    elif suffix == ".npy":
        table = read_npy(path, target)
    elif suffix == ".npz":
        table = read_npz(path)
    else:
        raise DataError(f"{path}: unsupported data file type {suffix or '(none)'!r} ({key}); "
                        f"allowed: {', '.join(SUFFIXES)}")
    check_finite(table)
    if len(table.X) == 0:
        raise DataError(f"{path}: holds no examples ({key})")
    return table


def read_csv(path: Path, target: str | None, features: list[str] | None) -> Table:
    import pandas as pd  # lazy: half a second to import, and only CSV files need it

    if not target:
        raise DataError(f"{path}: name the label column with data.target")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header line and one row per "
                        "example") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a readable CSV file ({first})") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.empty:
        raise DataError(f"{path}: holds no examples, only the header line")
    if _is_row_index(frame) and features is None:
        frame = frame.iloc[:, 1:]  # a row index (pandas' to_csv writes one): never a feature
        columns = columns[1:]
    if target not in columns:
        raise DataError(f"{path}: no target column {target!r} (data.target); columns: "
                        f"{', '.join(columns)}")
    if features is None:
        features = [c for c in columns if c != target]
    else:
        missing = [c for c in features if c not in columns]
        if missing:
            raise DataError(f"{path}: no feature column {missing[0]!r} (data.features); "
                            f"columns: {', '.join(columns)}")
        if target in features:
            raise DataError(f"{path}: the target column {target!r} is also listed in "
                            "data.features; a model cannot be given its own answer")
    if not features:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    X = numeric_matrix(frame, features, path)
    labels = frame[target]
    missing_labels = np.flatnonzero(labels.isna().to_numpy())
    if len(missing_labels):
        raise DataError(f"{path}: target column {target!r} is empty or NaN in "
                        f"{len(missing_labels)} rows (first on line {missing_labels[0] + 2}); "
                        "fill or drop them")
    y = labels.to_numpy()
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        y = y.astype(str)  # text labels, whatever pandas stores them as
    return Table(X, y, list(features), str(path), first_line=2)


def _is_row_index(frame) -> bool:
    """Whether the first column is unnamed and holds distinct whole numbers: the index pandas'
    to_csv writes, of a frame that may have been shuffled or split (each part keeps its rows'
    numbers, so one file's need not be 0 to m-1)."""
    import pandas as pd  # lazy: only CSV files need it (loaded already when a frame exists)

    first = frame.iloc[:, 0]
    return (str(frame.columns[0]) == "Unnamed: 0" and frame.shape[1] > 1
            and pd.api.types.is_integer_dtype(first) and first.is_unique)


def numeric_matrix(frame, columns: list[str], path: Path) -> np.ndarray:
    """The columns of a pandas frame as float64 (m, n); DataError naming a non-numeric one."""
    import pandas as pd  # lazy: only CSV files need it (loaded already when a frame exists)

    matrix = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            matrix[:, j] = values.to_numpy(dtype=np.float64)
            continue
        try:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        except OverflowError:  # pandas cannot convert an integer too long for float64
            numbers = np.array([_float(value) for value in values])
        bad = np.flatnonzero(np.isnan(numbers) & values.notna().to_numpy())
        if len(bad):
            raise DataError(f"{path}: feature column {column!r} is not numeric (line "
                            f"{bad[0] + 2}: {values.iloc[bad[0]]!r}); encode it as numbers or "
                            "leave it out with data.features")
        matrix[:, j] = numbers
    return matrix


def _float(value) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float64, as pandas keeps a 400-digit number
        return np.inf if value > 0 else -np.inf
    except (TypeError, ValueError):
        return np.nan


def _load_array(path: Path, what: str, mmap: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy array ({npz_problem(error)})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: expected a .npy array, found an archive")
    return array


def _rows(X: np.ndarray, source: str) -> np.ndarray:
    """X as (m, n): trailing axes (image height, width, channels) become one row per example."""
    if X.ndim < 2:
        raise DataError(f"{source}: features must have one row per example, shape (m, n); "
                        f"got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise DataError(f"{source}: features must be real numbers, got dtype {X.dtype}")
    if X.ndim > 2:
        if not X.flags.c_contiguous:
            raise DataError(f"{source}: a {X.ndim}-D array must be C-ordered to be read row by "
                            "row; save it with np.ascontiguousarray")
        X = X.reshape(X.shape[0], -1)
    return X


def _labels(y: np.ndarray, m: int, source: str, x_source: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise DataError(f"{source}: labels must have shape (m,) or (m, k), got {y.shape}")
    if len(y) != m:
        raise DataError(f"{source}: {len(y)} labels for {m} examples in {x_source}; "
                        "X and y need one row each per example")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y.reshape(len(y), -1)).all(axis=1)
        if bad.any():
            raise DataError(f"{source}: {int(bad.sum())} labels are NaN or infinite (first at "
                            f"row {int(np.flatnonzero(bad)[0])}); fill or drop them")
    return y


def read_npy(path: Path, target: str | None) -> Table:
    """Features from `path`, memory-mapped (never read whole); labels from the .npy `target`."""
    if not target:
        raise DataError(f"{path}: name the .npy file holding the labels with data.target")
    X = _rows(_load_array(path, "data", mmap=True), str(path))
    y = _labels(_load_array(Path(target), "label (data.target)", mmap=False), len(X), target,
                str(path))
    return Table(X, y, feature_names(X.shape[1]), str(path))


def read_npz(path: Path) -> Table:
    """Arrays X and y from a .npz archive (an archive cannot be memory-mapped: big data belongs
    in .npy files)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ("X", "y") if name not in archive.files]
            if missing:
                raise DataError(f"{path}: no array {missing[0]!r}; a .npz needs arrays X and y "
                                f"(it holds {', '.join(archive.files) or 'none'})")
            X, y = archive["X"], archive["y"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz archive ({npz_problem(error)})") from None
    X = _rows(X, f"{path}: X")
    y = _labels(y, len(X), f"{path}: y", "X")
    return Table(X, y, feature_names(X.shape[1]), str(path))


def check_finite(table: Table) -> None:
    """DataError naming the first feature with NaN or inf values, how many rows and where."""
    counts = non_finite_rows(table.X)
    if counts.any():
        column = int(np.flatnonzero(counts)[0])
        row = first_non_finite_row(table.X, column)
        others = int((counts > 0).sum()) - 1
        more = f"; {others} more columns too" if others else ""
        raise DataError(f"{table.source}: feature {table.features[column]!r} is missing, NaN or "
                        f"infinite in {counts[column]} rows (first at {table.where(row)}){more}; "
                        "fill or drop them")
