"""Which run directories a command means: run directories, directories of runs (a sweep's too),
or the beginning of a run's name inside --runs-dir."""

from __future__ import annotations

from pathlib import Path

from ..errors import RunDirError
from ..rundir import layout, reader


def discover(paths: list[str | Path], runs_dir: str | Path = "runs") -> list[Path]:
    """Run directories named by `paths`: a run directory, a directory of runs (groups such as a
    sweep's are searched too), or the beginning of a run's name inside `runs_dir`."""
    found: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            try:
                found.extend([path] if reader.is_run_dir(path) else _runs_in(path))
            except OSError as error:
                raise RunDirError(f"{path}: cannot list ({error.strerror or error})") from None
        elif path == Path(runs_dir):
            raise RunDirError(f"{path}: no such directory; train a run first (dlrun train "
                              "CONFIG) or name run directories to compare")
        elif path.exists():
            raise RunDirError(f"{path}: not a directory; give run directories or directories "
                              "of runs")
        else:
            matches = _by_prefix(str(arg), Path(runs_dir))
            if not matches:
                raise RunDirError(f"{arg}: no such run directory, and no run in {runs_dir} "
                                  "starts with that name")
            for match in matches:  # a sweep's directory stands for its trials
                nested = [] if reader.is_run_dir(match) else _runs_in(match)
                found.extend(nested if any(reader.is_run_dir(p) for p in nested) else [match])
    unique = list(dict.fromkeys(found))
    if not unique:
        shown = ", ".join(str(p) for p in paths)
        raise RunDirError(f"{shown}: no run directories found (make one with "
                          "`dlrun train CONFIG`)")
    return unique


def _runs_in(directory: Path) -> list[Path]:
    found = []
    for child in sorted(directory.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if reader.is_run_dir(child):
            found.append(child)
            continue
        nested = _runs_in(child)
        # A folder of runs is expanded; anything else is a run directory with its files missing.
        found.extend(nested if any(reader.is_run_dir(p) for p in nested) else [child])
    return found


def _by_prefix(prefix: str, runs_dir: Path) -> list[Path]:
    if "/" in prefix or not runs_dir.is_dir():
        return []
    return [p for p in sorted(runs_dir.iterdir()) if p.is_dir() and p.name.startswith(prefix)]


def resolve_run(arg: str | Path, runs_dir: str | Path = "runs") -> Path:
    """One run directory from a path or the unique beginning of a run's name in `runs_dir`."""
    path = Path(arg)
    if path.is_dir():
        if not reader.is_run_dir(path):
            raise RunDirError(f"{path}: not a run directory (none of {', '.join(layout.RUN_FILES)})")
        return path
    matches = _by_prefix(str(arg), Path(runs_dir))
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunDirError(f"{arg}: {len(matches)} runs in {runs_dir} start with that name "
                          f"({names}); give more of it")
    raise RunDirError(f"{arg}: no such run directory, and no run in {runs_dir} starts with "
                      "that name")
