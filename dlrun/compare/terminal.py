"""The comparison in a terminal, readable at any width: what is compared comes first (the run's
whole name, its status and results), then as many differing config keys as fit, the rest named
under the table. Long names and words wrap inside their column instead of being cut; a terminal
too narrow for even that gets one block per run. `--transpose` turns runs into columns.

Laid out here rather than by rich.Table, which takes seconds for 500 rows."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from .collect import NUMERIC, RESULTS, Comparison, resolve
from .view import (
    STATUS_STYLES,
    _metric,
    _param,
    by_variety,
    cell,
    display_columns,
    plain,
)

# What a comparison is for, right after the run's name; the other results follow the config.
HEADLINE = ("status", "dev_error", "test_error", "verdict", "epochs_run")
BESIDE_NAME = ("seeds",)  # which runs a grouped row stands for
GAP = 2  # spaces between columns
RUN_MIN = 16  # a run's name wraps to no fewer characters than this
TEXT_MIN = 13  # nor does any other column of words ("high variance")
CELL_MAX = 24  # a config value longer than this wraps
BREAKS = "-/_. ,("  # a name wraps after one of these where it can


def headline_columns(comparison: Comparison) -> list[str]:
    """The result columns shown first, in HEADLINE's order, whatever `RESULTS` holds."""
    return [c for c in HEADLINE if c in RESULTS and c in comparison.table.columns]


def ordered_columns(comparison: Comparison) -> tuple[list, list, list]:
    """(name and headline columns, config columns, other results) as (column, header) pairs."""
    pairs = display_columns(comparison)
    headers = dict(pairs)
    first = [("run", "run"), *(p for p in pairs if p[0] in BESIDE_NAME)]
    first += [(c, headers[c]) for c in headline_columns(comparison)]
    first += [p for p in pairs if p[0] == "tags"]  # after the results: a label, kept in view
    taken = {c for c, _ in first}
    config = [p for p in pairs if p[0] in comparison.params and p[0] not in taken]
    order = by_variety(comparison, [c for c, _ in config])
    config.sort(key=lambda p: order.index(p[0]))
    rest = [p for p in pairs if p[0] not in taken and p[0] not in comparison.params]
    return first, config, rest


def chosen_columns(comparison: Comparison, names: list[str]) -> list[tuple[str, str]]:
    """The columns `--columns` names (short or dotted keys, or result names), after the run's."""
    headers = dict(display_columns(comparison))
    chosen = [("run", "run")]
    for name in names:
        column = resolve(name, comparison.table.columns, "--columns")
        if column not in dict(chosen):
            chosen.append((column, headers.get(column, column)))
    return chosen


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken after -, /, _, ., space or comma
    where possible, else mid-word: nothing is ever left out."""
    lines = []
    while len(text) > width:
        cut = max(text.rfind(" ", 0, width + 1),  # a space is dropped at the break
                  *(text.rfind(mark, 0, width) + 1 for mark in BREAKS if mark != " "))
        cut = cut if cut > 0 else width
        lines.append(text[:cut].rstrip(" "))
        text = text[cut:].lstrip(" ")
    return [*lines, text]


def _header(column: str, header: str) -> str:
    return header.replace("_", " ") if column in RESULTS else header


def _texts(comparison: Comparison, columns) -> dict[str, list[str]]:
    rows = comparison.table.to_dict("records")
    texts = {c: [cell(comparison, row, c) for row in rows] for c, _ in columns}
    texts["run"] = [("★ " if label == comparison.best else "") + text
                    + (" *" if row["note"] else "")  # * points to the notes under the table
                    for label, row, text in zip(comparison.table.index, rows, texts["run"])]
    return texts


def _natural(column: str, header: str, texts: list[str]) -> int:
    words = _header(column, header).split(" ") if column in RESULTS else [header]
    return max([len(w) for w in words] + [len(t) for t in texts])


def _minimum(column: str, natural: int) -> int:
    if column in NUMERIC or column == "status":
        return natural
    return min(natural, RUN_MIN if column == "run" else TEXT_MIN)


def _fit(columns, texts, room: int, params=()) -> list[int] | None:
    """Widths for `columns` within `room` characters: the widest wrappable column narrowed
    first, none below its minimum; None if even the minimums do not fit."""
    natural = [_natural(c, h, texts[c]) for c, h in columns]
    widths = [min(w, CELL_MAX) if c in params else w for (c, _), w in zip(columns, natural)]
    lowest = [_minimum(c, n) for (c, _), n in zip(columns, natural)]
    while sum(widths) + GAP * (len(widths) - 1) > room:
        # Words wrap before the run's name does: the name is what the row is about.
        candidates = [i for i, w in enumerate(widths) if w > lowest[i] and columns[i][0] != "run"]
        candidates = candidates or [i for i, w in enumerate(widths) if w > lowest[i]]
        if not candidates:
            return None
        widths[max(candidates, key=lambda i: widths[i])] -= 1
    return widths


def layout(comparison: Comparison, width: int, names: list[str] | None = None):
    """(columns, widths, config columns left out, cell texts) for a terminal `width` wide;
    widths None when not even the run's name and headline results fit side by side."""
    if names:
        columns, candidates = chosen_columns(comparison, names), []
    else:
        columns, config, rest = ordered_columns(comparison)
        candidates = config + rest
    texts = _texts(comparison, [*columns, *candidates])
    widths = _fit(columns, texts, width, comparison.params)
    if widths is None:  # one block per run, with room for every key
        return [*columns, *candidates], None, [], texts
    hidden = []
    for pair in candidates:  # in order, each one that still fits beside the others
        tried = _fit([*columns, pair], texts, width, comparison.params)
        if tried is not None and tried[:len(columns)] == widths:
            columns, widths = [*columns, pair], tried
        elif pair[0] in comparison.params:
            hidden.append(pair[0])
    return columns, widths, hidden, texts


def terminal_table(comparison: Comparison, width: int = 200, names: list[str] | None = None
                   ) -> tuple[Text, list[str]]:
    """The comparison as aligned, styled text at most `width` characters wide, and notes on
    what it leaves out."""
    columns, widths, hidden, texts = layout(comparison, width, names)
    notes = []
    if hidden:
        headers = dict(display_columns(comparison))
        notes.append(f"{len(hidden)} differing config key{'s' if len(hidden) > 1 else ''} not "
                     f"shown for width: {', '.join(headers.get(c, c) for c in hidden)}")
    if widths is None:
        return records_view(comparison, columns, texts, width), notes
    out = Text()
    headers = [wrap(_header(c, h), w) for (c, h), w in zip(columns, widths)]
    depth = max(len(h) for h in headers)
    for level in range(depth):
        line = [_pad(([""] * (depth - len(h)) + h)[level], w, c in NUMERIC)
                for (c, _), h, w in zip(columns, headers, widths)]
        out.append((" " * GAP).join(line).rstrip() + "\n", style="bold")
    out.append("─" * (sum(widths) + GAP * (len(widths) - 1)) + "\n")
    for i, label in enumerate(comparison.table.index):
        best = label == comparison.best
        cells = [wrap(texts[c][i], w) for (c, _), w in zip(columns, widths)]
        for level in range(max(len(lines) for lines in cells)):
            segments = []
            for (column, _), lines, size in zip(columns, cells, widths):
                text = lines[level] if level < len(lines) else ""
                style = STATUS_STYLES.get(texts[column][i], "") if column == "status" else ""
                style = f"{style} bold".strip() if best else style or None
                segments.append((_pad(text, size, column in NUMERIC), style))
            while segments and not segments[-1][0].strip():  # a wrapped name's second line
                segments.pop()
            for j, (text, style) in enumerate(segments):
                last = j == len(segments) - 1
                out.append(text.rstrip() if last else text + " " * GAP, style=style)
            out.append("\n")
    out.rstrip()
    return out, notes


def _pad(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def records_view(comparison: Comparison, columns, texts, width: int) -> Text:
    """One block per run, for terminals too narrow for a table: the whole name on its own
    lines, then `key value` pairs wrapped to the width."""
    out = Text()
    headers = dict(columns)
    for i in range(len(comparison.table)):
        for line in wrap(texts["run"][i], width):
            out.append(line + "\n", style="bold")
        pairs = [f"{_header(c, headers[c])}: {texts[c][i]}" for c, _ in columns if c != "run"]
        line = ""
        for pair in pairs:
            if len(line) + len(pair) + 2 > width and line.strip():
                out.append(line.rstrip() + "\n")
                line = ""
            line += "  " + pair
        out.append(line.rstrip() + "\n")
    out.rstrip()
    return out


def transposed(comparison: Comparison, width: int, names: list[str] | None = None
               ) -> tuple[Text, list[str]]:
    """Runs as columns and keys as rows, for a handful of runs: every differing key has room."""
    if names:
        rows = chosen_columns(comparison, names)[1:]
    else:
        first, config, rest = ordered_columns(comparison)
        rows = [*first[1:], *config, *rest]
    texts = _texts(comparison, [("run", "run"), *rows])
    key_width = min(max([len(_header(c, h)) for c, h in rows] + [3]), 24)
    room = width - key_width
    count = len(comparison.table)
    shown = max(1, min(count, room // (12 + GAP)))
    size = max(min(room // shown - GAP, max(len(t) for t in texts["run"])), 8)
    notes = [] if shown == count else [f"{count - shown} runs not shown for width: "
                                       f"{', '.join(texts['run'][shown:])}"]
    out = Text()
    names_wrapped = [wrap(texts["run"][i], size) for i in range(shown)]
    for level in range(max(len(n) for n in names_wrapped)):
        line = " " * key_width + "".join(" " * GAP + _pad(n[level] if level < len(n) else "",
                                                          size, False) for n in names_wrapped)
        out.append(line.rstrip() + "\n", style="bold")
    out.append("─" * (key_width + shown * (size + GAP)) + "\n")
    for column, header in rows:
        cells = [wrap(texts[column][i], size) for i in range(shown)]
        keys = wrap(_header(column, header), key_width)
        for level in range(max(len(keys), *(len(c) for c in cells))):
            key = keys[level] if level < len(keys) else ""
            line = _pad(key, key_width, False) + "".join(
                " " * GAP + _pad(c[level] if level < len(c) else "", size, False)
                for c in cells)
            out.append(line.rstrip() + "\n")
    out.rstrip()
    return out, notes


def footer(comparison: Comparison, layout_notes: list[str] = ()) -> list[str]:
    """Lines under the table: what the figures are, what was left out and why, the pick of
    --optimize, and a note for every run whose directory is damaged."""
    unit = "groups of seeds" if comparison.grouped else "runs"
    removed = [f"{n} by {option}" for option, n in comparison.excluded.items() if n]
    lines = [f"{len(comparison.table)} {unit} shown of {comparison.total} runs read"
             + (f" ({', '.join(removed)} removed)" if removed else "")
             + "; train/dev figures at the best epoch" + ("; mean ± std" if comparison.grouped
                                                          else "")]
    for note in layout_notes:
        lines.append(f"[dim]{escape(note)} (pick with --columns, turn with --transpose, or "
                     "--format csv for all)[/dim]")
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
