"""Terminal output with rich: the training progress bar and result tables."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

console = Console()
err_console = Console(stderr=True)


class ProgressReporter:
    """A live bar over epochs showing the latest train loss and dev error, the optimizer steps
    per second, the time taken and the time left (at the pace of the epochs so far)."""

    def __init__(self, title: str):
        # Under 110 columns the bar gives way and a long run name is cut ("…"), so the figures
        # always fit (80 columns take name, epochs, loss, dev error, steps/s and the time left).
        wide = console.width >= 110
        self.progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(
                max_width=28 if wide else 14, no_wrap=True, overflow="ellipsis")),
            *([BarColumn(bar_width=20)] if wide else []), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} dev error {task.fields[dev_error]}" if wide
                        else "loss {task.fields[loss]} dev {task.fields[dev_error]}"),
            TextColumn("{task.fields[rate]}"), *([TimeElapsedColumn()] if wide else []),
            TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False)
        self.title = title
        self.first: tuple[float, int] | None = None  # (time, steps) at the first epoch seen

    def start(self, epochs: int) -> None:
        self.task = self.progress.add_task(self.title, total=epochs, loss="-", dev_error="-",
                                           rate="")
        self.progress.start()

    def epoch(self, row: dict) -> None:
        now, steps = time.monotonic(), row.get("steps")
        rate = ""
        if steps is not None:  # from the first epoch shown: a resumed run counts its own steps
            if self.first is None:
                self.first = (now, steps)
            elif now > self.first[0]:
                rate = f"{(steps - self.first[1]) / (now - self.first[0]):,.0f} steps/s"
        self.progress.update(self.task, completed=row["epoch"], loss=f"{row['train_loss']:.4f}",
                             dev_error=f"{row['dev_error']:.4f}", rate=rate)

    def finish(self) -> None:
        self.progress.stop()


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def run_heading(run_dir, summary: dict) -> str:
    """The run directory (whole, to copy), its status and the task the labels were read as."""
    classes = summary.get("classes") or []
    task = summary.get("task", "")
    if task in ("binary", "multiclass"):
        shown = ", ".join(map(str, classes[:6])) + (", ..." if len(classes) > 6 else "")
        task = f"{task}, {len(classes)} classes ({shown})"
    return f"{run_dir}  {summary['status']}  {task}"


def summary_table(summary: dict) -> Table:
    """Final metrics of a run, one row per split."""
    table = Table()
    table.add_column("split")
    table.add_column("examples", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("error", justify="right")
    for split, metrics in summary.get("final", {}).items():
        table.add_row(split, str(summary["examples"].get(split, "")), _number(metrics["loss"]),
                      _number(metrics["error"]))
    return table
