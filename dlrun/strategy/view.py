"""Learning curves for people: a line per finished run and the table of means."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from ..diagnosis.bias_variance import format_error


def run_line(point, summary: dict) -> str:
    final, task = summary["final"], summary["task"]
    return (f"{summary['examples']['train']:>7} examples  seed {summary['seed']}  train error "
            f"{format_error(final['train']['error'], task)}  dev error "
            f"{format_error(final['dev']['error'], task)}")


def curve_table(curve) -> Table:
    task = curve.task
    title = "learning curve" + (f" ({curve.reference_name} {format_error(curve.reference, task)})"
                                if curve.reference is not None else "")
    table = Table(title=title, title_justify="left")
    for column in ("share", "examples", "train error", "dev error", "gap"):
        table.add_column(column, justify="right")
    for point in curve.points:
        spread = len(point.train) > 1
        table.add_row(f"{point.share:g}", str(point.examples),
                      _mean(point.train, task, spread), _mean(point.dev, task, spread),
                      format_error(point.gap, task))
    return table


def _mean(values, task: str, spread: bool) -> str:
    text = format_error(float(np.mean(values)), task)
    return f"{text} ± {format_error(float(np.std(values)), task)}" if spread else text


def folds_table(result) -> Table:
    task = result.task
    table = Table(title=f"{len(result.folds)}-fold cross-validation (dev = the held-out fold)",
                  title_justify="left")
    for column in ("fold", "status", "epochs", "dev loss", "dev error"):
        table.add_column(column, justify="right")
    for index, fold in enumerate(result.folds):
        dev = fold["dev"]
        table.add_row(str(index), fold["status"], str(fold["epochs"] or "-"),
                      f"{dev['loss']:.4f}" if "loss" in dev else "-",
                      format_error(dev.get("error"), task))
    if result.mean:
        table.add_row("mean ± std", "", str(result.epochs),
                      f"{result.mean['loss']:.4f} ± {result.std['loss']:.4f}",
                      f"{format_error(result.mean['error'], task)} ± "
                      f"{format_error(result.std['error'], task)}", style="bold")
    return table


def final_line(result) -> str:
    final = result.final
    test = (final.get("test") or {}).get("error")
    return (f"final model on every fold ({final['examples']} examples, {final['epochs']} epochs, "
            f"the folds' mean): test error {format_error(test, result.task)}; dev error "
            f"{format_error((final.get('dev_not_held_out') or {}).get('error'), result.task)}, "
            "not held out")
