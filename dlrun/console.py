"""Terminal output with rich: the training progress bar and result tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class ProgressReporter:
    """A live bar over epochs showing the latest train loss and dev error."""

    def __init__(self, title: str):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("epoch"),
            MofNCompleteColumn(),
            TextColumn("train loss {task.fields[loss]}  dev error {task.fields[dev_error]}"),
            TimeElapsedColumn(), console=console, transient=False)
        self.title = title

    def start(self, epochs: int) -> None:
        self.task = self.progress.add_task(self.title, total=epochs, loss="-", dev_error="-")
        self.progress.start()

    def epoch(self, row: dict) -> None:
        self.progress.update(self.task, completed=row["epoch"], loss=f"{row['train_loss']:.4f}",
                             dev_error=f"{row['dev_error']:.4f}")

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


def kept_line(summary: dict) -> str:
    """Which epoch the figures of summary_table are from: the progress bar above ends on the
    last epoch, which is not the one kept when early stopping restored an earlier one."""
    from .rundir.result import kept_label

    return f"figures of the kept weights: {kept_label(summary)}"


def summary_table(summary: dict) -> Table:
    """What the kept parameters score, one row per split."""
    table = Table()
    table.add_column("split")
    table.add_column("examples", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("error", justify="right")
    for split, metrics in summary.get("final", {}).items():
        table.add_row(split, str(summary["examples"].get(split, "")), _number(metrics["loss"]),
                      _number(metrics["error"]))
    return table
