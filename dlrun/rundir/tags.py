"""Tags and a note on a run (or a sweep): meta.json in its directory.

Kept apart from config.yaml on purpose: tagging a run says something about it, it does not change
what it ran, so `dlrun compare` never sees a tag as a differing parameter.

    meta.json    {"tags": ["baseline", "lr-test"], "note": "first try with adam"}
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError
from . import layout

META = "meta.json"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
MAX_NOTE = 2000  # a paragraph; longer belongs in a file of its own


def check_tag(tag: str, option: str = "--tag") -> str:
    if not re.match(TAG_PATTERN, tag):
        raise ConfigError(f"{option} {tag!r}: a tag starts with a letter or digit and uses only "
                          "letters, digits, '.', '_' and '-' (at most 32)")
    return tag


def check_note(note: str, option: str = "--note") -> str:
    if len(note) > MAX_NOTE:
        raise ConfigError(f"{option}: {len(note)} characters; at most {MAX_NOTE}")
    return note


def read(directory: str | Path) -> dict:
    """{"tags": [...], "note": str} of a run; empty when it has none or meta.json is unreadable
    (a damaged meta.json never hides the run itself)."""
    try:
        data = json.loads((Path(directory) / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    tags = data.get("tags")
    tags = sorted({t for t in tags if isinstance(t, str)}) if isinstance(tags, list) else []
    note = data.get("note") if isinstance(data.get("note"), str) else ""
    return {"tags": tags, "note": note}


def write(directory: str | Path, tags: list[str], note: str) -> dict:
    meta = {"tags": sorted(set(tags)), "note": note}
    layout.write_json(Path(directory) / META, meta)
    return meta


def parse_changes(changes: list[str]) -> tuple[list[str], list[str]]:
    """(+added, -removed) from `+x -y` words; each must say which it is."""
    added, removed = [], []
    for change in changes:
        sign, tag = change[:1], change[1:]
        if sign not in "+-" or not sign:
            raise ConfigError(f"{change!r}: write +TAG to add a tag or -TAG to remove one")
        (added if sign == "+" else removed).append(check_tag(tag, f"{sign}TAG"))
    return added, removed


def retag(directory: str | Path, added: list[str], removed: list[str]) -> dict:
    meta = read(directory)
    tags = (set(meta["tags"]) | set(added)) - set(removed)
    return write(directory, sorted(tags), meta["note"])


def annotate(directory: str | Path, note: str) -> dict:
    meta = read(directory)
    return write(directory, meta["tags"], check_note(note, "NOTE"))
