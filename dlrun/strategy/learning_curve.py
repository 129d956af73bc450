"""Learning curves: would more data help?

The experiment is trained on growing shares of its training split (data.subsample; for one seed
a smaller share is a subset of a larger one) while the dev set stays the same, and train and dev
error are drawn against the number of training examples, with the error no model can beat: the
Bayes error of the generator the data come from (dlrun.data.bayes), else the config's
diagnose.human_error. Read at the largest size, with diagnose.min_gap as the size of a change
worth counting:

    train error above the target              high bias: more data will not lower it
    train error already at the dev error      no gap left for more data to close
    dev error falling and the gap closing     more data is likely to help (both per doubling
                                              of the data, fitted over the last three sizes)
    otherwise                                 the curve has flattened: little to gain

With --seeds N each size is trained N times with seeds seed, seed + 1, ... (each seed splits the
data anew; within a seed every size shares one dev set) and the means are drawn, with the
spread as error bars.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ExperimentConfig
from ..errors import ConfigError
from ..rundir import layout

TABLE, FIGURE = "learning_curve.csv", "learning_curve.png"
SPEC = "learning_curve.yaml"  # the experiment; not config.yaml, which would make this a run
DEFAULT_SIZES = (0.1, 0.2, 0.4, 0.7, 1.0)


@dataclass
class Point:
    share: float
    examples: int  # training examples at this share (the mean over seeds)
    train: list[float] = field(default_factory=list)  # one error per seed
    dev: list[float] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return float(np.mean(self.dev) - np.mean(self.train))


@dataclass
class Curve:
    directory: Path
    task: str
    points: list[Point]
    reference: float | None  # the error no model can beat, or None
    reference_name: str  # "Bayes error" or "human-level error"
    verdict: str  # "more data likely helps", "more data unlikely to help", "flattened"
    reason: str


def parse_sizes(text: str) -> list[float]:
    """"0.1,0.2,1" -> [0.1, 0.2, 1.0]: shares in (0, 1], each once, in increasing order."""
    try:
        sizes = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--sizes: expected shares of the training split such as "
                          f"0.1,0.2,0.4,0.7,1.0, got {text!r}") from None
    if not sizes or any(not 0 < size <= 1 for size in sizes):
        raise ConfigError(f"--sizes: every share must be in (0, 1], got {text!r}")
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"--sizes: {text!r} repeats a share")
    return sorted(sizes)


def reference_error(config: ExperimentConfig) -> tuple[float | None, str]:
    """(the error no model can beat, its name): the generator's Bayes error when the data are
    generated and it can be computed, else diagnose.human_error when it is a number."""
    if config.data.generator is not None:
        from ..data.bayes import bayes_error
        from ..data.synthetic import GENERATORS
        from ..engine.registry import build
        try:
            return bayes_error(build(GENERATORS, "generator", config.data.generator)).value, \
                "Bayes error"
        except NotImplementedError:
            pass
    human = config.diagnose.human_error
    if isinstance(human, (int, float)) and not isinstance(human, bool):
        return float(human), "human-level error"
    return None, ""


def at_share(config: ExperimentConfig, share: float, seed: int) -> ExperimentConfig:
    data = config.model_dump(mode="json")
    data["seed"] = seed
    data["data"]["subsample"] = share
    data["name"] = f"{config.name}-{round(100 * share)}pct-s{seed}"[:64]
    from ..config import validate
    return validate(data, "the learning-curve config")


def learning_curve(config: ExperimentConfig, runs_dir: str | Path = "runs",
                   sizes=DEFAULT_SIZES, seeds: int = 1, on_run=None) -> Curve:
    """Train the config at each share of its training split, `seeds` times, in one directory of
    ordinary runs; write learning_curve.csv and .png there. on_run(point, summary) after each."""
    from ..training import session
    from ..training.experiment import prepare

    if config.data.subsample != 1:
        raise ConfigError("data.subsample: a learning curve sets it at each size; leave it at 1",
                          key="data.subsample")
    if seeds < 1:
        raise ConfigError(f"--seeds: must be at least 1, got {seeds}")
    prepare(at_share(config, sizes[0], config.seed))  # bad input is refused before any file
    directory = layout.create(runs_dir, f"{config.name}-curve")
    layout.write_atomic(directory / SPEC, config.to_yaml().encode("utf-8"))
    points, task = [], None
    for share in sizes:
        point, examples = Point(share, 0), []
        for offset in range(seeds):
            run_dir, summary = session.run(at_share(config, share, config.seed + offset),
                                           directory)
            final = summary.get("final", {})
            task = summary["task"]
            point.train.append(final["train"]["error"])
            point.dev.append(final["dev"]["error"])
            point.runs.append(run_dir.name)
            examples.append(summary["examples"]["train"])
            if on_run is not None:
                on_run(point, summary)
        point.examples = round(float(np.mean(examples)))
        points.append(point)
    reference, name = reference_error(config)
    verdict, reason = judge(points, reference, config.diagnose.min_gap,
                            config.diagnose.human_margin)
    curve = Curve(directory, task, points, reference, name, verdict, reason)
    layout.write_atomic(directory / TABLE, table_csv(curve).encode("utf-8"))
    draw(curve, directory / FIGURE)
    return curve


def judge(points: list[Point], reference: float | None, min_gap: float,
          human_margin: float) -> tuple[str, str]:
    """(verdict, reason) at the largest size (see the module docstring). The trend is the
    least-squares slope of dev error and gap against log2(examples) over the last three sizes:
    the change one doubling of the data brings, steadier than the last step alone."""
    last = points[-1]
    train, dev = float(np.mean(last.train)), float(np.mean(last.dev))
    if reference is not None and train - reference > max(min_gap, human_margin * reference):
        return ("more data unlikely to help",
                (f"the train error {_pct(train)} is above the target {_pct(reference)}: the "
                 "model underfits even the examples it has; a bigger network or longer training "
                 "first"))
    if dev - train <= min_gap:
        return ("more data unlikely to help",
                (f"the train error {_pct(train)} is already at the dev error {_pct(dev)}: "
                 "there is no gap for more examples to close"))
    if len(points) < 2:
        return "flattened", "one size only: give --sizes with several shares to see a trend"
    dev_slope, gap_slope = per_doubling(points[-3:])
    trend = (f"over the last {len(points[-3:])} sizes each doubling of the data moved the dev "
             f"error by {_signed(dev_slope)} and the gap by {_signed(gap_slope)}")
    if dev_slope < 0 and gap_slope < 0:
        return "more data likely helps", (f"{trend}; a gap of {_pct(last.gap)} is left to close "
                                          f"at {last.examples} examples")
    return "flattened", f"{trend}: more of the same data gains little; regularize instead"


def per_doubling(points: list[Point]) -> tuple[float, float]:
    """Slopes of the mean dev error and of the gap against log2(training examples)."""
    x = np.log2([max(p.examples, 1) for p in points])
    if np.ptp(x) == 0:
        return 0.0, 0.0
    dev = [float(np.mean(p.dev)) for p in points]
    gap = [p.gap for p in points]
    return float(np.polyfit(x, dev, 1)[0]), float(np.polyfit(x, gap, 1)[0])


def _signed(value: float) -> str:
    return f"{100 * value:+.1f} points"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def table_csv(curve: Curve) -> str:
    import pandas as pd

    frame = pd.DataFrame({
        "share": [p.share for p in curve.points],
        "examples": [p.examples for p in curve.points],
        "seeds": [len(p.train) for p in curve.points],
        "train_error": [np.mean(p.train) for p in curve.points],
        "train_error_std": [np.std(p.train) for p in curve.points],
        "dev_error": [np.mean(p.dev) for p in curve.points],
        "dev_error_std": [np.std(p.dev) for p in curve.points],
        "gap": [p.gap for p in curve.points],
        "reference_error": [curve.reference] * len(curve.points),
        "runs": [" ".join(p.runs) for p in curve.points]})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue()


def draw(curve: Curve, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.6), dpi=100)
    axis = fig.add_subplot()
    x = [p.examples for p in curve.points]
    scale = 1 if curve.task == "regression" else 100
    for split, color in (("train", "tab:blue"), ("dev", "tab:orange")):
        values = [getattr(p, split) for p in curve.points]
        axis.errorbar(x, [scale * np.mean(v) for v in values],
                      yerr=[scale * np.std(v) for v in values], color=color, marker="o",
                      capsize=3, label=f"{split} error")
    if curve.reference is not None:
        axis.axhline(scale * curve.reference, color="tab:green", ls="--",
                     label=f"{curve.reference_name} ({scale * curve.reference:.3g}"
                           f"{'' if scale == 1 else '%'})")
    axis.set(xlabel="training examples",
             ylabel="RMSE" if curve.task == "regression" else "error (%)",
             title=f"learning curve: {curve.verdict}")
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    layout.write_atomic(path, buffer.getvalue())
    return path
