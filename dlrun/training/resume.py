"""`dlrun train --resume RUN_DIR`: go on with a run that stopped before its end.

The run's own config.yaml rebuilds the data, network and optimizer; its checkpoint.npz puts back
the parameters, optimizer state, random generators and early-stopping state of the last finished
epoch it recorded; metrics.csv (and steps.csv) are cut back to that epoch. Training then goes on in
the same directory, so a resumed run ends with the numbers it would have had uninterrupted.
"""

from __future__ import annotations

import time
from pathlib import Path

from .. import config as config_module
from .. import yamlio
from ..data.fingerprint import changed_splits
from ..errors import ConfigError, RunDirError
from ..rundir import checkpoint, layout, reader, runlock
from . import loop, record, session
from .experiment import Experiment, prepare

RESUMABLE = ("interrupted", "diverged", "failed", "running")  # running: only once it is stale
# Keys a resumed run may change: none of them alters the shapes or meaning of the saved state.
ADJUSTABLE = ("train.learning_rate", "train.epochs", "train.decay", "diagnose")
OUTCOME_KEYS = ("error", "final", "bias_variance", "bayes_error", "divergence", "stop_reason",
                "best_epoch", "best_dev_loss", "best_dev_metric", "epochs_run", "steps", "duration_seconds")


def arguments(config: Path | None, overrides: list[str], name: str | None) -> list[str]:
    """The overrides of `dlrun train --resume RUN_DIR KEY=VALUE ...`, where the first override
    lands in CONFIG's place on the command line."""
    if name is not None:
        raise ConfigError("--name: a resumed run keeps its name and directory")
    if config is not None:
        if "=" not in str(config):
            raise ConfigError(f"{config}: give CONFIG or --resume RUN_DIR, not both (a run "
                              "directory holds its own config.yaml)")
        overrides = [str(config), *overrides]
    for override in overrides:
        key = override.partition("=")[0].strip()
        if not any(key == allowed or key.startswith(allowed + ".") for allowed in ADJUSTABLE):
            raise ConfigError(f"override {override!r}: a resumed run may change only "
                              f"{', '.join(ADJUSTABLE)}; anything else would not match its "
                              "checkpoint (start a new run instead)")
    return overrides


def _check_status(run_dir: Path, summary: dict, paused_ok: bool = False) -> str:
    status = summary.get("status")
    if status in RESUMABLE or (paused_ok and status == "pruned"):
        return status
    if status in ("completed", "pruned"):
        raise RunDirError(f"{run_dir}: {status}, nothing to resume; train a new run to go further")
    raise RunDirError(f"{run_dir / layout.SUMMARY}: status: expected one of "
                      f"{', '.join(RESUMABLE)} to resume, got {status!r}")


def resume(run_dir: str | Path, overrides: list[str] = (),
           reporter: loop.Reporter | None = None, stop_check=None, paused_ok: bool = False,
           data_changed: bool = False, figures: str = "now",
           checkpoints: bool = True) -> tuple[Path, dict]:
    """Continue the run in run_dir from its checkpoint (from its first epoch if it has none);
    returns (run directory, summary) like session.run. Data that differs from what the run
    started with is refused, or trained on when `data_changed` says so (and recorded).
    `paused_ok`: a sweep promoting a trial it stopped at a rung goes on with it; `stop_check`,
    `figures` and `checkpoints` as in session.run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    _check_status(run_dir, reader.read_summary(run_dir), paused_ok)  # before the lock: nothing written in vain
    lock = runlock.acquire(run_dir, wait=False)
    try:
        summary = reader.read_summary(run_dir)  # again, now that nobody else can change it
        previous = _check_status(run_dir, summary, paused_ok)
        experiment, outcome = _restore(run_dir, list(overrides))
        changed = _check_data(run_dir, summary, experiment.dataset, data_changed)
        epoch = outcome.epochs_run if outcome else 0
        if outcome is not None:
            columns = loop.metric_columns(experiment.network, experiment.dataset)
            _cut(run_dir / layout.METRICS, columns, "epoch", epoch)
            if experiment.config.train.record_steps:
                _cut(run_dir / layout.STEPS, layout.STEP_COLUMNS, "step", outcome.steps)
        if overrides:
            layout.write_atomic(run_dir / layout.CONFIG, experiment.config.to_yaml().encode("utf-8"))
        for key in OUTCOME_KEYS:
            summary.pop(key, None)
        summary["status"] = "running"
        summary.setdefault("resumed", []).append({
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "from_epoch": epoch,
            "previous_status": "stale" if previous == "running" else previous,
            "overrides": list(overrides), "command": layout.command_line(),
            "versions": layout.environment(), **({"data_changed": changed} if changed else {})})
        layout.write_json(run_dir / layout.SUMMARY, summary)
    except BaseException:
        lock.release()
        raise
    run_dir, summary = record.train_in(run_dir, experiment, summary, lock, reporter,
                                        stop_check, resumed=outcome, figures=figures,
                                        checkpoints=checkpoints)
    return run_dir, session.refit_if_asked(run_dir, summary, experiment.config, reporter)


def _check_data(run_dir: Path, summary: dict, dataset, data_changed: bool) -> list[str]:
    """How the splits differ from the fingerprints the run started with (nothing for a run from
    before fingerprints); RunDirError unless `data_changed`, which takes the new data on."""
    changed = changed_splits(summary.get("fingerprints"), dataset.fingerprints,
                             summary.get("examples"))
    if not changed:
        return []
    if not data_changed:
        raise RunDirError(f"{run_dir}: the data changed since the run started ({'; '.join(changed)}"
                          "); go on with --data-changed to train on the new data, or start a "
                          "new run")
    summary["fingerprints"] = dataset.fingerprints
    summary["examples"] = {name: len(X) for name, (X, _) in dataset.splits.items()}
    return changed


def _restore(run_dir: Path, overrides: list[str]) -> tuple[Experiment, loop.Outcome | None]:
    """The experiment rebuilt from the run's config, its state put back from checkpoint.npz
    (None for the outcome when there is no checkpoint: training starts again at epoch 1)."""
    config_path = run_dir / layout.CONFIG
    recorded = reader.read_config(run_dir)  # missing or invalid: said before anything else
    path = run_dir / checkpoint.CHECKPOINT
    saved = checkpoint.load(path) if path.exists() else None
    if saved is not None:
        _check_same_config(recorded, saved, config_path)
    # Read again only to apply overrides: parsing config.yaml costs more than a few epochs.
    config = reader.read_config(run_dir, overrides) if overrides else recorded
    if saved is None:
        return prepare(config), None
    if saved.epoch > config.train.epochs:
        raise ConfigError(f"train.epochs: {config.train.epochs} is fewer than the {saved.epoch} "
                          f"epochs {path} has already trained")
    # The weights come from the checkpoint: a warm-start file need not exist any more.
    model = config.model.model_copy(update={"init_from": None})
    experiment = prepare(config.model_copy(update={"model": model}))
    experiment.config = config
    outcome = loop.Outcome()
    try:
        checkpoint.restore(experiment, saved, outcome, str(path))
    except ValueError as error:
        raise RunDirError(f"{error} (it does not match {config_path})") from None
    return experiment, outcome


def _check_same_config(config: config_module.ExperimentConfig, saved: checkpoint.Checkpoint,
                       config_path: Path) -> None:
    """Refuse a config.yaml that no longer says what the checkpoint was trained with (but for
    the keys a resume may change): edited or damaged, it would train something else."""
    trained = saved.meta.get("config")
    if not isinstance(trained, dict):
        return  # nothing recorded to compare with
    try:  # read as config.yaml was, so both say the same in the same form (absolute data paths)
        trained = config_module.validate(trained, str(config_path)).model_dump(mode="json")
    except ConfigError:
        pass  # compared as recorded: the first key that differs is named
    now, then = yamlio.flatten(config.model_dump(mode="json")), yamlio.flatten(trained)
    for key in dict.fromkeys([*now, *then]):
        adjustable = any(key == a or key.startswith(a + ".") for a in ADJUSTABLE)
        if not adjustable and now.get(key) != then.get(key):
            raise RunDirError(f"{config_path}: {key} is {now.get(key)!r}, but the checkpoint was "
                              f"trained with {then.get(key)!r}; the file was edited or damaged")


def _cut(path: Path, header: list[str], column: str, count: int) -> None:
    """Keep the header and the first `count` rows of a CSV the run appends to, which must be
    numbered 1..count in `column`; later rows (and a row cut short by a kill) go."""
    try:
        text = path.read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the checkpoint is at {column} {count}, so the file "
                          f"should hold {count} rows") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: cannot read ({error})") from None
    lines = text.split("\n")[:-1]  # what follows the last line end is a row cut short, or ""
    if not lines or lines[0].rstrip("\r").split(",") != header:
        raise RunDirError(f"{path}:1: the header is not the one this run's config writes "
                          f"({','.join(header)})")
    at = header.index(column)
    for number, line in enumerate(lines[1:count + 1], start=1):
        cells = line.rstrip("\r").split(",")  # csv writes \r\n; the endings are kept as found
        try:
            good = len(cells) == len(header) and float(cells[at]) == number
        except ValueError:
            good = False
        if not good:
            raise RunDirError(f"{path}:{number + 1}: expected the row of {column} {number}; the "
                              "file is damaged, so the run cannot go on from its checkpoint")
    if len(lines) < count + 1:
        raise RunDirError(f"{path}: {len(lines) - 1} rows, but the checkpoint is at {column} "
                          f"{count}; the file lost rows, so the run cannot go on from it")
    layout.write_atomic(path, ("\n".join(lines[:count + 1]) + "\n").encode("utf-8"))
