"""Checkpoints: all a run needs to go on exactly where it stopped, in checkpoint.npz.

    net.<name>          the network's parameters and buffers (W1, b1, running_mean1, ...)
    best.<name>         the best state so far, which early stopping and divergence restore
    opt.<name>.<slot>   the optimizer's moving averages (V, S) of each parameter
    meta                JSON text: epoch, mini-batch steps, the optimizer's step count t, the
                        states of every random generator the loop draws from, the
                        early-stopping state, the seconds trained and the resolved config

A checkpoint is taken at the end of an epoch, after early stopping has judged it. Written with
layout.write_atomic (temporary file, fsync, rename); read with allow_pickle=False.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RunDirError
from . import layout

CHECKPOINT = "checkpoint.npz"
FORMAT = 1
NET, BEST, OPT, META = "net.", "best.", "opt.", "meta"


@dataclass
class Checkpoint:
    """The training state at the end of epoch `epoch`; arrays are copies, never live views."""

    epoch: int
    network: dict[str, np.ndarray]
    best: dict[str, np.ndarray]
    optimizer: dict[str, dict[str, np.ndarray]]  # parameter name -> slot (V, S) -> array
    meta: dict


def generators(experiment) -> dict[str, np.random.Generator]:
    """Every random generator the training loop draws from, by name."""
    found = {"shuffle": experiment.shuffle_rng}
    if getattr(experiment, "dropout_rng", None) is not None:
        found["dropout"] = experiment.dropout_rng
    if experiment.augment is not None:
        found["augment"] = experiment.augment.rng
    return found


def _number(value) -> dict | None:
    """A scalar with its type: a float32 best score must come back a float32, because NumPy
    compares a float32 with a Python float in float32 and with a float64 in float64."""
    if value is None:
        return None
    kind = type(value).__name__ if isinstance(value, (int, float)) and not isinstance(
        value, np.generic) else np.asarray(value).dtype.name
    return {"type": kind, "value": value.item() if isinstance(value, np.generic) else value}


def _unnumber(encoded: dict | None):
    if encoded is None:
        return None
    kind, value = encoded["type"], encoded["value"]
    if kind in ("int", "float"):
        return {"int": int, "float": float}[kind](value)
    return np.dtype(kind).type(value)


def capture(experiment, outcome) -> Checkpoint:
    """A copy of the state training has reached at the end of `outcome.epochs_run` epochs."""
    optimizer = experiment.optimizer
    meta = {
        "format": FORMAT, "epoch": outcome.epochs_run, "steps": outcome.steps,
        "optimizer": {"name": getattr(optimizer, "name", type(optimizer).__name__),
                      "t": int(optimizer.t)},
        "generators": {name: rng.bit_generator.state
                       for name, rng in generators(experiment).items()},
        "early_stopping": {"best_score": _number(outcome.best_score),
                           "patience_left": outcome.patience_left,
                           "best_epoch": outcome.best_epoch,
                           "best_dev_loss": _number(outcome.best_dev_loss),
                           "best_dev_value": _number(outcome.best_dev_value),
                           "monitor": outcome.monitor},
        "seconds": float(outcome.seconds),
        "first_step": outcome.first_step,
        "config": experiment.config.model_dump(mode="json"),  # what the state was trained with
    }
    return Checkpoint(
        outcome.epochs_run,
        {name: np.array(array, copy=True) for name, array in experiment.network.state().items()},
        # fit replaces the best state with a fresh copy when it improves, never changes it.
        outcome.best_state,
        {name: {slot: np.array(value, copy=True) for slot, value in slots.items()}
         for name, slots in optimizer.state.items()},
        meta)


def save(path: Path, checkpoint: Checkpoint) -> None:
    """checkpoint.npz, atomically: a crash leaves the previous checkpoint whole."""
    arrays = {NET + name: array for name, array in checkpoint.network.items()}
    arrays.update({BEST + name: array for name, array in checkpoint.best.items()})
    for name, slots in checkpoint.optimizer.items():
        arrays.update({f"{OPT}{name}.{slot}": value for slot, value in slots.items()})
    arrays[META] = np.array(json.dumps(checkpoint.meta, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    layout.write_atomic(Path(path), buffer.getvalue())


def load(path: Path) -> Checkpoint:
    """A checkpoint.npz; RunDirError naming the file if it is unreadable or incomplete."""
    path = Path(path)
    arrays = layout.read_npz(path, "no such checkpoint",
                             "not a readable checkpoint ({problem}); delete it to train the run "
                             "again from its first epoch")
    try:
        meta = json.loads(str(arrays.pop(META)))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        epoch = meta["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r}")
        missing = [key for key in ("steps", "optimizer", "generators", "early_stopping",
                                   "seconds") if key not in meta]
        if missing:
            raise ValueError(f"no {missing[0]!r}")
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise RunDirError(f"{path}: not a dlrun checkpoint (meta: {error}); delete it to train "
                          "the run again from its first epoch") from None
    optimizer: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        if key.startswith(OPT):
            name, _, slot = key[len(OPT):].rpartition(".")
            optimizer.setdefault(name, {})[slot] = value
    return Checkpoint(epoch, _prefixed(arrays, NET), _prefixed(arrays, BEST), optimizer, meta)


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


def restore(experiment, checkpoint: Checkpoint, outcome, source: str) -> None:
    """Put the checkpoint's state back into the experiment's objects and `outcome`, copying
    arrays into the existing ones: they may be views into one buffer the engine owns."""
    meta = checkpoint.meta
    try:
        experiment.network.load_state(checkpoint.network, source=source)
        wanted = getattr(experiment.optimizer, "name", type(experiment.optimizer).__name__)
        if meta["optimizer"]["name"] != wanted:
            raise ValueError(f"{source} holds {meta['optimizer']['name']} state; the config "
                             f"trains with {wanted}")
        _restore_optimizer(experiment.optimizer, checkpoint.optimizer, meta["optimizer"]["t"],
                           experiment.network.params, source)
        live = generators(experiment)
        saved = meta["generators"]
        if set(saved) != set(live):
            raise ValueError(f"{source} holds the generators {', '.join(sorted(saved))}; the "
                             f"config draws from {', '.join(sorted(live))}")
        for name, rng in live.items():
            rng.bit_generator.state = saved[name]
        stopping = meta["early_stopping"]
        missing = [name for name in experiment.network.state() if name not in checkpoint.best]
        if missing:
            raise ValueError(f"{source} has no best {missing[0]!r}")
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: incomplete checkpoint ({error!r})") from None
    outcome.epochs_run, outcome.steps = checkpoint.epoch, int(meta["steps"])
    outcome.best_state = {name: np.array(value, copy=True)
                          for name, value in checkpoint.best.items()}
    outcome.best_score = _unnumber(stopping["best_score"])
    outcome.patience_left = stopping["patience_left"]
    outcome.best_epoch = stopping["best_epoch"]
    outcome.best_dev_loss = _unnumber(stopping["best_dev_loss"])
    outcome.best_dev_value = _unnumber(stopping["best_dev_value"])
    outcome.monitor = stopping["monitor"]
    outcome.seconds = float(meta["seconds"])
    outcome.first_step = meta.get("first_step")  # absent from older checkpoints


def _restore_optimizer(optimizer, saved: dict, t: int, params: dict, source: str) -> None:
    unknown = [name for name in saved if name not in params]
    if unknown:
        raise ValueError(f"{source}: optimizer state for {unknown[0]!r}, which this network "
                         "does not have")
    for name, slots in saved.items():
        target = optimizer.state.setdefault(name, {})
        for slot, value in slots.items():
            if slot in target:
                if np.shape(target[slot]) != value.shape:
                    raise ValueError(f"{source}: optimizer {slot} of {name} has shape "
                                     f"{value.shape}, this network needs {np.shape(target[slot])}")
                target[slot][...] = value
            else:
                if value.shape != params[name].shape:
                    raise ValueError(f"{source}: optimizer {slot} of {name} has shape "
                                     f"{value.shape}, this network needs {params[name].shape}")
                target[slot] = value.astype(params[name].dtype, copy=True)
    optimizer.t = t


class Keeper:
    """Takes a checkpoint in memory at the end of every epoch and writes it every `every`
    epochs and when the run stops early, so an interrupt loses no finished epoch."""

    def __init__(self, run_dir: Path, experiment, every: int, before_write=()):
        self.path = Path(run_dir) / CHECKPOINT
        self.experiment, self.every = experiment, every
        self.before_write = list(before_write)  # flush files the checkpoint must not outrun
        self.latest: Checkpoint | None = None
        self.written: int | None = None

    def epoch_end(self, outcome) -> None:
        self.latest = capture(self.experiment, outcome)
        if self.every and outcome.epochs_run % self.every == 0:
            self.write()

    def write(self) -> None:
        if self.latest is None or self.latest.epoch == self.written:
            return
        for flush in self.before_write:
            flush()
        save(self.path, self.latest)
        self.written = self.latest.epoch

    def finish(self, status: str) -> None:
        """A completed run needs no checkpoint; any other keeps its latest one to resume from
        (a pruned sweep trial is paused at a rung: the sweep may promote it and go on)."""
        if status == "completed":
            self.path.unlink(missing_ok=True)
        else:
            self.write()
