"""Run directories: the contract between `train` and every command that reads its results.

    runs/<name>-<YYYYmmdd-HHMMSS>-<id>/
        config.yaml    the resolved config, every default filled in
        metrics.csv    one row per epoch, flushed as training goes
        summary.json   status, best epoch, metrics, test metrics, versions, command line
        params.npz     parameters by course names, plus normalization and labels for predicting
        steps.csv      every mini-batch's cost, when train.record_steps is on
        curves.png     cost, error and learning rate against epochs (boundary.png for 2-D inputs)
        checkpoint.npz the state to resume from (dlrun.checkpoint), kept unless the run completed
        run.lock       names the process training the run, while it does (dlrun.runlock)
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import secrets
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, RunDirError

STATUSES = ("running", "completed", "diverged", "interrupted", "failed", "pruned")
SUMMARY, CONFIG, METRICS, PARAMS = "summary.json", "config.yaml", "metrics.csv", "params.npz"
STEPS, CURVES, BOUNDARY = "steps.csv", "curves.png", "boundary.png"
STEP_COLUMNS = ["step", "epoch", "learning_rate", "cost"]
META_PREFIX = "meta_"  # params.npz entries that are not network state


def create(runs_dir: str | Path, name: str) -> Path:
    """Claim a new, empty run directory; mkdir is atomic, so two runs never share one."""
    if not name or name.startswith(".") or any(sep in name for sep in "/\\\0"):
        # The config already refuses such names; this keeps every caller inside runs_dir.
        raise ConfigError(f"run name {name!r}: must be one path component that does not start "
                          f"with '.', so the run stays inside {runs_dir}")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = runs_dir / f"{name}-{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; results are for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())


def save_params(path: Path, state: dict[str, np.ndarray], meta: dict[str, np.ndarray]) -> None:
    """Network state by course names (W1, b1, ...) plus meta_* arrays; no pickles."""
    buffer = io.BytesIO()
    np.savez(buffer, **state, **{META_PREFIX + key: value for key, value in meta.items()})
    write_atomic(path, buffer.getvalue())


def load_params(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(network state, meta) from a params.npz; RunDirError if it cannot be read."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise RunDirError(f"{path}: no such parameter file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RunDirError(f"{path}: not a readable .npz parameter file "
                          f"({npz_problem(error)})") from None
    state = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    return state, meta


def npz_problem(error: Exception) -> str:
    """What an np.load failure means, without numpy's advice to allow pickles."""
    if "pickle" in str(error) or "Python objects" in str(error):
        return "not an archive of plain arrays; dlrun never unpickles files"
    return str(error)


def environment() -> dict[str, str]:
    from . import __version__
    return {"python": platform.python_version(), "numpy": np.__version__, "dlrun": __version__,
            "platform": platform.platform()}


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


class MetricsWriter:
    """Appends one row per epoch to metrics.csv and flushes it, so a crash loses at most a row."""

    def __init__(self, path: Path, columns: list[str], flush_every: int = 1, append: bool = False):
        self.columns = columns
        self.handle = open(path, "a" if append else "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=columns)
        if not append:  # a resumed run goes on below the rows it kept
            self.writer.writeheader()
        self.handle.flush()
        self.flush_every, self.unflushed = flush_every, 0  # per-step rows come thousands a second

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({key: _csv_value(row.get(key)) for key in self.columns})
        self.unflushed += 1
        if self.unflushed >= self.flush_every:
            self.handle.flush()
            self.unflushed = 0

    def flush(self) -> None:
        if not self.handle.closed:
            self.handle.flush()
            self.unflushed = 0

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()


def _csv_value(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "" if value is None else value


def read_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no {SUMMARY})")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    return summary


DIAGNOSIS = "diagnosis.json"  # written by `dlrun diagnose`; optional
RUN_FILES = (SUMMARY, CONFIG, METRICS, PARAMS)


class RunRecord:
    """What could be read from one run directory, and what could not (`problems`, one line each)."""

    def __init__(self, path: Path):
        self.path = path
        self.config: dict | None = None
        self.summary: dict | None = None
        self.metrics: dict[str, np.ndarray] | None = None  # column -> values, shape (epochs,)
        self.diagnosis: dict | None = None
        self.problems: list[str] = []


def is_run_dir(path: Path) -> bool:
    """Whether `path` holds at least one of the files a run writes."""
    return any((path / name).is_file() for name in RUN_FILES)


def read_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory without ever failing on its contents: missing, truncated or malformed
    files become problems, and everything readable is kept (a running run is read as it stands)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    record = RunRecord(path)
    record.config = _read_mapping(path / CONFIG, _parse_yaml, record.problems, required=True)
    record.summary = _read_mapping(path / SUMMARY, _parse_json, record.problems, required=True)
    record.diagnosis = _read_mapping(path / DIAGNOSIS, _parse_json, record.problems, required=False)
    text = _read_text(path / METRICS, record.problems, required=True)
    if text is not None:
        record.metrics = _parse_metrics(text, record.problems)
    return record


def _read_text(path: Path, problems: list[str], required: bool) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            problems.append(f"{path.name} missing")
    except UnicodeDecodeError:
        problems.append(f"{path.name}: not UTF-8 text")
    except OSError as error:
        problems.append(f"{path.name}: cannot read ({error.strerror or error})")
    return None


class _Malformed(Exception):
    """A file that exists but does not parse; `line` is ":N" when known."""

    def __init__(self, line: str, message: str):
        super().__init__(message)
        self.line = line


def _parse_yaml(text: str):
    import yaml
    # The C loader is ten times faster, which matters when hundreds of runs are read at once.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise _Malformed(line, f"invalid YAML ({problem})") from None
    problem = _not_a_tree(data)
    if problem:
        raise _Malformed("", f"invalid YAML ({problem})")
    return data


def _not_a_tree(data, values: int = 100_000, depth: int = 100) -> str | None:
    """Why flattening data for a table could not finish (a container inside itself, aliases
    expanding to over `values` values, nesting deeper than `depth`), or None."""
    stack, count = [(data, ())], 0
    while stack:
        value, enclosing = stack.pop()
        count += 1
        if count > values:
            return f"more than {values} values once aliases are expanded"
        if isinstance(value, (dict, list)):
            if any(value is outer for outer in enclosing):
                return "an alias that contains itself"
            if len(enclosing) >= depth:
                return f"nested deeper than {depth} levels"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, (*enclosing, value)) for child in children)
    return None


def _parse_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _Malformed(f":{error.lineno}", f"invalid JSON ({error.msg})") from None
    except RecursionError:
        raise _Malformed("", "invalid JSON (nested too deeply)") from None


def _read_mapping(path: Path, parse, problems: list[str], required: bool) -> dict | None:
    text = _read_text(path, problems, required)
    if text is None:
        return None
    try:
        data = parse(text)
    except _Malformed as error:
        problems.append(f"{path.name}{error.line}: {error}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a mapping, found {type(data).__name__}")
        return None
    return data


def _parse_metrics(text: str, problems: list[str]) -> dict[str, np.ndarray] | None:
    """Columns of metrics.csv as float arrays; rows that are incomplete or malformed are skipped
    and reported, since a run killed mid-write can leave half a line at the end."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        problems.append(f"{METRICS}: empty (no header)")
        return None
    header = lines[0].split(",")
    if "epoch" not in header:
        problems.append(f"{METRICS}:1: header has no 'epoch' column")
        return None
    body = lines[1:]
    if text.endswith(("\n", "\r")):
        # The usual case, every row whole: one vectorized conversion instead of a loop per cell.
        cells = ",".join(body).split(",") if body else []
        if len(cells) == len(body) * len(header):
            try:
                values = np.array(cells, dtype=float).reshape(len(body), len(header))
                return {column: values[:, i] for i, column in enumerate(header)}
            except ValueError:
                pass
    rows, bad = [], []
    last = len(lines) - 1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if number - 1 == last and not text.endswith(("\n", "\r")):
            problems.append(f"{METRICS}:{number}: last row incomplete (ignored)")
            break
        try:
            if len(cells) != len(header):
                raise ValueError
            rows.append([float(cell) if cell else np.nan for cell in cells])
        except ValueError:
            bad.append(number)
    if bad:
        problems.append(f"{METRICS}: {len(bad)} malformed row(s) ignored (first at line {bad[0]})")
    values = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {column: values[:, i] for i, column in enumerate(header)}
