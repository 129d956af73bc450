"""Work that may finish after the command has returned: a forked child that holds run locks.

`dlrun train` and `dlrun sweep` draw their figures this way: importing matplotlib and drawing
take longer than training a course-sized network, and nothing the command prints depends on them.
The child inherits the run directories' locks (an flock belongs to the open file, which the fork
shares), so for as long as it draws, run.lock is held: `runlock.is_held` says so, and
`wait_until_free` waits for the figures. Where fork is not available (or not safe: macOS's
system libraries, Windows), the job runs in this process before returning.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from pathlib import Path

from .rundir import runlock

CHILD_SECONDS = 300  # far more than drawing a few figures takes


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def run_detached(job, locks: list[runlock.RunLock]) -> bool:
    """Run job() in a detached child holding `locks`, then release them there; True if forked.

    This process lets go of its copies of the locks without unlocking them. If fork is not
    available, job() runs here and the locks are released when it returns."""
    if not can_fork():
        try:
            job()
        finally:
            for lock in locks:
                lock.release()
        return False
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():  # Python 3.12+ warns of threads; BLAS's survive a fork
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        try:
            os.setsid()  # Ctrl-C at the terminal after the command returned is not for it
            signal.alarm(CHILD_SECONDS)  # a child stuck on a lock some thread held at the fork dies
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # a pipe reading the command's output ends with the command
                os.dup2(devnull, fd)
            job()
        except BaseException:  # noqa: BLE001 - a child has nobody to report to but its job
            pass
        finally:
            for lock in locks:
                try:
                    lock.release()
                except BaseException:  # noqa: BLE001
                    pass
            os._exit(0)
    for lock in locks:
        lock.hand_over()
    return True


def wait_until_free(run_dir: str | Path, timeout: float = 60.0) -> bool:
    """Wait until nobody holds run_dir's lock (a detached child finished its figures)."""
    deadline = time.monotonic() + timeout
    while runlock.is_held(Path(run_dir)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
