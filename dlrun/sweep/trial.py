"""One sweep trial: trained wherever a worker is, its run directory handed back as bytes.

Workers write only to a private temporary directory, so they need no filesystem shared with the
machine that launched the sweep; that machine stores each trial with one atomic rename, so a trial
run twice (a lost worker's task run again elsewhere) still leaves exactly one directory.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .. import blas
from .. import config as config_module
from ..diagnosis import diagnose
from ..rundir import layout
from ..training import resume, session


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs: the trial's config as plain data, and where to stop early, if anywhere."""

    index: int
    config: dict
    source: str
    stop_epoch: int | None = None
    # The run directory (file name -> bytes) of the trial paused at a rung: it goes on from its
    # checkpoint, so a promoted trial trains each epoch once and ends as if it never stopped.
    resume_from: dict[str, bytes] | None = None


@dataclass
class TrialResult:
    index: int
    summary: dict
    files: dict[str, bytes] = field(default_factory=dict)
    stop_epoch: int | None = None


def scratch_prefix(pid: int | None = None, group: bool = False) -> str:
    """How a trial's (or a stacked group's) scratch directory begins: with its process id, so
    what a worker killed outright leaves behind is found and removed (dlrun.sweep.pool)."""
    return f"dlrun-trial{'s' * group}-{os.getpid() if pid is None else pid}-"


MEMORY_SCRATCH = "/dev/shm"  # Linux's in-memory file system
MEMORY_SCRATCH_FREE = 2 << 30  # bytes it must have free to take this machine's scratch


def scratch_dir() -> str:
    """Where scratch directories go: on a Dask worker, inside its own work directory, which Dask
    removes once the worker is gone, killed or not; elsewhere local_scratch(), where the
    launcher of local workers removes what a killed one left (dlrun.sweep.pool)."""
    if "distributed" not in sys.modules:  # not a Dask worker: nothing imported it
        return local_scratch()
    import distributed  # lazy: only where it is imported already (the check above)
    try:
        return distributed.get_worker().local_directory
    except ValueError:  # a process that imported Dask but is no worker
        return local_scratch()


def local_scratch() -> str:
    """This machine's scratch folder: the temporary folder where one was chosen (TMPDIR, or
    tempfile.tempdir, which a pool worker gets from its launcher); else MEMORY_SCRATCH where it
    is writable with MEMORY_SCRATCH_FREE to spare. A trial creates about ten small files, and
    creating a file costs a journaling disk file system about 0.4 ms (ext4) against 0.01 ms in
    memory; the files are read back and stored in the sweep directory when the trial ends."""
    if tempfile.tempdir is not None or os.environ.get("TMPDIR"):
        return tempfile.gettempdir()
    try:
        disk = os.statvfs(MEMORY_SCRATCH)
        if (os.access(MEMORY_SCRATCH, os.W_OK | os.X_OK)
                and disk.f_bavail * disk.f_frsize >= MEMORY_SCRATCH_FREE):
            return MEMORY_SCRATCH
    except OSError:  # no such file system (macOS, Windows)
        pass
    try:
        return tempfile.gettempdir()
    finally:
        tempfile.tempdir = None  # gettempdir keeps its answer there, where it would read as chosen


def _stopper(stop_epoch: int):
    def stop_check(row: dict) -> str | None:
        if row["epoch"] >= stop_epoch:
            return f"paused at epoch {stop_epoch}, a pruning rung"
        return None

    return stop_check


def execute(task: TrialTask) -> TrialResult:
    """Train one trial in a temporary directory, BLAS on one thread; never raises for a bad trial."""
    # K trials on K cores: a multi-threaded BLAS in each would make them fight over the cores.
    # The scratch files are read back below and stored durably by the launcher: no fsync here.
    with blas.one_thread(), layout.scratch_writes(), \
            tempfile.TemporaryDirectory(prefix=scratch_prefix(), dir=scratch_dir()) as scratch:
        stop_check = _stopper(task.stop_epoch) if task.stop_epoch else None
        try:
            if task.resume_from is not None:
                _, summary = _go_on(Path(scratch), task.resume_from, stop_check)
            else:
                experiment = config_module.validate(task.config, task.source)
                # No figures: drawing costs more than training a trial; the sweep draws its
                # best. Checkpoints only where the trial may pause at a rung and go on later.
                _, summary = session.run(experiment, scratch, None, stop_check, figures="none",
                                         checkpoints=stop_check is not None)
        except Exception as error:  # a failed trial is a result; the sweep goes on
            summary = {"status": "failed", "error": f"{type(error).__name__}: {error}",
                       "traceback": traceback.format_exc(limit=5)}
        return collect(Path(scratch), task, summary)


def collect(scratch: Path, task: TrialTask, summary: dict) -> TrialResult:
    """The run directory a trial wrote in `scratch` (its only one), as bytes, with its summary."""
    run_dirs = [path for path in scratch.iterdir() if path.is_dir()]
    return collect_run(run_dirs[0] if run_dirs else None, task, summary)


def collect_run(run_dir: Path | None, task: TrialTask, summary: dict) -> TrialResult:
    files = {}
    if run_dir is not None:
        files = {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()}
    if summary["status"] == "failed" and layout.SUMMARY in files:  # keep what the run recorded
        summary = {**json.loads(files[layout.SUMMARY]), **summary}
    return TrialResult(task.index, summary, files, task.stop_epoch)


def _go_on(scratch: Path, files: dict[str, bytes], stop_check):
    """Resume a paused trial from its own checkpoint in a fresh scratch directory."""
    run_dir = scratch / "paused"
    run_dir.mkdir()
    for file_name, data in files.items():
        if Path(file_name).name != file_name or file_name.startswith("."):
            raise ValueError(f"refusing file name {file_name!r} of a paused trial")
        (run_dir / file_name).write_bytes(data)
    # As a lean trial: no figures (the sweep draws its best), and checkpoints only where it may
    # pause at a rung again.
    return resume.resume(run_dir, stop_check=stop_check, paused_ok=True, figures="none",
                         checkpoints=stop_check is not None)


def store(directory: Path, name: str, summary: dict, files: dict[str, bytes],
          sync: bool = True) -> bool:
    """Write a trial's run directory as `directory/name` in one rename; False if it already exists.

    sync=False leaves the files to the caller to flush (a sweep flushes all its trials at once:
    one sync instead of six fsyncs a trial, each of which costs more than training one)."""
    final = directory / name
    if final.exists():
        return False
    files = diagnose.relocated(files, final)
    partial = Path(tempfile.mkdtemp(dir=directory, prefix=f".{name}.partial-"))
    try:
        partial.chmod(0o755)  # mkdtemp's private mode suits the scratch name, not the result
        for file_name, data in files.items():
            if file_name == layout.SUMMARY:
                continue
            if Path(file_name).name != file_name or file_name.startswith("."):
                raise ValueError(f"trial {name}: refusing file name {file_name!r} from a worker")
            _write(partial / file_name, data, sync)
        summary_text = json.dumps(summary, indent=2, sort_keys=True, allow_nan=True) + "\n"
        _write(partial / layout.SUMMARY, summary_text.encode(), sync)
        try:
            os.rename(partial, final)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):  # stored meanwhile: keep that one
                shutil.rmtree(partial)
                return False
            raise
        return True
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _write(path: Path, data: bytes, sync: bool) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def flush_to_disk() -> bool:
    """Flush every written file to disk in one call, where the system offers it (not Windows);
    False if it does not, and the caller must sync file by file."""
    if not hasattr(os, "sync"):
        return False
    os.sync()
    return True
