"""The runs in a runs directory, as `dlrun ls` lists them and `dlrun rm` removes them.

One entry per run directory and per sweep directory (a sweep's trials hang under it), read from
summary.json, meta.json (tags, note) and diagnosis.json (the latest verdict) only: listing 150
runs reads a few small JSON files each, never metrics or parameters.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError, RunDirError
from . import layout, reader, runlock, tags

SWEEP_INFO = "sweep.json"  # dlrun.sweep.run.INFO; not imported, so ls never loads the sweep code
STATUSES = (*layout.STATUSES, "stale", "corrupt")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Entry:
    """One line of `dlrun ls`: a run, a sweep, or (under a sweep) one of its trials."""

    name: str
    path: Path
    kind: str  # run, sweep, trial
    status: str
    started: float | None = None  # seconds since the epoch
    duration: float | None = None
    dev_error: float | None = None
    verdict: str | None = None
    tags: list[str] = field(default_factory=list)
    note: str = ""
    problem: str | None = None  # why the entry reads as stale or corrupt
    trials: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict:
        row = {"name": self.name, "kind": self.kind, "status": self.status,
               "started": _iso(self.started), "duration": self.duration,
               "dev_error": self.dev_error, "verdict": self.verdict, "tags": self.tags,
               "note": self.note, "path": str(self.path), "problem": self.problem}
        if self.kind == "sweep":
            row["trials"] = len(self.trials)
        return row


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds).astimezone().isoformat(
        timespec="seconds")


def _started(text, directory: Path) -> float | None:
    if isinstance(text, str):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            pass
    try:  # an old or damaged summary: when the directory was made is the next best thing
        return directory.stat().st_mtime
    except OSError:
        return None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_run(directory: Path, kind: str = "run") -> Entry:
    """A run directory as an entry; an unreadable summary makes it `corrupt`, never an error."""
    meta = tags.read(directory)
    entry = Entry(directory.name, directory, kind, "corrupt", tags=meta["tags"], note=meta["note"])
    try:
        summary = reader.read_summary(directory)
    except RunDirError as error:
        entry.problem, entry.started = str(error), _started(None, directory)
        return entry
    status = summary.get("status")
    entry.status = status if isinstance(status, str) else "corrupt"
    entry.started = _started(summary.get("started"), directory)
    entry.duration = _number(summary.get("duration_seconds"))
    if status == "running":
        entry.status, entry.problem = runlock.effective_status(directory, status)
        if entry.status == "running" and entry.started is not None:
            entry.duration = max(time.time() - entry.started, 0.0)
        elif entry.status != "stale":  # it finished while we looked: read it as it is now
            return read_run(directory, kind)
    final = summary.get("final")
    dev = final.get("dev") if isinstance(final, dict) else None
    entry.dev_error = _number(dev.get("error")) if isinstance(dev, dict) else None
    diagnosis = _json(directory / layout.DIAGNOSIS) or {}
    verdict = diagnosis.get("verdict")
    if not isinstance(verdict, str):
        bias_variance = summary.get("bias_variance")
        verdict = bias_variance.get("verdict") if isinstance(bias_variance, dict) else None
    entry.verdict = verdict if isinstance(verdict, str) else None
    return entry


def read_sweep(directory: Path) -> Entry:
    """A sweep directory as one entry: its status and time from sweep.json, its best trial's dev
    error, and its trials (read the same way as runs) under it."""
    info = _json(directory / SWEEP_INFO) or {}
    meta = tags.read(directory)
    status = info.get("status") if isinstance(info.get("status"), str) else "corrupt"
    entry = Entry(directory.name, directory, "sweep", status,
                  started=_started(info.get("started"), directory),
                  duration=_number(info.get("duration_seconds")), tags=meta["tags"],
                  note=meta["note"])
    if not info:
        entry.problem = f"{directory / SWEEP_INFO}: missing or not a JSON object"
    entry.trials = [read_run(child, "trial") for child in _children(directory)
                    if reader.is_run_dir(child)]
    errors = [t.dev_error for t in entry.trials if t.dev_error is not None]
    entry.dev_error = min(errors) if errors else None
    if entry.status == "running":
        if (directory / runlock.LOCK).exists() and runlock.is_held(directory) is False:
            entry.status = "stale"
            entry.problem = ("stale: marked running, but no process holds its lock (it was "
                             "killed); its finished trials are kept")
        elif entry.started is not None:
            entry.duration = max(time.time() - entry.started, 0.0)
    return entry


def _children(directory: Path) -> list[Path]:
    try:
        children = sorted(directory.iterdir())
    except OSError as error:
        raise RunDirError(f"{directory}: cannot list ({error.strerror or error})") from None
    return [c for c in children if not c.name.startswith(".") and c.is_dir()
            and not c.is_symlink()]


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_INFO).is_file()


def entries(runs_dir: str | Path) -> list[Entry]:
    """Every run and sweep directly inside `runs_dir`, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunDirError(f"{runs_dir}: no such runs directory; train a run first (dlrun train "
                          "CONFIG) or give the directory that holds your runs")
    found = []
    for child in _children(runs_dir):
        if is_sweep_dir(child):
            found.append(read_sweep(child))
        elif reader.is_run_dir(child):
            found.append(read_run(child))
    return sorted(found, key=lambda e: (e.started is None, -(e.started or 0), e.name))


# --- selecting -------------------------------------------------------------------------------

def parse_age(text: str, option: str) -> float:
    """Seconds in an age such as 30m, 12h, 7d or 2w."""
    match = _AGE.match(text)
    if not match:
        raise ConfigError(f"{option} {text!r}: expected an age such as 30m, 12h, 7d or 2w "
                          "(s, m, h, d, w)")
    return float(match[1]) * _SECONDS[match[2]]


def parse_since(text: str, now: float | None = None) -> float:
    """The moment --since names: an age back from now (12h, 7d), a date or a date and time."""
    now = time.time() if now is None else now
    if _AGE.match(text):
        return now - parse_age(text, "--since")
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), pattern).timestamp()
        except ValueError:
            continue
    raise ConfigError(f"--since {text!r}: expected an age (30m, 12h, 7d), a date (2025-01-31) "
                      "or a date and time (2025-01-31T14:30)")


def check_statuses(statuses: list[str], option: str = "--status") -> list[str]:
    for status in statuses:
        if status not in STATUSES:
            raise ConfigError(f"{option} {status!r}: expected one of {', '.join(STATUSES)}")
    return statuses


def select(found: list[Entry], statuses=(), required_tags=(), since: float | None = None,
           before: float | None = None) -> list[Entry]:
    """Entries with one of `statuses`, every tag of `required_tags`, started at or after `since`
    and before `before` (each left out: no condition)."""
    return [e for e in found
            if (not statuses or e.status in statuses)
            and set(required_tags) <= set(e.tags)
            and (since is None or (e.started is not None and e.started >= since))
            and (before is None or (e.started is not None and e.started < before))]


def listing(runs_dir: str | Path, statuses=(), required_tags=(), since: str | None = None
            ) -> tuple[list[Entry], int]:
    """(what `dlrun ls` shows, how many entries there are in all), options checked first."""
    check_statuses(list(statuses))
    for tag in required_tags:
        tags.check_tag(tag)
    moment = parse_since(since) if since is not None else None
    found = entries(runs_dir)
    return select(found, statuses, required_tags, moment), len(found)


def find(runs_dir: str | Path, name: str) -> Path:
    """The one run or sweep directory `name` means: a path to it, or the unique beginning of its
    name in `runs_dir`. For commands that change one run (tag, note)."""
    matches = _named(Path(runs_dir), name)
    if len(matches) > 1:
        shown = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunDirError(f"{name}: {len(matches)} runs in {runs_dir} start with that name "
                          f"({shown}); give more of it")
    return matches[0]


def _named(runs_dir: Path, name: str) -> list[Path]:
    """Directories `name` stands for: a path, an exact name, else every name it begins."""
    path = Path(name)
    if path.is_dir() and (len(path.parts) > 1 or not (runs_dir / name).is_dir()):
        if not (reader.is_run_dir(path) or is_sweep_dir(path)):
            raise RunDirError(f"{path}: not a run directory (none of "
                              f"{', '.join(layout.RUN_FILES)}) nor a sweep directory")
        return [path]
    if not runs_dir.is_dir():
        raise RunDirError(f"{name}: no such run directory, and no runs directory {runs_dir}")
    children = [c for c in _children(runs_dir) if reader.is_run_dir(c) or is_sweep_dir(c)]
    exact = [c for c in children if c.name == name]
    matches = exact or [c for c in children if c.name.startswith(name)]
    if not matches:
        raise RunDirError(f"{name}: no such run directory, and no run in {runs_dir} starts "
                          "with that name")
    return matches


# --- removing --------------------------------------------------------------------------------

def removal(runs_dir: str | Path, names=(), statuses=(), older_than: str | None = None
            ) -> list[Entry]:
    """The entries `dlrun rm` would remove: those named (paths, names or beginnings of names),
    narrowed by --status and --older-than; refused whole when any is live or lies outside
    `runs_dir`."""
    runs_dir = Path(runs_dir)
    check_statuses(list(statuses))
    before = time.time() - parse_age(older_than, "--older-than") if older_than else None
    if not names and not statuses and before is None:
        raise ConfigError("give the runs to remove: names, beginnings of names, --status or "
                          "--older-than")
    if names:
        paths = list(dict.fromkeys(p for name in names for p in _named(runs_dir, name)))
        for path in paths:
            _check_inside(path, runs_dir)
        found = [read_sweep(p) if is_sweep_dir(p) else read_run(p) for p in paths]
    else:
        found = entries(runs_dir)
    chosen = select(found, statuses, (), None, before)
    for entry in chosen:
        _check_not_live(entry)
    return chosen


def _check_inside(path: Path, runs_dir: Path) -> None:
    """Only a real directory directly inside runs_dir is removed: never a link, never a path
    that leads out of it."""
    if path.is_symlink():
        raise RunDirError(f"{path}: a symbolic link; dlrun rm removes only run directories "
                          f"inside {runs_dir}, never what a link points to")
    if path.resolve().parent != runs_dir.resolve():
        raise RunDirError(f"{path}: not a run directly inside {runs_dir}; dlrun rm removes only "
                          "runs there (use --runs-dir for another runs directory)")


def _check_not_live(entry: Entry) -> None:
    if entry.kind == "sweep":
        if entry.status == "running" and not (entry.path / runlock.LOCK).exists():
            raise RunDirError(f"{entry.path}: sweep.json says running, and the sweep holds no "
                              "lock to tell whether it still does (an older dlrun made it); "
                              "delete it yourself once it has stopped")
        if entry.status == "running":
            raise RunDirError(f"{entry.path}: a sweep still running "
                              f"({runlock.describe(runlock.holder(entry.path))}); stop it first "
                              "(Ctrl-C where it runs)")
        runs = [t for t in entry.trials if t.status == "running"]
        if runs:
            raise RunDirError(f"{runs[0].path}: still running; stop it first")
        return
    held = runlock.is_held(entry.path)
    if held is not False:
        info = runlock.describe(runlock.holder(entry.path))
        cannot = "cannot tell whether it is still running" if held is None else "still running"
        raise RunDirError(f"{entry.path}: {cannot} ({info}); stop it first, it is not removed")


def remove(chosen: list[Entry]) -> list[Path]:
    """Delete the chosen directories, each while holding its run lock, so a run that starts
    again in the meantime is never deleted under it."""
    removed = []
    for entry in chosen:
        locks = []
        try:
            for directory in [entry.path, *(t.path for t in entry.trials)]:
                try:
                    locks.append(runlock.acquire(directory, wait=False))
                except RunDirError:
                    raise RunDirError(f"{directory}: started running again; it is not removed "
                                      f"(removed before it: {len(removed)})") from None
            shutil.rmtree(entry.path)
        finally:
            for lock in locks:
                lock.release()
        removed.append(entry.path)
    return removed
