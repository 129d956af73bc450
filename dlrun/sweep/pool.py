"""Local worker processes that each hold one job at a time, so a worker that dies is known
together with the job it was running.

A process pool of the standard library cannot say that: when one of its workers dies, every job
it holds, queued or running, fails with BrokenProcessPool, and the pool is unusable. Here each
worker has its own pipe; the launcher sends it a job only when it is idle, waits on every pipe and
every process at once, and when a process ends without answering, only its job was lost. The dead
worker's scratch directories are removed and a new worker takes its place.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Iterator

from .trial import local_scratch, scratch_prefix

STOP_SECONDS = 30  # a worker asked to stop (SIGTERM) unwinds its trial; after this it is killed


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: object  # the launcher's end of the worker's pipe
    job: object = None  # what it is running, None while idle


def remove_scratch(pid: int, tempdir: str) -> None:
    """Remove what a worker that could not clean up (SIGKILL, out of memory) left in `tempdir`."""
    for prefix in (scratch_prefix(pid), scratch_prefix(pid, group=True)):
        for path in Path(tempdir).glob(f"{prefix}*"):
            shutil.rmtree(path, ignore_errors=True)


def _serve(conn, tempdir: str, initializer: Callable[[], None], function: Callable) -> None:
    """A worker's life: receive a job, send back function(job), until told to stop (None)."""
    tempfile.tempdir = tempdir  # the launcher looks there for what a killed worker left
    initializer()
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the launcher is gone
            return
        if job is None:
            return
        try:
            result = function(job)
        except SystemExit as stop:  # SIGTERM mid-trial: the trial unwound, the worker ends
            os._exit(stop.code if isinstance(stop.code, int) else 1)
        conn.send(result)


def _order(job) -> int:
    """Where a job comes among those finishing together: by its (first) trial's number."""
    return min(task.index for task in getattr(job, "tasks", (job,)))


class WorkerPool:
    """`size` worker processes (spawn: fresh, sharing no threads or locks), started on the first
    job and kept for every job after (start-up and imports are paid once per worker)."""

    def __init__(self, size: int, function: Callable, initializer: Callable[[], None]):
        self.size, self.function, self.initializer = size, function, initializer
        self.context = multiprocessing.get_context("spawn")
        self.tempdir = local_scratch()
        self.workers: list[Worker] = []

    def _start(self) -> Worker:
        mine, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, name="dlrun-worker",
                                       args=(theirs, self.tempdir, self.initializer, self.function))
        process.start()
        theirs.close()
        return Worker(process, mine)

    def run(self, next_job: Callable[[], object], on_lost: Callable[[object, str], tuple]
            ) -> Iterator:
        """Each job's result as it comes, those ready together in job order; next_job() gives
        the next job to start, or None when none can start now (the loop ends once nothing runs
        and it still says None). A job whose worker died is handed to on_lost(job, why), which
        returns (the jobs to run again in its place, the results to give for what it gives up);
        the jobs run again go before new ones."""
        again: deque = deque()
        while len(self.workers) < self.size:
            self.workers.append(self._start())
        while True:
            for worker in self.workers:
                if worker.job is None:
                    job = again.popleft() if again else next_job()
                    if job is None:
                        break
                    worker.job = job
                    worker.conn.send(job)
            if not any(w.job is not None for w in self.workers):
                return
            ready = set(wait([w.conn for w in self.workers] +
                             [w.process.sentinel for w in self.workers]))
            answered = []
            for index, worker in enumerate(self.workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    result = self._answer(worker)
                    if result is not None:
                        answered.append((_order(worker.job), result))
                        worker.job = None
                    elif not worker.process.is_alive():
                        lost, worker.job = worker.job, None
                        self.workers[index] = self._replace(worker)
                        if lost is not None:
                            retry, given_up = on_lost(lost, self._why(worker))
                            again.extend(retry)
                            if given_up:
                                answered.append((_order(lost), given_up))
            for _, result in sorted(answered, key=lambda pair: pair[0]):
                yield result

    def _answer(self, worker: Worker):
        """The worker's result, or None if it has none (it died before answering)."""
        try:
            if worker.conn.poll():
                return worker.conn.recv()
        except (EOFError, OSError):
            pass
        worker.process.join(STOP_SECONDS)
        return None

    def _why(self, worker: Worker) -> str:
        code = worker.process.exitcode
        if code is not None and code < 0:
            try:
                return f"pid {worker.process.pid} ended by {signal.Signals(-code).name}"
            except ValueError:
                pass
        return f"pid {worker.process.pid} exited with status {code}"

    def _replace(self, dead: Worker) -> Worker:
        dead.conn.close()
        remove_scratch(dead.process.pid, self.tempdir)
        return self._start()

    def close(self, abort: bool = False) -> None:
        """Stop every worker: at once when aborting (SIGTERM: its trial unwinds and removes its
        scratch), else once its job is done; what a worker still leaves behind is removed."""
        for worker in self.workers:
            if abort and worker.process.is_alive():
                worker.process.terminate()
            else:
                try:
                    worker.conn.send(None)
                except OSError:  # it is gone already
                    pass
        for worker in self.workers:
            worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            remove_scratch(worker.process.pid, self.tempdir)
        self.workers = []
