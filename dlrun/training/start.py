"""What `dlrun train` does with its arguments: a new run from CONFIG and dotted overrides, or a
stopped run gone on with from its directory (--resume); and the command that goes on with a run
that stopped before its end."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import config as config_module
from ..errors import ConfigError
from ..rundir import reader
from . import resume as resume_module
from . import session
from .loop import Reporter


def train(config: Path | None, overrides: list[str], runs_dir: str | Path = "runs",
          name: str | None = None, resume: Path | None = None,
          reporter_for: Callable[[str], Reporter] | None = None) -> tuple[Path, dict]:
    """Train into a new run directory, or go on in `resume`'s; returns (run directory, summary).
    reporter_for(title), if given, makes the progress reporter once the run's name is known."""
    overrides = list(overrides)
    if resume is not None:
        overrides = resume_module.arguments(config, overrides, name)
        reporter = reporter_for(resume.name) if reporter_for else None
        return resume_module.resume(resume, overrides, reporter)
    if config is None:
        raise ConfigError("give a CONFIG to train, or --resume RUN_DIR to go on with a run")
    if name is not None:
        overrides.append(f"name={name}")
    experiment = config_module.load(config, overrides)
    reporter = reporter_for(experiment.name) if reporter_for else None
    try:
        return session.run(experiment, runs_dir, reporter)
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
