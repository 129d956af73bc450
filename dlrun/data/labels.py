"""What the labels say about the task, and class labels turned into indices 0..K-1."""

from __future__ import annotations

import numpy as np

from ..errors import DataError

TASKS = ("binary", "multiclass", "regression")


def _numeric(y: np.ndarray) -> bool:
    return np.issubdtype(y.dtype, np.number) and not np.issubdtype(y.dtype, np.complexfloating)


def distinct(y: np.ndarray) -> np.ndarray:
    """The sorted distinct values of y, as np.unique gives them (all NaNs as one), without the
    import of numpy.ma that np.unique makes on its first call: 13 ms of a short command."""
    flat = np.sort(np.asarray(y).ravel())
    if not flat.size:
        return flat
    new = np.empty(flat.size, dtype=bool)
    new[0] = True
    np.not_equal(flat[1:], flat[:-1], out=new[1:])
    if flat.dtype.kind in "fc" and np.isnan(flat[-1]):  # NaNs sort last, each unequal to itself
        new[1:] &= ~(np.isnan(flat[1:]) & np.isnan(flat[:-1]))
    return flat[new]


def infer_task(y: np.ndarray) -> str:
    """regression for real values; binary for two labels (numbers or text), multiclass for more."""
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    if _numeric(y) and np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "binary" if len(distinct(y)) <= 2 else "multiclass"


def _like_a_quantity(y: np.ndarray) -> bool:
    """Many distinct numbers with few examples each: 10 digits or 1,000 image classes are
    classes, 600 prices in 3,000 rows are not (a classifier needs examples of every class)."""
    count = len(distinct(y))
    return count > 50 and len(y) / count < 20


def label_names(values: np.ndarray) -> list[str]:
    """Labels as text: 1.0 reads '1', so float-stored integer labels look like integers."""
    if _numeric(values) and np.issubdtype(values.dtype, np.floating):
        return [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values]
    return [str(v) for v in values]


def check_task(y: np.ndarray, task: str, source: str) -> str:
    """The task to use: `task` unless 'auto'; DataError if the labels cannot serve it."""
    resolved = infer_task(y) if task == "auto" else task
    if task == "auto" and resolved == "multiclass" and _numeric(y) and _like_a_quantity(y):
        raise DataError(f"{source}: the target holds {len(distinct(y))} different whole numbers "
                        f"in {len(y)} examples, which look like a quantity (a count, a price), not "
                        "classes; set data.task to regression, or to multiclass if they are "
                        "classes")
    if resolved == "regression":
        if not _numeric(y):
            raise DataError(f"{source}: regression needs numeric targets, got values such as "
                            f"{label_names(y.ravel()[:1])[0]!r} (set data.task to binary or "
                            "multiclass)")
        return resolved
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(f"{source}: class labels must be one column, got {y.shape[1]} columns "
                        "(set data.task: regression for several real-valued targets)")
    values = distinct(y)
    if len(values) < 2:
        raise DataError(f"{source}: only one class ({label_names(values)[0]!r}) in the "
                        "labels; a classifier needs at least two")
    if resolved == "binary" and len(values) > 2:
        raise DataError(f"{source}: data.task is binary but the labels hold {len(values)} "
                        "classes; use multiclass")
    return resolved


def encode(y: np.ndarray, values: np.ndarray, source: str) -> np.ndarray:
    """Class indices (m,) int64 of labels y: their positions in `values`, the sorted distinct
    training labels; DataError for a label training never saw."""
    y = y.ravel()
    if len(y) == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        index = np.clip(np.searchsorted(values, y), 0, len(values) - 1)
        known = np.asarray(values[index] == y, dtype=bool)
    except TypeError:  # numbers against strings: nothing matches
        index, known = np.zeros(len(y), dtype=np.int64), np.zeros(len(y), dtype=bool)
    if not known.all():
        first = label_names(y[~known][:1])[0]
        raise DataError(f"{source}: label {first!r} does not occur in the training data "
                        f"(its classes are {', '.join(label_names(values))})")
    return index.astype(np.int64)
