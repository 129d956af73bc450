"""Sweeps: many trials drawn from one search space, run in parallel, pruned, ranked and refined.

    runs/<name>-<YYYYmmdd-HHMMSS>-<id>/
        sweep.yaml     the search space, runnable again with `dlrun sweep`
        sweep.json     seed, mode, pruning, where trials ran, status
        sweep.csv      one row per trial: sampled values, status, losses and errors
        trial-0000/    each trial's ordinary run directory
        report.html    the trials as a page (dlrun.report), written at the end
        run.lock       held while the sweep runs (dlrun.rundir.runlock), so a killed one is stale
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import config as config_module
from .. import yamlio
from ..errors import ConfigError, RunDirError
from ..rundir import layout, runlock
from . import stacked
from .space import Choice, RandInt, SearchSpace, encode
from .trial import TrialResult, TrialTask, flush_to_disk, store

SPACE, INFO, TABLE = "sweep.yaml", "sweep.json", "sweep.csv"
FIGURED = 3  # the best trials whose figures a sweep draws at its end; `dlrun plot` draws any other
RESULT_COLUMNS = ["epochs_run", "best_epoch", "train_loss", "train_error", "dev_loss", "dev_error",
                  "seconds"]


@dataclass
class Options:
    trials: int = 20
    grid: bool = False
    seed: int = 0
    prune: bool = False
    prune_factor: int = 3  # successive halving keeps the best third at each rung
    prune_min_epochs: int | None = None  # first rung; default: a ninth of the epochs
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


def trial_seed(sweep_seed: int, index: int) -> tuple[np.random.Generator, int]:
    """(generator for the trial's sampled values, the trial's training seed).

    Both depend only on the sweep seed and the trial's index, never on which worker ran it or when."""
    sampling, training = np.random.SeedSequence(sweep_seed, spawn_key=(index,)).spawn(2)
    return np.random.default_rng(sampling), int(training.generate_state(1)[0])


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


def plan(space: SearchSpace, options: Options) -> list[Trial]:
    """Every trial's values, seed and validated config: random draws, or the grid's points."""
    if options.grid:
        points = space.grid(options.trials)
    else:
        points = [space.sample(trial_seed(options.seed, i)[0]) for i in range(options.trials)]
    base = sweep_name(space)[:58]
    width = max(4, len(str(len(points) - 1)))
    keys = {p.key for p in space.parameters}
    trials = []
    for index, values in enumerate(points):
        data = space.instantiate(values)
        seed = trial_seed(options.seed, index)[1]
        if "seed" not in keys:
            data["seed"] = seed
        if "name" not in keys:
            data["name"] = f"{base}-{index:0{width}d}"
        try:
            experiment = config_module.validate(data, space.source, space.lines, space.overrides)
        except ConfigError as error:
            raise ConfigError(f"{error} (in trial {index}: {encode(values)})") from None
        trials.append(Trial(index, f"trial-{index:0{width}d}", experiment.seed, values, data,
                            experiment.train.epochs))
    return trials


def rungs(max_epochs: int, factor: int, min_epochs: int | None) -> list[int]:
    """Epochs at which successive halving compares trials: min, min·factor, ... below max."""
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


def results_frame(space: SearchSpace, trials: list[Trial]):
    """One row per finished trial, in trial order."""
    import pandas as pd

    rows = []
    for trial in sorted(trials, key=lambda t: t.index):
        summary = trial.summary
        rows.append({
            "trial": trial.index, "run": trial.name, "status": summary["status"], "seed": trial.seed,
            **{key: _cell(value) for key, value in trial.values.items()},
            "epochs_run": summary.get("epochs_run"), "best_epoch": summary.get("best_epoch"),
            "train_loss": _value(summary, "train", "loss"),
            "train_error": _value(summary, "train", "error"),
            "dev_loss": _value(summary, "dev", "loss"), "dev_error": _value(summary, "dev", "error"),
            "seconds": summary.get("duration_seconds")})
    columns = ["trial", "run", "status", "seed", *[p.key for p in space.parameters], *RESULT_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def best_trials(frame, count: int):
    """The `count` trials with the lowest dev error (then dev loss), ties by trial number."""
    ranked = frame[frame["dev_error"].notna()]
    ranked = ranked[np.isfinite(ranked["dev_error"].astype(float))]
    return ranked.sort_values(["dev_error", "dev_loss", "trial"]).head(count)


TABLE_EVERY = 1.0  # seconds between rewrites of sweep.csv while trials finish


class Writes:
    """Storing trials in one background thread, in order: fsyncing a trial's files costs more
    than training a course-sized trial, and the thread waits on the disk while training goes on."""

    def __init__(self):
        self.pool = None
        self.pending: list = []

    def submit(self, function, *args) -> None:
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor
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
    writes: Writes = field(default_factory=lambda: Writes())
    table_written: float = -math.inf
    sync_each: bool = field(default_factory=lambda: not hasattr(os, "sync"))

    def finish_trial(self, trial: Trial, summary: dict, files: dict[str, bytes]) -> None:
        summary = {**summary, "command": layout.command_line(),
                   "sweep": {"directory": self.directory.name, "trial": trial.index,
                             "values": trial.values}}
        trial.summary = summary
        self.writes.submit(store, self.directory, trial.name, summary, files, self.sync_each)
        self.finished[trial.index] = trial
        if time.monotonic() - self.table_written >= TABLE_EVERY:
            self.write_table()

    def write_table(self) -> None:
        """Rewrite sweep.csv once the trials it lists are stored."""
        frame = results_frame(self.space, list(self.finished.values()))
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
        done = [t for t in self.finished.values() if _finite(_value(t.summary, "dev", "error"))]
        if not done:
            return None
        trial = min(done, key=lambda t: (_value(t.summary, "dev", "error"),
                                         _value(t.summary, "dev", "loss"), t.index))
        return {"trial": trial.index, "dev_error": _value(trial.summary, "dev", "error")}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def create(space: SearchSpace, runs_dir: str | Path, options: Options, where: str,
           refined_from: dict | None = None) -> Sweep:
    """Check the space, plan every trial, then claim the sweep directory (nothing before that)."""
    if options.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {options.trials}")
    check_space(space)
    trials = plan(space, options)
    from ..training.experiment import prepare
    try:  # data errors, and keys that do not fit the data, now
        prepare(config_module.validate(trials[0].config, space.source))
    except ConfigError as error:
        raise config_module.located(error, space.source, space.overrides, space.lines) from None
    directory = layout.create(runs_dir, sweep_name(space))
    # Held until the sweep ends, released by the kernel if it is killed: `dlrun ls` tells a live
    # sweep from a stale one, and `dlrun rm` never deletes one still running.
    lock = runlock.acquire(directory, wait=True)
    header = "# The search space of this sweep: `dlrun sweep` runs it again.\n"
    layout.write_atomic(directory / SPACE, (header + yamlio.dump(space.template)).encode())
    info = {"name": directory.name, "status": "running", "seed": options.seed,
            "mode": "grid" if options.grid else "random", "trials": len(trials),
            "parameters": {p.key: repr(p.distribution) for p in space.parameters},
            "prune": ({"factor": options.prune_factor,
                       "rungs": rungs(max(t.epochs for t in trials), options.prune_factor,
                                      options.prune_min_epochs)} if options.prune else None),
            "where": where, "refined_from": refined_from, "command": layout.command_line(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": layout.environment()}
    sweep = Sweep(directory, space, options, trials, info, lock=lock)
    try:
        sweep.write_info()
        sweep.settle()
    except BaseException:
        lock.release()
        raise
    return sweep


def run(sweep: Sweep, backend, reporter: SweepReporter | None = None) -> Sweep:
    """Run every trial on the backend, in successive-halving rounds when pruning."""
    try:
        return _run(sweep, backend, reporter or SweepReporter())
    finally:
        if sweep.lock is not None:
            sweep.lock.release()


def _run(sweep: Sweep, backend, reporter: SweepReporter) -> Sweep:
    stops = sweep.info["prune"]["rungs"] if sweep.info["prune"] else []
    started = time.time()
    reporter.start(len(sweep.trials), backend.slots)
    active = list(sweep.trials)
    try:
        for rung, stop in enumerate([*stops, None]):
            if len(active) == 1:  # nothing left to compare it with: let it run to the end
                stop = None
            reached = _run_round(sweep, backend, active, stop, reporter)
            if not reached:
                break
            active = _halve(sweep, reached, stop, stops[rung + 1] if rung + 1 < len(stops) else None)
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


def draw_best(sweep: Sweep, later: bool = False, count: int = FIGURED) -> list[str]:
    """Draw the figures of the `count` best trials, named in sweep.json under "figures"; later:
    in a detached child holding their run locks (dlrun.detach). Trials draw none themselves:
    drawing costs more than training a course-sized trial, and `dlrun plot` draws any of them."""
    frame = results_frame(sweep.space, list(sweep.finished.values()))
    names = list(best_trials(frame, count)["run"])
    sweep.write_info(figures=names)
    if names:
        draw_trials([sweep.directory / name for name in names], later)
    return names


def draw_trials(run_dirs: list[Path], later: bool = False) -> None:
    """Draw the figures of finished trials (as `dlrun plot` would), each while holding its lock;
    one that cannot be drawn is left for `dlrun plot` to explain."""
    from ..rundir import runlock

    def job():
        from .. import plots
        for run_dir, lock in zip(run_dirs, locks):
            try:
                plots.redraw(run_dir)
            except Exception:  # noqa: BLE001 - the trial itself stands; `dlrun plot` says why
                pass
            lock.release()

    locks = [runlock.acquire(run_dir, wait=True) for run_dir in run_dirs]
    if later:
        from .. import detach
        detach.run_detached(job, locks)
    else:
        try:
            job()
        finally:
            for lock in locks:
                lock.release()


def _run_round(sweep: Sweep, backend, active: list[Trial], stop: int | None,
               reporter: SweepReporter) -> list[tuple[Trial, TrialResult]]:
    """Run the active trials up to `stop` epochs; finish those that end; return those that reached it."""
    by_index = {trial.index: trial for trial in active}
    tasks = [TrialTask(t.index, t.config, sweep.space.source,
                       stop if stop is not None and stop < t.epochs else None) for t in active]
    reached = []
    outstanding, slots = len(tasks), backend.slots
    reporter.update(len(sweep.finished), min(outstanding, slots), sweep.best())
    jobs = stacked.group(tasks, slots) if sweep.options.stack else tasks
    for result in backend.run(jobs):
        outstanding -= 1
        trial = by_index[result.index]
        if result.summary["status"] == "pruned" and result.stop_epoch is not None:
            reached.append((trial, result))  # its fate depends on the others at this rung
        else:
            sweep.finish_trial(trial, result.summary, result.files)
        reporter.update(len(sweep.finished), min(outstanding, slots), sweep.best())
        if result.summary["status"] == "interrupted":
            raise KeyboardInterrupt
    return reached


def _halve(sweep: Sweep, reached: list[tuple[Trial, TrialResult]], stop: int,
           next_stop: int | None) -> list[Trial]:
    """Keep the best 1/factor of the trials that reached this rung by dev loss; prune the rest.

    The kept ones run again from the start with a later stop: training is deterministic, so the
    re-run repeats the same epochs before going on, and no state has to travel between workers."""
    def dev_loss(pair):
        loss = pair[1].summary.get("best_dev_loss")
        return (loss if _finite(loss) else math.inf, pair[0].index)

    ranked = sorted(reached, key=dev_loss)
    keep = math.ceil(len(ranked) / sweep.options.prune_factor)
    goes_on = f"{next_stop} epochs" if next_stop else "all its epochs"
    for rank, (trial, result) in enumerate(ranked[keep:], start=keep + 1):
        loss = result.summary.get("best_dev_loss")
        loss = f"{loss:.4g}" if _finite(loss) else "none"
        reason = (f"successive halving at epoch {stop}: best dev loss {loss} ranked {rank} of "
                  f"{len(ranked)}; only the best {keep} went on to {goes_on}")
        sweep.finish_trial(trial, {**result.summary, "stop_reason": reason}, result.files)
    return sorted((trial for trial, _ in ranked[:keep]), key=lambda t: t.index)


def refine(sweep_dir: str | Path, top: int, overrides: list[str] = ()) -> tuple[SearchSpace, dict]:
    """The sweep's space narrowed around its `top` best completed trials, then given the dotted
    overrides (more epochs, a new name...), and what it came from."""
    import json

    import pandas as pd

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
    completed = frame[frame["status"] == "completed"].copy()
    completed["rank_error"] = pd.to_numeric(completed["dev_error"], errors="coerce")
    completed["rank_loss"] = pd.to_numeric(completed["dev_loss"], errors="coerce")
    completed = completed[np.isfinite(completed["rank_error"])]
    if len(completed) < top:
        raise RunDirError(f"{sweep_dir}: --top {top} needs {top} completed trials with a dev "
                          f"error; the sweep has {len(completed)}")
    completed["order"] = pd.to_numeric(completed["trial"], errors="coerce")
    best = completed.sort_values(["rank_error", "rank_loss", "order"]).head(top)
    values = [{p.key: _parse_cell(row[p.key], p, sweep_dir / TABLE, row["trial"])
               for p in space.parameters} for _, row in best.iterrows()]
    refined_from = {"sweep": str(sweep_dir), "top": top,
                    "trials": [int(t) for t in best["order"]], "seed": info.get("seed")}
    narrowed = space.narrowed(values)
    if overrides:
        import copy
        data = copy.deepcopy(narrowed.template)
        for override in overrides:
            config_module.apply_override(data, override)
        narrowed = SearchSpace.from_data(data, narrowed.source, narrowed.lines, overrides)
    return narrowed, refined_from


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
