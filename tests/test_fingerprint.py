"""Fingerprints of a split's examples (dlrun.data.fingerprint): what makes two the same."""

import hashlib

import numpy as np

from dlrun.data import fingerprint

X = np.arange(24, dtype=np.float64).reshape(12, 2)
y = np.array([0, 1] * 6)
ROWS = np.arange(12)


def test_a_fingerprint_names_dtype_and_shape_and_hashes_the_bytes():
    entry = fingerprint.of_rows(X, ROWS, y)
    assert entry["X"] == {"dtype": "float64", "shape": [12, 2]}
    assert entry["y"] == {"dtype": y.dtype.name, "shape": [12]}
    assert len(entry["sha256"]) == 64 and int(entry["sha256"], 16) >= 0
    assert fingerprint.short(entry) == entry["sha256"][:12]
    assert fingerprint.of_rows(X.copy(), ROWS, y.copy()) == entry


def test_any_change_of_values_order_labels_or_dtype_changes_it():
    base = fingerprint.of_rows(X, ROWS, y)["sha256"]
    changed = X.copy()
    changed[3, 1] += 1e-12
    variants = [fingerprint.of_rows(changed, ROWS, y),
                fingerprint.of_rows(X, ROWS[::-1], y[::-1]),
                fingerprint.of_rows(X, ROWS, 1 - y),
                fingerprint.of_rows(X.astype(np.float32), ROWS, y),
                fingerprint.of_rows(X, ROWS[:-1], y[:-1])]
    digests = {v["sha256"] for v in variants}
    assert base not in digests and len(digests) == len(variants)


def test_the_same_bytes_and_shape_reversed_into_x_or_y_do_not_collide():
    a = fingerprint.of_rows(np.zeros((2, 1)), np.arange(2), np.zeros(4))
    b = fingerprint.of_rows(np.zeros((4, 1)), np.arange(4), np.zeros(2))
    assert a["sha256"] != b["sha256"]


def test_a_memory_mapped_file_hashed_in_blocks_matches_one_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    np.save(path, X)
    whole = fingerprint.of_rows(X, ROWS[::2], y[::2])
    from dlrun.data import rows

    monkeypatch.setattr(rows, "BLOCK_VALUES", 8)  # blocks of 4 rows
    assert fingerprint.of_rows(np.load(path, mmap_mode="r"), ROWS[::2], y[::2]) == whole


def test_text_labels_are_hashed_as_text():
    labels = np.array(["cat", "dog"] * 6, dtype=object)
    entry = fingerprint.of_rows(X, ROWS, labels)
    assert entry["y"]["dtype"].startswith("str")
    other = fingerprint.of_rows(X, ROWS, np.array(["cat", "cow"] * 6, dtype=object))
    assert entry["sha256"] != other["sha256"]


def test_the_digest_is_sha256_of_headers_and_data():
    """An independent computation of the documented recipe, so the digest can be checked
    outside dlrun."""
    sha = hashlib.sha256()
    sha.update(b"X\0" + X.dtype.str.encode() + b"\0" + repr((12, 2)).encode())
    sha.update(X.tobytes())
    sha.update(b"y\0" + y.dtype.str.encode() + b"\0" + repr((12,)).encode())
    sha.update(y.tobytes())
    assert fingerprint.of_rows(X, ROWS, y)["sha256"] == sha.hexdigest()


def test_distinct_counts_different_fingerprints_and_ignores_missing_ones():
    a, b = fingerprint.of_rows(X, ROWS, y), fingerprint.of_rows(X, ROWS, 1 - y)
    assert fingerprint.distinct([a, None, a, {"X": {}}, b, a]) == [a["sha256"], b["sha256"]]
    assert fingerprint.short(None) is None
