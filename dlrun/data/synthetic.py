"""Seeded generators of small classic data sets; nothing is downloaded.

Each generator is built from its YAML options and returns X (m, n) float64 and integer labels y.
"""

from __future__ import annotations

import numpy as np

from ..engine.registry import check


class Generator:
    name = ""

    def __init__(self, n_samples: int = 600, noise: float = 0.1):
        check(isinstance(n_samples, int) and n_samples >= 2,
              f"Argument `n_samples` must be a whole number >= 2. Received: n_samples={n_samples}")
        check(noise >= 0, f"Argument `noise` must be >= 0. Received: noise={noise}")
        self.n_samples, self.noise = n_samples, noise

    def generate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def counts(self, classes: int) -> list[int]:
        """n_samples spread over the classes as evenly as possible."""
        return [self.n_samples // classes + (k < self.n_samples % classes) for k in range(classes)]


class Moons(Generator):
    """Two interleaving half circles, with Gaussian noise of std `noise`."""

    name = "moons"

    def __init__(self, n_samples: int = 600, noise: float = 0.2):
        super().__init__(n_samples, noise)

    def generate(self, rng):
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

    def __init__(self, n_samples: int = 600, noise: float = 0.05, factor: float = 0.5):
        super().__init__(n_samples, noise)
        check(0 < factor < 1, f"Argument `factor` must be in (0, 1). Received: factor={factor}")
        self.factor = factor

    def generate(self, rng):
        n_outer, n_inner = self.counts(2)
        angles = rng.uniform(0, 2 * np.pi, self.n_samples)
        radius = np.repeat([1.0, self.factor], [n_outer, n_inner])
        X = radius[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
        X += rng.normal(0, self.noise, X.shape)
        y = np.repeat([0, 1], [n_outer, n_inner])
        return X, y


GENERATORS = {cls.name: cls for cls in (Moons, Circles)}
