"""Examples read a block at a time, so a memory-mapped file is never copied or up-cast whole.

`MappedRows` stands in for a split's X when the data lives in a memory-mapped .npy file: indexing
it gathers just the rows asked for, casts them to the run's dtype and normalizes them.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DataError

BLOCK_VALUES = 1 << 20  # values per block: a few MB of float64 scratch whatever the file's size


def normalized(X, mean, std, dtype) -> tuple[np.ndarray, np.ndarray]:
    """X (m, n) normalized with mean and std (None: left as it is) and cast to dtype, and the
    (row, column) pairs (k, 2) of the values dtype cannot hold. The arithmetic is in float64, so
    values beyond float32's range can still come back into it once normalized."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(over="ignore"):  # values that overflow are found and reported below
        if mean is not None:
            X = (X - mean) / std
        X = X.astype(dtype, copy=False)
    return X, np.argwhere(~np.isfinite(X))


def block_rows(n_features: int) -> int:
    return max(1, BLOCK_VALUES // max(n_features, 1))


def blocks(index: np.ndarray, n_features: int):
    """Slices of `index` holding about BLOCK_VALUES values each."""
    step = block_rows(n_features)
    for start in range(0, len(index), step):
        yield index[start:start + step]


def moments(X, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (n,) float64 of the rows X[index], one block at a
    time, merging block statistics with Chan's parallel formula (no catastrophic cancellation)."""
    n_features = X.shape[1]
    count, mean, m2 = 0, np.zeros(n_features), np.zeros(n_features)
    for part in blocks(np.sort(index), n_features):
        block_mean, block_m2 = _block_moments(X, part)
        total = count + len(part)
        delta = block_mean - mean
        mean = mean + delta * (len(part) / total)
        m2 = m2 + block_m2 + delta ** 2 * (count * len(part) / total)
        count = total
    return mean, np.sqrt(m2 / max(count, 1))


def _block_moments(X, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations of X[rows]. A function of its own so that each block's
    float64 copy is freed before the next one is read, and squared in place: at most one block of
    scratch at a time."""
    block = np.asarray(X[rows], dtype=np.float64)
    block_mean = block.mean(axis=0)
    block -= block_mean
    return block_mean, np.square(block, out=block).sum(axis=0)


def non_finite_rows(X) -> np.ndarray:
    """How many rows hold NaN or ±inf, per feature (n,)."""
    n_features = X.shape[1]
    counts = np.zeros(n_features, dtype=np.int64)
    if not np.issubdtype(X.dtype, np.inexact):
        return counts
    for part in blocks(np.arange(X.shape[0]), n_features):
        counts += (~np.isfinite(X[part[0]:part[-1] + 1])).sum(axis=0)
    return counts


def first_non_finite_row(X, column: int) -> int:
    for part in blocks(np.arange(X.shape[0]), X.shape[1]):
        bad = np.flatnonzero(~np.isfinite(X[part[0]:part[-1] + 1, column]))
        if len(bad):
            return int(part[0] + bad[0])
    return -1


def file_stamp(path) -> tuple[int, int, int]:
    """(inode, size, modification time in ns): changes when a file is rewritten or cut."""
    found = os.stat(path)
    return found.st_ino, found.st_size, found.st_mtime_ns


def check_mapped(splits: dict) -> None:
    """DataError if a memory-mapped file a split reads has changed since it was mapped. Reading
    rows past the end of a file cut short kills the process with SIGBUS, which Python cannot
    catch, so training checks this before every epoch's reads."""
    for X, _ in splits.values():
        if not isinstance(X, MappedRows) or X.stamp is None:
            continue
        try:
            now = file_stamp(X.base.filename)
        except OSError as error:
            now = error.strerror
        if now != X.stamp:
            cut = isinstance(now, tuple) and now[1] < X.stamp[1]
            raise DataError(f"{X.base.filename}: {'cut short' if cut else 'changed'} while the "
                            "run read it; the run stops at its last checkpoint: put the file "
                            "back and resume it (or --resume with --data-changed)")


class MappedRows:
    """Rows `index` of a memory-mapped array (m, n), read on demand as normalized `dtype`."""

    def __init__(self, base: np.ndarray, index: np.ndarray, mean: np.ndarray | None,
                 std: np.ndarray | None, dtype):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)
        self.stamp = file_stamp(base.filename) if getattr(base, "filename", None) else None
        self.dtype = np.dtype(dtype)
        self.mean = None if mean is None else mean.astype(self.dtype)
        self.std = None if std is None else std.astype(self.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.index), self.base.shape[1])

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        """Rows key (a slice, an index array or one index) of this split: a new (k, n) array."""
        picked = np.atleast_1d(self.index[key])
        rows = np.asarray(self.base[picked]).astype(self.dtype, copy=False)  # a fresh gather
        if self.mean is not None:
            rows -= self.mean
            rows /= self.std
        return rows

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)
