"""Where local trials run: in this process, or in K worker processes on this machine."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterator

from ..errors import ConfigError
from .cluster import DaskBackend
from .stacked import job_indices, run_job
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


def _run_job(job) -> list[TrialResult]:
    """run_job(job) in a worker; stopped by SIGTERM, the trial unwinds (its scratch directory
    removed) and the worker ends, as the default action would have ended it."""
    try:
        return run_job(job)
    except SystemExit as stop:  # the pool would send it back and wait for the next trial
        os._exit(stop.code if isinstance(stop.code, int) else 1)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # terminate() from close(abort=True) too
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="dlrun-parent-watch").start()
    from ..training import session  # noqa: F401 # lazy: once per worker, before its first trial


class ProcessBackend:
    """K local worker processes, started fresh (spawn) so they share no threads or locks, and
    kept for every trial of the sweep (a worker's start-up and imports are paid once)."""

    def __init__(self, workers: int):
        self.slots = workers
        self.description = f"{workers} local processes"
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_init)

    def run(self, next_job: NextJob) -> Iterator[TrialResult]:
        """Jobs pulled one at a time as slots free up (see NextJob), each a trial or a stacked
        group (dlrun.sweep.stacked.run_job); results as jobs complete, those completing together
        in job order."""
        running: dict[Future, object] = {}
        while True:
            self._fill(running, next_job)
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: job_indices(running[f])[0]):
                yield from self._collect(future, running.pop(future))

    def _fill(self, running: dict[Future, object], next_job: NextJob) -> None:
        while len(running) < self.slots and (job := next_job()) is not None:
            running[self.pool.submit(_run_job, job)] = job

    def _collect(self, future: Future, job) -> list[TrialResult]:
        try:
            return future.result()
        except Exception as error:  # the worker process itself died
            return [TrialResult(index, {"status": "failed",
                                        "error": f"worker process lost: {error}"})
                    for index in job_indices(job)]

    def close(self, abort: bool = False) -> None:
        # Pending trials are cancelled by the pool itself (cancel_futures), never from here: a
        # future cancelled behind its back makes the pool's own thread fail when the terminated
        # workers below mark what was pending as broken (Python 3.11). shutdown() forgets the
        # workers and its thread, so both are taken first.
        workers = list((self.pool._processes or {}).values())
        manager = self.pool._executor_manager_thread
        self.pool.shutdown(wait=False, cancel_futures=True)
        if abort:  # trials still training would otherwise run on after the sweep is gone
            for process in workers:
                process.terminate()
        if manager is not None:
            manager.join()


def open_backend(workers: int | None, cluster: str | None, trials: int):
    """Where trials run: a Dask scheduler, K local processes, or this process for one worker."""
    if cluster is not None:
        if workers is not None:
            raise ConfigError("--workers is for local runs; with --cluster the scheduler's "
                              "workers run the trials")
        return DaskBackend(cluster)
    workers = min(workers or default_workers(), trials)
    return SerialBackend() if workers == 1 else ProcessBackend(workers)
