"""Where a run came from, recorded in summary.json: the code (git commit, uncommitted changes),
the installed packages, the BLAS library and its threads, the CPU, and every data file read.

Nothing here may fail or stall a run: git gets a short timeout, and whatever cannot be found is
recorded as missing, with the reason.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import blas as blas_pools
from .data.fingerprint import file_fingerprint
from .rundir.layout import write_atomic

CODE_DIFF = "code.diff"  # `git diff HEAD` of a working tree with uncommitted changes
GIT_TIMEOUT = 3.0  # seconds per git command: a slow network filesystem must not hold a run up
MAX_DIFF = 10 << 20  # a diff bigger than this is not the code change worth keeping
PACKAGES = ("numpy", "pandas", "pydantic", "PyYAML", "typer", "rich", "matplotlib",
            "threadpoolctl", "dask", "distributed")


def collect(config, source: str | Path | None, run_dir: Path) -> dict:
    """The provenance of a run of `config` read from `source` (None: not from a file)."""
    return {"git": git_state(Path(source).absolute().parent, run_dir) if source else None,
            "packages": packages(), "blas": blas(), "cpu": cpu(),
            "data_files": [file_fingerprint(path) for path in data_files(config)]}


def data_files(config) -> list[Path]:
    """Every file a run of `config` reads: its data files, a .npy of labels, a warm start."""
    data = config.data
    paths = [getattr(data, key) for key in ("path", "train", "dev", "test")]
    if data.target and data.target.endswith(".npy"):
        paths.append(Path(data.target))
    paths.append(config.model.init_from)
    return list(dict.fromkeys(p for p in paths if p is not None))


def _git(directory: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                            timeout=GIT_TIMEOUT, check=True,
                            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    return result.stdout.decode("utf-8", "replace")


def git_state(directory: Path, run_dir: Path) -> dict | None:
    """{"commit", "dirty", "diff"} of the repository holding `directory`, None outside one;
    uncommitted changes to tracked files go to CODE_DIFF in `run_dir`."""
    try:
        root = _git(directory, "rev-parse", "--show-toplevel").strip()
    except FileNotFoundError:
        return {"error": "git is not installed"}
    except subprocess.TimeoutExpired:
        return {"error": f"git took over {GIT_TIMEOUT:g}s"}
    except (subprocess.CalledProcessError, OSError):
        return None  # not a repository
    state: dict = {"root": root}
    try:
        state["commit"] = _git(directory, "rev-parse", "HEAD").strip() or None
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        state["commit"] = None  # a repository without commits yet
    try:
        status = _git(directory, "status", "--porcelain", "--untracked-files=normal")
        changes = [line for line in status.splitlines() if line.strip()]
        state["dirty"] = any(not line.startswith("??") for line in changes)
        state["untracked"] = sum(line.startswith("??") for line in changes)
        if state["dirty"]:
            diff = _git(directory, "diff", "HEAD", "--no-ext-diff", "--no-color") \
                if state["commit"] else ""
            if len(diff.encode()) > MAX_DIFF:
                state["diff"] = f"not saved: over {MAX_DIFF >> 20} MiB"
            elif diff:
                write_atomic(run_dir / CODE_DIFF, diff.encode("utf-8"))
                state["diff"] = CODE_DIFF
    except subprocess.TimeoutExpired:
        state["error"] = f"git took over {GIT_TIMEOUT:g}s"
    except (subprocess.CalledProcessError, OSError) as error:
        state["error"] = f"git failed: {error}"
    return state


@functools.cache  # once per process (sweeps)
def _installed() -> tuple[tuple[str, str], ...]:
    """(name, version) of each of PACKAGES installed. Read from the names of the wheels'
    `name-version.dist-info` folders, one listing per sys.path entry (0.6 ms) where asking
    importlib.metadata for each took 18 ms; a package installed otherwise is asked for."""
    listed = _dist_info_versions()
    found = []
    for name in PACKAGES:
        version = listed.get(_canonical(name))
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        found.append((name, version))
    return tuple(found)


def _dist_info_versions() -> dict[str, str]:
    """{canonical name: version} from the dist-info folders on sys.path, the first of a name
    winning, as imports and importlib.metadata take the first."""
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, _, version = folder[:-len(".dist-info")].partition("-")
                if version:
                    versions.setdefault(_canonical(name), version)
    return versions


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def packages() -> dict[str, str]:
    return dict(_installed())


def blas() -> list[dict]:
    """The BLAS (and OpenMP) libraries NumPy uses, their versions and thread counts (as they
    are now: a sweep worker limits them to one thread)."""
    try:
        return [{key: info.get(key) for key in ("user_api", "internal_api", "version",
                                                "num_threads", "architecture")}
                for info in blas_pools.controller().info()]
    except Exception as error:  # noqa: BLE001 - a library's introspection must not stop a run
        return [{"error": f"{type(error).__name__}: {error}"}]


def cpu() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle
                          if line.startswith("model name")), None)
    except OSError:
        pass
    return {"model": model or platform.processor() or None, "machine": platform.machine(),
            "cores": os.cpu_count()}
