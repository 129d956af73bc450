"""Mini-batches: one epoch's training rows, shuffled or in order, cut into batches of the config's
size (the last one smaller when the size does not divide the examples). The training loop and
gradcheck's training steps take their batches from here, so both see the same rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def batch_size(train, m: int) -> int:
    """Examples in a mini-batch of a TrainConfig `train` over m examples ("full": all of them)."""
    return m if train.batch_size == "full" else min(train.batch_size, m)


def batch_rows(train, m: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices of each mini-batch of one epoch over m examples, for a TrainConfig `train`
    (batch_size, shuffle); a shuffled epoch draws its permutation from rng when it starts."""
    size = batch_size(train, m)
    order = rng.permutation(m) if train.shuffle else np.arange(m)
    for start in range(0, m, size):
        yield order[start:start + size]
