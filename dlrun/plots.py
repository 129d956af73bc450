"""Figures of a run: curves.png (cost, error, learning rate; mini-batch costs when recorded) and,
for 2-D inputs, boundary.png (the decision boundary over the data, as in the course's figures).

matplotlib is imported inside the functions and drives Figure objects directly (Agg canvas, no
pyplot state), so importing dlrun stays fast and plotting never needs a display.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import DataError, RunDirError
from .rundir import layout, reader

EWA_BETA = 0.9  # the course's β: an average over about the last 1/(1 − β) = 10 mini-batches
GRID = 250  # points per side of the boundary grid
MAX_POINTS = 3000  # scatter at most this many examples per panel, so dense data stays readable
SPLIT_STYLE = {"train": ("tab:blue", "-"), "train_dev": ("tab:purple", "-."),
               "dev": ("tab:orange", "-")}


def ewa(values: np.ndarray, beta: float = EWA_BETA) -> np.ndarray:
    """Exponentially weighted average v_t = β·v_{t-1} + (1 − β)·θ_t, divided by (1 − β^t) so
    the zero start does not drag the first values down."""
    averaged = np.empty(len(values))
    v = 0.0
    for t, value in enumerate(values, start=1):
        v = beta * v + (1 - beta) * value
        averaged[t - 1] = v / (1 - beta ** t)
    return averaged


def read_table(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """A CSV of numbers as {column: float array}; empty cells are NaN."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory has no metrics to plot") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: cannot read ({error})") from None
    if not rows:
        raise RunDirError(f"{path}: empty; expected a header line")
    header, body = rows[0], [row for row in rows[1:] if len(row) == len(rows[0])]
    missing = [column for column in required if column not in header]
    if missing:
        raise RunDirError(f"{path}:1: the header has no {missing[0]!r} column; expected "
                          f"{', '.join(required)}")
    try:
        values = np.array([[float(cell) if cell else np.nan for cell in row] for row in body])
    except ValueError as error:
        raise RunDirError(f"{path}: not a table of numbers ({error})") from None
    values = values.reshape(len(body), len(header))
    return {name: values[:, j] for j, name in enumerate(header)}


def _figure(width: float, height: float, rows: int, columns: int, top: float = 0.6):
    """A Figure of rows × columns axes with margins in inches (a layout engine would double the
    drawing time)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, bottom=0.55 / height,
                        top=1 - top / height, wspace=0.28, hspace=0.45)
    return fig, np.atleast_1d(fig.subplots(rows, columns)).ravel()


def _save(fig, path: Path) -> None:
    """Write the PNG in one rename: a figure drawn while someone looks is whole or absent."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    layout.write_atomic(Path(path), buffer.getvalue())


def _spans_decades(axis, decades: float = 2.0) -> bool:
    """Whether the positive values plotted on axis span more than `decades` powers of ten, so
    that a linear scale would show most of them as a flat line at the bottom."""
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=float)
                             for line in axis.get_lines()] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.min() <= 0:
        return False
    return np.log10(values.max() / values.min()) > decades


def draw_curves(metrics: dict[str, np.ndarray], summary: dict, path: Path,
                steps: dict[str, np.ndarray] | None = None) -> Path:
    """curves.png: cost and error of every split against epochs, the learning rate, and (when
    recorded) every mini-batch's cost with its bias-corrected exponentially weighted average."""
    epochs = metrics.get("epoch", np.arange(1, len(next(iter(metrics.values()), [])) + 1))
    if len(epochs) == 0:
        return _draw_no_epoch(summary, path, steps)
    fig, axes = _figure(12, 8, 2, 2) if steps else _figure(15, 4.2, 1, 3)
    regression = summary.get("task") == "regression"
    best = summary.get("best_epoch")
    cost_axis, error_axis, lr_axis = axes[:3]
    if "train_cost" in metrics:
        cost_axis.plot(epochs, metrics["train_cost"], color="0.6", lw=1,
                       label="train cost (as optimized)")
    for split, (color, style) in SPLIT_STYLE.items():
        if f"{split}_loss" in metrics:
            cost_axis.plot(epochs, metrics[f"{split}_loss"], color=color, ls=style, lw=1.6,
                           label=f"{split} loss")
        if f"{split}_error" in metrics:
            error_axis.plot(epochs, metrics[f"{split}_error"], color=color, ls=style, lw=1.6,
                            label=f"{split} {'RMSE' if regression else 'error'}")
    cost_axis.set(title="cost", xlabel="epoch", ylabel="loss")
    if _spans_decades(cost_axis):  # a huge first loss would flatten the rest of the curve
        cost_axis.set_yscale("log")
        cost_axis.set_title("cost (log scale)")
    error_axis.set(title="RMSE" if regression else "error (fraction misclassified)",
                   xlabel="epoch")
    for axis in (cost_axis, error_axis):
        if best:
            axis.axvline(best, color="0.3", ls=":", lw=1, label=f"best epoch ({best})")
        axis.legend(fontsize="small", loc="upper right")
        axis.grid(alpha=0.3)
    if "learning_rate" in metrics and np.isfinite(metrics["learning_rate"]).any():
        lr_axis.plot(epochs, metrics["learning_rate"], color="tab:green", lw=1.6)
        lr_axis.set_ylim(0, 1.1 * np.nanmax(metrics["learning_rate"]))
    lr_axis.set(title="learning rate", xlabel="epoch")
    lr_axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    lr_axis.grid(alpha=0.3)
    if steps:
        step_axis = axes[3]
        step_axis.plot(steps["step"], steps["cost"], color="tab:blue", alpha=0.45, lw=0.7,
                       label="mini-batch cost")
        step_axis.plot(steps["step"], ewa(steps["cost"]), color="tab:red", lw=1.4,
                       label=f"weighted average (β = {EWA_BETA}, bias-corrected)")
        step_axis.set(title="cost of each mini-batch", xlabel="step (mini-batch)")
        if _spans_decades(step_axis):
            step_axis.set_yscale("log")
        step_axis.legend(fontsize="small", loc="upper right")
        step_axis.grid(alpha=0.3)
    fig.suptitle(f"{summary.get('name', '')}  [{summary.get('status', '')}]")
    _save(fig, path)
    return path


def no_epoch_message(summary: dict, steps: bool = False) -> str:
    """Why a run has no epoch to plot, from its summary: how it ended and its first step;
    `steps`: the cost of each step it took is drawn below."""
    status, reason = summary.get("status", "unknown"), summary.get("stop_reason")
    lines = [f"No epoch finished: the run {status} in its first epoch"
             + (f" ({reason})" if reason else "") + "."]
    cost = (summary.get("first_step") or {}).get("cost")
    if isinstance(cost, (int, float)):
        lines.append(f"The first step's cost, before any update, was {cost:.4g}.")
    lines.append("Below, the cost of each mini-batch step it took; " if steps else
                 "There is no curve to draw; ")
    lines[-1] += "dlrun diagnose says what went wrong."
    return "\n".join(lines)


def _draw_no_epoch(summary: dict, path: Path, steps: dict[str, np.ndarray] | None) -> Path:
    """curves.png of a run that ended before its first epoch did: the reason in words, and the
    cost of each mini-batch it took when those were recorded."""
    import textwrap

    has_steps = bool(steps) and len(steps.get("step", ())) > 0
    fig, (axis,) = _figure(10, 4.2, 1, 1, top=1.6 if has_steps else 0.6)
    message = "\n".join(textwrap.fill(line, 90)
                        for line in no_epoch_message(summary, has_steps).split("\n"))
    if has_steps:
        from matplotlib.ticker import MaxNLocator

        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.plot(steps["step"], steps["cost"], color="tab:blue", marker="o", lw=1,
                  label="mini-batch cost")
        axis.set(title="cost of each mini-batch", xlabel="step (mini-batch)")
        if _spans_decades(axis):
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        fig.text(0.5, 1 - 0.45 / 4.2, message, ha="center", va="top", fontsize="medium")
    else:
        axis.set_axis_off()
        axis.text(0.5, 0.5, message, ha="center", va="center", fontsize="large",
                  transform=axis.transAxes)
    fig.suptitle(f"{summary.get('name', '')}  [{summary.get('status', '')}]")
    fig.savefig(path)
    return path


def draw_boundary(network, mean, std, task: str, classes: list[str], path: Path,
                  points: dict[str, tuple[np.ndarray, np.ndarray]],
                  errors: dict[str, float] | None = None,
                  features: list[str] | None = None) -> Path:
    """boundary.png: the network's prediction over a grid of the 2-D input plane, with the
    examples of each split (in the data's own units) on top, one panel per split."""
    from matplotlib.colors import ListedColormap

    errors = errors or {}
    features = features if features and len(features) == 2 else ["x1", "x2"]
    mean = np.zeros(2) if mean is None else np.asarray(mean, dtype=float)
    scale = np.ones(2) if std is None else np.asarray(std, dtype=float)
    shown = np.vstack([X for X, _ in points.values() if len(X)]) if points else np.zeros((0, 2))
    if len(shown):
        low, high = shown.min(axis=0), shown.max(axis=0)
    else:  # no data to show: cover three standard deviations around the training mean
        low, high = mean - 3 * scale, mean + 3 * scale
    margin = np.where(high > low, 0.08 * (high - low), 1.0)
    low, high = low - margin, high + margin
    axis_0, axis_1 = np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID)
    grid_0, grid_1 = np.meshgrid(axis_0, axis_1)
    grid = np.column_stack([grid_0.ravel(), grid_1.ravel()])
    predicted = network.predict((grid - mean) / scale)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    panels = list(points) or ["grid"]
    fig, axes = _figure(5.4 * len(panels), 4.8, 1, len(panels), top=0.4)
    for axis, split in zip(axes, panels):
        if task == "regression":
            values = np.asarray(predicted).reshape(len(grid), -1)[:, 0].reshape(grid_0.shape)
            filled = axis.contourf(grid_0, grid_1, values, levels=20, cmap="viridis", alpha=0.8)
            fig.colorbar(filled, ax=axis, label="prediction")
        else:
            k = max(len(classes), 2)
            colors = ListedColormap([palette[i % len(palette)] for i in range(k)])
            if np.ndim(predicted) == 1:  # sigmoid: P(second class)
                labels = (predicted > 0.5).astype(int)
                axis.contour(grid_0, grid_1, predicted.reshape(grid_0.shape), levels=[0.5],
                             colors="k", linewidths=1.2)
            else:
                labels = np.argmax(predicted, axis=1)
            axis.contourf(grid_0, grid_1, labels.reshape(grid_0.shape),
                          levels=np.arange(k + 1) - 0.5, cmap=colors, alpha=0.25)
        if split in points:
            X, y = points[split]
            if task == "regression":
                axis.scatter(X[:, 0], X[:, 1], c=np.asarray(y).reshape(len(y), -1)[:, 0],
                             cmap="viridis", s=14, edgecolors="k", linewidths=0.3)
            else:
                for index, name in enumerate(classes):
                    chosen = y == index
                    axis.scatter(X[chosen, 0], X[chosen, 1], s=14, color=palette[index % 10],
                                 edgecolors="k", linewidths=0.3, label=f"class {name}")
                axis.legend(fontsize="small", loc="upper right", framealpha=0.8)
        title = split if split != "grid" else "decision regions"
        if split in errors:
            title += (f"  (RMSE {errors[split]:.3g})" if task == "regression"
                      else f"  (error {errors[split]:.1%})")
        axis.set(title=title, xlabel=features[0], ylabel=features[1], xlim=(low[0], high[0]),
                 ylim=(low[1], high[1]))
    _save(fig, path)
    return path


def draw(run_dir: Path, network, dataset, summary: dict | None = None) -> list[Path]:
    """Write the run's figures from the network and data in hand (the end of `dlrun train`,
    which passes the summary it is about to write); else summary.json is read."""
    points = {}
    if dataset.n_features == 2:  # only then are examples drawn: at most MAX_POINTS of each split
        for split in ("train", "dev"):
            X, y = dataset.splits[split]
            rows = np.arange(len(X))
            if len(X) > MAX_POINTS:
                rows = np.sort(np.random.default_rng(0).choice(len(X), MAX_POINTS, replace=False))
            if len(rows):
                points[split] = (dataset.raw(np.asarray(X[rows], dtype=float)), y[rows])
    return _draw_all(Path(run_dir), network, points, dataset.mean, dataset.std, dataset.features,
                     summary)


def _draw_all(run_dir: Path, network, points, mean, std, features,
              summary: dict | None = None) -> list[Path]:
    summary = summary if summary is not None else reader.read_summary(run_dir)
    steps_path = run_dir / layout.STEPS
    steps = read_table(steps_path, ("step", "cost")) if steps_path.exists() else None
    written = [draw_curves(read_table(run_dir / layout.METRICS), summary, run_dir / layout.CURVES,
                           steps)]
    if network.dense[0].W.shape[1] == 2:
        errors = {split: values["error"] for split, values in summary.get("final", {}).items()}
        written.append(draw_boundary(network, mean, std, summary.get("task", "binary"),
                                     summary.get("classes", []), run_dir / layout.BOUNDARY,
                                     points, errors, features))
    return written


def redraw(run_dir: str | Path) -> tuple[list[Path], list[str]]:
    """`dlrun plot`: rebuild the network from the run directory, reload its data (same seed, same
    split) and draw again. Returns (files written, notes on what could not be drawn)."""
    from .predict import load_model
    from .training.experiment import load_data

    run_dir = Path(run_dir)
    model = load_model(run_dir)
    if model.network.dense[0].W.shape[1] == 2:
        try:
            return draw(run_dir, model.network, load_data(model.config)), []
        except DataError as error:
            note = f"boundary drawn without the examples: {error}"
            return _draw_all(run_dir, model.network, {}, model.mean, model.std,
                             model.features), [note]
    return _draw_all(run_dir, model.network, {}, model.mean, model.std, model.features), []
