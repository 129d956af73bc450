"""Seeded train/dev/test splits, stratified by class for classification."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .labels import distinct


def split_indices(y: np.ndarray, fractions: dict[str, float], rng: np.random.Generator,
                  stratify: bool, key: str = "data.split.{name}") -> dict[str, np.ndarray]:
    """Indices of each split (in `fractions` order), each shuffled.

    Stratified: every class is cut in the same proportions, so a small dev set still sees every
    class. Splits whose fraction is 0 come back empty; any other split must get an example.
    """
    names = list(fractions)
    groups = _groups(y, stratify)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for group in groups:
        group = rng.permutation(group)
        cuts = np.round(np.cumsum([fractions[name] for name in names]) * len(group)).astype(int)
        for name, start, stop in zip(names, np.concatenate([[0], cuts[:-1]]), cuts):
            parts[name].append(group[start:stop])
    result = {name: rng.permutation(np.concatenate(parts[name])) for name in names}
    for name in names:
        if fractions[name] > 0 and len(result[name]) == 0:
            raise DataError(f"{key.format(name=name)}: {fractions[name]:g} of {len(y)} examples "
                            "holds no example; use more data or a larger fraction")
    return result


def carve(index: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator,
          stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved): `fraction` of the examples `index` taken out, stratified like the splits."""
    parts = split_indices(y[index], {"train": 1 - fraction, "train_dev": fraction}, rng, stratify,
                          key="data.{name}")
    return index[parts["train"]], index[parts["train_dev"]]


def subsample(y: np.ndarray, share: float, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """Indices of `share` of the examples, stratified, in their original order.

    Each class is permuted once and its first round(share·m_c) examples are taken, so for one
    seed a smaller share is a subset of every larger one: a learning curve adds examples to the
    same set rather than drawing a new one at each size."""
    groups = _groups(y, stratify)
    kept = [rng.permutation(group)[:max(1, round(share * len(group)))] for group in groups]
    return np.sort(np.concatenate(kept))


def folds(y: np.ndarray, k: int, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """The fold (0 .. k-1) of each example: each class is shuffled and dealt round the folds in
    turn, so every fold gets its share of every class and the folds differ in size by at most
    one example per class."""
    groups = _groups(y, stratify)
    fold = np.empty(len(y), dtype=np.int64)
    dealt = 0
    for group in groups:
        fold[rng.permutation(group)] = (dealt + np.arange(len(group))) % k
        dealt += len(group)  # the next class starts where this one stopped: even totals
    return fold


def _groups(y: np.ndarray, stratify: bool) -> list[np.ndarray]:
    """The indices of each class (stratified), or of every example as one group."""
    if not stratify:
        return [np.arange(len(y))]
    return [np.flatnonzero(y == label) for label in distinct(y)]
