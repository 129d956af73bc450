"""Weight-initialization schemes: each returns W of shape (n_out, n_in), the course's layout."""

from __future__ import annotations

import numpy as np

from .registry import check


class Initializer:
    name = ""

    def __call__(self, rng: np.random.Generator, n_out: int, n_in: int, dtype) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) * self.std(n_out, n_in)).astype(dtype)

    def std(self, n_out: int, n_in: int) -> float:
        raise NotImplementedError


class Zeros(Initializer):
    """All weights zero: every unit of a layer computes the same thing (symmetry is never broken)."""

    name = "zeros"

    def __call__(self, rng, n_out, n_in, dtype):
        return np.zeros((n_out, n_in), dtype=dtype)


class Random(Initializer):
    """Standard normal times `scale` (0.01 is small; 10 is the course's 'too large' case)."""

    name = "random"

    def __init__(self, scale: float = 0.01):
        check(scale > 0, f"Argument `scale` must be > 0. Received: scale={scale}")
        self.scale = scale

    def std(self, n_out, n_in):
        return self.scale


class He(Initializer):
    """Variance 2/n_in: keeps ReLU activations from shrinking or growing with depth."""

    name = "he"

    def std(self, n_out, n_in):
        return np.sqrt(2.0 / n_in)


class Xavier(Initializer):
    """Variance 1/n_in: the tanh counterpart of He."""

    name = "xavier"

    def std(self, n_out, n_in):
        return np.sqrt(1.0 / n_in)


class Glorot(Initializer):
    """Variance 2/(n_in + n_out): balances the forward and the backward signal."""

    name = "glorot"

    def std(self, n_out, n_in):
        return np.sqrt(2.0 / (n_in + n_out))


INITIALIZERS = {cls.name: cls for cls in (Zeros, Random, He, Xavier, Glorot)}
