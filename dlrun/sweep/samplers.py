"""Where a sweep's trials come from: random draws, a grid, or TPE learning from the trials so far.

Every sampler draws from the same search space (dlrun.sweep.space) and is reproducible from the
sweep seed. Random and grid know every trial in advance; TPE (Optuna's TPESampler, used as a
library) proposes trials in batches and is told their results in trial-number order, so neither
the number of workers nor which one finishes first changes what it proposes.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from .space import Choice, LogUniform, OneMinusLogUniform, RandInt, SearchSpace, Uniform

NAMES = ("random", "grid", "tpe")


def sampling_rng(sweep_seed: int, index: int) -> np.random.Generator:
    """The generator of the sampled values of random point `index`: it depends only on the
    sweep seed and the index, never on which worker ran the trial or when."""
    sampling, _ = np.random.SeedSequence(sweep_seed, spawn_key=(index,)).spawn(2)
    return np.random.default_rng(sampling)


class RandomSampler:
    """The course's method: every trial an independent draw, on each range's own scale."""

    name, adaptive = "random", False

    def __init__(self, space: SearchSpace, seed: int, trials: int):
        self.space, self.seed, self.trials = space, seed, trials

    def ask(self, index: int) -> dict[str, Any]:
        return self.space.sample(sampling_rng(self.seed, index))

    def tell(self, index: int, value: float | None) -> None: ...

    def settings(self) -> dict:
        return {"name": self.name}


class GridSampler(RandomSampler):
    """Cell centres of every range, every choice, at most `trials` points."""

    name = "grid"

    def __init__(self, space: SearchSpace, seed: int, trials: int):
        super().__init__(space, seed, trials)
        self.points = space.grid(trials)
        self.trials = len(self.points)

    def ask(self, index: int) -> dict[str, Any]:
        return self.points[index]


def _optuna_distribution(distribution):
    """The Optuna distribution of one range; 1-β ranges are searched as a log scale on 1-β,
    choices by their position (Optuna's categories must be plain values, not layer lists)."""
    from optuna.distributions import (  # lazy: optuna is an optional extra
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    if isinstance(distribution, Choice):
        return CategoricalDistribution(list(range(len(distribution.options))))
    if isinstance(distribution, RandInt):
        return IntDistribution(distribution.low, distribution.high)
    if isinstance(distribution, OneMinusLogUniform):
        return FloatDistribution(1 - distribution.high, 1 - distribution.low, log=True)
    if isinstance(distribution, LogUniform):
        return FloatDistribution(distribution.low, distribution.high, log=True)
    if isinstance(distribution, Uniform):
        return FloatDistribution(distribution.low, distribution.high)
    raise TypeError(f"no Optuna distribution for {distribution!r}")


def _from_optuna(distribution, value):
    if isinstance(distribution, Choice):
        return copy.deepcopy(distribution.options[value])
    if isinstance(distribution, OneMinusLogUniform):
        return 1 - value
    return value


class TPESampler:
    """Optuna's Tree-structured Parzen Estimator: random for its first trials, then drawn toward
    the ranges where the optimized metric was good."""

    name, adaptive = "tpe", True

    def __init__(self, space: SearchSpace, seed: int, trials: int, maximize: bool = False,
                 startup: int = 10):
        try:
            import optuna  # lazy: an optional extra that takes a second to import
        except ImportError:
            raise ConfigError("--sampler tpe needs Optuna: pip install \"dlrun[search]\"") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.seed, self.trials, self.startup = space, seed, trials, startup
        self.distributions = {p.key: _optuna_distribution(p.distribution) for p in space.parameters}
        self.study = optuna.create_study(
            direction="maximize" if maximize else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup))
        self.asked: dict[int, Any] = {}

    def ask(self, index: int) -> dict[str, Any]:
        trial = self.study.ask(self.distributions)
        self.asked[index] = trial
        by_key = {p.key: p.distribution for p in self.space.parameters}
        return {key: _from_optuna(by_key[key], trial.params[key]) for key in self.distributions}

    def tell(self, index: int, value: float | None) -> None:
        from optuna.trial import TrialState  # lazy: optuna is an optional extra
        trial = self.asked.pop(index)
        if value is None or not math.isfinite(value):  # failed, diverged: no value to learn from
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, value)

    def settings(self) -> dict:
        return {"name": self.name, "n_startup_trials": self.startup,
                "library": "optuna.samplers.TPESampler"}


def make(name: str, space: SearchSpace, seed: int, trials: int, maximize: bool = False):
    if name not in NAMES:
        raise ConfigError(f"--sampler {name!r}: expected one of {', '.join(NAMES)}")
    if name == "tpe":
        return TPESampler(space, seed, trials, maximize)
    return (GridSampler if name == "grid" else RandomSampler)(space, seed, trials)
