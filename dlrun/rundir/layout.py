"""Run directories: the contract between `train` and every command that reads its results
(reader.py reads them, for all of those commands).

    runs/<name>-<YYYYmmdd-HHMMSS>-<id>/
        config.yaml    the resolved config, every default filled in
        metrics.csv    one row per epoch, flushed as training goes
        summary.json   status, best epoch, metrics, test metrics, versions, command line
        params.npz     parameters by course names, plus normalization and labels for predicting
        steps.csv      every mini-batch's cost, when train.record_steps is on
        curves.png     cost, error and learning rate against epochs (boundary.png for 2-D inputs)
        diagnosis.json the diagnosis (diagnosis.md to read), rewritten by `dlrun diagnose`
        checkpoint.npz the state to resume from (checkpoint.py), kept unless the run completed
        run.lock       names the process training the run, while it does (runlock.py)
"""

from __future__ import annotations

import contextlib
import contextvars
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

from .. import __version__
from ..errors import ConfigError, RunDirError

STATUSES = ("running", "completed", "diverged", "interrupted", "failed", "pruned")
SUMMARY, CONFIG, METRICS, PARAMS = "summary.json", "config.yaml", "metrics.csv", "params.npz"
STEPS, CURVES, BOUNDARY = "steps.csv", "curves.png", "boundary.png"
STEP_COLUMNS = ["step", "epoch", "learning_rate", "cost"]
DIAGNOSIS = "diagnosis.json"  # written by `dlrun diagnose`; optional
RUN_FILES = (SUMMARY, CONFIG, METRICS, PARAMS)  # any one of them makes a run directory
META_PREFIX = "meta_"  # params.npz entries that are not network state


def create(runs_dir: str | Path, name: str) -> Path:
    """Claim a new, empty run directory; mkdir is atomic, so two runs never share one."""
    if not name or name.startswith(".") or any(sep in name for sep in "/\\\0"):
        # The config already refuses such names; this keeps every caller inside runs_dir.
        raise ConfigError(f"run name {name!r}: must be one path component that does not start "
                          f"with '.', so the run stays inside {runs_dir}")
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file, a path under a file, a read-only or full file system
        why = "is a file" if runs_dir.is_file() else f"cannot be created ({error.strerror})"
        raise RunDirError(f"--runs-dir {runs_dir}: {why}; give a directory that exists or can "
                          "be made, and can be written to") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = runs_dir / f"{name}-{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise RunDirError(f"--runs-dir {runs_dir}: cannot create a directory in it "
                              f"({error.strerror}); give a directory that can be written to") \
                from None


_UMASK = os.umask(0)
os.umask(_UMASK)


_DURABLE = contextvars.ContextVar("durable", default=True)


@contextlib.contextmanager
def scratch_writes():
    """Within the block, write_atomic skips fsync: for a scratch directory whose files are read
    back and stored elsewhere (durably) or thrown away, where waiting for the disk buys nothing.
    A context variable, so trials in other threads of the same process keep their own setting."""
    token = _DURABLE.set(False)
    try:
        yield
    finally:
        _DURABLE.reset(token)


def durable() -> bool:
    """Whether writes wait for the disk (False inside scratch_writes)."""
    return _DURABLE.get()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it. In scratch_writes,
    write `path` itself: nobody reads a scratch directory before its trial has ended, and a
    file that cannot be written whole is removed (a symlink at `path` is never followed)."""
    if not durable():
        _write_scratch(path, data)
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise write_error(path, error) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; results are for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable():
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)  # a symlink at `path` is replaced, never written through
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_scratch(path: Path, data: bytes) -> None:
    try:
        if path.is_symlink():
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                     0o666)  # less the umask, as for any new file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise write_error(path, error) from None


def write_error(path: Path, error: OSError) -> RunDirError:
    """A file that could not be written (a full disk, a read-only directory), in one line."""
    reason = error.strerror or str(error)
    problem = RunDirError(f"{path}: cannot write ({reason})")
    problem.reason = reason
    return problem


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())


def save_params(path: Path, state: dict[str, np.ndarray], meta: dict[str, np.ndarray]) -> None:
    """Network state by course names (W1, b1, ...) plus meta_* arrays; no pickles."""
    buffer = io.BytesIO()
    np.savez(buffer, **state, **{META_PREFIX + key: value for key, value in meta.items()})
    write_atomic(path, buffer.getvalue())


def read_npz(path: Path, missing: str, unreadable: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file, never unpickling; RunDirError "{path}: {missing}" when it is
    absent, "{path}: {unreadable}" (its {problem} filled in) when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise RunDirError(f"{path}: {missing}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RunDirError(f"{path}: " + unreadable.format(problem=npz_problem(error))) from None


def load_params(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(network state, meta) from a params.npz; RunDirError if it cannot be read."""
    arrays = read_npz(Path(path), "no such parameter file",
                      "not a readable .npz parameter file ({problem})")
    state = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    return state, meta


def npz_problem(error: Exception) -> str:
    """What an np.load failure means, without numpy's advice to allow pickles."""
    if "pickle" in str(error) or "Python objects" in str(error):
        return "not an archive of plain arrays; dlrun never unpickles files"
    return str(error)


def environment() -> dict[str, str]:
    return {"python": platform.python_version(), "numpy": np.__version__, "dlrun": __version__,
            "platform": platform.platform()}


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


class MetricsWriter:
    """Appends one row per epoch to metrics.csv and flushes it, so a crash loses at most a row."""

    def __init__(self, path: Path, columns: list[str], flush_every: int = 1, append: bool = False):
        self.columns, self.path = columns, path
        if not append:  # a new file, renamed into place: a symlink there is replaced
            buffer = io.StringIO()
            csv.writer(buffer).writerow(columns)
            write_atomic(path, buffer.getvalue().encode("utf-8"))
        try:  # a resumed run goes on below the rows it kept (its file rewritten by write_atomic)
            self.handle = open(path, "a", newline="", encoding="utf-8")
        except OSError as error:
            raise write_error(path, error) from None
        self.writer = csv.writer(self.handle)
        self.flush_every, self.unflushed = flush_every, 0  # per-step rows come thousands a second

    def write(self, row: dict[str, Any]) -> None:
        try:
            self.writer.writerow([_csv_value(row.get(key)) for key in self.columns])
            self.unflushed += 1
            if self.unflushed >= self.flush_every:
                self.flush()
        except OSError as error:
            raise write_error(self.path, error) from None

    def flush(self) -> None:
        if not self.handle.closed:
            try:
                self.handle.flush()
            except OSError as error:
                raise write_error(self.path, error) from None
            self.unflushed = 0

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()


def _csv_value(value):
    if type(value) is float:  # most cells: the exact check is the fast one
        return repr(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "" if value is None else value
