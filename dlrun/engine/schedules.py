"""Learning-rate decay schedules: `lr(lr0, epoch, step)` with epoch and step counted from 0.

Before training, `bind(total_epochs, steps_per_epoch)` tells a schedule the run's length, so one
that depends on it (cosine) follows `train.epochs` instead of repeating it in its own options.

`interval` groups epochs, as in fixed-interval scheduling: the rate changes once per `interval`
epochs, so interval=1 decays every epoch.
"""

from __future__ import annotations

import math

from .registry import check


def _check_interval(interval: int) -> None:
    check(isinstance(interval, int) and interval >= 1,
          f"Argument `interval` must be a whole number >= 1. Received: interval={interval}")


class Schedule:
    name = ""
    per_step = False  # True: the rate may change between the steps of one epoch
    total_epochs: int | None = None  # the run's length, once bound
    steps_per_epoch: int | None = None

    def bind(self, total_epochs: int, steps_per_epoch: int) -> Schedule:
        """Tell the schedule that the run lasts `total_epochs` epochs of `steps_per_epoch` steps."""
        self.total_epochs, self.steps_per_epoch = total_epochs, steps_per_epoch
        return self

    @property
    def total_steps(self) -> int:
        """T = epochs × steps per epoch: the number of steps the run takes."""
        if self.total_epochs is None or self.steps_per_epoch is None:
            raise RuntimeError(f"schedule {self.name!r} depends on the run's length: call "
                               "bind(total_epochs, steps_per_epoch) before lr()")
        return self.total_epochs * self.steps_per_epoch

    def lr(self, lr0: float, epoch: int, step: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """α = α₀."""

    name = "none"

    def lr(self, lr0, epoch, step):
        return lr0


class InverseTime(Schedule):
    """α = α₀ / (1 + rate·⌊epoch/interval⌋)."""

    name = "inverse_time"

    def __init__(self, rate: float = 1.0, interval: int = 1):
        check(rate >= 0, f"Argument `rate` must be >= 0. Received: rate={rate}")
        _check_interval(interval)
        self.rate, self.interval = rate, interval

    def lr(self, lr0, epoch, step):
        return lr0 / (1 + self.rate * (epoch // self.interval))


class Exponential(Schedule):
    """α = α₀ · base^(epoch/interval): smooth decay, 0.95 per interval by default."""

    name = "exponential"

    def __init__(self, base: float = 0.95, interval: int = 1):
        check(0 < base <= 1, f"Argument `base` must be in (0, 1]. Received: base={base}")
        _check_interval(interval)
        self.base, self.interval = base, interval

    def lr(self, lr0, epoch, step):
        return lr0 * self.base ** (epoch / self.interval)


class Staircase(Schedule):
    """α = α₀ · factor^⌊epoch/interval⌋: a drop by `factor` every `interval` epochs."""

    name = "staircase"

    def __init__(self, factor: float = 0.5, interval: int = 10):
        check(0 < factor <= 1, f"Argument `factor` must be in (0, 1]. Received: factor={factor}")
        _check_interval(interval)
        self.factor, self.interval = factor, interval

    def lr(self, lr0, epoch, step):
        return lr0 * self.factor ** (epoch // self.interval)


class InverseSqrtEpoch(Schedule):
    """α = α₀ · k/√(1 + ⌊epoch/interval⌋): the first epoch runs at k·α₀."""

    name = "inverse_sqrt_epoch"

    def __init__(self, k: float = 1.0, interval: int = 1):
        check(k > 0, f"Argument `k` must be > 0. Received: k={k}")
        _check_interval(interval)
        self.k, self.interval = k, interval

    def lr(self, lr0, epoch, step):
        return lr0 * self.k / math.sqrt(1 + epoch // self.interval)


class InverseSqrtStep(Schedule):
    """α = α₀ · k/√(1 + t), t the number of mini-batch steps already taken."""

    name = "inverse_sqrt_step"
    per_step = True

    def __init__(self, k: float = 1.0):
        check(k > 0, f"Argument `k` must be > 0. Received: k={k}")
        self.k = k

    def lr(self, lr0, epoch, step):
        return lr0 * self.k / math.sqrt(1 + step)


class Cosine(Schedule):
    """α = α_min + (α₀ − α_min)·½(1 + cos(π·t/T)) with α_min = floor·α₀, t the steps already taken
    and T the run's total steps: α₀ at the first step, (α₀ + α_min)/2 halfway, α_min at the end
    (t past T, as gradient checking's extra steps may go, stays at α_min)."""

    name = "cosine"
    per_step = True

    def __init__(self, floor: float = 0.0):
        check(0 <= floor < 1, f"Argument `floor` must be in [0, 1). Received: floor={floor}")
        self.floor = floor

    def lr(self, lr0, epoch, step):
        progress = min(step / self.total_steps, 1.0)
        return lr0 * (self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress)))


SCHEDULES = {cls.name: cls for cls in (Constant, InverseTime, Exponential, Staircase,
                                       InverseSqrtEpoch, InverseSqrtStep, Cosine)}
