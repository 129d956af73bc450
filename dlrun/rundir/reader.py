"""Reading run directories: the one reader of summary.json, config.yaml and metrics.csv (and
steps.csv, diagnosis.json) for every command.

Strict (diagnose, plot, predict, resume, train): the first problem is a RunDirError naming the
file, the line when known, and what was expected. Lenient (compare, diff, and plot's rows):
problems are listed, one line each, and everything readable is kept, so a run still being
written (or killed mid-write) is read as it stands.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import yamlio
from ..errors import ConfigError, RunDirError
from .layout import CONFIG, DIAGNOSIS, METRICS, RUN_FILES, STEPS, SUMMARY

# What each table records, for the message when it is missing.
RECORDS = {METRICS: "one row per epoch", STEPS: "one row per mini-batch (train.record_steps)"}


class Unreadable(RunDirError):
    """A run file that cannot be used at all. `note` says so in the few words a listing of many
    runs shows beside each one ("metrics.csv missing")."""

    def __init__(self, message: str, note: str):
        super().__init__(message)
        self.note = note


class RunRecord:
    """What could be read from one run directory, and what could not (`problems`, one line each)."""

    def __init__(self, path: Path):
        self.path = path
        self.config: dict | None = None  # as written, not validated: older runs are read too
        self.summary: dict | None = None
        self.metrics: dict[str, np.ndarray] | None = None  # column -> values, shape (epochs,)
        self.diagnosis: dict | None = None
        self.problems: list[str] = []


def is_run_dir(path: Path) -> bool:
    """Whether `path` holds at least one of the files a run writes."""
    return any((path / name).is_file() for name in RUN_FILES)


def read_summary(run_dir: str | Path) -> dict:
    """summary.json as a dict; Unreadable if missing, not JSON or not an object."""
    return _json_object(Path(run_dir) / SUMMARY,
                        missing=f"{run_dir}: not a run directory (no {SUMMARY})")


def read_diagnosis(run_dir: str | Path) -> dict:
    """diagnosis.json (written by `dlrun diagnose`, optional) as a dict; Unreadable otherwise."""
    return _json_object(Path(run_dir) / DIAGNOSIS)


def read_config(run_dir: str | Path, overrides: list[str] = ()):
    """The run's config.yaml as a validated ExperimentConfig (with dotted `overrides` applied);
    ConfigError naming the file and line of a value that does not validate."""
    # lazy: pydantic and the registries take a fifth of a second to import, and compare, which
    # reads hundreds of configs as plain data, never needs them
    from .. import config as config_module

    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise Unreadable(f"{path}: missing (a run directory keeps its resolved config there)",
                         f"{CONFIG} missing")
    return config_module.load(path, list(overrides))


def read_metrics(path: str | Path, required: tuple[str, ...] = ("epoch",),
                 notes: list[str] | None = None) -> dict[str, np.ndarray]:
    """A table a run appends to (metrics.csv, steps.csv) as {column: float array over the rows};
    an empty cell is NaN.

    Strict unless given a list `notes`: then a row cut short by a kill, with the wrong number of
    fields or with a cell that is not a number is skipped, and `notes` says so; strictly, the first
    such row is a RunDirError naming its line. Either way a file that is missing, unreadable,
    empty or without a `required` column is Unreadable."""
    path = Path(path)
    what = RECORDS.get(path.name, "its rows")
    text = _text(path, missing=f"{path}: missing (a run directory records {what} there)")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise Unreadable(f"{path}: empty; expected a header line", f"{path.name}: empty (no header)")
    header = lines[0].split(",")
    absent = [column for column in required if column not in header]
    if absent:
        raise Unreadable(f"{path}:1: the header has no {absent[0]!r} column; {path.name} starts "
                         f"with {', '.join(required)}",
                         f"{path.name}:1: header has no {absent[0]!r} column")
    whole = text.endswith(("\n", "\r"))
    if not whole and notes is None:
        raise RunDirError(f"{path}:{len(lines)}: the last row is cut short (no line end): the "
                          "file is truncated")
    body = lines[1:]
    if whole:
        # The usual case, every row whole: one vectorized conversion instead of a loop per cell.
        cells = ",".join(body).split(",") if body else []
        if len(cells) == len(body) * len(header):
            try:
                values = np.array(cells, dtype=float).reshape(len(body), len(header))
                return {column: values[:, i] for i, column in enumerate(header)}
            except ValueError:
                pass
    return _parse_rows(path, header, body, whole, notes)


def _parse_rows(path: Path, header: list[str], body: list[str], whole: bool,
                notes: list[str] | None) -> dict[str, np.ndarray]:
    """Row by row, for a table with something wrong in it (see read_metrics)."""
    rows, bad = [], []
    for number, line in enumerate(body, start=2):
        if not line.strip() and notes is not None:
            continue  # nothing lost
        if number - 1 == len(body) and not whole:  # only lenient reading gets here
            notes.append(f"{path.name}:{number}: last row incomplete (ignored)")
            break
        cells = line.split(",") if line.strip() else []
        try:
            if len(cells) != len(header):
                raise RunDirError(f"{path}:{number}: {len(cells)} fields where the header has "
                                  f"{len(header)}: the file is truncated or corrupt")
            rows.append([_number(cell, path, number) for cell in cells])
        except RunDirError:
            if notes is None:
                raise
            bad.append(number)
    if bad:
        notes.append(f"{path.name}: {len(bad)} malformed row(s) ignored (first at line {bad[0]})")
    values = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {column: values[:, i] for i, column in enumerate(header)}


def _number(cell: str, path: Path, line: int) -> float:
    if not cell:
        return np.nan
    try:
        return float(cell)
    except ValueError:
        raise RunDirError(f"{path}:{line}: {cell!r} is not a number") from None


def read_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory leniently: missing, truncated or malformed files become problems, and
    everything readable is kept (a running run is read as it stands)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    record = RunRecord(path)
    problems = record.problems
    record.config = _noted(problems, _config_data, path)
    record.summary = _noted(problems, read_summary, path)
    if (path / DIAGNOSIS).exists():  # optional: written by `dlrun diagnose`
        record.diagnosis = _noted(problems, read_diagnosis, path)
    record.metrics = _noted(problems, read_metrics, path / METRICS, notes=problems)
    return record


def _noted(problems: list[str], read, path: Path, **options):
    """What read(path) returns, or None with its problem noted in a few words."""
    try:
        return read(path, **options)
    except Unreadable as error:
        problems.append(error.note)
        return None


def _text(path: Path, missing: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Unreadable(missing, f"{path.name} missing") from None
    except UnicodeDecodeError:
        raise Unreadable(f"{path}: not UTF-8 text", f"{path.name}: not UTF-8 text") from None
    except OSError as error:
        reason = f"cannot read ({error.strerror or error})"
        raise Unreadable(f"{path}: {reason}", f"{path.name}: {reason}") from None


def _json_object(path: Path, missing: str | None = None) -> dict:
    text = _text(path, missing or f"{path}: missing")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise Unreadable(f"{path}: not valid JSON ({error})",
                         f"{path.name}:{error.lineno}: invalid JSON ({error.msg})") from None
    except RecursionError:
        raise Unreadable(f"{path}: not valid JSON (nested too deeply)",
                         f"{path.name}: invalid JSON (nested too deeply)") from None
    return _mapping(path, data, "a JSON object")


def _config_data(run_dir: Path) -> dict:
    """config.yaml as plain data, read by the fast parser: compare reads hundreds of them."""
    path = run_dir / CONFIG
    text = _text(path, f"{path}: missing")
    try:
        data, _ = yamlio.parse(text, path.name, fast=True)
    except ConfigError as error:
        raise Unreadable(f"{path.parent}/{error}", str(error)) from None
    return _mapping(path, data, "a mapping")


def _mapping(path: Path, data, expected: str) -> dict:
    if not isinstance(data, dict):
        found = type(data).__name__
        raise Unreadable(f"{path}: expected {expected}, got {found}",
                         f"{path.name}: expected a mapping, found {found}")
    return data
