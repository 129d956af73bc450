"""Who is training a run directory right now: run.lock, held while the run trains.

The lock file names the process (pid, host, start time) for people, and the process holds an
exclusive `flock` on it for as long as it lives. The kernel drops that lock however the process
ends, SIGKILL and power loss included, so a run whose summary still says "running" while nobody
holds its lock is stale: its process is gone, and `dlrun train --resume` may take it over.
Where `flock` is not available, a dead pid on this host says the same.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import RunDirError
from . import layout, reader

try:
    import fcntl
except ImportError:  # not on Windows: the pid is all there is to go by
    fcntl = None

LOCK = "run.lock"
TAKEOVER_TRIES = 20  # a reader's probe holds the lock for microseconds; retry for about a second


class RunLock:
    """An exclusive hold on a run directory; `release` removes the lock file."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlink while still holding it, so nobody can take a lock on a file about to vanish.
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None

    def hand_over(self) -> None:
        """Close this process's copy without unlocking: a forked child holding the same open
        file keeps the lock, and releases it when its work is done."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(run_dir: Path) -> dict | None:
    """What run.lock says of the process that wrote it, or None if it says nothing readable."""
    try:
        data = json.loads((Path(run_dir) / LOCK).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def describe(info: dict | None) -> str:
    """"pid 123 on host x, since 2025-01-01T12:00:00" from a lock file's contents."""
    if not info:
        return "an unknown process"
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, "
            f"since {info.get('started', '?')}")


def acquire(run_dir: Path, wait: bool) -> RunLock:
    """Hold run_dir's lock. A fresh run waits for it (only a reader's probe can be in the way);
    a resume does not, and a live holder is a RunDirError naming it."""
    path = Path(run_dir) / LOCK
    for _ in range(TAKEOVER_TRIES):
        try:  # never through a symlink: the lock file's contents are rewritten
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as error:
            raise RunDirError(f"{path}: cannot write ({error.strerror})") from None
        try:
            if not _lock(fd, path, blocking=wait):
                os.close(fd)
                time.sleep(0.05)
                continue
            if _same_file(fd, path):
                _write_holder(fd)
                return RunLock(path, fd)
        except OSError as error:  # a full disk
            os.close(fd)
            raise RunDirError(f"{path}: cannot write ({error.strerror})") from None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder unlinked the file while we waited: lock the new one
    info = holder(run_dir)
    raise RunDirError(f"{run_dir}: still running ({describe(info)}); stop it first (Ctrl-C "
                      f"where it runs, or kill {(info or {}).get('pid', 'its process')}), "
                      "then resume")


def _lock(fd: int, path: Path, blocking: bool) -> bool:
    """Take the exclusive lock; False if a live process has it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False
        except OSError:  # a filesystem without flock: fall back on the pid
            pass
    return blocking or _pid_alive(holder(path.parent)) is not True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _write_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    data = (json.dumps(info, sort_keys=True) + "\n").encode()
    if os.fstat(fd).st_size:  # ext4 flushes a file truncated to 0 when it is closed: not a new one
        os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    if layout.durable():
        os.fsync(fd)


def is_held(run_dir: Path) -> bool | None:
    """Whether a live process holds run_dir's lock; None when that cannot be told."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        if fcntl is None:
            return _pid_alive(holder(run_dir))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # a filesystem without flock
            return _pid_alive(holder(run_dir))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _pid_alive(info: dict | None) -> bool | None:
    if not info or info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return None
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(run_dir: Path, status) -> tuple[object, str | None]:
    """(status, note): "stale" and why for a run marked running whose process is gone."""
    if status != "running" or is_held(run_dir) is not False:
        return status, None
    try:  # it may have just finished: the final summary is written before the lock goes
        status = reader.read_summary(run_dir).get("status")
    except RunDirError:
        pass
    if status != "running":
        return status, None
    info = holder(run_dir)
    gone = f"the process that ran it ({describe(info)}) is gone" if info else "no process holds it"
    return "stale", (f"stale: marked running, but {gone}; go on with it: dlrun train --resume "
                     f"{run_dir}")
