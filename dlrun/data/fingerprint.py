"""Fingerprints of the examples a run was scored on: two runs whose dev fingerprints differ
were measured on different dev sets, and their dev errors do not rank each other.

A split's fingerprint is the sha256 of its examples as read, before normalization and before
the cast to the run's dtype (so float32 and float64 runs, or runs with and without
normalization, of the same data agree), together with the dtype and shape of X and y:

    {"sha256": "9f1c...", "X": {"dtype": "float64", "shape": [200, 2]},
     "y": {"dtype": "int64", "shape": [200]}}

    of_rows(X, rows, y)        one split's fingerprint (rows: the indices of X in the split)
    short(entry)               the first 12 hex digits, for a table column
    distinct(entries)          the different fingerprints among many runs' (None: unknown)
"""

from __future__ import annotations

import hashlib

import numpy as np

from .rows import blocks  # memory-mapped files are hashed a block at a time, never loaded whole

SHORT = 12


def _update(sha, name: bytes, array: np.ndarray) -> None:
    sha.update(name + b"\0" + array.dtype.str.encode() + b"\0" + repr(array.shape).encode())


def _comparable(y: np.ndarray) -> np.ndarray:
    """Labels as hashable bytes: text labels (object arrays) as fixed-width unicode."""
    y = np.asarray(y)
    return y.astype(str) if y.dtype == object else y


def of_rows(X, rows: np.ndarray, y) -> dict:
    """The fingerprint of the examples X[rows] (raw features) with their targets y."""
    rows = np.asarray(rows, dtype=np.int64)
    y = np.ascontiguousarray(_comparable(y))
    sha = hashlib.sha256()
    shape = (len(rows), *X.shape[1:])
    dtype = np.dtype(X.dtype)
    sha.update(b"X\0" + dtype.str.encode() + b"\0" + repr(shape).encode())
    for part in blocks(rows, int(np.prod(shape[1:], dtype=np.int64))):
        sha.update(np.ascontiguousarray(X[part], dtype=dtype))  # one block's copy at a time
    _update(sha, b"y", y)
    sha.update(y)
    return {"sha256": sha.hexdigest(), "X": {"dtype": dtype.name, "shape": list(shape)},
            "y": {"dtype": y.dtype.name, "shape": list(y.shape)}}


def short(entry: dict | None) -> str | None:
    """A fingerprint as a table shows it (12 hex digits), None when there is none."""
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    return digest[:SHORT] if isinstance(digest, str) else None


def distinct(entries) -> list[str]:
    """The different fingerprints (full digests) among `entries`, in order of first
    appearance; runs without one (None, or written before fingerprints existed) are left out."""
    found = []
    for entry in entries:
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if isinstance(digest, str) and digest not in found:
            found.append(digest)
    return found
