"""`dlrun sweep --resume SWEEP_DIR`: finish a stopped or killed sweep with its own options.

The sweep's trials come again from its seed and space (sweep.yaml), so the trials are the same
ones; those stored in the directory are kept (in `Sweep.finished`, which the run loop skips and
tells the adaptive sampler about in point order, as between batches), and the rest run: the
missing, and those that failed or were interrupted. The sweep then ends as an uninterrupted one
would have, sweep.csv and all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from .. import detach
from ..errors import ConfigError, RunDirError
from ..rundir import layout, reader, runlock
from . import run as sweep_run
from . import samplers
from .pool import remove_scratch
from .run import INFO, SPACE, Options, Sweep, Trial
from .space import encode
from .trial import local_scratch

REPORT_SECONDS = 60  # an ended sweep's figures and report page take a few seconds at most
KEPT = ("completed", "diverged", "pruned")  # a stored trial with another status runs again
FLAGS = {"trials": "--trials", "sampler": "--sampler", "seed": "--seed", "optimize": "--optimize",
         "satisfy": "--satisfy", "batch": "--batch", "prune": "--prune",
         "prune_factor": "--prune-factor", "prune_min_epochs": "--prune-min-epochs",
         "seeds": "--seeds"}


def read_info(sweep_dir: Path) -> dict:
    """sweep.json of a sweep directory; RunDirError if it is not one."""
    for name in (SPACE, INFO):
        if not (sweep_dir / name).is_file():
            raise RunDirError(f"{sweep_dir}: not a sweep directory (no {name}); --resume takes "
                              "a directory made by dlrun sweep")
    try:
        info = json.loads((sweep_dir / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise RunDirError(f"{sweep_dir / INFO}: unreadable ({error})") from None
    if not isinstance(info, dict):
        raise RunDirError(f"{sweep_dir / INFO}: not a JSON object")
    return info


def recorded_options(sweep_dir: Path, info: dict) -> Options:
    """The options the sweep was started with (its seed resolved, its TPE batch as used)."""
    recorded = info.get("options")
    known = {f.name for f in fields(Options)}
    if not isinstance(recorded, dict) or not set(recorded) <= known:
        raise RunDirError(f"{sweep_dir / INFO}: records no options this dlrun knows (an older or "
                          f"newer dlrun made it); start it again: dlrun sweep {sweep_dir / SPACE}")
    options = Options(**recorded)
    batch = (info.get("sampler") or {}).get("batch")
    if options.batch is None and isinstance(batch, int):
        options.batch = batch  # the default was the workers of the first launch: keep it
    return options


def check_given(sweep_dir: Path, options: Options, given: dict) -> None:
    """Refuse an option given with --resume that is not the one the sweep was run with."""
    for name, value in given.items():
        if name not in FLAGS:
            raise ConfigError(f"--resume {sweep_dir}: takes no {name}; the sweep goes on with "
                              f"the space in its {SPACE}")
        recorded = getattr(options, name)
        if value != recorded and not (name == "satisfy" and list(value) == list(recorded)):
            raise ConfigError(f"{FLAGS[name]} {_shown(value)}: the sweep in {sweep_dir} was run "
                              f"with {FLAGS[name]} {_shown(recorded)}; --resume goes on with its "
                              "own options (leave it out, or start a new sweep)")


def _shown(value) -> str:
    if isinstance(value, list):
        return " ".join(value) if value else "(none)"
    return str(value)


def check_not_running(sweep_dir: Path, info: dict) -> None:
    """Refuse a sweep whose lock a live process holds. A sweep that has ended holds it a moment
    longer, in the detached child drawing its best figures and its report page: wait for it."""
    if info.get("status") != "running" and runlock.is_held(sweep_dir):
        detach.wait_until_free(sweep_dir, timeout=REPORT_SECONDS)
    if runlock.is_held(sweep_dir):
        info = runlock.describe(runlock.holder(sweep_dir))
        raise RunDirError(f"{sweep_dir}: the sweep is still running ({info}); stop it first, "
                          "then resume")


def planned(sweep_dir: Path, info: dict, options: Options) -> tuple:
    """(space, sampler, trials planned in advance) as the sweep's first launch made them."""
    space = sweep_run.load_space(sweep_dir / SPACE)
    _, maximize = sweep_run.objective(sweep_run._comparable(sweep_run.results_frame(space, [])),
                                      options.optimize)
    sampler = samplers.make(options.sampler, space, options.seed, options.trials, maximize)
    trials = [] if sampler.adaptive else sweep_run.plan(space, options, sampler)
    if sampler.trials * options.seeds != info.get("trials"):
        raise RunDirError(f"{sweep_dir / SPACE}: gives {sampler.trials * options.seeds} trials, "
                          f"{INFO} says {info.get('trials')}; it cannot be resumed")
    return space, sampler, trials


def stored(sweep_dir: Path, space, options: Options, sampler, trials: list[Trial]
           ) -> dict[int, Trial]:
    """The trials stored in the sweep directory that are kept, by number: the plan's own Trial
    (or, for an adaptive sampler, the one its stored values give), with its stored summary. A
    stored trial the plan does not give is refused: the sweep would not be the one it was."""
    planned_trials = {trial.index: trial for trial in trials}
    found = {}
    for run_dir in sorted(sweep_dir.glob("trial-*")):
        if not run_dir.is_dir() or not reader.is_run_dir(run_dir):
            continue
        summary = reader.read_summary(run_dir)  # stored with one rename: whole, or a RunDirError
        place = summary.get("sweep") or {}
        index, values = place.get("trial"), place.get("values")
        if not isinstance(index, int) or not isinstance(values, dict) or index < 0:
            raise RunDirError(f"{run_dir / layout.SUMMARY}: names no sweep trial; it cannot be "
                              "resumed")
        if summary.get("status") not in KEPT:
            continue
        point = index // options.seeds
        trial = planned_trials.get(index) if trials else next(
            (t for t in sweep_run.point_trials(space, options, point, values, sampler.trials)
             if t.index == index), None)
        if trial is None or trial.name != run_dir.name or _encoded(trial.values) != \
                _encoded(values):
            raise RunDirError(f"{run_dir}: trained with {encode(values)}, which is not a trial "
                              "the sweep's seed and space give; it cannot be resumed")
        trial.summary = summary
        found[index] = trial
    return found


def _encoded(values: dict) -> dict:
    return {key: encode(value) for key, value in values.items()}


def reopen(sweep_dir: str | Path, given: dict, where: str, stack: bool | None = None) -> Sweep:
    """The sweep in `sweep_dir` ready for `run.run`: its lock taken, its stored trials in
    `finished`, the rest to run. Every refusal (not a sweep, still running, an option that is
    not the sweep's own, a stored trial the plan does not give) comes before anything changes."""
    sweep_dir = Path(sweep_dir)
    info = read_info(sweep_dir)
    options = recorded_options(sweep_dir, info)
    check_given(sweep_dir, options, given)
    if stack is not None:
        options.stack = stack
    check_not_running(sweep_dir, info)
    space, sampler, trials = planned(sweep_dir, info, options)
    finished = stored(sweep_dir, space, options, sampler, trials)
    sweep = Sweep(sweep_dir, space, options, trials, info, finished=finished, sampler=sampler)
    killed = runlock.holder(sweep_dir)  # the process the lock file names, if it was killed
    sweep.lock = runlock.acquire(sweep_dir, wait=False)
    try:
        _clear(sweep_dir, set(t.name for t in finished.values()))
        _clear_scratch(killed)
        resumed = [*(info.get("resumed") or []),
                   {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "where": where,
                    "was": info.get("status"), "kept": len(finished),
                    "command": layout.command_line()}]
        sweep.write_info(status="running", resumed=resumed)
        sweep.write_table()
    except BaseException:
        sweep.write_info(status="interrupted")
        sweep.lock.release()
        raise
    return sweep


def _clear_scratch(killed: dict | None) -> None:
    """Remove the scratch directory of a trial the sweep's own process was training when it was
    killed (with one worker trials run in that process; worker processes clean up themselves)."""
    killed = killed or {}
    pid = killed.get("pid")
    if killed.get("host") != socket.gethostname() or not isinstance(pid, int):
        return
    try:
        os.kill(pid, 0)
        return  # its number went to another process since: what it holds is not ours
    except ProcessLookupError:
        for folder in {local_scratch(), tempfile.gettempdir()}:  # wherever it chose to train
            remove_scratch(pid, folder)
    except PermissionError:
        return


def _clear(sweep_dir: Path, kept: set[str]) -> None:
    """Remove what is run again (failed or interrupted trials) and half-stored trial directories."""
    for path in sweep_dir.iterdir():
        again = path.name.startswith("trial-") and path.name not in kept and path.is_dir()
        partial = path.name.startswith(".trial-") and ".partial-" in path.name
        if again or partial:
            shutil.rmtree(path)
