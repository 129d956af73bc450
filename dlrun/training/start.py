"""What `dlrun train` does with its arguments: a new run from CONFIG and dotted overrides, or a
stopped run gone on with from its directory (--resume); the command that goes on with a run that
stopped before its end; and the config `dlrun config` shows, as train would save it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import compose
from .. import config as config_module
from ..errors import ConfigError
from ..naming import run_name
from ..rundir import reader
from ..rundir import tags as tags_module
from ..strategy import folds
from . import resume as resume_module
from . import session
from .experiment import prepare
from .loop import Reporter


def train(config: Path | None, overrides: list[str], runs_dir: str | Path = "runs",
          name: str | None = None, resume: Path | None = None,
          reporter_for: Callable[[str], Reporter] | None = None, tags: list[str] = (),
          note: str | None = None, data_changed: bool = False, figures: str = "now"
          ) -> tuple[Path, dict] | folds.CrossValidation:
    """Train into a new run directory, or go on in `resume`'s; returns (run directory, summary),
    or for a config with data.folds the cross-validation's K runs (and final model).
    `name` is a run name or a template of config keys (naming.py); reporter_for(title), if given,
    makes the progress reporter once the run's name is known. `data_changed` lets a resumed
    run train on data that changed since it started (said in its summary). `figures` as in
    session.run ("later": drawn by a detached child while the command prints and exits)."""
    overrides = list(overrides)
    if resume is not None:
        if tags or note:
            raise ConfigError("--tag, --note: a resumed run keeps its tags and note; change "
                              "them with dlrun tag and dlrun note")
        overrides = resume_module.arguments(config, overrides, name)
        reporter = reporter_for(resume.name) if reporter_for else None
        return resume_module.resume(resume, overrides, reporter, data_changed=data_changed,
                                    figures=figures)
    if config is None:
        raise ConfigError("give a CONFIG to train, or --resume RUN_DIR to go on with a run")
    if data_changed:
        raise ConfigError("--data-changed goes with --resume RUN_DIR: a new run reads its data "
                          "as it is")
    labels = {"tags": [tags_module.check_tag(tag) for tag in tags],
              "note": tags_module.check_note(note or "")}
    experiment = config_module.load(config, overrides)
    experiment = experiment.model_copy(update={"name": run_name(experiment, overrides, name)})
    try:
        if experiment.data.folds:  # K runs in one directory, then the final model
            return folds.cross_validate(experiment, runs_dir, reporter_for or (lambda title: None),
                                        source=config)
        reporter = reporter_for(experiment.name) if reporter_for else None
        return session.run(experiment, runs_dir, reporter, source=config, labels=labels,
                           figures=figures)
    except ConfigError as error:  # found once the data is loaded: say where the key is
        raise config_module.located(error, config, overrides) from None


def next_step(run_dir: Path, summary: dict) -> str | None:
    """The command that goes on with a run that was interrupted or diverged, else None."""
    if summary["status"] == "interrupted":
        return f"go on with: dlrun train --resume {run_dir}"
    if summary["status"] == "diverged":  # the same step would diverge again
        rate = reader.read_config(run_dir).train.learning_rate / 10
        return (f"go on with a smaller step: dlrun train --resume {run_dir} "
                f"train.learning_rate={rate:g}")
    return None


def resolved_text(path: str | Path, overrides: list[str] = (), origin: bool = False) -> str:
    """What `dlrun config` prints: the config as `dlrun train` would save it (every default
    filled in), checked against its data without training; with `origin`, where each value
    comes from."""
    data, lines = config_module.read(path, overrides)
    experiment = config_module.validate(data, str(path), lines, overrides)
    try:  # what only the data can tell: labels that do not fit the output, a missing file
        prepare(experiment)
    except ConfigError as error:
        raise config_module.located(error, path, overrides, lines) from None
    if not origin:
        return experiment.to_yaml()
    resolved = experiment.model_dump(mode="json")
    return compose.annotated_yaml(resolved, compose.origins(resolved, lines, str(path), overrides))
