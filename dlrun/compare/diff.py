"""`dlrun diff`: the config keys that changed between two runs (old → new), and their results
side by side."""

from __future__ import annotations

from pathlib import Path

from ..rundir import reader
from .collect import NUMERIC, RESULTS, flatten, results


def diff(run_a: Path, run_b: Path) -> dict:
    """Config keys that changed between two runs (old → new) and their results side by side."""
    a, b = reader.read_run(run_a), reader.read_run(run_b)
    changes = []
    if a.config is not None and b.config is not None:
        flat_a, flat_b = flatten(a.config), flatten(b.config)
        for key in _merged_order(list(flat_a), list(flat_b)):
            old, new = flat_a.get(key, _ABSENT), flat_b.get(key, _ABSENT)
            if old is _ABSENT or new is _ABSENT or old != new or type(old) is not type(new):
                change = "added" if old is _ABSENT else "removed" if new is _ABSENT else "changed"
                changes.append({"key": key, "change": change,
                                "a": None if old is _ABSENT else old,
                                "b": None if new is _ABSENT else new})
    (found_a, notes_a), (found_b, notes_b) = results(a), results(b)
    metrics = []
    for metric in RESULTS:
        old, new = found_a[metric], found_b[metric]
        delta = new - old if metric in NUMERIC and None not in (old, new) else None
        metrics.append({"metric": metric, "a": old, "b": new, "delta": delta})
    return {"a": str(a.path), "b": str(b.path), "config": changes,
            "config_readable": a.config is not None and b.config is not None,
            "metrics": metrics, "notes": {"a": notes_a, "b": notes_b}}


def _merged_order(first: list[str], second: list[str]) -> list[str]:
    """Keys of both, in `first`'s order, each key only in `second` placed after its predecessor
    there (so momentum's beta lands beside adam's beta1, not at the end)."""
    order = list(first)
    for i, key in enumerate(second):
        if key not in order:
            previous = second[i - 1] if i else None
            order.insert(order.index(previous) + 1 if previous in order else len(order), key)
    return order


_ABSENT = object()
