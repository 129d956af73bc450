"""Where local trials run: in this process, or in K worker processes on this machine."""

from __future__ import annotations

from typing import Iterator

from ..errors import ConfigError
from .trial import TrialResult


def default_workers() -> int:
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class SerialBackend:
    """Trials one after another in this process: no start-up cost, easy to debug."""

    slots = 1
    description = "this process"

    def run(self, jobs: list) -> Iterator[TrialResult]:
        from .trial import run_job
        for job in jobs:
            yield from run_job(job)

    def close(self, abort: bool = False) -> None: ...


def _start_worker() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    from ..training import session  # noqa: F401 - once per worker, before its first trial


class ProcessBackend:
    """K local worker processes, started fresh (spawn) so they share no threads or locks, and
    kept for every trial of the sweep (a worker's start-up and imports are paid once)."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        self.slots = workers
        self.description = f"{workers} local processes"
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker)

    def run(self, jobs: list) -> Iterator[TrialResult]:
        """Each job is a trial or a stacked group (dlrun.sweep.trial.run_job)."""
        from concurrent.futures import as_completed

        from .trial import job_indices, run_job
        futures = {self.pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                results = future.result()
            except Exception as error:  # the worker process itself died
                results = [TrialResult(index, {"status": "failed",
                                               "error": f"worker process lost: {error}"})
                           for index in job_indices(futures[future])]
            yield from results

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
        from .cluster import DaskBackend
        return DaskBackend(cluster)
    workers = min(workers or default_workers(), trials)
    return SerialBackend() if workers == 1 else ProcessBackend(workers)
