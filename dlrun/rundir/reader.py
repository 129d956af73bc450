"""Reading run directories: one reader of summary.json, config.yaml and metrics.csv for every
command, lenient (problems listed, everything readable kept) or strict (the first problem raised)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import RunDirError
from .layout import CONFIG, DIAGNOSIS, METRICS, RUN_FILES, SUMMARY


def read_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a run directory (no {SUMMARY})")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    return summary


class RunRecord:
    """What could be read from one run directory, and what could not (`problems`, one line each)."""

    def __init__(self, path: Path):
        self.path = path
        self.config: dict | None = None
        self.summary: dict | None = None
        self.metrics: dict[str, np.ndarray] | None = None  # column -> values, shape (epochs,)
        self.diagnosis: dict | None = None
        self.problems: list[str] = []


def is_run_dir(path: Path) -> bool:
    """Whether `path` holds at least one of the files a run writes."""
    return any((path / name).is_file() for name in RUN_FILES)


def read_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory without ever failing on its contents: missing, truncated or malformed
    files become problems, and everything readable is kept (a running run is read as it stands)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    record = RunRecord(path)
    record.config = _read_mapping(path / CONFIG, _parse_yaml, record.problems, required=True)
    record.summary = _read_mapping(path / SUMMARY, _parse_json, record.problems, required=True)
    record.diagnosis = _read_mapping(path / DIAGNOSIS, _parse_json, record.problems, required=False)
    text = _read_text(path / METRICS, record.problems, required=True)
    if text is not None:
        record.metrics = _parse_metrics(text, record.problems)
    return record


def _read_text(path: Path, problems: list[str], required: bool) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            problems.append(f"{path.name} missing")
    except UnicodeDecodeError:
        problems.append(f"{path.name}: not UTF-8 text")
    except OSError as error:
        problems.append(f"{path.name}: cannot read ({error.strerror or error})")
    return None


class _Malformed(Exception):
    """A file that exists but does not parse; `line` is ":N" when known."""

    def __init__(self, line: str, message: str):
        super().__init__(message)
        self.line = line


def _parse_yaml(text: str):
    import yaml
    # The C loader is ten times faster, which matters when hundreds of runs are read at once.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise _Malformed(line, f"invalid YAML ({problem})") from None
    problem = _not_a_tree(data)
    if problem:
        raise _Malformed("", f"invalid YAML ({problem})")
    return data


def _not_a_tree(data, values: int = 100_000, depth: int = 100) -> str | None:
    """Why flattening data for a table could not finish (a container inside itself, aliases
    expanding to over `values` values, nesting deeper than `depth`), or None."""
    stack, count = [(data, ())], 0
    while stack:
        value, enclosing = stack.pop()
        count += 1
        if count > values:
            return f"more than {values} values once aliases are expanded"
        if isinstance(value, (dict, list)):
            if any(value is outer for outer in enclosing):
                return "an alias that contains itself"
            if len(enclosing) >= depth:
                return f"nested deeper than {depth} levels"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, (*enclosing, value)) for child in children)
    return None


def _parse_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _Malformed(f":{error.lineno}", f"invalid JSON ({error.msg})") from None
    except RecursionError:
        raise _Malformed("", "invalid JSON (nested too deeply)") from None


def _read_mapping(path: Path, parse, problems: list[str], required: bool) -> dict | None:
    text = _read_text(path, problems, required)
    if text is None:
        return None
    try:
        data = parse(text)
    except _Malformed as error:
        problems.append(f"{path.name}{error.line}: {error}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a mapping, found {type(data).__name__}")
        return None
    return data


def _parse_metrics(text: str, problems: list[str]) -> dict[str, np.ndarray] | None:
    """Columns of metrics.csv as float arrays; rows that are incomplete or malformed are skipped
    and reported, since a run killed mid-write can leave half a line at the end."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        problems.append(f"{METRICS}: empty (no header)")
        return None
    header = lines[0].split(",")
    if "epoch" not in header:
        problems.append(f"{METRICS}:1: header has no 'epoch' column")
        return None
    body = lines[1:]
    if text.endswith(("\n", "\r")):
        # The usual case, every row whole: one vectorized conversion instead of a loop per cell.
        cells = ",".join(body).split(",") if body else []
        if len(cells) == len(body) * len(header):
            try:
                values = np.array(cells, dtype=float).reshape(len(body), len(header))
                return {column: values[:, i] for i, column in enumerate(header)}
            except ValueError:
                pass
    rows, bad = [], []
    last = len(lines) - 1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if number - 1 == last and not text.endswith(("\n", "\r")):
            problems.append(f"{METRICS}:{number}: last row incomplete (ignored)")
            break
        try:
            if len(cells) != len(header):
                raise ValueError
            rows.append([float(cell) if cell else np.nan for cell in cells])
        except ValueError:
            bad.append(number)
    if bad:
        problems.append(f"{METRICS}: {len(bad)} malformed row(s) ignored (first at line {bad[0]})")
    values = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {column: values[:, i] for i, column in enumerate(header)}
