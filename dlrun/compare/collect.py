"""Many run directories side by side: one pandas row per run (config keys flattened to dotted
names, results at the best epoch), then the selections `dlrun compare` offers: filters, sorting,
satisficing constraints and seed groups. Also the two-run comparison behind `dlrun diff`."""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import yamlio
from ..errors import ConfigError, DlrunError, RunDirError
from ..rundir import layout, reader, runlock, tags

RESULTS = ("status", "epochs_run", "best_epoch", "train_error", "dev_error", "train_loss",
           "dev_loss", "test_error", "verdict", "duration")
NUMERIC = ("epochs_run", "best_epoch", "train_error", "dev_error", "train_loss", "dev_loss",
           "test_error", "duration")
AT_BEST = ("train_error", "dev_error", "train_loss", "dev_loss")
SEED_KEYS = ("seed", "name")  # what may differ between the members of a seed group
DEFAULT_SORT = "dev_error"  # the dev set chooses


class CompareError(DlrunError):
    """A selection (--filter, --sort, --satisfy, --optimize) that cannot apply to these runs."""


@dataclass
class Comparison:
    """The rows to show, which config columns to show with them, and how they were chosen."""

    table: pd.DataFrame
    params: list[str]  # config columns shown (those that differ, or all)
    records: dict[str, reader.RunRecord]  # by path, for the curves
    grouped: bool = False
    best: object = None  # index label in `table` of the run --optimize picked
    optimize: str | None = None
    excluded: dict[str, int] = field(default_factory=dict)  # option -> runs it removed
    total: int = 0


def discover(paths: list[str | Path], runs_dir: str | Path = "runs") -> list[Path]:
    """Run directories named by `paths`: a run directory, a directory of runs (groups such as a
    sweep's are searched too), or the beginning of a run's name inside `runs_dir`."""
    found: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            try:
                found.extend([path] if reader.is_run_dir(path) else _runs_in(path))
            except OSError as error:
                raise RunDirError(f"{path}: cannot list ({error.strerror or error})") from None
        elif path == Path(runs_dir):
            raise RunDirError(f"{path}: no such directory; train a run first (dlrun train "
                              "CONFIG) or name run directories to compare")
        elif path.exists():
            raise RunDirError(f"{path}: not a directory; give run directories or directories "
                              "of runs")
        else:
            matches = _by_prefix(str(arg), Path(runs_dir))
            if not matches:
                raise RunDirError(f"{arg}: no such run directory, and no run in {runs_dir} "
                                  "starts with that name")
            for match in matches:  # a sweep's directory stands for its trials
                nested = [] if reader.is_run_dir(match) else _runs_in(match)
                found.extend(nested if any(reader.is_run_dir(p) for p in nested) else [match])
    unique = list(dict.fromkeys(found))
    if not unique:
        shown = ", ".join(str(p) for p in paths)
        raise RunDirError(f"{shown}: no run directories found (make one with "
                          "`dlrun train CONFIG`)")
    return unique


def _runs_in(directory: Path) -> list[Path]:
    found = []
    for child in sorted(directory.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if reader.is_run_dir(child):
            found.append(child)
            continue
        nested = _runs_in(child)
        # A folder of runs is expanded; anything else is a run directory with its files missing.
        found.extend(nested if any(reader.is_run_dir(p) for p in nested) else [child])
    return found


def _by_prefix(prefix: str, runs_dir: Path) -> list[Path]:
    if "/" in prefix or not runs_dir.is_dir():
        return []
    return [p for p in sorted(runs_dir.iterdir()) if p.is_dir() and p.name.startswith(prefix)]


def resolve_run(arg: str | Path, runs_dir: str | Path = "runs") -> Path:
    """One run directory from a path or the unique beginning of a run's name in `runs_dir`."""
    path = Path(arg)
    if path.is_dir():
        if not reader.is_run_dir(path):
            raise RunDirError(f"{path}: not a run directory (none of {', '.join(layout.RUN_FILES)})")
        return path
    matches = _by_prefix(str(arg), Path(runs_dir))
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunDirError(f"{arg}: {len(matches)} runs in {runs_dir} start with that name "
                          f"({names}); give more of it")
    raise RunDirError(f"{arg}: no such run directory, and no run in {runs_dir} starts with "
                      "that name")


def flatten(config: dict, prefix: str = "") -> dict:
    """A nested config as {dotted key: scalar}; lists become readable strings such as "[10, 5]"."""
    flat = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        elif isinstance(value, (list, tuple, dict)):
            flat[dotted] = json.dumps(value)  # hashable, and what a key=value filter compares with
        else:
            flat[dotted] = value
    return flat


def _number(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _dig(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def results(record: reader.RunRecord) -> tuple[dict, list[str]]:
    """A run's results (status, epochs, train/dev figures at the best epoch, test error, verdict,
    duration) and notes on whatever had to be guessed or could not be read."""
    summary, metrics = record.summary or {}, record.metrics
    notes = list(record.problems)
    status = summary.get("status")
    if record.summary is None:
        status = "corrupt"
    elif not isinstance(status, str):
        status = "corrupt"
        notes.append("summary.json has no status")
    elif status == "running":  # or its process was killed: then nobody holds its lock
        status, stale = runlock.effective_status(record.path, status)
        if stale:
            notes.append(stale)
    best = _number(summary.get("best_epoch"))
    rows = metrics["epoch"] if metrics is not None else np.empty(0)
    if best is None and metrics is not None and "dev_loss" in metrics:
        dev = metrics["dev_loss"]
        finite = np.flatnonzero(np.isfinite(dev))
        if finite.size:  # a run still going (or killed) has no best epoch in its summary yet
            best = float(rows[finite[np.argmin(dev[finite])]])
    found = {}
    if best is not None and rows.size:
        hits = np.flatnonzero(rows == best)
        if hits.size:
            found = {key: float(metrics[key][hits[-1]]) for key in AT_BEST if key in metrics}
        else:
            notes.append(f"metrics.csv has no row for best epoch {best:g}")
    if not found:
        final = {key: _number(_dig(summary, "final", *key.split("_"))) for key in AT_BEST}
        if any(value is not None for value in final.values()):
            found = final
            if metrics is None:
                notes.append("train/dev figures are the final ones from summary.json")
    if isinstance(summary.get("held_out"), dict) and summary["held_out"].get("dev") is False:
        # A final model trained on its dev set (dlrun refit): its dev figures rank nothing.
        found = {key: value for key, value in found.items() if not key.startswith("dev_")}
        notes.append("a final model trained on train + dev: no held-out dev figures")
    if status == "completed" and "final" not in summary:
        notes.append("summary.json has no final metrics")
    epochs = _number(summary.get("epochs_run"))
    duration = _number(summary.get("duration_seconds"))
    if metrics is not None and rows.size:
        epochs = float(rows.size) if epochs is None else epochs
        if duration is None and "seconds" in metrics:
            duration = float(metrics["seconds"][-1])
    verdict = _dig(record.diagnosis, "verdict")
    if record.diagnosis is not None and not isinstance(verdict, str):
        notes.append("diagnosis.json has no verdict")
        verdict = None
    if verdict is None:
        verdict = _dig(summary, "bias_variance", "verdict")
    return {"status": status, "epochs_run": epochs, "best_epoch": best,
            **{key: found.get(key) for key in AT_BEST},
            "test_error": _number(_dig(summary, "final", "test", "error")),
            "verdict": verdict if isinstance(verdict, str) else None,
            "duration": duration}, notes


def run_name(record: reader.RunRecord) -> str:
    """The run directory's name; a sweep trial's with its sweep's (SWEEP/trial-0003), since
    every sweep numbers its trials from 0."""
    in_sweep = isinstance(_dig(record.summary, "sweep", "trial"), int)
    return f"{record.path.parent.name}/{record.path.name}" if in_sweep else record.path.name


def run_row(record: reader.RunRecord) -> dict:
    """One run as a flat row: `run`, its dotted config keys, its results, `note` and `path`."""
    row = {"run": run_name(record), "tags": ",".join(tags.read(record.path)["tags"]) or None}
    if record.config is not None:
        row.update(flatten(record.config))
    else:
        summary = record.summary or {}
        row.update({key: summary[key] for key in SEED_KEYS if key in summary})
    found, notes = results(record)
    return {**row, **found, "note": "; ".join(notes), "path": str(record.path),
            "_config": record.config is not None}


def load(paths: list[str | Path], runs_dir: str | Path = "runs"
         ) -> tuple[pd.DataFrame, list[str], dict[str, reader.RunRecord]]:
    """(one row per run, the config columns, the records by path) for every run `paths` name."""
    records = {}
    for directory in discover(paths, runs_dir):
        record = reader.read_run(directory)
        records[str(record.path)] = record
    rows = [run_row(record) for record in records.values()]
    params = list(dict.fromkeys(key for row in rows for key in row
                                if key not in ("run", "tags", "note", "path", "_config",
                                               *RESULTS)))
    table = pd.DataFrame(rows, columns=["run", "tags", *params, *RESULTS, "note", "path",
                                        "_config"])
    return table, params, records


@lru_cache(maxsize=None)
def _aliases(column: str) -> frozenset[str]:
    """Names that may stand for `column`: its dotted suffixes, and for a registry field such as
    train.optimizer.name the field itself (train.optimizer, optimizer)."""
    parts = column.split(".")
    names = {".".join(parts[i:]) for i in range(len(parts))}
    if len(parts) > 1 and parts[-1] == "name":
        names |= {".".join(parts[i:-1]) for i in range(len(parts) - 1)}
    return frozenset(names)


def _public(columns) -> list[str]:
    return [c for c in columns if not c.startswith("_")]


def resolve(name: str, columns, option: str = "key") -> str:
    """The column `name` means: an exact column, else the only column it is a dotted suffix of
    (learning_rate → train.learning_rate, optimizer → train.optimizer.name)."""
    columns = _public(columns)
    if name in columns:
        return name
    matches = [column for column in columns if name in _aliases(column)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CompareError(f"{option}: {name!r} is ambiguous: it could be {', '.join(matches)}; "
                           "give more of the dotted key")
    names = sorted({alias for column in columns for alias in _aliases(column)})
    hint = difflib.get_close_matches(name, names, n=3)
    suggestion = f" (did you mean {', '.join(hint)}?)" if hint else ""
    raise CompareError(f"{option}: unknown key {name!r}{suggestion}; allowed: a dotted config key "
                       f"or its last part (e.g. learning_rate), or {', '.join(RESULTS)}")


def short_name(column: str, columns) -> str:
    """The shortest name `resolve` maps back to `column` (optimizer for train.optimizer.name)."""
    ranked = sorted(_aliases(column), key=lambda a: (a.count("."), a.split(".")[-1] == "name", a))
    for alias in ranked:
        try:
            if resolve(alias, columns) == column:
                return alias
        except CompareError:
            continue
    return column


_SHORTHAND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=(?!=)\s*(.*?)\s*$")


def select(table: pd.DataFrame, expression: str, option: str = "--filter") -> pd.DataFrame:
    """The rows meeting `expression`: KEY=VALUE on a (short) key, or a pandas query."""
    where = f"{option} {expression!r}"
    shorthand = _SHORTHAND.match(expression)
    if shorthand:
        column = resolve(shorthand[1], table.columns, where)
        if not shorthand[2]:
            raise CompareError(f"{where}: no value after '='; write KEY=VALUE, e.g. optimizer=adam")
        try:
            target = yamlio.scalar(shorthand[2])
        except ConfigError as error:
            raise CompareError(f"{where}: {str(error).removeprefix('override')}") from None
        mask = table[column].map(lambda value: _equal(value, target)).astype(bool)
    else:
        mask = _query(table, expression, where)
    return table[mask]


def _equal(value, target) -> bool:
    """Whether a table cell equals a value written on the command line (read as YAML)."""
    if isinstance(target, (list, dict)):
        target = json.dumps(target)
    missing = _missing(value)
    if target is None or missing:
        return target is None and missing
    if isinstance(target, bool) or isinstance(value, (bool, np.bool_)):
        return isinstance(target, bool) and isinstance(value, (bool, np.bool_)) and value == target
    if isinstance(target, (int, float)) and isinstance(value, (int, float, np.number)):
        return math.isclose(value, target, rel_tol=1e-9, abs_tol=0.0)
    return str(value) == str(target)


def _query(table: pd.DataFrame, expression: str, where: str) -> pd.Series:
    columns = _public(table.columns)
    # Short names (learning_rate, optimizer) work in queries too; dotted keys need `backticks`.
    owners: dict[str, set] = {}
    for column in columns:
        for alias in _aliases(column):
            owners.setdefault(alias, set()).add(column)
    short = {alias: table[next(iter(found))] for alias, found in owners.items()
             if len(found) == 1 and alias.isidentifier() and alias not in columns}
    hint = ("write KEY=VALUE or a pandas query such as \"learning_rate < 0.01 and "
            "status == 'completed'\" (dotted keys in `backticks`)")
    try:
        mask = table.eval(expression, resolvers=[short])
    except pd.errors.UndefinedVariableError as error:
        name = re.search(r"name '(.+?)' is not defined", str(error))
        if name:
            resolve(name[1], columns, where)
        raise CompareError(f"{where}: {error}; {hint}") from None
    except Exception as error:  # pandas raises many kinds for a malformed query
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CompareError(f"{where}: {message}; {hint}") from None
    if isinstance(mask, pd.Series) and mask.dtype != bool and mask.isin([True, False]).all():
        mask = mask.astype(bool)
    if not (isinstance(mask, pd.Series) and mask.dtype == bool):
        raise CompareError(f"{where}: not a condition (it must be true or false for each run); "
                           f"{hint}")
    return mask


def group_seeds(table: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """One row per set of runs whose configs differ only by seed (and name): results as the mean
    over the runs, with the sample standard deviation in `<metric>_std`."""
    keys = [c for c in params if c not in SEED_KEYS]
    identity = pd.Series(
        ["\x1f".join(map(repr, values)) if readable else path  # unreadable config: alone
         for readable, path, *values in zip(table["_config"], table["path"],
                                            *(table[k] for k in keys))],
        index=table.index, dtype=object)
    members: dict[str, list[int]] = {}
    for position, key in enumerate(identity):
        members.setdefault(key, []).append(position)
    numbers = table[list(NUMERIC)].apply(pd.to_numeric, errors="coerce")
    by = numbers.groupby(identity.to_numpy(), sort=False)
    means, spreads = by.mean(), by.std(ddof=1)  # std is NaN for one run: no spread to show
    records = table.to_dict("records")
    rows = []
    for key, positions in members.items():
        group = [records[p] for p in positions]
        first = group[0]
        seeds = sorted(r["seed"] for r in group if not _missing(r.get("seed")))
        names = {r["name"] for r in group if not _missing(r.get("name"))}
        # The members' shared name is the shortest fair label; the paths stay in `path`.
        row = {"run": names.pop() if len(names) == 1 else first["run"], "runs": len(group),
               "seeds": ", ".join(f"{s:g}" if isinstance(s, float) else str(s) for s in seeds),
               "tags": ",".join(sorted({t for r in group if r["tags"]
                                        for t in r["tags"].split(",")})) or None}
        row.update({column: first[column] for column in params if column != "seed"})
        row["status"] = _tally(r["status"] for r in group)
        for metric in NUMERIC:
            row[metric], row[f"{metric}_std"] = means.at[key, metric], spreads.at[key, metric]
        row["verdict"] = _tally(r["verdict"] for r in group)
        row.update(note="; ".join(f"{r['run']}: {r['note']}" for r in group if r["note"]),
                   path=[r["path"] for r in group], _config=bool(first["_config"]))
        rows.append(row)
    columns = ["run", "runs", "seeds", "tags", *[k for k in params if k != "seed"], "status",
               *[c for m in NUMERIC for c in (m, f"{m}_std")], "verdict", "note", "path",
               "_config"]
    return pd.DataFrame(rows, columns=columns)


def _tally(values) -> str | None:
    """The one value all share, or counts such as "2 completed, 1 diverged"."""
    counts: dict[str, int] = {}
    for value in values:
        if not _missing(value):
            counts[str(value)] = counts.get(str(value), 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), None)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{n} {value}" for value, n in ranked)


def _sort_key(name: str, columns, option: str) -> tuple[str, bool]:
    """(column, ascending) from NAME or -NAME (descending)."""
    descending = name.startswith("-")
    return resolve(name.removeprefix("-"), columns, option), not descending


def sort(table: pd.DataFrame, name: str, option: str = "--sort") -> pd.DataFrame:
    """Rows ordered by one column (runs without a value last), ties by dev loss then name."""
    column, ascending = _sort_key(name, table.columns, option)
    by = [column, *(c for c in ("dev_loss", "run") if c != column)]
    order = [ascending] + [True] * (len(by) - 1)
    try:
        return table.sort_values(by, ascending=order, na_position="last", kind="stable")
    except TypeError:  # numbers and words in one column (batch_size 64 and full): compare as text
        return table.sort_values(by, ascending=order, na_position="last", kind="stable",
                                 key=lambda s: s.astype(str) if s.name == column else s)


def pick(table: pd.DataFrame, name: str) -> object:
    """Index label of the row best on `name` (lowest, or highest for -name), None if no values."""
    column, ascending = _sort_key(name, table.columns, "--optimize")
    values = pd.to_numeric(table[column], errors="coerce")
    if values.isna().all():
        return None
    return values.idxmin() if ascending else values.idxmax()


def differing(table: pd.DataFrame, params: list[str]) -> list[str]:
    """Config columns whose value is not the same for every run that has a readable config.
    An option of a registry choice (train.optimizer.beta1) counts only where it is set: that
    momentum has no beta1 is already said by the optimizer's name."""
    readable = table[table["_config"].astype(bool)]
    shown = []
    for column in params:
        parent = column.rpartition(".")[0]
        values = readable[column]
        if parent and f"{parent}.name" in params and column != f"{parent}.name":
            values = values.dropna()
        if column != "name" and values.map(repr).nunique() > 1:
            shown.append(column)
    return shown


def compare(paths: list[str | Path], runs_dir: str | Path = "runs", *, filters=(), sort_by=None,
            top: int | None = None, optimize: str | None = None, satisfy=(),
            group: bool = False, all_params: bool = False, required_tags=()) -> Comparison:
    """Read, filter, group, constrain, sort and cut the runs, as `dlrun compare` does."""
    for tag in required_tags:
        tags.check_tag(tag)
    table, params, records = load(paths, runs_dir)
    total, excluded = len(table), {}
    if required_tags:
        before = len(table)
        table = table[table["tags"].map(
            lambda cell: set(required_tags) <= set((cell or "").split(",")))]
        excluded["--tag"] = before - len(table)
    for expression in filters:
        before = len(table)
        table = select(table, expression, "--filter")
        excluded["--filter"] = excluded.get("--filter", 0) + before - len(table)
    if group:
        table = group_seeds(table, params)
        params = [c for c in params if c != "seed"]
    for expression in satisfy:
        before = len(table)
        table = select(table, expression, "--satisfy")
        excluded["--satisfy"] = excluded.get("--satisfy", 0) + before - len(table)
    table = sort(table, sort_by or optimize or DEFAULT_SORT, "--sort")
    # The course's recipe: one optimizing metric, every other wish a satisficing constraint.
    picked_by = (optimize or sort_by or DEFAULT_SORT) if (optimize or satisfy) else None
    best = pick(table, picked_by) if picked_by else None
    if top is not None and len(table) > top:
        excluded["--top"] = len(table) - top
        table = table.head(top)
    shown = list(params) if all_params else differing(table, params)
    return Comparison(table, shown, records, group, best, picked_by, excluded, total)


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
