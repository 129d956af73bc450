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
    """Write to a temporary file beside `path`, fsync (unless in scratch_writes), then rename
    over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; results are for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable():
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
    from .. import __version__
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
