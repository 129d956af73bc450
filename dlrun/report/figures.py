"""The report's interactive figures, as Plotly figure specifications ({data, layout} of plain
lists and dicts) that the page hands to plotly.js: building them needs no Plotly in Python,
which keeps writing a report of hundreds of runs fast."""

from __future__ import annotations

import math

import numpy as np

from ..sweep.space import Choice, LogUniform, OneMinusLogUniform, encode

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
DASHES = ["solid", "dot", "dashdot", "longdash"]  # a second ten runs differ by dash as well
VISIBLE = 10  # curves shown at first; the others wait in the legend, one click away
POINTS = 400  # at most this many points per curve: the page stays small, the shape stays
DECADES = 2.0  # a loss axis spanning more powers of ten than this starts logarithmic


def thin(epochs: np.ndarray, points: int = POINTS) -> np.ndarray:
    """Indices of at most `points` rows, evenly spread, the first and last always kept."""
    if len(epochs) <= points:
        return np.arange(len(epochs))
    return np.unique(np.linspace(0, len(epochs) - 1, points).round().astype(int))


def numbers(values) -> list:
    """Floats for JSON with 5 significant digits; NaN and infinities as null (a gap)."""
    return [float(f"{v:.5g}") if math.isfinite(v) else None for v in np.asarray(values, float)]


def curve_data(metrics: dict | None) -> dict | None:
    """The columns the report draws, thinned: epoch, train/dev loss and error."""
    if metrics is None or not len(metrics.get("epoch", ())):
        return None
    rows = thin(metrics["epoch"])
    return {column: numbers(metrics[column][rows]) for column in
            ("epoch", "train_loss", "dev_loss", "train_error", "dev_error") if column in metrics}


def spans_decades(curves: list[dict], columns=("train_loss", "dev_loss")) -> bool:
    """The rule of curves.png's cost axis, over every run: positive values spanning > 2 decades."""
    values = np.array([v for c in curves if c for col in columns for v in c.get(col, ())
                       if v is not None], dtype=float)
    if not len(values) or values.min() <= 0:
        return False
    return math.log10(values.max() / values.min()) > DECADES


def style(number: int) -> dict:
    return {"color": PALETTE[number % len(PALETTE)],
            "dash": DASHES[number // len(PALETTE) % len(DASHES)]}


def curves_figure(runs: list[dict]) -> dict:
    """Loss and error against epochs of every run, dev solid and train thin; one legend entry
    per run hides or shows its four lines; buttons switch the y axes between linear and log."""
    data = []
    for number, run in enumerate(runs):
        curves = run["curves"]
        if curves is None:
            continue
        line = style(number)
        for split in ("dev", "train"):
            for axis, metric in (("", "loss"), ("2", "error")):
                column = f"{split}_{metric}"
                if column not in curves:
                    continue
                data.append({
                    "type": "scatter", "mode": "lines", "x": curves["epoch"], "y": curves[column],
                    "xaxis": f"x{axis}", "yaxis": f"y{axis}", "name": run["label"],
                    "legendgroup": f"run{number}", "showlegend": split == "dev" and not axis,
                    "visible": True if number < VISIBLE else "legendonly",
                    "line": {"color": line["color"], "width": 2 if split == "dev" else 1,
                             "dash": line["dash"] if split == "dev" else "dash"},
                    "opacity": 1 if split == "dev" else 0.6,
                    "hovertemplate": f"{_escape(run['name'])}<br>epoch %{{x}}<br>{split} {metric}"
                                     " %{y:.4g}<extra></extra>"})
    log = spans_decades([r["curves"] for r in runs])
    layout = {
        "height": 520, "margin": {"t": 40, "r": 10, "b": 50, "l": 60}, "hovermode": "closest",
        "xaxis": {"domain": [0, 0.47], "title": {"text": "epoch"}},
        "xaxis2": {"domain": [0.53, 1], "title": {"text": "epoch"}},
        "yaxis": {"title": {"text": "loss"}, "type": "log" if log else "linear"},
        "yaxis2": {"title": {"text": "error"}, "anchor": "x2"},
        "legend": {"font": {"size": 11}, "title": {"text": "click a run to hide or show it"}},
        "annotations": [_title("loss: dev solid, train dashed", 0.235),
                        _title("error: dev solid, train dashed", 0.765)],
        "updatemenus": [{"type": "buttons", "direction": "right", "x": 0, "y": 1.12,
                         "xanchor": "left", "showactive": True, "active": 1 if log else 0,
                         "buttons": [
                             {"label": "linear", "method": "relayout",
                              "args": [{"yaxis.type": "linear", "yaxis2.type": "linear"}]},
                             {"label": "log", "method": "relayout",
                              "args": [{"yaxis.type": "log", "yaxis2.type": "log"}]}]}]}
    return {"data": data, "layout": layout}


def _title(text: str, x: float) -> dict:
    return {"text": text, "x": x, "y": 1.0, "xref": "paper", "yref": "paper", "showarrow": False,
            "xanchor": "center", "yanchor": "bottom", "font": {"size": 13}}


def _escape(text: str) -> str:
    """Text for a hover template: no HTML, no %{...} placeholders."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("%", "%%"))


def axis_values(values: list, distribution) -> tuple[list, dict, str]:
    """(x values, axis settings, axis title suffix) for a parameter on the sweep's own scale:
    log for a loguniform, log of 1 − β for a one_minus_loguniform, categories for choices."""
    if isinstance(distribution, Choice):
        order = [encode(o) for o in distribution.options]
        return [encode(v) for v in values], {"type": "category", "categoryorder": "array",
                                             "categoryarray": order}, ""
    if isinstance(distribution, OneMinusLogUniform):
        return [1 - v for v in values], {"type": "log"}, " (1 − value, log scale)"
    if isinstance(distribution, LogUniform):
        return list(values), {"type": "log"}, " (log scale)"
    return list(values), {"type": "linear"}, ""


def parameter_figure(sweep: dict) -> dict:
    """Each hyperparameter against the dev metric, one panel each, on the sweep's scale."""
    keys = list(sweep["values"])
    columns = min(3, len(keys)) or 1
    rows = math.ceil(len(keys) / columns)
    data, layout = [], {"height": 300 * rows, "margin": {"t": 30, "r": 10, "b": 50, "l": 60},
                        "showlegend": False, "annotations": []}
    for i, key in enumerate(keys):
        x, axis, suffix = axis_values(sweep["values"][key], sweep["distributions"].get(key))
        suffix_name = "" if i == 0 else str(i + 1)
        column, row = i % columns, i // columns
        left, bottom = column / columns, 1 - (row + 1) / rows
        layout[f"xaxis{suffix_name}"] = {**axis, "domain": [left + 0.06, left + 1 / columns - 0.02],
                                         "anchor": f"y{suffix_name}",
                                         "title": {"text": key + suffix, "font": {"size": 11}}}
        layout[f"yaxis{suffix_name}"] = {"domain": [bottom + 0.12 / rows, bottom + 1 / rows - 0.04],
                                         "anchor": f"x{suffix_name}",
                                         "title": {"text": sweep["metric"]}}
        data.append({"type": "scatter", "mode": "markers", "x": x, "y": sweep["metric_values"],
                     "xaxis": f"x{suffix_name}", "yaxis": f"y{suffix_name}",
                     "text": sweep["trials"], "marker": {"size": 7, "color": "#1f77b4",
                                                         "opacity": 0.75},
                     "hovertemplate": f"%{{text}}<br>{_escape(key)} %{{x}}<br>"
                                      f"{sweep['metric']} %{{y:.4g}}<extra></extra>"})
    return {"data": data, "layout": layout}


def parallel_figure(sweep: dict) -> dict:
    """Parallel coordinates: one axis per hyperparameter (log ones as powers of ten, choices as
    their names) and the dev metric last; each trial a line coloured by that metric."""
    metric = sweep["metric_values"]
    keep = [i for i, v in enumerate(metric) if v is not None]
    dimensions = []
    for key, values in sweep["values"].items():
        dimensions.append(_dimension(key, [values[i] for i in keep],
                                     sweep["distributions"].get(key)))
    dimensions.append({"label": sweep["metric"], "values": [metric[i] for i in keep]})
    trace = {"type": "parcoords", "dimensions": dimensions,
             "line": {"color": [metric[i] for i in keep], "colorscale": "Viridis",
                      "reversescale": True, "showscale": True,
                      "colorbar": {"title": {"text": sweep["metric"]}}}}
    return {"data": [trace], "layout": {"height": 460, "margin": {"t": 60, "r": 80, "b": 30,
                                                                  "l": 80}}}


def _dimension(key: str, values: list, distribution) -> dict:
    if isinstance(distribution, Choice):
        names = [encode(o) for o in distribution.options]
        return {"label": key, "values": [names.index(encode(v)) for v in values],
                "tickvals": list(range(len(names))), "ticktext": names}
    if isinstance(distribution, (LogUniform, OneMinusLogUniform)):
        one_minus = isinstance(distribution, OneMinusLogUniform)
        logs = [math.log10(1 - v if one_minus else v) for v in values]
        low, high = math.floor(min(logs, default=0)), math.ceil(max(logs, default=1))
        ticks = list(range(low, high + 1))
        return {"label": f"{key} (1 − value)" if one_minus else key, "values": logs,
                "tickvals": ticks, "ticktext": [f"1e{t}" for t in ticks]}
    return {"label": key, "values": list(values)}


def importance_figure(ranked: list[dict]) -> dict:
    """The importance ranking as horizontal bars, the most important on top."""
    shown = list(reversed(ranked))
    trace = {"type": "bar", "orientation": "h", "x": [r["share"] for r in shown],
             "y": [r["key"] for r in shown], "marker": {"color": "#1f77b4"},
             "text": [f"{r['share']:.0%}" for r in shown], "textposition": "outside",
             "hovertemplate": "%{y}<br>share of variance %{x:.3f}<extra></extra>"}
    return {"data": [trace], "layout": {
        "height": 80 + 40 * len(ranked), "margin": {"t": 20, "r": 40, "b": 40, "l": 200},
        "xaxis": {"range": [0, 1.1], "title": {"text": "share of the dev metric's variance"}}}}
