"""How `dlrun ls` looks: an aligned table that fits the terminal, CSV and JSON for scripts."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from rich.text import Text

from .catalog import Entry

FORMATS = ("table", "csv", "json")
COLUMNS = ("name", "status", "started", "duration", "dev_error", "verdict", "tags")
HEADERS = {"name": "run", "status": "status", "started": "started", "duration": "time",
           "dev_error": "dev err", "verdict": "verdict", "tags": "tags"}
RIGHT = ("duration", "dev_error")
# Left out, in this order, while the table is wider than the terminal; the name is cut last.
NARROW_DROPS = ("verdict", "duration", "started")
MAX_TAGS = 20  # wider tag lists are cut ("…") before names are
MIN_NAME = 24  # below this a name no longer tells runs apart: drop a column instead
STYLES = {"completed": "green", "running": "cyan", "interrupted": "yellow", "diverged": "red",
          "failed": "red", "corrupt": "bold red", "stale": "magenta", "pruned": "dim"}


def rows(found: list[Entry], trials: bool) -> list[Entry]:
    """The entries in order, each sweep followed by its trials when `trials` is on."""
    shown = []
    for entry in found:
        shown.append(entry)
        if trials and entry.kind == "sweep":
            shown.extend(entry.trials)
    return shown


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24:02d}h"


def _started(seconds: float | None, now: datetime) -> str:
    if seconds is None:
        return "-"
    moment = datetime.fromtimestamp(seconds)
    return moment.strftime("%H:%M:%S" if moment.date() == now.date() else "%Y-%m-%d %H:%M")


def cells(entry: Entry, now: datetime) -> dict[str, str]:
    name = ("  " + entry.name) if entry.kind == "trial" else entry.name
    verdict = entry.verdict or "-"
    if entry.kind == "sweep":  # a directory of runs, not one: its status is the sweep's
        verdict = f"sweep, {len(entry.trials)} trials"
    return {"name": name, "status": entry.status,
            "started": _started(entry.started, now), "duration": _duration(entry.duration),
            "dev_error": "-" if entry.dev_error is None else f"{entry.dev_error:.4f}",
            "verdict": verdict, "tags": ",".join(entry.tags) or "-"}


def table(found: list[Entry], width: int, trials: bool = False) -> tuple[Text, list[str]]:
    """The entries as a table no wider than `width`, and notes on what did not fit."""
    now = datetime.now()
    shown = rows(found, trials)
    texts = [cells(entry, now) for entry in shown]
    columns = list(COLUMNS)
    notes = []

    def widths(columns):
        return {c: max([len(HEADERS[c])] + [len(t[c]) for t in texts]) for c in columns}

    for column in NARROW_DROPS:
        sizes = widths(columns)
        others = sum(sizes[c] for c in columns if c != "name") + 2 * (len(columns) - 1)
        if sizes["name"] + others <= width or width - others >= MIN_NAME:
            break
        columns.remove(column)
        notes.append(column)
    sizes = widths(columns)
    others = sum(sizes[c] for c in columns if c != "name") + 2 * (len(columns) - 1)
    room = width - others
    if room < sizes["name"]:  # very many tags are cut first, then the names' middles
        if sizes.get("tags", 0) > MAX_TAGS:
            room += sizes["tags"] - MAX_TAGS
            sizes["tags"] = MAX_TAGS
        sizes["name"] = max(min(sizes["name"], room), 12)
    out = Text()
    for column in columns:
        out.append(_pad(HEADERS[column], sizes[column], column in RIGHT), style="bold")
        out.append("  " if column != columns[-1] else "\n")
    for entry, text in zip(shown, texts):
        for column in columns:
            style = STYLES.get(entry.status) if column == "status" else None
            out.append(_pad(text[column], sizes[column], column in RIGHT,
                            keep_end=column == "name"), style=style)
            out.append("  " if column != columns[-1] else "\n")
    return out, ([f"too narrow for {', '.join(notes)}: widen the terminal or use --format csv"]
                 if notes else [])


def _pad(text: str, width: int, right: bool, keep_end: bool = False) -> str:
    """`text` in `width` characters, shortened with '…'. A run name keeps its start (the config
    and overrides) and its last six characters (the id that tells two runs apart, and enough to
    type as a prefix); the time stamp between them is what the started column says anyway."""
    if len(text) > width:
        if keep_end and width >= 12:
            return text[:width - 7] + "…" + text[-6:]
        return text[:max(width - 1, 0)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def footer(found: list[Entry], total: int) -> str:
    runs = sum(1 for e in found if e.kind == "run")
    sweeps = len(found) - runs
    counts: dict[str, int] = {}
    for entry in found:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(),
                                                                    key=lambda i: -i[1]))
    shown = f"{runs} run{'s' * (runs != 1)}" + (f", {sweeps} sweep{'s' * (sweeps != 1)}"
                                                  if sweeps else "")
    return f"{shown} ({by_status})" + (f"; {total - len(found)} not matching left out"
                                       if total != len(found) else "")


def to_json(found: list[Entry], trials: bool = False) -> str:
    out = []
    for entry in found:
        row = entry.as_dict()
        if entry.kind == "sweep" and trials:
            row["trials"] = [t.as_dict() for t in entry.trials]
        out.append(row)
    return json.dumps(out, indent=2, allow_nan=False) + "\n"


def to_csv(found: list[Entry], trials: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = ["name", "kind", "status", "started", "duration", "dev_error", "verdict", "tags",
               "note", "path"]
    writer.writerow(columns)
    for entry in rows(found, trials):
        row = entry.as_dict()
        row["tags"] = ",".join(row["tags"])
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                         else row[c] for c in columns])
    return buffer.getvalue()
