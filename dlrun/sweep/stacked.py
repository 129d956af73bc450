"""Sweep trials trained together: one stacked computation per group of trials that share what
stacking needs, each trial still ending in its own ordinary run directory.

Trials group when they share the data section, dtype, layer sizes, activation, output, batch size,
epochs, shuffling and optimizer kind, and use nothing the stacked engine leaves out (batch norm,
augmentation, recorded steps, memory-mapped data). Everything else may differ trial by trial:
learning rate and its schedule, β's, ε, λ₂, λ₁, keep_prob, initialization, seed, early stopping.
Each trial is prepared exactly as alone (its data, initial weights and generators come from the
same `prepare`), trained in its row of the stack (dlrun.engine.stacked), and written by the same
session code. A trial that stops (early stopping, pruning, divergence) leaves the stack; the
others go on. What does not fit a group runs as an ordinary trial.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import blas
from .. import config as config_module
from ..engine import stacked as engine
from ..rundir import layout
from ..training import record, session
from ..training.experiment import prepare
from ..training.loop import metric_columns
from ..training.stacked_fit import fit_stacked
from .trial import (
    TrialResult,
    TrialTask,
    _stopper,
    collect_run,
    execute,
    scratch_dir,
    scratch_prefix,
)

# Groups of up to GROUP trials: from benchmarks/bench_stacked.py on 2 cores, the gain per trial
# grows to about K = 32 on course-sized networks and flattens after.
GROUP = 32
MIN_GROUP = 4  # fewer trials stacked train slower than one by one (0.45x at K = 1, 0.9x at 2)
MAX_PARAMETERS = 20_000  # per trial: above, one trial's products already keep a core busy
MAX_DATA_VALUES = 4_000_000  # K × rows × features held as one stacked array


@dataclass(frozen=True)
class StackedTask:
    """Trials a worker trains as one stacked computation."""

    tasks: tuple[TrialTask, ...]

    @property
    def indices(self) -> list[int]:
        return [task.index for task in self.tasks]


def group_key(config: dict, source: str) -> str | None:
    """What trials must share to be stacked, as text; None if this one cannot be."""
    try:
        cfg = config_module.validate(config, source)
    except Exception:  # noqa: BLE001 - its own run reports the error
        return None
    model, train = cfg.model, cfg.train
    if model.batch_norm or train.record_steps:
        return None  # augmentation and memory-mapped data are found once the data is there
    return json.dumps([cfg.data.model_dump(mode="json"), cfg.dtype, model.hidden_layers,
                       model.activation, model.output, train.batch_size, train.epochs,
                       train.shuffle, train.optimizer["name"]], sort_keys=True)


def group(tasks: list[TrialTask], slots: int, size: int = GROUP) -> list:
    """Tasks as they go to the workers: groups of MIN_GROUP to `size` trials that can share a
    stack, split so every worker gets one while there are enough, and single trials for the rest."""
    by_key: dict[str, list[TrialTask]] = {}
    jobs: list = []
    for task in tasks:
        # A trial that may pause at a pruning rung, or goes on from that pause, needs the
        # checkpoint a stack does not take: it runs alone.
        pausable = task.stop_epoch is not None or task.resume_from is not None
        key = None if pausable else group_key(task.config, task.source)
        if key is None:
            jobs.append(task)
        else:
            by_key.setdefault(key, []).append(task)
    for members in by_key.values():
        pieces = max(-(-len(members) // size), min(slots, len(members) // MIN_GROUP) or 1)
        for piece in np.array_split(np.arange(len(members)), pieces):
            chosen = [members[i] for i in piece]
            if len(chosen) >= MIN_GROUP:
                jobs.append(StackedTask(tuple(chosen)))
            else:
                jobs += chosen
    return jobs


def execute_group(job: StackedTask) -> list[TrialResult]:
    """Train a group in temporary directories, BLAS on one thread; never raises for a bad trial."""
    results: list[TrialResult] = []
    with blas.one_thread(), layout.scratch_writes():
        members = []
        for task in job.tasks:
            try:
                members.append((task, prepare(config_module.validate(task.config, task.source))))
            except Exception:  # noqa: BLE001 - run alone, it fails with its own error
                results.append(execute(task))
        stack, alone = _split(members)
        results += [execute(task) for task, _ in alone]
        if len(stack) == 1:
            results.append(execute(stack[0][0]))
        elif stack:
            results += _train_together(stack)
    return results


def _split(members: list) -> tuple[list, list]:
    """(trials that share one stack, trials to run alone) once the data and networks exist."""
    def fits(experiment):
        X = experiment.dataset.splits["train"][0]
        network = experiment.network
        return (isinstance(X, np.ndarray) and experiment.augment is None
                and engine.stackable(network) is None
                and sum(p.size for p in network.params.values()) <= MAX_PARAMETERS)

    def shape(experiment):
        splits = experiment.dataset.splits
        return (engine.signature(experiment.network), type(experiment.optimizer),
                tuple((name, X.shape) for name, (X, _) in splits.items()))

    candidates = [(task, e) for task, e in members if fits(e)]
    alone = [(task, e) for task, e in members if not fits(e)]
    if not candidates:
        return [], alone
    first = shape(candidates[0][1])
    stack = [(task, e) for task, e in candidates if shape(e) == first]
    alone += [(task, e) for task, e in candidates if shape(e) != first]
    rows = len(stack) * candidates[0][1].dataset.splits["train"][0].size
    if rows > MAX_DATA_VALUES:
        return [], members
    return stack, alone


def _train_together(stack: list) -> list[TrialResult]:

    tasks = [task for task, _ in stack]
    experiments = [experiment for _, experiment in stack]
    started_at = time.time()
    try:
        trained = fit_stacked(experiments, [_stopper(task.stop_epoch) if task.stop_epoch else None
                                            for task in tasks])
    except Exception:  # noqa: BLE001 - the stack failed: each trial on its own says why
        return [execute(task) for task in tasks]
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(group=True),
                                     dir=scratch_dir()) as scratch:
        return [_write(Path(scratch), task, experiment, rows, outcome, started_at)
                for task, experiment, (rows, outcome) in zip(tasks, experiments, trained)]


def _write(scratch: Path, task: TrialTask, experiment, rows: list[dict], outcome,
           started_at: float) -> TrialResult:
    """The trial's run directory, written in scratch by the session's own code, as bytes."""
    run_dir, summary = None, {}
    try:
        run_dir, summary, lock = session.open_run(experiment, scratch)
        try:
            writer = layout.MetricsWriter(
                run_dir / layout.METRICS, metric_columns(experiment.network, experiment.dataset),
                flush_every=len(rows) + 1)  # written at once: one flush
            for row in rows:
                writer.write(row)
            writer.close()
            _, summary = record.conclude(run_dir, experiment, summary, outcome, started_at,
                                         lock, figures="none")
        finally:
            lock.release()
    except Exception as error:  # noqa: BLE001 - a failed trial is a result
        summary = {**summary, "status": "failed", "error": f"{type(error).__name__}: {error}",
                   "traceback": traceback.format_exc(limit=5)}  # with what the run recorded
    return collect_run(run_dir, task, summary)


def run_job(job) -> list[TrialResult]:
    """What a worker runs: one trial, or a group of trials stacked into one computation."""
    if isinstance(job, TrialTask):
        return [execute(job)]
    return execute_group(job)


def job_indices(job) -> list[int]:
    """The trial numbers a job trains."""
    return [job.index] if isinstance(job, TrialTask) else job.indices
