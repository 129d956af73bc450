"""Terminal output of a sweep: one live line of progress, then a table of the best trials."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..console import console, err_console
from ..report.importance import rank
from .run import (
    TABLE,
    Sweep,
    SweepReporter,
    _comparable,
    _row,
    best_trials,
    dev_sets,
    objective,
    results_frame,
)


class LiveSweep(SweepReporter):
    """Trials done out of all, trials running, and the best dev error so far."""

    def __init__(self, title: str):
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}  best dev error {task.fields[best]}"),
            TimeElapsedColumn(), console=console)

    def start(self, total: int, slots: int) -> None:
        self.task = self.progress.add_task(self.title, total=total, running=0, best="-")
        self.progress.start()

    def update(self, done: int, running: int, best: dict | None) -> None:
        where = f"point {best['point']}" if best and "point" in best else \
            f"trial {best['trial']}" if best else ""
        text = f"{best['dev_error']:.4f} ({where})" if best else "-"
        self.progress.update(self.task, completed=done, running=running, best=text)

    def finish(self) -> None:
        self.progress.stop()


def _number(value) -> str:
    if value is None or value != value:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _count(value) -> str:
    return "-" if value is None or value != value else str(int(value))


def _headers(keys: list[str]) -> list[str]:
    """The last part of each dotted key, or the whole key where two would look alike."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return [short if last.count(short) == 1 else key for short, key in zip(last, keys)]


def _mean(row, column: str) -> str:
    """A result, as `mean ± std` when the row pools several seeds."""
    spread = row.get(f"{column}_std")
    text = _number(row[column])
    return text if _number(spread) == "-" else f"{text} ± {spread:.2g}"


def best_table(frame, parameters: list[str], title: str, dev_set: bool = False) -> Table:
    """The given trials or points (already ranked), their sampled values and dev metrics; with
    `dev_set`, which dev set each was scored on."""
    pooled = "seeds" in frame.columns
    first = ["point", "seeds"] if pooled else ["trial"]
    headers = [*first, "status", *_headers(parameters), "epochs", "dev loss", "dev error",
               *(["dev set"] if dev_set else [])]
    rows = [[*(str(row[c]) for c in first), row["status"], *[_number(row[p]) for p in parameters],
             _count(row["epochs_run"]), _mean(row, "dev_loss"), _mean(row, "dev_error"),
             *([row["dev_set"] or "-"] if dev_set else [])]
            for _, row in frame.iterrows()]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False, collapse_padding=True, show_edge=False)
    results = ("dev loss", "dev error", "dev set")  # never folded: "0.45 ±" over "0.071" misleads
    for header in headers:
        table.add_column(header, justify="left" if header in ("status", "dev set") else "right",
                         no_wrap=header in results)
    for row in rows:
        table.add_row(*row)
    return table


def counts(frame) -> str:
    by_status = frame["status"].value_counts()
    parts = [f"{count} {status}" for status, count in by_status.items()]
    return f"{len(frame)} trials: {', '.join(parts)}"


def show_results(swept: Sweep, show: int) -> None:
    """The end of `dlrun sweep`: the `show` best trials, then how many ended how, and where."""
    seeds = swept.options.seeds
    frame = results_frame(swept.space, list(swept.finished.values()), seeds)
    optimize, satisfy = swept.options.optimize, swept.options.satisfy
    best = best_trials(frame, show, optimize, satisfy)
    metric = optimize.replace("_", " ")
    ranked = f"mean {metric} over the seeds" if seeds > 1 else metric
    chosen = " meeting " + ", ".join(satisfy) if satisfy else ""
    console.print(best_table(best, [p.key for p in swept.space.parameters],
                             f"{swept.directory}  best {len(best)} by {ranked}{chosen}",
                             dev_set=dev_sets(swept.finished.values()) > 1))
    console.print(f"{counts(frame)}; every trial in {swept.directory / TABLE}")
    column, _ = objective(frame, optimize)
    line = importance(swept.finished.values(), swept.space, column)
    if line:
        console.print(line, highlight=False)


def show_afterword(swept: Sweep, quiet: bool) -> None:
    """What follows the results, quiet or not: a warning when the trials were scored on
    different dev sets, and where the sweep's report is (or why there is none)."""
    count = dev_sets(swept.finished.values())
    if count > 1:
        err_console.print(f"[yellow]warning:[/yellow] the trials were scored on {count} "
                          "different dev sets (column dev_set): their dev errors do not rank "
                          "them", highlight=False)
    from ..report.page import for_sweep  # lazy: plotly is an optional extra

    written, problem = for_sweep(swept.directory)
    if problem:
        err_console.print(f"note: {problem}", markup=False, highlight=False, soft_wrap=True)
    elif not quiet:
        console.print(f"report: {written}", highlight=False, soft_wrap=True)


def importance(trials, space, column: str) -> str | None:
    """One line: each hyperparameter's share of the optimized metric's variance over the
    completed trials (dlrun.report.importance), the largest first; None with under 4 trials."""
    done = [t for t in trials if t.summary and t.summary.get("status") == "completed"]
    if len(done) < 4:
        return None
    frame = _comparable(pd.DataFrame([_row(t, t.summary) for t in done]))
    metric = pd.to_numeric(frame[column], errors="coerce").tolist()
    ranked = rank({p.key: [t.values[p.key] for t in done] for p in space.parameters},
                  {p.key: p.distribution for p in space.parameters}, metric)
    names = dict(zip([p.key for p in space.parameters], _headers([p.key for p in space.parameters])))
    parts = [f"{names[r['key']]} {r['share']:.0%}" for r in ranked]
    return (f"importance for {column} (share of its variance over {ranked[0]['trials']} "
            f"completed trials, each hyperparameter alone): {', '.join(parts)}")
