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
