"""Terminal output of a sweep: one live line of progress, then a table of the best trials."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.measure import Measurement
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
    dev_sets,
    objective,
)


class LiveSweep(SweepReporter):
    """Trials done out of all, trials running, and the best value so far of the metric the
    sweep optimizes."""

    def __init__(self, title: str):
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}  best {task.fields[best]}"),
            TimeElapsedColumn(), console=console)

    def start(self, total: int, slots: int) -> None:
        # The name on its own line: beside the bar it would push the figures out of an
        # 80-column terminal.
        console.print(f"sweep {self.title}", highlight=False, soft_wrap=True)
        self.task = self.progress.add_task("trials", total=total, running=0, best="-")
        self.progress.start()

    def update(self, done: int, running: int, best: dict | None) -> None:
        where = f"point {best['point']}" if best and "point" in best else \
            f"trial {best['trial']}" if best else ""
        # The metric the sweep optimizes, as its table ranks by it (dev error by default).
        text = (f"{best['optimize'].replace('_', ' ')} {best['value']:.4g} ({where})"
                if best and best.get("value") is not None else "-")
        self.progress.update(self.task, completed=done, running=running, best=text)

    def finish(self) -> None:
        self.progress.stop()


def _number(value, digits: int = 4) -> str:
    if value is None or value != value:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _count(value) -> str:
    return "-" if value is None or value != value else str(int(value))


def _headers(keys: list[str]) -> list[str]:
    """The last part of each dotted key, or the whole key where two would look alike."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return [short if last.count(short) == 1 else key for short, key in zip(last, keys)]


def _folded(header: str, width: int) -> str:
    """A header on as many lines as it takes to be no wider than its column's values (or its
    longest part): `learning_rate` over a column of 0.0123 reads `learning_` / `rate`."""
    parts = [part + "_" for part in header.split("_")]
    parts[-1] = parts[-1][:-1]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > max(width, len(part)):
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _mean(row, column: str) -> str:
    """A result, as `mean ± std` when the row pools several seeds."""
    spread = row.get(f"{column}_std")
    text = _number(row[column])
    return text if _number(spread) == "-" else f"{text} ± {spread:.2g}"


def best_table(frame, parameters: list[str], title: str, dev_set: bool = False,
               width: int | None = None) -> tuple[Table, list[str]]:
    """The given trials or points (already ranked), their sampled values (3 significant
    digits; sweep.csv has them whole) and dev metrics; with `dev_set`, which dev set each was
    scored on. Nothing is ever cut short: a table wider than `width` leaves out sampled values
    from the last, and returns the keys it left out with the table."""
    pooled = "seeds" in frame.columns
    first = ["point", "seeds"] if pooled else ["trial"]
    status = not frame.empty and bool((frame["status"] != "completed").any())
    columns = [(c, [str(row[c]) for _, row in frame.iterrows()]) for c in first]
    if status:  # a column of "completed" says nothing; the counts line under the table does
        columns.append(("status", list(frame["status"])))
    shown = dict(zip(parameters, _headers(parameters)))
    values = {key: [_number(row[key], 3) for _, row in frame.iterrows()] for key in parameters}
    results = [("epochs", [_count(v) for v in frame["epochs_run"]]),
               ("dev loss", [_mean(row, "dev_loss") for _, row in frame.iterrows()]),
               ("dev error", [_mean(row, "dev_error") for _, row in frame.iterrows()]),
               *([("dev set", [v or "-" for v in frame["dev_set"]])] if dev_set else [])]
    left_out: list[str] = []
    while True:
        table = _table(title, columns + [(shown[key], values[key]) for key in parameters
                                         if key not in left_out] + results)
        kept = [key for key in parameters if key not in left_out]
        if width is None or not kept or _width(table) <= width:
            return table, left_out
        left_out.insert(0, kept[-1])


def _table(title: str, columns: list[tuple[str, list[str]]]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                  pad_edge=False, collapse_padding=True, show_edge=False)
    for header, cells in columns:
        widest = max((len(cell) for cell in cells), default=1)
        # Never folded or cut: "0.45 ±" over "0.071" would mislead, "0.96…" hides the value.
        table.add_column(_folded(header, widest), no_wrap=True,
                         justify="left" if header in ("status", "dev set") else "right")
    for row in zip(*(cells for _, cells in columns)):
        table.add_row(*row)
    return table


def _width(table: Table) -> int:
    """The width the table needs, its title aside (the title wraps)."""
    title, table.title = table.title, None
    try:
        return Measurement.get(console, console.options.update(width=10_000), table).maximum
    finally:
        table.title = title


def counts(frame) -> str:
    by_status = frame["status"].value_counts()
    parts = [f"{count} {status}" for status, count in by_status.items()]
    return f"{len(frame)} trials: {', '.join(parts)}"


def show_results(swept: Sweep, show: int) -> None:
    """The end of `dlrun sweep`: the `show` best trials, then how many ended how, and where."""
    seeds = swept.options.seeds
    frame, ranking = swept.ranking()
    optimize, satisfy = swept.options.optimize, swept.options.satisfy
    best = ranking.head(show)
    metric = optimize.replace("_", " ")
    ranked = f"mean {metric} over the seeds" if seeds > 1 else metric
    chosen = " meeting " + ", ".join(satisfy) if satisfy else ""
    table, left_out = best_table(best, [p.key for p in swept.space.parameters],
                                 f"{swept.directory}  best {len(best)} by {ranked}{chosen}",
                                 dev_set=dev_sets(swept.finished.values()) > 1,
                                 width=console.width)
    console.print(table)
    if left_out:
        console.print(f"sampled values not shown for width: {', '.join(_headers(left_out))} "
                      "(all in sweep.csv)", highlight=False)
    console.print(f"{counts(frame)}; every trial in {swept.directory / TABLE}")
    column, _ = objective(frame, optimize)
    line = importance(swept.finished.values(), swept.space, column)
    if line:
        console.print(line, highlight=False)


def show_afterword(swept: Sweep, quiet: bool):
    """What follows the results, quiet or not: a warning when the trials were scored on
    different dev sets, and where the sweep's report will be (or why there is none). Returns
    what writes the report (for draw_best to call once the best trials' figures are drawn),
    or None."""
    count = dev_sets(swept.finished.values())
    if count > 1:
        err_console.print(f"[yellow]warning:[/yellow] the trials were scored on {count} "
                          "different dev sets (column dev_set): their dev errors do not rank "
                          "them", highlight=False)
    from ..report import page  # lazy: it reads the runs back with pandas

    problem = page.sweep_report_problem()
    if problem:
        err_console.print(f"note: {problem}", markup=False, highlight=False, soft_wrap=True)
        return None
    if not quiet:
        console.print(f"report: {swept.directory / page.SWEEP_REPORT}", highlight=False,
                      soft_wrap=True)
    return lambda: page.for_sweep(swept.directory)


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
