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
