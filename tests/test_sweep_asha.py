"""The sweep's asynchronous scheduling: backends pull jobs one at a time, ASHA promotes as soon
as a trial is in the top 1/factor of its rung, and a promoted trial ends as if never paused."""

import pytest

from dlrun.sweep.trial import TrialTask
from dlrun.sweep.workers import ProcessBackend, SerialBackend

TINY = {"name": "tiny", "seed": 0, "data": {"generator": {"name": "moons", "n_samples": 60}},
        "model": {"hidden_layers": [3]}, "train": {"epochs": 1}}


class Jobs:
    """A next_job() that hands out `count` jobs, but at most `wave` before a result comes back,
    and checks that no more than `slots` are ever in flight."""

    def __init__(self, count: int, wave: int, slots: int):
        self.count, self.wave, self.slots = count, wave, slots
        self.given = self.returned = 0
        self.calls_in_flight = []

    def __call__(self):
        in_flight = self.given - self.returned
        self.calls_in_flight.append(in_flight)
        if self.given == self.count or in_flight >= self.wave:
            return None  # nothing can start now: the backend must wait for a result
        self.given += 1
        return TrialTask(self.given - 1, TINY, "tiny.yaml")


@pytest.mark.parametrize("make, slots", [(SerialBackend, 1), (lambda: ProcessBackend(2), 2)])
def test_a_backend_pulls_jobs_as_slots_free_and_ends_when_none_is_left(make, slots):
    backend = make()
    jobs = Jobs(count=5, wave=slots, slots=slots)
    try:
        indices = []
        for result in backend.run(jobs):
            jobs.returned += 1
            assert result.summary["status"] == "completed"
            indices.append(result.index)
    finally:
        backend.close()
    assert sorted(indices) == [0, 1, 2, 3, 4]
    assert max(jobs.calls_in_flight) <= slots  # never asked for more than its slots hold
    assert jobs.calls_in_flight[-1] == 0  # it ended with nothing in flight and nothing to start
