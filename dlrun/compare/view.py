"""How comparisons look: the cells people read; CSV, Markdown and JSON for files and scripts;
the two-run tables of `dlrun diff`. The terminal table is terminal.py's, the figure plot.py's."""

from __future__ import annotations

import csv
import functools
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

from .collect import (
    AT_BEST,
    NUMERIC,
    RESULTS,
    SEED_KEYS,
    CompareError,
    Comparison,
    short_name,
)

FORMATS = ("table", "csv", "markdown", "json")
STATUS_STYLES = {"completed": "green", "running": "cyan", "interrupted": "yellow",
                 "diverged": "red", "failed": "red", "corrupt": "bold red", "stale": "magenta"}
LOWER_IS_BETTER = (*AT_BEST, "test_error", "duration")


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


def display_params(comparison: Comparison) -> list[str]:
    """Config columns for people: a registry choice that is shown (model.init.name) carries its
    options, as random(scale=10), so their own columns are left out."""
    shown = set(comparison.params)
    folded = {c.removesuffix(".name") for c in shown
              if c.endswith(".name") and _is_registry(c.removesuffix(".name"))}
    return [c for c in comparison.params
            if c.endswith(".name") or c.rpartition(".")[0] not in folded]


def by_variety(comparison: Comparison, columns: list[str]) -> list[str]:
    """Config columns, those telling most rows apart first (learning rate before the split one
    lesson changes), the seed last: it is rarely what a comparison is about."""
    variety = {c: comparison.table[c].map(repr).nunique() for c in columns}
    return sorted(columns, key=lambda c: (c in SEED_KEYS, -variety[c]))


def display_columns(comparison: Comparison) -> list[tuple[str, str]]:
    """(column, header) pairs for people: config keys by their shortest unambiguous name."""
    names = list(comparison.table.columns)
    columns = [("run", "run")]
    if comparison.grouped:
        columns.append(("seeds", "seeds"))
    columns += [(c, short_name(c, names)) for c in display_params(comparison)]
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
        return choice(row, column) if column.endswith(".name") else _param(value)
    return "-" if value is None else str(value)


def choice(row: dict, column: str) -> str:
    """A registry choice with the options set away from their defaults: random(scale=10) for
    model.init.name, adam for the default Adam."""
    name = plain(row.get(column))
    parent = column.removesuffix(".name")
    defaults = _option_defaults(parent, name)
    if not defaults:
        return _param(name)
    changed = []
    for option, default in defaults.items():
        value = plain(row.get(f"{parent}.{option}"))
        if value is not None and value != default:
            changed.append(f"{option}={_param(value)}")
    return f"{name}({', '.join(changed)})" if changed else str(name)


@functools.lru_cache(maxsize=None)
def _option_defaults(parent: str, name) -> dict | None:
    from .. import config  # imported here: pydantic and the engine cost start-up time

    return config.option_defaults(parent, name)


@functools.lru_cache(maxsize=None)
def _is_registry(parent: str) -> bool:
    from .. import config

    return config.registry_at(parent) is not None


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
