"""Weight-initialization schemes: each returns W of shape (n_out, n_in), the course's layout."""

from __future__ import annotations

import numpy as np

from .registry import check


class Initializer:
    """A scheme drawing W ~ N(0, std²) (Zeros aside). Its traits tell the advice what it is:

    `fan_scaled`: std follows the layer's size (fan-in, fan-out or both), so the signal keeps its
    scale through depth whatever the widths; `fan_in_gain`: the g of Var(W) = g/n_in when the
    variance is the fan-in's alone; the activation whose `init_gain` is g is the one it suits.
    """

    name = ""
    fan_scaled = False
    fan_in_gain: float | None = None

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
    fan_scaled, fan_in_gain = True, 2.0

    def std(self, n_out, n_in):
        return np.sqrt(2.0 / n_in)


class Xavier(Initializer):
    """Variance 1/n_in: the tanh counterpart of He."""

    name = "xavier"
    fan_scaled, fan_in_gain = True, 1.0

    def std(self, n_out, n_in):
        return np.sqrt(1.0 / n_in)


class Glorot(Initializer):
    """Variance 2/(n_in + n_out): balances the forward and the backward signal."""

    name = "glorot"
    fan_scaled = True

    def std(self, n_out, n_in):
        return np.sqrt(2.0 / (n_in + n_out))


INITIALIZERS = {cls.name: cls for cls in (Zeros, Random, He, Xavier, Glorot)}
