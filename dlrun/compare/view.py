"""How comparisons look: a rich table for people; CSV, Markdown and JSON for files and scripts;
the learning curves of the compared runs overlaid in one figure."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..rundir import layout
from .collect import (
    AT_BEST,
    NUMERIC,
    RESULTS,
    CompareError,
    Comparison,
    resolve,
    short_name,
)

FORMATS = ("table", "csv", "markdown", "json")
STATUS_STYLES = {"completed": "green", "running": "cyan", "interrupted": "yellow",
                 "diverged": "red", "failed": "red", "corrupt": "bold red", "stale": "magenta"}
LOWER_IS_BETTER = (*AT_BEST, "test_error", "duration")
MAX_LEGEND = 20  # beyond this a legend hides the curves it names
# Left out of the terminal table, in this order, while it is wider than the terminal.
NARROW_DROPS = ("train_loss", "dev_loss", "epochs_run", "best_epoch", "duration", "train_error",
                "verdict")


def check_format(name: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        raise CompareError(f"--format: expected {', '.join(allowed)}, got {name!r}")


def plain(value):
    """A cell as a JSON/CSV value: numpy scalars unwrapped, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def output_columns(comparison: Comparison) -> list[str]:
    """Columns for files and scripts: full dotted keys, every result, the spread of each mean."""
    columns = ["run", *(["runs", "seeds"] if comparison.grouped else []), "tags",
               *comparison.params]
    for metric in RESULTS:
        columns.append(metric)
        if comparison.grouped and metric in NUMERIC:
            columns.append(f"{metric}_std")
    if comparison.optimize:
        columns.append("best")
    return [*columns, "note", "path"]


COUNTS = ("epochs_run", "best_epoch")  # whole numbers, though pandas holds them as floats


def records(comparison: Comparison) -> list[dict]:
    """One plain dict per row, with the columns of `output_columns`."""
    columns = output_columns(comparison)
    table = comparison.table.assign(best=comparison.table.index == comparison.best)
    rows = [{column: plain(row[column]) for column in columns}
            for row in table.to_dict("records")]
    for row in rows:
        for column in COUNTS:
            if isinstance(row[column], float) and row[column].is_integer():
                row[column] = int(row[column])
    return rows


def to_json(comparison: Comparison) -> str:
    return json.dumps(records(comparison), indent=2, allow_nan=False) + "\n"


def to_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = output_columns(comparison)
    writer.writerow(columns)
    for row in records(comparison):
        writer.writerow(["" if row[c] is None else ";".join(row[c]) if isinstance(row[c], list)
                         else repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in columns])
    return buffer.getvalue()


def display_columns(comparison: Comparison) -> list[tuple[str, str]]:
    """(column, header) pairs for people: config keys by their shortest unambiguous name."""
    names = list(comparison.table.columns)
    columns = [("run", "run")]
    if comparison.grouped:
        columns.append(("seeds", "seeds"))
    columns += [(c, short_name(c, names)) for c in comparison.params]
    columns += [(metric, metric) for metric in RESULTS]
    if comparison.table["tags"].notna().any():  # last: the first cut when the terminal is narrow
        columns.append(("tags", "tags"))
    return columns


def cell(comparison: Comparison, row: dict, column: str) -> str:
    """The text of one cell: results to 4 decimals, mean ± std for seed groups, '-' if unknown."""
    value = plain(row.get(column))
    if column in NUMERIC:
        spread = plain(row.get(f"{column}_std")) if comparison.grouped else None
        text = _metric(column, value)
        return text if spread is None or value is None else f"{text} ± {_metric(column, spread)}"
    if column in comparison.params:
        return _param(value)
    return "-" if value is None else str(value)


def _metric(column: str, value) -> str:
    if value is None:
        return "-"
    if column == "duration":
        return _duration(value)
    if column in ("epochs_run", "best_epoch"):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{value:.4f}"


def _param(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def to_markdown(comparison: Comparison) -> str:
    columns = display_columns(comparison)
    numeric = {c for c, _ in columns if c in NUMERIC}
    lines = ["| " + " | ".join(_escape(header) for _, header in columns) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c, _ in columns) + "|"]
    for label, row in zip(comparison.table.index, comparison.table.to_dict("records")):
        cells = [cell(comparison, row, c) for c, _ in columns]
        if label == comparison.best:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(_escape(text) for text in cells) + " |")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def terminal_table(comparison: Comparison, width: int = 200) -> tuple[Text, list[str]]:
    """The comparison as aligned, styled text for a terminal `width` wide, and notes on what did
    not fit. Laid out here rather than by rich.Table, which takes seconds for 500 rows."""
    columns = display_columns(comparison)
    rows = comparison.table.to_dict("records")
    texts = {c: [cell(comparison, row, c) for row in rows] for c, _ in columns}
    texts["run"] = [("★ " if label == comparison.best else "") + text
                    + (" *" if row["note"] else "")  # * points to the notes under the table
                    for label, row, text in zip(comparison.table.index, rows, texts["run"])]
    hidden = []
    for column in NARROW_DROPS:
        if _natural_width(columns, texts) <= width:
            break
        columns = [(c, h) for c, h in columns if c != column]
        hidden.append(column)
    headers = [_header(c, h).split("\n") for c, h in columns]
    natural = [max([len(line) for line in header] + [len(text) for text in texts[c]])
               for (c, _), header in zip(columns, headers)]
    shrinkable = [c not in NUMERIC and c != "status" for c, _ in columns]
    widths = _fit(natural, shrinkable, width - 2 * len(columns))
    right = [c in NUMERIC for c, _ in columns]
    notes = []
    if hidden:
        notes.append(f"too narrow for {', '.join(hidden)}")
    if sum(widths) + 2 * len(widths) > width:
        notes.append("columns beyond the terminal's edge are cut")
    out = Text()
    depth = max(len(header) for header in headers)
    for level in range(depth):
        for header, size, is_right in zip(headers, widths, right):
            line = ([""] * (depth - len(header)) + header)[level]  # headers sit on the rule
            out.append(" " + _pad(line, size, is_right) + " ", style="bold")
        out.append("\n")
    out.append(" " + "─" * (sum(widths) + 2 * len(widths) - 2) + " \n")
    for i, label in enumerate(comparison.table.index):
        best = label == comparison.best
        for (column, _), size, is_right in zip(columns, widths, right):
            style = STATUS_STYLES.get(texts[column][i], "") if column == "status" else ""
            text = _pad(texts[column][i], size, is_right, keep_end=column == "run")
            out.append(" " + text + " ", style=f"{style} bold".strip() if best else style or None)
        out.append("\n")
    return out, notes


def _pad(text: str, width: int, right: bool, keep_end: bool = False) -> str:
    """`text` aligned in `width` characters, shortened with '…' if longer; `keep_end` cuts the
    middle instead, since a run directory's name ends with what tells it apart."""
    if len(text) > width:
        if keep_end and width >= 8:
            tail = text[-(width // 2):]
            return text[:width - 1 - len(tail)] + "…" + tail
        return text[:max(width - 1, 0)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _fit(widths: list[int], shrinkable: list[bool], room: int) -> list[int]:
    """Narrow the widest shrinkable columns (names, values, words) until the total fits `room`;
    none goes below 6 characters, so every column keeps something readable."""
    widths = list(widths)
    while sum(widths) > room:
        candidates = [i for i, ok in enumerate(shrinkable) if ok and widths[i] > 6]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _header(column: str, header: str) -> str:
    return header.replace("_", "\n") if column in RESULTS else header


def _natural_width(columns: list[tuple[str, str]], texts: dict[str, list[str]]) -> int:
    """Width of the table with nothing shortened: widest line per column plus 2 between them."""
    widths = [max([len(line) for line in _header(c, h).split("\n")]
                  + [len(text) for text in texts[c]]) for c, h in columns]
    return sum(widths) + 2 * len(widths)


def footer(comparison: Comparison, layout_notes: list[str] = ()) -> list[str]:
    """Lines under the table: what the figures are, what was left out and why, the pick of
    --optimize, and a note for every run whose directory is damaged."""
    unit = "groups of seeds" if comparison.grouped else "runs"
    removed = [f"{n} by {option}" for option, n in comparison.excluded.items() if n]
    lines = [f"{len(comparison.table)} {unit} shown of {comparison.total} runs read"
             + (f" ({', '.join(removed)} removed)" if removed else "")
             + "; train/dev figures at the best epoch" + ("; mean ± std" if comparison.grouped
                                                          else "")]
    if layout_notes:
        lines.append(f"[dim]{'; '.join(layout_notes)}: widen the terminal or use --format csv"
                     "[/dim]")
    if comparison.optimize:
        if comparison.best is None:
            lines.append(f"[yellow]no run has a value for {comparison.optimize}[/yellow]")
        else:
            row = comparison.table.loc[comparison.best]
            column = resolve(comparison.optimize.removeprefix("-"), comparison.table.columns)
            value = plain(row[column])
            shown = _metric(column, value) if column in NUMERIC else _param(value)
            where = " among those meeting every --satisfy" if "--satisfy" in comparison.excluded \
                else ""
            group = f", seeds {row['seeds']}" if comparison.grouped else ""
            lines.append(f"best by {comparison.optimize}{where}: [bold]{escape(row['run'])}"
                         f"[/bold] ({column} {shown}{group})")
    for row in comparison.table.to_dict("records"):
        if row["note"]:
            lines.append(f"[yellow]*[/yellow] {escape(row['run'])}: {escape(row['note'])}")
    return lines


def check_plot_path(path: Path) -> str:
    """The image format `path` asks for; CompareError if matplotlib cannot write it there."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = path.suffix.lstrip(".").lower()
    allowed = sorted(FigureCanvasAgg(Figure()).get_supported_filetypes())
    if kind not in allowed:
        raise CompareError(f"--plot {path}: unknown image format {path.suffix or '(none)'!r}; "
                           f"allowed: {', '.join('.' + a for a in allowed)}")
    if not path.parent.is_dir():
        raise CompareError(f"--plot {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise CompareError(f"--plot {path}: is a directory; give an image file name")
    return kind


def plot_curves(comparison: Comparison, path: Path) -> list[str]:
    """Overlay dev (solid) and train (dashed) loss and error per epoch of the rows shown, seed
    groups as their mean with a ±std band; write the figure atomically. Returns notes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = check_plot_path(path)
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, error_axes = figure.subplots(1, 2)
    colors = matplotlib.colormaps["tab10" if len(comparison.table) <= 10 else "tab20"]
    notes, drawn = [], 0
    names = list(comparison.table.columns)
    for row in comparison.table.to_dict("records"):
        paths = row["path"] if isinstance(row["path"], list) else [row["path"]]
        curves = [comparison.records[p].metrics for p in paths]
        curves = [m for m in curves if m is not None and len(m["epoch"])]
        if not curves:
            notes.append(f"{row['run']}: no curves to draw (no readable metrics.csv rows)")
            continue
        color = colors(drawn % colors.N)
        label = _label(comparison, row, names)
        for axes, metric in ((loss_axes, "loss"), (error_axes, "error")):
            for split, style in (("dev", "-"), ("train", "--")):
                epochs, mean, spread = _mean_curve(curves, f"{split}_{metric}")
                if epochs is None:
                    continue
                axes.plot(epochs, mean, style, color=color, linewidth=1.4,
                          label=label if split == "dev" and axes is loss_axes else None)
                if len(curves) > 1 and split == "dev":
                    axes.fill_between(epochs, mean - spread, mean + spread, color=color,
                                      alpha=0.15, linewidth=0)
        drawn += 1
    for axes, metric in ((loss_axes, "loss"), (error_axes, "error")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: dev solid, train dashed")
        axes.grid(alpha=0.3)
    if not drawn:
        notes.append("no curves drawn: no run shown has readable metrics")
    elif drawn <= MAX_LEGEND:
        figure.legend(loc="outside right upper", fontsize="small", frameon=False)
    else:
        notes.append(f"{drawn} runs drawn: legend left out (use --top to name them)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=kind, dpi=120)
    layout.write_atomic(path, buffer.getvalue())
    return notes


def _label(comparison: Comparison, row: dict, names: list[str]) -> str:
    settings = [f"{short_name(c, names)}={_param(plain(row[c]))}" for c in comparison.params]
    runs_part = f" ×{row['runs']}" if comparison.grouped and row["runs"] > 1 else ""
    return (" ".join(settings) or row["run"]) + runs_part


def _mean_curve(curves: list[dict], column: str):
    """(epochs, mean, std) of one metric across runs, aligned on the epoch number."""
    series = [pd.Series(m[column], index=m["epoch"]) for m in curves if column in m]
    if not series:
        return None, None, None
    series = [s[~s.index.duplicated(keep="last")].replace([np.inf, -np.inf], np.nan)
              for s in series]
    frame = pd.concat(series, axis=1).sort_index()
    spread = frame.std(axis=1, ddof=1).fillna(0.0).to_numpy()
    return frame.index.to_numpy(), frame.mean(axis=1).to_numpy(), spread


def _result(metric: str, value) -> str:
    if metric in NUMERIC:
        return _metric(metric, value)
    return "-" if value is None else str(value)


def diff_json(result: dict) -> str:
    def clean(value):
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return plain(value)
    return json.dumps(clean(result), indent=2, allow_nan=False) + "\n"


def diff_tables(result: dict) -> list:
    """Renderables for `dlrun diff`: what changed in the config, then the results side by side."""
    name_a, name_b = Path(result["a"]).name, Path(result["b"]).name
    shown = [f"[bold]A[/bold] {escape(result['a'])}", f"[bold]B[/bold] {escape(result['b'])}"]
    if not result["config_readable"]:
        shown.append("[yellow]config not compared: a config.yaml is missing or unreadable "
                     "(see the notes below)[/yellow]")
    elif not result["config"]:
        shown.append("configs are identical")
    else:
        table = Table(title="config", title_justify="left", header_style="bold",
                      box=box.SIMPLE_HEAD)
        for header in ("key", f"A {name_a}", f"B {name_b}"):
            table.add_column(header)
        for change in result["config"]:
            old = "(absent)" if change["change"] == "added" else _param(change["a"])
            new = "(absent)" if change["change"] == "removed" else _param(change["b"])
            table.add_row(change["key"], Text(old, style="red"), Text(new, style="green"))
        shown.append(table)
    table = Table(title="results", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for header in ("metric", "A", "B", "B − A"):
        table.add_column(header, justify="left" if header == "metric" else "right")
    for entry in result["metrics"]:
        metric, delta = entry["metric"], entry["delta"]
        delta_text = Text("")
        if delta is not None:
            sign = "+" if delta > 0 else "−" if delta < 0 else ""
            delta_text = Text(sign + _result(metric, abs(delta)))
            if metric in LOWER_IS_BETTER and delta:
                delta_text.stylize("green" if delta < 0 else "red")  # lower is better
        elif entry["a"] != entry["b"]:
            delta_text = Text("changed", style="yellow")
        table.add_row(metric, _result(metric, entry["a"]), _result(metric, entry["b"]),
                      delta_text)
    shown.append(table)
    for side, name in (("a", name_a), ("b", name_b)):
        for note in result["notes"][side]:
            shown.append(f"[yellow]*[/yellow] {side.upper()} {escape(name)}: {escape(note)}")
    return shown
