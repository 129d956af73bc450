"""Where local trials run: in this process, or in K worker processes on this machine."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Iterator

from ..errors import ConfigError
from .cluster import DaskBackend
from .lost import Losses
from .pool import WorkerPool
from .stacked import run_job
from .trial import TrialResult


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


NextJob = Callable[[], "object | None"]
"""What every backend's run() pulls from: the next job to start, or None when nothing can start
now (the sweep waits for a result first); a job is a TrialTask or a stacked group of them
(dlrun.sweep.stacked.StackedTask), and yields one result per trial. A backend keeps at most `slots` jobs in flight, yields
each result as it completes, and ends once nothing is in flight and next_job() still says None."""


class SerialBackend:
    """Trials one after another in this process: no start-up cost, easy to debug."""

    slots = 1
    description = "this process"

    def run(self, next_job: NextJob) -> Iterator[TrialResult]:
        """Each job is a trial or a stacked group (dlrun.sweep.stacked.run_job)."""
        while (job := next_job()) is not None:
            yield from run_job(job)

    def close(self, abort: bool = False) -> None: ...


PARENT_POLL_SECONDS = 1.0  # how soon a worker notices that its sweep is gone


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds the trial: its scratch directory is removed


def _watch_parent(parent: int) -> None:
    """Stop this worker once the sweep that started it is gone (killed, even by SIGKILL):
    orphaned workers would train on for nobody, each holding a core."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)




def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # terminate() from close(abort=True) too
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="dlrun-parent-watch").start()
    from ..training import session  # noqa: F401 # lazy: once per worker, before its first trial


class ProcessBackend:
    """K local worker processes (dlrun.sweep.pool), started fresh (spawn) and kept for every job
    of the sweep, each running one job at a time; a trial lost with its worker runs again
    (dlrun.sweep.lost), the others never notice."""

    def __init__(self, workers: int):
        self.slots = workers
        self.description = f"{workers} local processes"
        self.pool = WorkerPool(workers, run_job, _worker_init)
        self.losses = Losses()  # for the whole sweep: a trial's rungs are one trial

    def run(self, next_job: NextJob) -> Iterator[TrialResult]:
        """Jobs (trials or stacked groups) pulled one at a time as slots free up (see NextJob),
        a lost one run again first; results as they complete, those completing together in job
        order."""
        for results in self.pool.run(next_job, self.losses.lost):
            yield from results

    def close(self, abort: bool = False) -> None:
        self.pool.close(abort)


def open_backend(workers: int | None, cluster: str | None, trials: int):
    """Where trials run: a Dask scheduler, K local processes, or this process for one worker."""
    if cluster is not None:
        if workers is not None:
            raise ConfigError("--workers is for local runs; with --cluster the scheduler's "
                              "workers run the trials")
        return DaskBackend(cluster)
    workers = min(workers or default_workers(), trials)
    return SerialBackend() if workers == 1 else ProcessBackend(workers)
