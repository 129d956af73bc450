"""Asynchronous successive halving (ASHA: Li et al., 2018, "A System for Massively Parallel
Hyperparameter Tuning"): what a sweep's free slot runs next.

Rungs are epochs r0 < r1 < ... below the trials' epochs. Every point (its trials: one, or one
per seed) starts at the bottom: it trains to r0 and pauses there, keeping its checkpoint, and
reports its score at that rung. Whenever a slot frees, the scheduler looks from the highest rung
down for a point paused at a rung where it is among the best ⌊n/factor⌋ of the n points that
have reported there, and promotes it: its trials go on from their own checkpoints to the next
rung (from the last rung, to their end). If no point can be promoted, a new one starts at the
bottom. No rung waits for all its points, so no slot idles while there is work; once every
point has started, a rung holding fewer than `factor` points still promotes its best, so a
small sweep ends with a trained trial. What is still paused when nothing can move is pruned.

Without rungs (no --prune) nothing waits to be promoted, so every point that can start does,
at once, and its jobs are grouped (`group`: trials sharing an architecture become one stacked
job, dlrun.sweep.stacked). With rungs every trial runs alone: a stack keeps no checkpoint to
pause at or go on from.

The adaptive sampler (TPE) is asked for a point when the point starts, and told each point's
score once the point has reported at the bottom rung (or ended, without pruning) in batches of
`batch` points, in point order: point p is asked only once every point of the batches before
p's has been told, so what TPE proposes depends on the seed and the batch, never on which
worker finishes first. Which points are promoted does: with several workers, a point reports
at a rung before or after another depending on timing. With one worker everything happens in
one order, so a sweep is the same every time.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable

from .stacked import job_indices
from .trial import TrialResult, TrialTask


class Ladder:
    """The rungs and every point's score at each rung it reached (lower is better)."""

    def __init__(self, stops: list[int], factor: int):
        self.stops, self.factor = list(stops), factor
        self.scores: list[dict[int, tuple]] = [{} for _ in self.stops]

    def report(self, rung: int, point: int, score: tuple) -> None:
        self.scores[rung][point] = score

    def keep(self, rung: int, last_call: bool = False) -> int:
        """How many of the points reported at `rung` go on: ⌊n/factor⌋; at least one once no
        new point can start (`last_call`), or a small sweep would finish no trial."""
        count = len(self.scores[rung]) // self.factor
        return max(count, 1) if last_call and self.scores[rung] else count

    def ranked(self, rung: int) -> list[int]:
        scores = self.scores[rung]
        return sorted(scores, key=scores.get)

    def promotable(self, paused: dict[int, int], last_call: bool = False) -> tuple[int, int] | None:
        """(rung, point) of the point to promote, highest rung first, best first; paused maps a
        point to the rung it waits at."""
        for rung in reversed(range(len(self.stops))):
            for point in self.ranked(rung)[:self.keep(rung, last_call)]:
                if paused.get(point) == rung:
                    return rung, point
        return None

    def stop_after(self, rung: int | None) -> int | None:
        """Where a point goes on to from `rung` (None: the bottom rung, for a new point): the next
        rung's epoch, or None for its end."""
        following = 0 if rung is None else rung + 1
        return self.stops[following] if following < len(self.stops) else None


def score(values: list[float | None], losses: list[float | None], point: int) -> tuple:
    """A point's score at a rung: the mean optimized metric of its trials there (lower is
    better), ties by mean dev loss, then by point number; no value ranks last."""
    def mean(numbers):
        finite = all(v is not None and math.isfinite(v) for v in numbers)
        return sum(numbers) / len(numbers) if numbers and finite else math.inf
    return (mean(values), mean(losses), point)


class Scheduler:
    """The jobs of a sweep, one at a time, as its backend's slots free (backend.run(next_job)).

    `sweep` is a dlrun.sweep.run.Sweep (its trials, the finished ones, finish_trial, metric);
    `new_point(point, values)` makes a point's trials; `batch` is how many points the adaptive
    sampler proposes between tellings (its reproducibility rule, above); `group(tasks)` makes
    the jobs of tasks planned together."""

    def __init__(self, sweep, new_point: Callable[[int, dict], list], stops: list[int],
                 factor: int, batch: int, group: Callable[[list], list] = list):
        self.sweep, self.sampler, self.new_point, self.group = sweep, sweep.sampler, new_point, group
        self.ladder = Ladder(stops, factor)
        self.batch, self.total = batch, sweep.sampler.trials
        self.ready: list[TrialTask] = []  # tasks planned, not yet grouped into jobs
        self.queue: deque = deque()  # jobs: a task, or a stacked group of tasks
        self.points: dict[int, list] = {}  # started points and their trials
        self.by_index: dict[int, Any] = {}
        self.out: dict[int, int] = {}  # point -> its trials still in flight
        self.paused: dict[int, int] = {}  # point -> the rung it waits at
        self.results: dict[int, TrialResult] = {}  # a paused trial's result: its files go on
        self.told: dict[int, float | None] = {}  # score the sampler hears, by point, once known
        self.told_upto = 0  # points before this have been told to the sampler
        self.next_point = 0
        self.in_flight = 0

    # The loop's parts: next_job (what a free slot runs), receive (a result), close (the end).

    def next_job(self):
        while not self.queue and self._plan():
            pass
        if not self.queue:
            return None
        job = self.queue.popleft()
        self.in_flight += len(job_indices(job))
        return job

    def _plan(self) -> bool:
        """Queue the next jobs: a promotion if there is one, else a new point (without rungs,
        every point that can start); False when nothing can start now."""
        found = self.ladder.promotable(self.paused, last_call=not self._more_points())
        if found is not None:
            self._promote(*found)
        else:
            if not self._can_start(self.next_point):
                return False
            while self._can_start(self.next_point):
                self._start(self.next_point)
                self.next_point += 1
                if self.ladder.stops:  # ASHA: the next point is decided when a slot frees
                    break
        self.queue.extend(self.group(self.ready))
        self.ready = []
        return True

    def _more_points(self) -> bool:
        return self.next_point < self.total

    def _can_start(self, point: int) -> bool:
        if point >= self.total:
            return False
        # The adaptive sampler proposes point p knowing every batch before p's, and only those.
        return not self.sampler.adaptive or self.told_upto >= point - point % self.batch

    def _start(self, point: int) -> None:
        trials = self._trials_of(point)
        self.points[point] = trials
        self.by_index.update((t.index, t) for t in trials)
        waiting = [t for t in trials if t.index not in self.sweep.finished]
        if not waiting:  # finished before (a resumed sweep): its reports come from its files
            self._replay(point, trials)
            return
        stop = self.ladder.stop_after(None)
        self._send(point, waiting, stop)

    def _trials_of(self, point: int) -> list:
        if self.sampler.adaptive:
            values = self.sampler.ask(point)
            known = sorted((t for t in self.sweep.finished.values() if t.point == point),
                           key=lambda t: t.index)
            trials = self.new_point(point, known[0].values if known else values)
            self.sweep.trials.extend(t for t in trials
                                     if t.index not in {s.index for s in self.sweep.trials})
            return [self.sweep.finished.get(t.index, t) for t in trials]
        return [self.sweep.finished.get(t.index, t) for t in self.sweep.trials if t.point == point]

    def _promote(self, rung: int, point: int) -> None:
        del self.paused[point]
        trials = [t for t in self.points[point] if t.index in self.results]
        self._send(point, trials, self.ladder.stop_after(rung))

    def _send(self, point: int, trials: list, stop: int | None) -> None:
        self.out[point] = len(trials)
        for trial in trials:
            paused = self.results.pop(trial.index, None)
            self.ready.append(TrialTask(trial.index, trial.config, self.sweep.space.source,
                                        stop if stop is not None and stop < trial.epochs else None,
                                        paused.files if paused else None))

    def receive(self, result: TrialResult) -> None:
        """Take one trial's result: paused at a rung, it waits there; otherwise it is finished.
        Once all the trials of its point are back, the point reports."""
        self.in_flight -= 1
        trial = self.by_index[result.index]
        if result.summary["status"] == "pruned" and result.stop_epoch is not None:
            self.results[trial.index] = result  # its fate depends on the others at this rung
        else:
            self.sweep.finish_trial(trial, result.summary, result.files)
        self.out[trial.point] -= 1
        if self.out[trial.point] == 0:
            self._point_back(trial.point, result.stop_epoch)

    def _point_back(self, point: int, stop: int | None) -> None:
        trials = self.points[point]
        waiting = [t for t in trials if t.index in self.results]
        if waiting and stop in self.ladder.stops:
            rung = self.ladder.stops.index(stop)
            self.ladder.report(rung, point, self._score([self.results[t.index].summary
                                                         for t in waiting], waiting, point))
            self.paused[point] = rung
        if point not in self.told:  # the bottom rung, or its end: what the sampler learns from
            self._tell(point, [self.results[t.index].summary if t.index in self.results
                               else t.summary for t in trials], trials)

    def _score(self, summaries: list[dict], trials: list, point: int) -> tuple:
        values = [self.sweep.metric(t, s) for t, s in zip(trials, summaries)]
        losses = [((s.get("final") or {}).get("dev") or {}).get("loss") for s in summaries]
        return score(values, losses, point)

    def _tell(self, point: int, summaries: list[dict], trials: list) -> None:
        values = [self.sweep.metric(t, s) for t, s in zip(trials, summaries)]
        self.told[point] = None if any(v is None for v in values) else sum(values) / len(values)
        # Tell whole batches, in point order: the sampler's next batch then depends on these alone.
        while True:
            batch = range(self.told_upto, min(self.total, self.told_upto + self.batch))
            if not batch or any(p not in self.told for p in batch):
                return
            for p in batch:
                self.sampler.tell(p, self.told[p])
            self.told_upto = batch.stop

    def _replay(self, point: int, trials: list) -> None:
        """A point finished before this run (a resumed sweep): its score at every rung epoch its
        trials passed counts as its report there, read from their own files."""
        for rung, stop in enumerate(self.ladder.stops):
            summaries = [self.sweep.summary_at(t, stop) for t in trials]
            if any(s is None for s in summaries):
                break
            self.ladder.report(rung, point, self._score(summaries, trials, point))
        bottom = self.ladder.stops[0] if self.ladder.stops else None
        at_bottom = [self.sweep.summary_at(t, bottom) if bottom else None for t in trials]
        self._tell(point, [s or t.summary for s, t in zip(at_bottom, trials)], trials)

    def close(self) -> list[tuple[Any, TrialResult, str]]:
        """What is still paused when nothing can move: (trial, its result, why it is pruned)."""
        pruned = []
        for point, rung in sorted(self.paused.items()):
            ranked = self.ladder.ranked(rung)
            keep = self.ladder.keep(rung, last_call=True)
            stop = self.ladder.stops[rung]
            goes_on = self.ladder.stop_after(rung)
            goes_on = f"{goes_on} epochs" if goes_on else "all its epochs"
            value = self.ladder.scores[rung][point][0]
            value = f"{abs(value):.4g}" if math.isfinite(value) else "none"
            reason = (f"asynchronous successive halving at epoch {stop}: {self.watched()} "
                      f"{value} ranked {ranked.index(point) + 1} of {len(ranked)} there; only "
                      f"the best {keep} went on to {goes_on}")
            for trial in self.points[point]:
                if trial.index in self.results:
                    pruned.append((trial, self.results.pop(trial.index), reason))
        self.paused.clear()
        return pruned

    def watched(self) -> str:
        name = self.sweep.options.optimize.lstrip("-")
        return f"mean {name} over its seeds" if self.sweep.options.seeds > 1 else name
