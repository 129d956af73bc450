"""Sweeps: many trials drawn from one search space, run in parallel, pruned, ranked and refined.

    runs/<name>-<YYYYmmdd-HHMMSS>-<id>/
        sweep.yaml     the search space, runnable again with `dlrun sweep`
        sweep.json     seed, sampler, pruner, metric optimized and constraints, where trials
                       ran, status
        sweep.csv      one row per trial: sampled values, status, losses and errors
        trial-0000/    each trial's ordinary run directory
        report.html    the trials as a page (dlrun.report), written at the end
        run.lock       held while the sweep runs (dlrun.rundir.runlock), so a killed one is stale
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import config as config_module
from .. import metrics, yamlio
from ..compare.collect import _sort_key, select, sort
from ..data import fingerprint
from ..errors import ConfigError, DlrunError, RunDirError
from ..rundir import layout, reader, runlock
from ..training.experiment import prepare
from . import asha, samplers, stacked
from .samplers import sampling_rng  # noqa: F401 - where callers have always found it
from .space import Choice, RandInt, SearchSpace, encode
from .trial import flush_to_disk, store

SPACE, INFO, TABLE = "sweep.yaml", "sweep.json", "sweep.csv"
FIGURED = 3  # the best trials whose figures a sweep draws at its end; `dlrun plot` draws any other
RESULT_COLUMNS = ["epochs_run", "best_epoch", "train_loss", "train_error", "dev_loss", "dev_error",
                  "seconds"]


@dataclass
class Options:
    trials: int = 20
    sampler: str = "random"  # random, grid or tpe (dlrun.sweep.samplers)
    seed: int | None = 0  # None: the space's default (default_seed)
    optimize: str = "dev_error"  # as `dlrun compare --optimize`: -NAME for the highest
    satisfy: list[str] = field(default_factory=list)  # as `dlrun compare --satisfy`
    batch: int | None = None  # points TPE proposes at once; default: the backend's slots
    prune: bool = False
    prune_factor: int = 3  # ASHA sends on the best third of each rung
    prune_min_epochs: int | None = None  # first rung; default: a ninth of the epochs
    seeds: int = 1  # each point trained with this many seeds, ranked by their mean
    stack: bool = True  # train trials that share an architecture as one computation (stacked.py)


@dataclass
class Trial:
    index: int
    name: str  # its run directory inside the sweep directory
    seed: int
    values: dict[str, Any]
    config: dict
    epochs: int
    summary: dict | None = None
    point: int = 0  # the values' number: trials of one point differ only by seed


class SweepReporter:
    """What a sweep tells the outside world; the CLI draws a live display from it."""

    def start(self, total: int, slots: int) -> None: ...
    def update(self, done: int, running: int, best: dict | None) -> None: ...
    def finish(self) -> None: ...


def load_space(path: str | Path, overrides: list[str] = ()) -> SearchSpace:
    """Read a config with distributions, apply dotted overrides; every failure is a ConfigError."""
    data, lines = config_module.read(path, overrides)
    return SearchSpace.from_data(data, str(path), lines, overrides)


def sweep_name(space: SearchSpace) -> str:
    name = space.template.get("name", "experiment")
    return name if isinstance(name, str) else "sweep"


def default_seed(space: SearchSpace, refined_from: dict | None = None) -> int:
    """The config's seed; after refining, the refined sweep's seed + 1, so the draws are fresh."""
    if refined_from is not None:
        return (refined_from.get("seed") or 0) + 1
    seed = space.template.get("seed", 0)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0


def check_space(space: SearchSpace) -> None:
    """Refuse a space whose range ends make an invalid config, before any trial runs."""
    def validate(values):
        config_module.validate(space.instantiate(values), space.source, space.lines,
                               space.overrides)

    validate(space.middle())  # a mistake outside the ranges is named as it is
    for parameter, value, values in space.extremes():
        try:
            validate(values)
        except ConfigError as error:
            raise ConfigError(f"{error} (with {parameter.key} = {encode(value)}, an end of "
                              f"{parameter.distribution!r})") from None


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def data_seed(space: SearchSpace, options: Options) -> int | None:
    """The seed every trial's data is generated and split from: the config's data.seed, else its
    seed, or, when `seed` is itself swept, the sweep's; None when data.seed is swept."""
    given = (space.template.get("data") or {}).get("seed")
    if given is not None:
        return given if _whole(given) else None
    seed = space.template.get("seed", 0)
    return seed if _whole(seed) else options.seed


def plan(space: SearchSpace, options: Options, sampler=None) -> list[Trial]:
    """Every trial of a sampler that knows its points in advance (random draws, the grid's
    points), each point trained `options.seeds` times."""
    sampler = sampler or samplers.make(options.sampler, space, options.seed, options.trials)
    return [trial for point in range(sampler.trials)
            for trial in point_trials(space, options, point, sampler.ask(point), sampler.trials)]


def point_trials(space: SearchSpace, options: Options, point: int, values: dict,
                 points: int) -> list[Trial]:
    """The trials of one point: its values, trained `options.seeds` times.

    Every trial is scored on the same data: generation and split come from the config's seed.
    The model's seed (init, shuffle, dropout) is the config's too, so a trial is the standalone
    run of its values, unless `seed` is swept or --seeds N trains each point with the seeds
    s, s + 1, ..., s + N - 1 (s: the config's seed); data.seed then keeps the data fixed."""
    keys = {p.key for p in space.parameters}
    if options.seeds > 1 and "seed" in keys:
        raise ConfigError("--seeds: the config sweeps seed itself; give one or the other")
    fixed = data_seed(space, options)
    pin_data = ("seed" in keys or options.seeds > 1) and \
        (space.template.get("data") or {}).get("seed") is None
    base = sweep_name(space)[:58]
    width = max(4, len(str(points * options.seeds - 1)))
    trials = []
    for k in range(options.seeds):
        index = point * options.seeds + k
        data = space.instantiate(values)
        if options.seeds > 1:
            data["seed"] = default_seed(space) + k
        if pin_data:
            data["data"] = {**(data.get("data") or {}), "seed": fixed}
        if "name" not in keys:
            data["name"] = f"{base}-{index:0{width}d}"
        try:
            experiment = config_module.validate(data, space.source, space.lines, space.overrides)
        except ConfigError as error:
            raise ConfigError(f"{error} (in trial {index}: {encode(values)})") from None
        trials.append(Trial(index, f"trial-{index:0{width}d}", experiment.seed, values, data,
                            experiment.train.epochs, point=point))
    return trials


def rungs(max_epochs: int, factor: int, min_epochs: int | None) -> list[int]:
    """Epochs at which ASHA compares trials: min, min·factor, ... below max."""
    epoch = min_epochs or max(1, round(max_epochs / factor ** 2))
    found = []
    while epoch < max_epochs:
        found.append(epoch)
        epoch *= factor
    return found


def _value(summary: dict, split: str, metric: str):
    return (summary.get("final") or {}).get(split, {}).get(metric)


def _cell(value) -> Any:
    """A sampled value as sweep.csv shows it: numbers and names as they are, the rest as JSON."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    return encode(value)


def _row(trial: Trial, summary: dict) -> dict:
    return {
        "trial": trial.index, "point": trial.point, "run": trial.name,
        "status": summary["status"], "seed": trial.seed,
        **{key: _cell(value) for key, value in trial.values.items()},
        "epochs_run": summary.get("epochs_run"), "best_epoch": summary.get("best_epoch"),
        "train_loss": _value(summary, "train", "loss"),
        "train_error": _value(summary, "train", "error"),
        "dev_loss": _value(summary, "dev", "loss"), "dev_error": _value(summary, "dev", "error"),
        "seconds": summary.get("duration_seconds"),
        "dev_set": fingerprint.short((summary.get("fingerprints") or {}).get("dev"))}


def results_frame(space: SearchSpace, trials: list[Trial], seeds: int = 1):
    """One row per finished trial, in trial order; with several seeds per point, `point` says
    which trials share their values."""
    rows = [_row(trial, trial.summary) for trial in sorted(trials, key=lambda t: t.index)]
    columns = ["trial", *(["point"] if seeds > 1 else []), "run", "status", "seed",
               *[p.key for p in space.parameters], *RESULT_COLUMNS, "dev_set"]
    return pd.DataFrame(rows, columns=columns)


def _comparable(frame):
    """The sweep table under the names `dlrun compare` gives its columns (duration)."""
    return frame.assign(duration=frame["seconds"])


def objective(frame, optimize: str) -> tuple[str, bool]:
    """(column, maximize) of --optimize NAME or -NAME, resolved as compare resolves it."""
    column, ascending = _sort_key(optimize, _comparable(frame).columns, "--optimize")
    return column, not ascending


def check_choice(space: SearchSpace, options: Options) -> None:
    """Refuse an --optimize or --satisfy that names no column, before any trial runs."""
    empty = _comparable(results_frame(space, []))
    objective(empty, options.optimize)
    ranked(empty, options.optimize, options.satisfy)


def points_frame(frame):
    """With several seeds per point (a `point` column), one row per point: the mean over its
    trials with a dev error, the sample standard deviation in `<result>_std`, how many in `seeds`."""
    if "point" not in frame.columns:
        return frame
    ranked = frame[frame["dev_error"].notna()]
    ranked = ranked[np.isfinite(ranked["dev_error"].astype(float))]
    numbers = [c for c in RESULT_COLUMNS if c != "best_epoch"]
    by = ranked.groupby("point", sort=False)
    points = by.first()
    means, spreads = by[numbers].mean(), by[numbers].std(ddof=1)
    points[numbers] = means
    for column in numbers:
        points[f"{column}_std"] = spreads[column]
    points["seeds"] = by.size()
    points["status"] = by["status"].agg(lambda s: ", ".join(
        f"{n} {status}" for status, n in s.value_counts().items()) if s.nunique() > 1
        else s.iloc[0])
    return points.reset_index()


def ranked(frame, optimize: str = "dev_error", satisfy=()):
    """The trials (points, with several seeds) meeting every --satisfy constraint that have a
    finite value of the optimized metric, best first (ties by dev loss, then number), as
    `dlrun compare` chooses. A pruned trial never ranks: it stopped early by design, and its
    figures are those of a shorter training (a point ranks only if none of its trials was)."""
    pruned = frame["status"] == "pruned"
    if "point" in frame.columns:
        pruned = frame["point"].isin(frame.loc[pruned, "point"])
    table = _comparable(points_frame(frame[~pruned]))
    for expression in satisfy:
        table = select(table, expression, "--satisfy")
    column, _ = objective(table, optimize)
    values = pd.to_numeric(table[column], errors="coerce")  # as compare's pick: words never win
    table = table[values.notna() & np.isfinite(values)]
    return sort(table, optimize, "--optimize").drop(columns="duration")


def dev_sets(trials) -> int:
    """How many different dev sets the finished trials were scored on (by fingerprint)."""
    return len(fingerprint.distinct(((t.summary or {}).get("fingerprints") or {}).get("dev")
                                    for t in trials))


TABLE_EVERY = 1.0  # seconds between rewrites of sweep.csv while trials finish
BEST_EVERY = 0.25  # seconds between rankings for the progress line's best so far


class Writes:
    """Storing trials in one background thread, in order: fsyncing a trial's files costs more
    than training a course-sized trial, and the thread waits on the disk while training goes on."""

    def __init__(self):
        self.pool = None
        self.pending: list = []

    def submit(self, function, *args) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="dlrun-store")
        self.pending.append(self.pool.submit(function, *args))

    def wait(self) -> None:
        """Block until everything submitted is written; re-raise the first failure."""
        pending, self.pending = self.pending, []
        try:
            for future in pending:
                future.result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None


@dataclass
class Sweep:
    """A running sweep: its directory, its trials and what is known of them."""

    directory: Path
    space: SearchSpace
    options: Options
    trials: list[Trial]
    info: dict
    finished: dict[int, Trial] = field(default_factory=dict)
    lock: Any = None  # the directory's run lock, held while the sweep runs (dlrun.rundir.runlock)
    sampler: Any = None
    writes: Writes = field(default_factory=lambda: Writes())
    table_written: float = -math.inf
    sync_each: bool = field(default_factory=lambda: not hasattr(os, "sync"))
    _ranking: tuple | None = None  # (what it ranked, results_frame, ranked)

    @functools.cached_property
    def objective(self) -> tuple[str, bool]:
        """(column, maximize) of the sweep's --optimize."""
        return objective(_comparable(results_frame(self.space, [])), self.options.optimize)

    def metric(self, trial: Trial, summary: dict) -> float | None:
        """The optimized metric of a trial's summary (pruning and TPE watch it), lower better."""
        column, maximize = self.objective
        row = _row(trial, summary)
        value = row["seconds"] if column == "duration" else row.get(column)  # as _comparable
        if not _finite(value):
            return None
        return -float(value) if maximize else float(value)

    def summary_at(self, trial: Trial, epoch: int) -> dict | None:
        """What a finished trial's summary would have said paused at `epoch` (its report at a
        rung there), from its own files: its summary if it paused there, else the metrics.csv row
        of the weights it would have kept then; None if it never got that far."""
        summary = trial.summary or {}
        epochs_run = summary.get("epochs_run")
        if not _whole(epochs_run) or epochs_run < epoch:
            return None
        if epochs_run == epoch and summary.get("status") == "pruned":
            return summary
        try:
            rows = reader.read_metrics(self.directory / trial.name / layout.METRICS, notes=[])
        except DlrunError:
            return None
        kept = _kept_epoch(trial.config, rows, epoch)
        if kept is None:
            return None
        row = {column: float(values[kept - 1]) for column, values in rows.items()}
        return {**summary, "status": "pruned", "epochs_run": epoch, "best_epoch": kept,
                "duration_seconds": float(rows["seconds"][epoch - 1]) if "seconds" in rows
                else None,
                "final": {split: {name: row.get(f"{split}_{name}") for name in ("loss", "error")}
                          for split in ("train", "dev")}}

    def finish_trial(self, trial: Trial, summary: dict, files: dict[str, bytes]) -> None:
        # A paused trial's checkpoint served its promotion; a finished one needs none.
        files = {name: data for name, data in files.items() if name != "checkpoint.npz"}
        summary = {**summary, "command": layout.command_line(),
                   "sweep": {"directory": self.directory.name, "trial": trial.index,
                             "values": trial.values}}
        trial.summary = summary
        self.writes.submit(store, self.directory, trial.name, summary, files, self.sync_each)
        self.finished[trial.index] = trial
        if time.monotonic() - self.table_written >= TABLE_EVERY:
            self.write_table()

    def ranking(self) -> tuple:
        """(results_frame of the finished trials, `ranked` of it), computed again only when a
        trial has finished since: the progress line, sweep.json, the table shown and the figures
        drawn all ask for it."""
        state = [(index, trial.summary) for index, trial in self.finished.items()]
        if self._ranking is None or not _same_objects(self._ranking[0], state):
            frame = results_frame(self.space, list(self.finished.values()), self.options.seeds)
            self._ranking = (state, frame,
                             ranked(frame, self.options.optimize, self.options.satisfy))
        return self._ranking[1:]

    def write_table(self) -> None:
        """Rewrite sweep.csv once the trials it lists are stored."""
        frame, _ = self.ranking()
        self.writes.submit(layout.write_atomic, self.directory / TABLE,
                           frame.to_csv(index=False).encode())
        self.table_written = time.monotonic()

    def settle(self) -> None:
        """Wait until every finished trial is stored, sweep.csv lists them all, and all of it is
        on disk (one sync for every trial stored since the last: see trial.store)."""
        self.write_table()
        self.writes.wait()
        flush_to_disk()

    def write_info(self, **changes) -> None:
        self.info.update(changes)
        layout.write_json(self.directory / INFO, self.info)

    def best(self) -> dict | None:
        """The trial (point, with several seeds) the sweep chooses so far: the best optimized
        metric among those meeting every constraint."""
        _, frame = self.ranking()
        if frame.empty:
            return None
        row = frame.iloc[0]
        column, _ = objective(frame, self.options.optimize)
        chosen = {"optimize": column, "value": _float(row[column])}
        if self.options.seeds == 1:
            return {"trial": int(row["trial"]), "dev_error": _float(row["dev_error"]), **chosen}
        point = int(row["point"])
        return {"point": point, "dev_error": _float(row["dev_error"]),
                "trials": sorted(t.index for t in self.finished.values()
                                 if t.point == point and _finite(_value(t.summary, "dev", "error"))),
                **chosen}


def _same_objects(before: list[tuple], now: list[tuple]) -> bool:
    """Whether two lists of (index, summary) name the same trials with the very same summaries
    (kept alive by `before`, so an identity cannot be reused)."""
    return len(before) == len(now) and all(
        i == j and a is b for (i, a), (j, b) in zip(before, now))


def _kept_epoch(config: dict, rows: dict, epoch: int) -> int | None:
    """The epoch whose weights a run paused at `epoch` keeps: with early stopping the best so far
    by its monitored dev metric (as training/loop.fit judges it), else `epoch` itself."""
    if "epoch" not in rows or len(rows["epoch"]) < epoch:
        return None
    stopping = config_module.validate(config, "trial").train.early_stopping
    if not stopping:
        return epoch
    column = f"dev_{stopping.metric}"
    if column not in rows:
        return None
    best, kept = math.inf, None
    for number, value in enumerate(rows[column][:epoch], start=1):
        turned = metrics.improvement(stopping.metric, float(value))
        if turned < best - stopping.min_delta:
            best, kept = turned, number
    return kept


def _float(value):
    return float(value) if _finite(value) else None


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.number)) and math.isfinite(value)


def rerun_options(options: Options) -> list[str]:
    """The command-line options that give a sweep of the same space the same trials."""
    found = ["--trials", str(options.trials), "--seed", str(options.seed),
             "--sampler", options.sampler, "--optimize", options.optimize]
    for expression in options.satisfy:
        found += ["--satisfy", shlex.quote(expression)]
    if options.seeds > 1:
        found += ["--seeds", str(options.seeds)]
    if options.batch:
        found += ["--batch", str(options.batch)]
    if options.prune:
        found += ["--prune", "--prune-factor", str(options.prune_factor)]
        if options.prune_min_epochs:
            found += ["--prune-min-epochs", str(options.prune_min_epochs)]
    return found


def create(space: SearchSpace, runs_dir: str | Path, options: Options, where: str,
           refined_from: dict | None = None) -> Sweep:
    """Check the space, plan every trial, then claim the sweep directory (nothing before that)."""
    if options.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {options.trials}")
    check_space(space)
    check_choice(space, options)
    _, maximize = objective(_comparable(results_frame(space, [])), options.optimize)
    sampler = samplers.make(options.sampler, space, options.seed, options.trials, maximize)
    # An adaptive sampler proposes points as results come in; the others are known now.
    trials = [] if sampler.adaptive else plan(space, options, sampler)
    first = trials[0] if trials else point_trials(space, options, 0, space.middle(),
                                                  sampler.trials)[0]
    try:  # data errors, and keys that do not fit the data, now
        prepare(config_module.validate(first.config, space.source))
    except ConfigError as error:
        raise config_module.located(error, space.source, space.overrides, space.lines) from None
    directory = layout.create(runs_dir, sweep_name(space))
    # Held until the sweep ends, released by the kernel if it is killed: `dlrun ls` tells a live
    # sweep from a stale one, and `dlrun rm` never deletes one still running.
    lock = runlock.acquire(directory, wait=True)
    header = ("# The search space of this sweep; run it again the same way with\n"
              f"#   dlrun sweep sweep.yaml {' '.join(rerun_options(options))}\n")
    layout.write_atomic(directory / SPACE, (header + yamlio.dump(space.template)).encode())
    pruner = None
    if options.prune:
        pruner = {"name": "asha", "factor": options.prune_factor,
                  "rungs": rungs(first.epochs if not trials else max(t.epochs for t in trials),
                                 options.prune_factor, options.prune_min_epochs),
                  "watches": options.optimize, "promoted": "resumed from its checkpoint"}
    info = {"name": directory.name, "status": "running", "seed": options.seed,
            "mode": sampler.name, "trials": sampler.trials * options.seeds,
            "seeds": options.seeds, "data_seed": data_seed(space, options),
            "sampler": {**sampler.settings(), "seed": options.seed, "batch": options.batch},
            "pruner": pruner, "optimize": options.optimize, "satisfy": list(options.satisfy),
            "options": asdict(options),  # what `dlrun sweep --resume` goes on with
            "parameters": {p.key: repr(p.distribution) for p in space.parameters},
            "where": where, "refined_from": refined_from, "command": layout.command_line(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": layout.environment()}
    sweep = Sweep(directory, space, options, trials, info, lock=lock, sampler=sampler)
    try:
        sweep.write_info()
        sweep.settle()
    except BaseException:
        lock.release()
        raise
    return sweep


def run(sweep: Sweep, backend, reporter: SweepReporter | None = None) -> Sweep:
    """Run every trial on the backend, each job chosen when a slot frees (dlrun.sweep.asha:
    asynchronous successive halving when pruning). Trials already in sweep.finished (a resumed
    sweep) are not run again."""
    try:
        return _run(sweep, backend, reporter or SweepReporter())
    finally:
        if sweep.lock is not None:
            sweep.lock.release()


def _run(sweep: Sweep, backend, reporter: SweepReporter) -> Sweep:
    scheduler = schedule(sweep, backend.slots)
    started = time.time()
    reporter.start(sweep.sampler.trials * sweep.options.seeds, backend.slots)
    try:
        _drive(sweep, backend, scheduler, reporter)
        for trial, result, reason in scheduler.close():  # still paused: outranked at its rung
            sweep.finish_trial(trial, {**result.summary, "stop_reason": reason}, result.files)
        reporter.update(len(sweep.finished), 0, sweep.best())
    except KeyboardInterrupt:
        sweep.settle()
        sweep.write_info(status="interrupted", duration_seconds=round(time.time() - started, 3))
        raise
    except BaseException as error:
        sweep.settle()
        sweep.write_info(status="failed", error=f"{type(error).__name__}: {error}",
                         duration_seconds=round(time.time() - started, 3))
        raise
    finally:
        reporter.finish()
    sweep.settle()
    sweep.write_info(status="completed", duration_seconds=round(time.time() - started, 3),
                     best=sweep.best())
    return sweep


def schedule(sweep: Sweep, slots: int) -> asha.Scheduler:
    """The sweep's scheduler: ASHA over the pruner's rungs (none without --prune). The adaptive
    sampler proposes `--batch` points (default: one per slot) between tellings."""
    batch = (sweep.options.batch or slots) if sweep.sampler.adaptive else sweep.sampler.trials
    if sweep.sampler.adaptive:
        sweep.info["sampler"]["batch"] = batch
    pruner = sweep.info["pruner"]

    def new_point(point, values):
        return point_trials(sweep.space, sweep.options, point, values, sweep.sampler.trials)

    def group(tasks):
        return stacked.group(tasks, slots) if sweep.options.stack else tasks

    return asha.Scheduler(sweep, new_point, pruner["rungs"] if pruner else [],
                          sweep.options.prune_factor, batch, group)


def _drive(sweep: Sweep, backend, scheduler: asha.Scheduler, reporter: SweepReporter) -> None:
    """Every job the scheduler has, each pulled when a slot frees, each result taken in turn."""
    best, done = sweep.best(), len(sweep.finished)
    ranked_at = time.monotonic()
    reporter.update(done, 0, best)
    for result in backend.run(scheduler.next_job):
        scheduler.receive(result)
        # Ranking every trial costs more than a paused one's epochs, and a stack's trials
        # arrive together: the best so far is ranked again at most every BEST_EVERY seconds.
        if len(sweep.finished) != done and time.monotonic() - ranked_at >= BEST_EVERY:
            best, ranked_at = sweep.best(), time.monotonic()
        done = len(sweep.finished)
        reporter.update(done, scheduler.in_flight, best)
        if result.summary["status"] == "interrupted":
            raise KeyboardInterrupt


def draw_best(sweep: Sweep, later: bool = False, count: int = FIGURED,
              then: Callable[[], object] | None = None) -> list[str]:
    """Draw the figures of the `count` best trials, named in sweep.json under "figures", then
    run then() (the sweep's report page, which embeds them) holding the sweep's lock; later: in
    a detached child holding those run locks (dlrun.detach), so `runlock.is_held` on the sweep
    directory says whether then() is still at work. Trials draw none themselves: drawing costs
    more than training a course-sized trial, and `dlrun plot` draws any of them."""
    names = list(sweep.ranking()[1].head(count)["run"])
    sweep.write_info(figures=names)
    if names or then:
        draw_trials([sweep.directory / name for name in names], later,
                    (sweep.directory, then) if then else None)
    return names


def draw_trials(run_dirs: list[Path], later: bool = False, then: tuple | None = None) -> None:
    """Draw the figures of finished trials (as `dlrun plot` would), each while holding its lock;
    one that cannot be drawn is left for `dlrun plot` to explain. Then, given `then` = (a
    directory, a function), call the function holding that directory's lock; whatever it fails
    at is left for the command that does it alone (`dlrun report`)."""
    locks = [runlock.acquire(run_dir, wait=True) for run_dir in run_dirs]
    if then is not None:
        locks.append(runlock.acquire(then[0], wait=True))

    def job():
        from .. import plots  # lazy: matplotlib, for the few trials drawn
        for run_dir, lock in zip(run_dirs, locks):
            try:
                plots.redraw(run_dir)
            except Exception:  # noqa: BLE001 - the trial itself stands; `dlrun plot` says why
                pass
            lock.release()
        if then is not None:
            try:
                then[1]()
            except Exception:  # noqa: BLE001 - see above
                pass
            locks[-1].release()

    if later:
        from .. import detach  # lazy: only a sweep that draws later forks
        detach.run_detached(job, locks)
    else:
        try:
            job()
        finally:
            for lock in locks:
                lock.release()


def refine(sweep_dir: str | Path, top: int, overrides: list[str] = ()) -> tuple[SearchSpace, dict]:
    """The sweep's space narrowed around its `top` best completed trials, then given the dotted
    overrides (more epochs, a new name...), and what it came from."""
    sweep_dir = Path(sweep_dir)
    for file_name in (SPACE, INFO, TABLE):
        if not (sweep_dir / file_name).is_file():
            raise RunDirError(f"{sweep_dir}: not a sweep directory (no {file_name})")
    space = load_space(sweep_dir / SPACE)
    try:
        info = json.loads((sweep_dir / INFO).read_text(encoding="utf-8"))
        frame = pd.read_csv(sweep_dir / TABLE, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise RunDirError(f"{sweep_dir}: unreadable {INFO} or {TABLE} ({error})") from None
    needed = ["trial", "status", "dev_error", "dev_loss", *[p.key for p in space.parameters]]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise RunDirError(f"{sweep_dir / TABLE}: missing column {missing[0]!r}; expected "
                          f"{', '.join(needed)}")
    best = _refined_best(sweep_dir, frame, info, top)
    values = [{p.key: _parse_cell(row[p.key], p, sweep_dir / TABLE, row["trial"])
               for p in space.parameters} for _, row in best.iterrows()]
    refined_from = {"sweep": str(sweep_dir), "top": top,
                    "trials": [int(t) for t in best["trial"]], "seed": info.get("seed"),
                    "optimize": info.get("optimize", "dev_error"),
                    "satisfy": info.get("satisfy") or []}
    narrowed = space.narrowed(values)
    if overrides:
        data = copy.deepcopy(narrowed.template)
        for override in overrides:
            config_module.apply_override(data, override)
        narrowed = SearchSpace.from_data(data, narrowed.source, narrowed.lines, overrides)
    return narrowed, refined_from


def _refined_best(sweep_dir: Path, cells, info: dict, top: int):
    """The rows (as text) of the `top` best completed trials (points: all their trials completed),
    ranked as the sweep itself chose: by its --optimize metric among those meeting its --satisfy
    constraints (both in sweep.json)."""
    optimize, satisfy = info.get("optimize", "dev_error"), info.get("satisfy") or []
    frame = pd.read_csv(sweep_dir / TABLE).assign(position=range(len(cells)))
    done = frame["status"] == "completed"
    if "point" in frame.columns:
        done = done.groupby(frame["point"]).transform("all")
    try:
        best = ranked(frame[done], optimize, satisfy).head(top)
    except ConfigError as error:
        raise RunDirError(f"{sweep_dir / INFO}: the sweep's choice cannot rank {TABLE}: "
                          f"{error}") from None
    if len(best) < top:
        meeting = f" meeting {', '.join(satisfy)}" if satisfy else ""
        raise RunDirError(f"{sweep_dir}: --top {top} needs {top} completed trials with a "
                          f"{optimize.lstrip('-')}{meeting}; the sweep has {len(best)}")
    return cells.iloc[best["position"].tolist()]


def _same_number(option, cell: str) -> bool:
    """Whether a numeric choice is the number in the cell: a column holding 0 and 0.01 is
    written by pandas as 0.0 and 0.01."""
    if isinstance(option, bool) or not isinstance(option, (int, float)):
        return False
    try:
        return float(cell) == option
    except ValueError:
        return False


def _parse_cell(cell: str, parameter, table: Path, trial: str):
    distribution = parameter.distribution
    try:
        if isinstance(distribution, Choice):
            for option in distribution.options:
                if str(_cell(option)) == cell or _same_number(option, cell):
                    return option
            raise ValueError(f"not one of the choices {encode(distribution.options)}")
        value = int(cell) if isinstance(distribution, RandInt) else float(cell)
        if not distribution.low <= value <= distribution.high:
            raise ValueError(f"outside {distribution!r}")
        return value
    except ValueError as error:
        raise RunDirError(f"{table}: trial {trial}: {parameter.key} = {cell!r}: {error}") from None
