"""Fingerprints of data: of the files a run reads, and of the examples each split holds.

Files (provenance): size, modification time and the SHA-256 of the bytes. summary.json records
a fingerprint of each file a run reads, and a later command compares the file on disk with it
(`changed`). Hashing reads the file in 1 MiB chunks, so memory stays flat however large it is;
at about 1 GB/s it costs less than parsing the same CSV (see benchmarks/bench_provenance.py).

    file_fingerprint(path)     {"path", "size", "mtime", "sha256"}
    changed(recorded)          why the file is no longer what was read, or None

Splits: two runs whose dev fingerprints differ were measured on different dev sets, and their
dev errors do not rank each other. A split's fingerprint is the sha256 of its examples as
read, before normalization and before the cast to the run's dtype (so float32 and float64
runs, or runs with and without normalization, of the same data agree), together with the
dtype and shape of X and y:

    {"sha256": "9f1c...", "X": {"dtype": "float64", "shape": [200, 2]},
     "y": {"dtype": "int64", "shape": [200]}}

    of_rows(X, rows, y)        one split's fingerprint (rows: the indices of X in the split)
    short(entry)               the first 12 hex digits, for a table column
    distinct(entries)          the different fingerprints among many runs' (None: unknown)
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import numpy as np

from .rows import blocks

# Memory-mapped files are hashed a block of rows at a time (rows.blocks), never loaded whole.

CHUNK = 1 << 20
HASH_LIMIT = 8 << 30  # beyond 8 GiB hashing takes many seconds: size and time must do
SHORT = 12


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_fingerprint(path: str | Path, hash_limit: int = HASH_LIMIT) -> dict:
    """{"path", "size", "mtime", "sha256"} of a file; a file over `hash_limit` bytes gets
    "sha256": None and a "note" saying so, an unreadable one an "error"."""
    path = Path(path).absolute()
    try:
        stat = os.stat(path)
    except OSError as error:
        return {"path": str(path), "error": error.strerror or str(error)}
    found = {"path": str(path), "size": stat.st_size,
             "mtime": datetime.fromtimestamp(stat.st_mtime).astimezone().isoformat()}
    if stat.st_size > hash_limit:
        found.update(sha256=None, note=f"not hashed: over {hash_limit >> 30} GiB; size and "
                                       "modification time only")
        return found
    try:
        found["sha256"] = sha256(path)
    except OSError as error:
        found.update(sha256=None, error=error.strerror or str(error))
    return found


def changed(recorded: dict) -> str | None:
    """Why the file a fingerprint describes is no longer the same, or None if it is."""
    now = file_fingerprint(recorded["path"], hash_limit=HASH_LIMIT
                           if recorded.get("sha256") else -1)
    if "error" in now and "size" not in now:
        return f"{recorded['path']}: {now['error']}"
    if now["size"] != recorded.get("size"):
        return f"{recorded['path']}: {recorded.get('size')} bytes when read, {now['size']} now"
    if recorded.get("sha256") and now.get("sha256") != recorded["sha256"]:
        return f"{recorded['path']}: contents changed since it was read (SHA-256 differs)"
    if not recorded.get("sha256") and now["mtime"] != recorded.get("mtime"):
        return f"{recorded['path']}: modified since it was read ({recorded.get('mtime')} then)"
    return None


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
