"""A training session: claim a new run directory, train in it and write everything a run holds
(record.py), then, with train.refit, train the final model on train + dev (refit.py)."""

from __future__ import annotations

from pathlib import Path

from ..config import ExperimentConfig
from ..rundir import layout
from .experiment import Experiment, prepare
from .loop import Reporter
from .record import begin, train_in


def run(config: ExperimentConfig, runs_dir: str | Path = "runs",
        reporter: Reporter | None = None, stop_check=None, *, source: str | Path | None = None,
        labels: dict | None = None, figures: str = "now",
        checkpoints: bool = True) -> tuple[Path, dict]:
    """Train the experiment into a new run directory; returns (run directory, summary).

    `stop_check(row)`, called after every epoch, may return a reason to stop: the run then ends
    with status "pruned" and that reason. `source` is the config file (its git state goes into
    the provenance); `labels` ({"tags", "note"}) go to meta.json before training starts.
    `figures` and `checkpoints` as in record.train_in."""
    experiment = prepare(config)  # every input error surfaces here, before any file exists
    run_dir, summary, lock = open_run(experiment, runs_dir, source, labels)
    run_dir, summary = train_in(run_dir, experiment, summary, lock, reporter, stop_check,
                                figures=figures, checkpoints=checkpoints)
    return run_dir, refit_if_asked(run_dir, summary, config, reporter)


def open_run(experiment: Experiment, runs_dir: str | Path, source: str | Path | None = None,
             labels: dict | None = None) -> tuple[Path, dict, object]:
    """Claim a new run directory for a prepared experiment and begin() it; (run directory,
    summary, lock)."""
    run_dir = layout.create(runs_dir, experiment.config.name)
    summary, lock = begin(run_dir, experiment, source, labels)
    return run_dir, summary, lock


def refit_if_asked(run_dir: Path, summary: dict, config: ExperimentConfig, reporter=None) -> dict:
    """With train.refit, once the run has completed: the final model on train + dev, in
    run_dir/refit (dlrun.training.refit); the run's summary, with its refit entry."""
    if not (config.train.refit and summary["status"] == "completed"):
        return summary
    from .refit import refit  # lazy: only a run with train.refit trains a second model
    return refit(run_dir, reporter)
