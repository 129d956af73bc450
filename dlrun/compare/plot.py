"""`compare --plot`: the learning curves of the compared runs overlaid in one figure.

Each of the first LABELLED rows (the table's order: the best first) gets a colour, a marker and a
short label (its number and its differing values, abbreviated); the others are drawn thin and
grey. The labels in full, with every differing key, go to a text file beside the figure
(curves.png → curves.legend.txt). A loss axis whose curves span decades is logarithmic, as in
curves.png, so one diverging run does not flatten the others."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..plots import _spans_decades
from ..rundir import layout
from .collect import CompareError, Comparison, short_name
from .view import _param, by_variety, cell, display_params, plain

LABELLED = 10  # lines a reader can tell apart by colour; the rest are grey
LABEL_WIDTH = 34  # characters of a legend label
MARKERS = "osv^DPX*<>"
GREY = "0.72"


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


def legend_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.legend.txt")


def abbreviate(key: str) -> str:
    """learning_rate → lr, keep_prob → kp, l2 → l2: initials of a key of several words."""
    words = key.split(".")[-1].split("_")
    return "".join(w[0] for w in words) if len(words) > 1 else words[0]


def labels(comparison: Comparison) -> list[str]:
    """One short label per row: its number, its config's name when the runs' names differ
    (init-random10; not a sweep trial's, which its values say better), then its differing
    values, words as they are and numbers to 3 digits with their abbreviated key (lr=0.01), the
    keys telling most runs apart first."""
    names = list(comparison.table.columns)
    params = by_variety(comparison, display_params(comparison))
    named = "name" in names and comparison.table["name"].map(repr).nunique() > 1
    found = []
    for number, row in enumerate(comparison.table.to_dict("records"), start=1):
        own = plain(row.get("name")) if named and "/" not in row["run"] else None
        parts = [str(own)] if own is not None else []
        for column in params:
            value = plain(row[column])
            text = cell(comparison, row, column).replace(" ", "")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                shown = f"{value:.3g}" if isinstance(value, float) else str(value)
                text = f"{abbreviate(short_name(column, names))}={shown}"  # needs its key
            parts.append(text)
        label = " ".join(parts) or row["run"]
        if comparison.grouped and row["runs"] > 1:
            label += f" ×{row['runs']}"
        if len(label) > LABEL_WIDTH:
            label = label[:LABEL_WIDTH - 1] + "…"
        found.append(f"{number} {label}")
    return found


def legend_text(comparison: Comparison, short: list[str]) -> str:
    """The full mapping: each label's run and every differing key with its value."""
    lines = ["# legend number, run, and below it every config key that differs between runs"]
    for label, row in zip(short, comparison.table.to_dict("records")):
        settings = "  ".join(f"{c}={_param(plain(row[c]))}" for c in comparison.params
                             if plain(row[c]) is not None)  # an option the run's choice lacks
        lines.append(f"{label.split(' ', 1)[0]:>3}  {row['run']}\n     {settings or '-'}")
    return "\n".join(lines) + "\n"


def plot_curves(comparison: Comparison, path: Path) -> list[str]:
    """Write the figure of `draw` and its legend file (both atomically); returns notes."""
    kind = check_plot_path(path)
    figure, notes = draw(comparison, legend_path(path).name)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=kind, dpi=120)
    layout.write_atomic(path, buffer.getvalue())
    layout.write_atomic(legend_path(path), legend_text(comparison, labels(comparison)).encode())
    return notes


def draw(comparison: Comparison, legend_file: str):
    """(Figure, notes): dev (solid) and train (dashed) loss and error per epoch of the rows
    shown, seed groups as their mean with a ±std band."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, error_axes = figure.subplots(1, 2)
    colors = matplotlib.colormaps["tab10"]
    notes, drawn, greyed = [], 0, 0
    short = labels(comparison)
    for number, row in enumerate(comparison.table.to_dict("records")):
        paths = row["path"] if isinstance(row["path"], list) else [row["path"]]
        curves = [comparison.records[p].metrics for p in paths]
        curves = [m for m in curves if m is not None and len(m["epoch"])]
        if not curves:
            notes.append(f"{row['run']}: no curves to draw (no readable metrics.csv rows)")
            continue
        labelled = number < LABELLED
        style = _style(number, colors) if labelled else {"color": GREY, "linewidth": 0.8,
                                                           "zorder": 1}
        for axes, metric in ((loss_axes, "loss"), (error_axes, "error")):
            for split, line in (("dev", "-"), ("train", "--")):
                epochs, mean, spread = _mean_curve(curves, f"{split}_{metric}")
                if epochs is None:
                    continue
                marks = _marks(number, len(epochs)) if labelled else {}
                first_grey = not labelled and not greyed and split == "dev" and axes is loss_axes
                label = (short[number] if labelled else "others, in grey" if first_grey
                         else None) if split == "dev" and axes is loss_axes else None
                axes.plot(epochs, mean, line, label=label, **style, **marks)
                if len(curves) > 1 and split == "dev" and labelled:
                    axes.fill_between(epochs, mean - spread, mean + spread, color=style["color"],
                                      alpha=0.15, linewidth=0)
        drawn += 1
        greyed += not labelled
    for axes, metric in ((loss_axes, "loss"), (error_axes, "error")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}: dev solid, train dashed")
        if _spans_decades(axes):
            axes.set_yscale("log")
            axes.set_title(f"{metric} (log scale): dev solid, train dashed")
        axes.grid(alpha=0.3)
    if not drawn:
        notes.append("no curves drawn: no run shown has readable metrics")
    else:
        figure.legend(loc="outside right upper", fontsize="small", frameon=False,
                      title=f"full labels: {legend_file}", title_fontsize="small")
    if greyed:
        notes.append(f"{greyed} runs after the first {LABELLED} drawn in grey (--top or "
                     "--filter picks which are labelled)")
    return figure, notes


def _style(number: int, colors) -> dict:
    return {"color": colors(number % colors.N), "linewidth": 1.5, "zorder": 3 + LABELLED - number}


def _marks(number: int, points: int) -> dict:
    """A marker every ~8th point, each run's offset from the others', so that lines drawn over
    each other still show every run's marker."""
    every = max(1, points // 8)
    return {"marker": MARKERS[number % len(MARKERS)], "markersize": 5,
            "markevery": (number * every // LABELLED % every, every)}


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
