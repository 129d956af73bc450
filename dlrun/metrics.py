"""Evaluation metrics: error and accuracy always; precision, recall and F1 for binary tasks;
macro-F1 (the single-number metric) for multi-class; RMSE for regression.

Labels are class indices; in a binary task class 1 (the second label in sorted order) is the
positive class. A ratio whose denominator is 0 (no predicted positives, say) counts as 0.
"""

from __future__ import annotations

import numpy as np

MONITORED = ("loss", "error", "accuracy", "precision", "recall", "f1", "macro_f1", "rmse")
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "macro_f1"})
FOR_TASK = {
    "binary": ("error", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("error", "accuracy", "macro_f1"),
    "regression": ("error", "rmse"),
}
# Recorded every epoch beside loss and error (accuracy is 1 - error; a regression's error is RMSE).
PER_EPOCH = {"binary": ("precision", "recall", "f1"), "multiclass": ("macro_f1",),
             "regression": ()}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes) \
        .reshape(n_classes, n_classes)


def f1_scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 (K,) from a confusion matrix."""
    true_positive = np.diag(counts).astype(float)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive),
                          where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, f1


def binary(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """error, accuracy, precision, recall and f1 of class 1, from four counts.

    Written with counts rather than a confusion matrix: it runs every epoch, on every split."""
    actual, predicted = np.asarray(y_true) == 1, np.asarray(y_pred) == 1
    return binary_from_counts(len(actual), np.count_nonzero(actual ^ predicted),
                              int(np.count_nonzero(actual & predicted)),
                              np.count_nonzero(predicted), np.count_nonzero(actual))


def binary_from_counts(examples: int, wrong: int, true_positive: int, predicted: int,
                       actual: int) -> dict:
    """binary's metrics from its counts (of examples, wrong predictions, true positives,
    predicted and actual positives): what a stack of trials counts for all of them at once."""
    accuracy = _ratio(examples - wrong, examples)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"error": 1.0 - accuracy, "accuracy": accuracy, "precision": precision,
            "recall": recall, "f1": f1}


def classification(y_true: np.ndarray, y_pred: np.ndarray, task: str, n_classes: int) -> dict:
    """error, accuracy and (binary) precision, recall, f1 or (multi-class) macro_f1."""
    if task == "binary":
        return binary(y_true, y_pred)
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    accuracy = _ratio(np.sum(y_true == y_pred), len(y_true))
    counts = confusion(y_true, y_pred, max(n_classes, 2))
    _, _, f1 = f1_scores(counts)
    seen = (counts.sum(axis=0) + counts.sum(axis=1)) > 0  # classes absent everywhere don't vote
    return {"error": 1.0 - accuracy, "accuracy": accuracy, "macro_f1": float(f1[seen].mean())}


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """RMSE over every example and output; `error` is the same number, as in metrics.csv."""
    diff = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64).reshape(
        np.shape(y_pred))
    rmse = float(np.sqrt(np.mean(diff * diff)))
    return {"error": rmse, "rmse": rmse}


def score(task: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 0) -> dict:
    if task == "regression":
        return regression(y_true, y_pred)
    return classification(y_true, y_pred, task, n_classes)


def check_monitored(metric: str, task: str) -> str | None:
    """Why `metric` cannot be watched on a `task`, or None if it can."""
    if metric == "loss" or metric in FOR_TASK[task]:
        return None
    return (f"{metric} is not measured on a {task} task; choose one of "
            f"{', '.join(('loss', *FOR_TASK[task]))}")


def improvement(metric: str, value: float) -> float:
    """The value turned so that smaller is always better."""
    return -value if metric in HIGHER_IS_BETTER else value
