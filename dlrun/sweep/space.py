"""Search spaces: distributions standing in for config values, sampled, gridded and narrowed.

A distribution is a one-key mapping in the YAML, e.g. `learning_rate: {loguniform: [1e-4, 1]}`.
Each maps the unit interval onto its values on the scale the course recommends (log for rates,
log of 1-β for averaging β's), so sampling, grids and coarse-to-fine narrowing share one code path.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ..compose import at as compose_at
from ..errors import ConfigError

REFINE_MARGIN = 0.1  # a narrowed range reaches this fraction of the old one beyond the best values


class Distribution:
    """Where one config value is drawn from."""

    name: str

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def grid(self, points: int) -> list:
        """`points` values spread evenly on this distribution's own scale."""
        raise NotImplementedError

    def narrow(self, best: list) -> "Distribution":
        """A distribution covering the values of the best trials, and a margin."""
        raise NotImplementedError

    def to_yaml(self) -> dict:
        raise NotImplementedError


class Scaled(Distribution):
    """A range [low, high] mapped from the unit interval by `from_unit`."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def from_unit(self, u: float) -> float:
        raise NotImplementedError

    def to_unit(self, value: float) -> float:
        raise NotImplementedError

    def sample(self, rng):
        return self.from_unit(rng.random())

    def grid(self, points):
        # cell centres: one point is the middle of the range, never an extreme bound
        return [self.from_unit((i + 0.5) / points) for i in range(points)]

    def narrow(self, best):
        units = [self.to_unit(value) for value in best]
        low = max(0.0, min(units) - REFINE_MARGIN)
        high = min(1.0, max(units) + REFINE_MARGIN)
        return type(self)(self._clip(self.from_unit(low)), self._clip(self.from_unit(high)))

    def _clip(self, value):
        return min(max(value, self.low), self.high)

    def to_yaml(self):
        return {self.name: [self.low, self.high]}

    def __repr__(self):
        return f"{self.name} [{self.low!r}, {self.high!r}]"


class Uniform(Scaled):
    name = "uniform"

    def from_unit(self, u):
        return self.low + u * (self.high - self.low)

    def to_unit(self, value):
        return (value - self.low) / (self.high - self.low)


class LogUniform(Scaled):
    """Equal probability for every decade: 1e-4..1e-3 is as likely as 0.1..1."""

    name = "loguniform"

    def from_unit(self, u):
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))

    def to_unit(self, value):
        return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))


class OneMinusLogUniform(Scaled):
    """β with 1-β log-uniform: 0.9..0.99 is as likely as 0.99..0.999, where β matters most."""

    name = "one_minus_loguniform"

    def from_unit(self, u):
        near, far = math.log(1 - self.low), math.log(1 - self.high)
        return 1 - math.exp(near + u * (far - near))

    def to_unit(self, value):
        near, far = math.log(1 - self.low), math.log(1 - self.high)
        return (math.log(1 - value) - near) / (far - near)


class RandInt(Scaled):
    """A whole number from low to high, both included."""

    name = "randint"

    def from_unit(self, u):
        return min(self.low + int(u * (self.high - self.low + 1)), self.high)

    def to_unit(self, value):
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def grid(self, points):
        return sorted(set(super().grid(min(points, self.high - self.low + 1))))

    def narrow(self, best):
        narrowed = super().narrow(best)
        if narrowed.low == narrowed.high:  # keep a range, not a constant
            if narrowed.high < self.high:
                narrowed.high += 1
            else:
                narrowed.low -= 1
        return narrowed


class Choice(Distribution):
    """One of the listed values (numbers, names, or whole lists such as layer sizes)."""

    name = "choice"

    def __init__(self, options: list):
        self.options = options

    def sample(self, rng):
        return copy.deepcopy(self.options[int(rng.integers(len(self.options)))])

    def grid(self, points):
        return copy.deepcopy(self.options)

    def narrow(self, best):
        kept = [option for option in self.options if any(encode(option) == encode(b) for b in best)]
        return Choice(kept)

    def to_yaml(self):
        return {self.name: copy.deepcopy(self.options)}

    def __repr__(self):
        return f"choice {encode(self.options)}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(name: str, args) -> tuple:
    if not isinstance(args, list) or len(args) != 2 or not all(_is_number(a) for a in args):
        raise ValueError(f"{name} takes [low, high] (two finite numbers), got {encode(args)}")
    low, high = args
    if not low < high:
        raise ValueError(f"{name} needs low < high, got [{low!r}, {high!r}]")
    return low, high


def _make_loguniform(args):
    low, high = _bounds("loguniform", args)
    if low <= 0:
        raise ValueError(f"loguniform needs bounds > 0 (it samples their logarithm), got "
                         f"[{low!r}, {high!r}]")
    return LogUniform(float(low), float(high))


def _make_one_minus(args):
    low, high = _bounds("one_minus_loguniform", args)
    if not (0 < low and high < 1):
        raise ValueError(f"one_minus_loguniform needs 0 < low < high < 1 (it samples log(1 - β)), "
                         f"got [{low!r}, {high!r}]")
    return OneMinusLogUniform(float(low), float(high))


def _make_randint(args):
    low, high = _bounds("randint", args)
    if not all(isinstance(a, int) for a in (low, high)):
        raise ValueError(f"randint takes two whole numbers [low, high], got [{low!r}, {high!r}]")
    return RandInt(low, high)


def _make_uniform(args):
    low, high = _bounds("uniform", args)
    return Uniform(float(low), float(high))


def _make_choice(args):
    if not isinstance(args, list) or not args:
        raise ValueError(f"choice takes a non-empty list of values, got {encode(args)}")
    for option in args:
        if next(find_distributions(option), None):
            raise ValueError("choice options must be fixed values, not distributions")
    encoded = [encode(option) for option in args]
    if len(set(encoded)) != len(encoded):
        raise ValueError(f"choice options must differ, got {encode(args)}")
    return Choice(list(args))


DISTRIBUTIONS = {"loguniform": _make_loguniform, "uniform": _make_uniform,
                 "randint": _make_randint, "choice": _make_choice,
                 "one_minus_loguniform": _make_one_minus}


def encode(value) -> str:
    """A value as one line of JSON: how sweep.csv stores lists and how choices are matched."""
    return json.dumps(value, separators=(", ", ": "))


def _is_distribution(node) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DISTRIBUTIONS


def find_distributions(data, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """Every (key path, {name: args}) mapping in the data that stands for a distribution."""
    if _is_distribution(data):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from find_distributions(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from find_distributions(value, (*path, index))


def dotted(path: tuple) -> str:
    return ".".join(str(part) for part in path)


def _set(data, path: tuple, value) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@dataclass
class Parameter:
    path: tuple
    distribution: Distribution

    @property
    def key(self) -> str:
        return dotted(self.path)


@dataclass
class SearchSpace:
    """A config whose values at `parameters` are distributions; `lines` locate keys in `source`."""

    template: dict
    parameters: list[Parameter]
    source: str
    lines: dict
    overrides: list[str] = field(default_factory=list)  # applied to source; errors name them

    @classmethod
    def from_data(cls, data, source: str, lines: dict | None = None,
                  overrides: list[str] = ()) -> "SearchSpace":
        lines = lines or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections (name, data, model, "
                              f"train, ...), got {type(data).__name__}")
        parameters = []
        for path, node in find_distributions(data):
            ((name, args),) = node.items()
            try:
                parameters.append(Parameter(path, DISTRIBUTIONS[name](args)))
            except ValueError as error:
                line = lines.get((*path, name)) or lines.get(path)
                where = compose_at(source, line)
                raise ConfigError(f"{where}: {dotted(path)}: {error}") from None
        if not parameters:
            raise ConfigError(f"{source}: no distribution to sweep over; replace a value with "
                              f"one of {', '.join(DISTRIBUTIONS)}, e.g. "
                              "learning_rate: {loguniform: [1e-4, 1]}")
        return cls(data, parameters, source, lines, list(overrides))

    def instantiate(self, values: dict[str, Any]) -> dict:
        """The template with each distribution replaced by its value in `values` (by dotted key)."""
        data = copy.deepcopy(self.template)
        for parameter in self.parameters:
            _set(data, parameter.path, copy.deepcopy(values[parameter.key]))
        return data

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {p.key: p.distribution.sample(rng) for p in self.parameters}

    def _axes(self, k: int) -> list[list]:
        return [p.distribution.grid(k) for p in self.parameters]

    def grid_size(self, k: int) -> int:
        """Points of the grid with k points on each range (and every choice)."""
        return math.prod(len(axis) for axis in self._axes(k))

    def points_per_range(self, budget: int) -> int:
        """The largest k whose grid has at most `budget` points."""
        if self.grid_size(1) > budget:
            raise ConfigError(f"{self.source}: a grid over these choices has "
                              f"{self.grid_size(1)} points: --trials must be at least "
                              f"{self.grid_size(1)}")
        k = 1
        while k < budget and self.grid_size(k + 1) <= budget and \
                self.grid_size(k + 1) > self.grid_size(k):
            k += 1
        return k

    def grid(self, budget: int) -> list[dict[str, Any]]:
        """The finest grid with at most `budget` points: every choice, k points on other axes."""
        keys = [p.key for p in self.parameters]
        axes = self._axes(self.points_per_range(budget))
        return [dict(zip(keys, point)) for point in itertools.product(*axes)]

    def grid_note(self, budget: int) -> str | None:
        """Why a grid uses fewer trials than `budget` allows, or None when it uses them all."""
        k = self.points_per_range(budget)
        size, finer = self.grid_size(k), self.grid_size(k + 1)
        if size == budget or finer == size:
            return None
        return (f"grid: {size} trials, {k} point{'s' if k > 1 else ''} on each range; {k + 1} "
                f"on each would need --trials {finer}")

    def middle(self) -> dict[str, Any]:
        """Each range at its middle, each choice at its first option."""
        return {p.key: p.distribution.grid(1)[0] for p in self.parameters}

    def extremes(self) -> Iterator[tuple[Parameter, Any, dict[str, Any]]]:
        """(parameter, value, values) with each parameter at each end of its range in turn (each
        option of a choice), the others in the middle (a choice at its first option)."""
        middle = self.middle()
        for parameter in self.parameters:
            distribution = parameter.distribution
            ends = (distribution.options if isinstance(distribution, Choice)
                    else [distribution.low, distribution.high])
            for value in ends:
                yield parameter, value, {**middle, parameter.key: value}

    def narrowed(self, best_values: list[dict[str, Any]]) -> "SearchSpace":
        """The same space with each distribution narrowed around the best trials' values."""
        template = copy.deepcopy(self.template)
        parameters = []
        for parameter in self.parameters:
            narrowed = parameter.distribution.narrow([v[parameter.key] for v in best_values])
            _set(template, parameter.path, narrowed.to_yaml())
            parameters.append(Parameter(parameter.path, narrowed))
        return SearchSpace(template, parameters, self.source, self.lines, self.overrides)
