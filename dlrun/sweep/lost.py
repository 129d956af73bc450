"""Trials lost with their worker process (killed, out of memory): run again a bounded number of
times, then failed with the reason. Only the trials a dead worker was running count as lost; the
ones waiting for a worker were never started and are simply sent to another."""

from __future__ import annotations

from .trial import TrialResult

RETRIES = 2  # a trial lost with its worker runs again at most this many times


def job_tasks(job) -> tuple:
    """The trials of a job: itself, or the members of a stacked group (dlrun.sweep.stacked)."""
    return tuple(getattr(job, "tasks", (job,)))


class Losses:
    """How many times each trial was lost; what to run again and what to give up."""

    def __init__(self, retries: int = RETRIES):
        self.retries = retries
        self.counts: dict[int, int] = {}

    def lost(self, job, why: str, times: int = 1) -> tuple[list, list[TrialResult]]:
        """(jobs to run again, failed results) for a job whose worker died. A stacked group runs
        again as its trials one by one: a trial that kills its worker every time then fails
        alone, and its group's others end as they would have stacked (stacking changes no
        trial's numbers). `times`: how many losses this was (a Dask scheduler retries itself);
        a group's members count at most `retries` of them, so each runs alone at least once."""
        tasks = job_tasks(job)
        if len(tasks) > 1 or tasks[0] is not job:
            times = min(times, self.retries)
        again, failed = [], []
        for task in tasks:
            count = self.counts[task.index] = self.counts.get(task.index, 0) + times
            if count > self.retries:
                failed.append(TrialResult(task.index, {
                    "status": "failed", "error": f"worker process lost {count} times: {why}"}))
            else:
                again.append(task)
        return again, failed
