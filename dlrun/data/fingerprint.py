"""Fingerprints of data files: size, modification time and the SHA-256 of the bytes.

One mechanism for every check that data is still what a run read: summary.json records a
fingerprint of each file a run reads, and a later command compares the file on disk with it
(`changed`). Hashing reads the file in 1 MiB chunks, so memory stays flat however large it is;
at about 1 GB/s it costs less than parsing the same CSV (see benchmarks/bench_provenance.py).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import numpy as np

CHUNK = 1 << 20
HASH_LIMIT = 8 << 30  # beyond 8 GiB hashing takes many seconds: size and time must do


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


def split_fingerprints(splits: dict) -> dict[str, str]:
    """{split: SHA-256 of its examples as training sees them}: the shape and dtype of X and y,
    then their bytes, X a block of rows at a time (a memory-mapped split is never read whole).
    Equal fingerprints mean the same examples in the same order, normalized alike."""
    from .rows import block_rows

    found = {}
    for name, (X, y) in splits.items():
        digest = hashlib.sha256()
        y = np.ascontiguousarray(y)
        digest.update(repr((tuple(X.shape), str(X.dtype), y.shape, str(y.dtype))).encode())
        step = block_rows(X.shape[1] if len(X.shape) > 1 else 1)
        for start in range(0, len(X), step):
            digest.update(np.ascontiguousarray(X[start:start + step]).tobytes())
        digest.update(y.tobytes())
        found[name] = digest.hexdigest()
    return found


def changed_splits(recorded, splits: dict, counts=None) -> list[str] | None:
    """The splits whose examples differ from the fingerprints `recorded` in summary.json, with
    how (["train: 600 examples then, 640 now"]; `counts`: summary.json's examples); None when nothing was recorded (an older run)."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    now = split_fingerprints(splits)
    problems = []
    for name in dict.fromkeys([*now, *recorded]):  # train, dev, test (summary.json sorts keys)
        if recorded.get(name) == now.get(name):
            continue
        if name not in now:
            problems.append(f"{name}: a split then, none now")
        elif name not in recorded:
            problems.append(f"{name}: no such split then")
        else:
            then = (counts or {}).get(name)
            now_count = len(splits[name][0])
            problems.append(f"{name}: {then} examples then, {now_count} now" if then != now_count
                            else f"{name}: {now_count} examples, not the same ones")
    return problems
