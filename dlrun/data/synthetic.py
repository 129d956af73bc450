"""Seeded generators of small classic data sets; nothing is downloaded.

Each generator is built from its YAML options and returns X (m, n) float64 and integer labels y.
Every generator takes `stretch`: the features are multiplied by factors rising geometrically from
1 (first feature) to `stretch` (last), which gives the badly scaled inputs of the normalization
lesson without changing the problem itself.
"""

from __future__ import annotations

import numpy as np

from ..engine.registry import check


def _check_whole(name: str, value, minimum: int) -> None:
    check(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
          f"Argument `{name}` must be a whole number >= {minimum}. Received: {name}={value}")


class Generator:
    name = ""

    def __init__(self, n_samples: int = 600, noise: float = 0.1, stretch: float = 1.0):
        _check_whole("n_samples", n_samples, 2)
        check(noise >= 0, f"Argument `noise` must be >= 0. Received: noise={noise}")
        check(stretch > 0, f"Argument `stretch` must be > 0. Received: stretch={stretch}")
        self.n_samples, self.noise, self.stretch = n_samples, noise, stretch

    def generate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(X (m, n), y (m,)) with the features stretched."""
        X, y = self.sample(rng)
        if self.stretch != 1 and X.shape[1] > 1:
            X = X * self.stretch ** np.linspace(0, 1, X.shape[1])
        return X, y

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def counts(self, classes: int) -> list[int]:
        """n_samples spread over the classes as evenly as possible."""
        return [self.n_samples // classes + (k < self.n_samples % classes) for k in range(classes)]


class Moons(Generator):
    """Two interleaving half circles, with Gaussian noise of std `noise`."""

    name = "moons"

    def __init__(self, n_samples: int = 600, noise: float = 0.2, stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)

    def sample(self, rng):
        n_upper, n_lower = self.counts(2)
        t_upper = rng.uniform(0, np.pi, n_upper)
        t_lower = rng.uniform(0, np.pi, n_lower)
        upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
        lower = np.column_stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
        X = np.vstack([upper, lower]) + rng.normal(0, self.noise, (self.n_samples, 2))
        y = np.repeat([0, 1], [n_upper, n_lower])
        return X, y


class Circles(Generator):
    """A circle of class 0 around a smaller one of class 1 (radius ratio `factor`)."""

    name = "circles"

    def __init__(self, n_samples: int = 600, noise: float = 0.05, factor: float = 0.5,
                 stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)
        check(0 < factor < 1, f"Argument `factor` must be in (0, 1). Received: factor={factor}")
        self.factor = factor

    def sample(self, rng):
        n_outer, n_inner = self.counts(2)
        angles = rng.uniform(0, 2 * np.pi, self.n_samples)
        radius = np.repeat([1.0, self.factor], [n_outer, n_inner])
        X = radius[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
        X += rng.normal(0, self.noise, X.shape)
        y = np.repeat([0, 1], [n_outer, n_inner])
        return X, y


class Flower(Generator):
    """The planar 'flower': r = radius·sin(petals·θ), class 0 for θ in [0, π), 1 for [π, 2π).

    Where sin is negative the point lands on the opposite side, so the two classes alternate
    petal by petal; `noise` jitters both θ and r.
    """

    name = "flower"

    def __init__(self, n_samples: int = 400, noise: float = 0.2, petals: int = 4,
                 radius: float = 4.0, stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)
        _check_whole("petals", petals, 1)
        check(radius > 0, f"Argument `radius` must be > 0. Received: radius={radius}")
        self.petals, self.radius = petals, radius

    def sample(self, rng):
        parts = []
        for label, count in enumerate(self.counts(2)):
            theta = np.linspace(label * np.pi, (label + 1) * np.pi, count, endpoint=False)
            theta = theta + rng.normal(0, self.noise, count)
            r = self.radius * np.sin(self.petals * theta) + rng.normal(0, self.noise, count)
            parts.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        y = np.repeat([0, 1], self.counts(2))
        return np.vstack(parts), y


class Spirals(Generator):
    """`classes` arms winding out from the centre, `turns` full turns each; `noise` in radians."""

    name = "spirals"

    def __init__(self, n_samples: int = 600, noise: float = 0.2, classes: int = 3,
                 turns: float = 0.75, stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)
        _check_whole("classes", classes, 2)
        check(turns > 0, f"Argument `turns` must be > 0. Received: turns={turns}")
        self.classes, self.turns = classes, turns

    def sample(self, rng):
        counts = self.counts(self.classes)
        parts = []
        for arm, count in enumerate(counts):
            r = np.linspace(0.05, 1, count)
            theta = 2 * np.pi * (arm / self.classes + self.turns * r)
            theta = theta + rng.normal(0, self.noise, count)
            parts.append(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))
        return np.vstack(parts), np.repeat(np.arange(self.classes), counts)


class Blobs(Generator):
    """`classes` Gaussian clusters of std `noise` in `features` dimensions, their centres drawn
    uniformly in [-spread, spread]."""

    name = "blobs"

    def __init__(self, n_samples: int = 600, noise: float = 1.0, classes: int = 3,
                 features: int = 2, spread: float = 5.0, stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)
        _check_whole("classes", classes, 2)
        _check_whole("features", features, 1)
        check(spread > 0, f"Argument `spread` must be > 0. Received: spread={spread}")
        self.classes, self.features, self.spread = classes, features, spread

    def sample(self, rng):
        counts = self.counts(self.classes)
        centres = rng.uniform(-self.spread, self.spread, (self.classes, self.features))
        y = np.repeat(np.arange(self.classes), counts)
        X = centres[y] + rng.normal(0, self.noise, (self.n_samples, self.features))
        return X, y


class Xor(Generator):
    """Points uniform in the four quadrants of [-1, 1]², class 1 where exactly one coordinate is
    positive, then jittered by `noise`, so the classes overlap near the axes."""

    name = "xor"

    def __init__(self, n_samples: int = 400, noise: float = 0.1, stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)

    def sample(self, rng):
        y = np.repeat([0, 1], self.counts(2))
        first_sign = rng.choice([-1.0, 1.0], self.n_samples)
        second_sign = np.where(y == 1, -first_sign, first_sign)
        X = rng.uniform(0, 1, (self.n_samples, 2)) * np.column_stack([first_sign, second_sign])
        return X + rng.normal(0, self.noise, X.shape), y


GENERATORS = {cls.name: cls for cls in (Moons, Circles, Flower, Spirals, Blobs, Xor)}
