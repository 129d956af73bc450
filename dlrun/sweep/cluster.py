"""Trials on a Dask distributed cluster: its workers train, the launching machine stores results.

Needs the optional extra: `pip install "dlrun[cluster]"` here and on every worker machine.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Iterator

from .. import __version__
from ..errors import DlrunError
from .lost import Losses
from .stacked import job_indices, run_job
from .trial import TrialResult

ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$")
CONNECT_TIMEOUT = "10s"  # a scheduler that does not answer by then is not coming


class ClusterError(DlrunError):
    """The Dask scheduler cannot be used: not installed, unreachable, or its workers lack dlrun."""


def _worker_version() -> str:
    return __version__


class DaskBackend:
    """Submits each trial as one task (pure=False: identical configs are still separate trials)."""

    def __init__(self, address: str):
        if not ADDRESS.match(address):
            raise ClusterError(f"--cluster {address!r}: expected a scheduler address such as "
                               "tcp://HOST:8786")
        try:
            # lazy: Dask is an optional extra, and slow to import
            from distributed import Client
        except ImportError:
            raise ClusterError("--cluster needs Dask distributed: pip install \"dlrun[cluster]\"") from None
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ClusterError(f"--cluster {address}: cannot reach the scheduler ({error})") from None
        self.address = address
        self.description = f"dask scheduler {address}"
        self.losses = Losses()  # for the whole sweep: a trial's rungs are one trial
        self._check_workers()

    def _check_workers(self) -> None:
        try:
            versions = self.client.run(_worker_version)
        except Exception as error:
            self.client.close()
            raise ClusterError(f"--cluster {self.address}: a worker cannot run dlrun ({error}); "
                               "install it on every worker: pip install \"dlrun[cluster]\"") from None
        wrong = {worker: version for worker, version in versions.items() if version != __version__}
        if wrong:
            self.client.close()
            worker, version = next(iter(wrong.items()))
            raise ClusterError(f"--cluster {self.address}: worker {worker} has dlrun {version}, "
                               f"this machine {__version__}: install the same version everywhere")

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def run(self, next_job) -> Iterator[TrialResult]:
        """Jobs pulled one at a time as slots free up (dlrun.sweep.workers.NextJob), each a trial
        or a stacked group (dlrun.sweep.stacked.run_job), a lost one run again first; results as
        jobs complete."""
        from distributed import as_completed  # lazy: see __init__

        running: dict = {}
        again: deque = deque()
        completed = as_completed(loop=self.client.loop)
        try:
            while True:
                while len(running) < self.slots and \
                        (job := again.popleft() if again else next_job()) is not None:
                    future = self.client.submit(run_job, job, pure=False)
                    running[future] = job
                    completed.add(future)
                if not running:
                    return
                future = next(completed)
                results, retry = self._collect(future, running.pop(future))
                again.extend(retry)
                yield from results
        finally:
            self.client.cancel(list(running))

    def _collect(self, future, job) -> tuple[list[TrialResult], list]:
        """(the job's results, the jobs to run again in its place)."""
        from distributed import KilledWorker  # lazy: see __init__

        try:
            return future.result(), []
        except KilledWorker as error:
            # The scheduler itself runs a task whose worker died on another, up to its
            # allowed-failures; this says they all died. Counted as that many losses, the
            # trial runs again only if that is fewer than a local sweep allows.
            times = error.allowed_failures + 1
            why = (f"the {times} Dask worker{'s' * (times > 1)} that ran it died (the last: "
                   f"{getattr(error.last_worker, 'address', '?')})")
            retry, failed = self.losses.lost(job, why, times)
            return failed, retry
        except Exception as error:  # the job could not be sent or read back
            return [TrialResult(index, {"status": "failed",
                                        "error": f"{type(error).__name__}: {error}"})
                    for index in job_indices(job)], []

    def close(self, abort: bool = False) -> None:
        self.client.close()
