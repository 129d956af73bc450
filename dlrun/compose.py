"""Composed configs: `extends: base.yaml` (or a list of files), merged before the file's own keys.

    # configs/regularization.yaml
    extends: base/moons.yaml       # relative to this file; a list is merged in order
    model: {hidden_layers: [300]}  # mappings merge key by key; any other value replaces

A base may extend others; a file met again on its own chain is a cycle and refused. The key lines
of every file are kept, so an error names the file and line that hold the key: an `int` line is
in the file that was asked for, a `(file, line)` pair is in one of its bases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import yamlio
from .errors import ConfigError

EXTENDS = "extends"


def at(source: str, line) -> str:
    """`file:line` of a key line from `compose` (`source` is the file asked for)."""
    if isinstance(line, tuple):
        return f"{line[0]}:{line[1]}"
    return f"{source}:{line}" if line else source


def read_file(path: Path) -> tuple[Any, yamlio.Lines]:
    """(data, key lines) of one YAML file; every failure is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return yamlio.parse(text, str(path))


def compose(path: str | Path) -> tuple[Any, yamlio.Lines]:
    """(data, key lines) of a config with every file it extends merged in."""
    path = Path(path)
    data, lines = _compose(path, ())
    return data, {key: where[1] if where[0] == str(path) else where
                  for key, where in lines.items()}


def _compose(path: Path, chain: tuple[tuple[Path, str], ...]) -> tuple[Any, dict]:
    """`chain`: (resolved, as written) of the files that extend this one, outermost first."""
    data, own = read_file(path)
    lines = {key: (str(path), line) for key, line in own.items()}
    if not isinstance(data, dict) or EXTENDS not in data:
        return data, lines
    bases = _bases(data.pop(EXTENDS), path, own)
    here = at(str(path), own.get((EXTENDS,)))
    merged: dict = {}
    merged_lines: dict = {}
    chain = (*chain, (path.resolve(), str(path)))
    for base in bases:
        resolved = [file for file, _ in chain]
        if base.resolve() in resolved:
            shown = [name for _, name in chain[resolved.index(base.resolve()):]]
            raise ConfigError(f"{here}: extends {base}: a cycle "
                              f"({' → '.join([*shown, str(base)])})")
        if not base.is_file():
            raise ConfigError(f"{here}: extends: {base}: no such config file")
        base_data, base_lines = _compose(base, chain)
        if base_data is None:
            continue
        if not isinstance(base_data, dict):
            raise ConfigError(f"{base}: expected a mapping of sections to extend, got "
                              f"{type(base_data).__name__} (extended by {here})")
        merged = merge(merged, base_data, merged_lines, base_lines, ())
    lines.pop((EXTENDS,), None)
    return merge(merged, data, merged_lines, lines, ()), merged_lines


def _bases(value, path: Path, lines: yamlio.Lines) -> list[Path]:
    files = value if isinstance(value, list) else [value]
    if not files or not all(isinstance(item, str) and item.strip() for item in files):
        raise ConfigError(f"{at(str(path), lines.get((EXTENDS,)))}: extends: expected a file name "
                          f"or a list of them, relative to {path.name}, got {value!r}")
    return [path.parent / item for item in files]


def _other_choice(base: dict, over: dict) -> bool:
    """Two registry choices by different names ({name: adam, beta1} and {name: momentum}): the
    new one replaces the old, whose options would not fit it."""
    return "name" in base and "name" in over and base["name"] != over["name"]


def merge(base: Any, over: Any, lines: dict, over_lines: dict, path: tuple) -> Any:
    """`over` merged into `base` (mappings key by key, anything else replaced); `lines` (of base)
    is updated in place with `over_lines`, so each key keeps the line of the file it came from."""
    if isinstance(base, dict) and isinstance(over, dict) and not _other_choice(base, over):
        if path in over_lines:
            lines[path] = over_lines[path]
        merged = dict(base)
        for key, value in over.items():
            merged[key] = merge(base.get(key, _ABSENT), value, lines, over_lines, (*path, key))
        return merged
    for key in [key for key in lines if key[:len(path)] == path]:
        del lines[key]
    lines.update({key: where for key, where in over_lines.items() if key[:len(path)] == path})
    return over


_ABSENT = object()


def origins(resolved: dict, lines: yamlio.Lines, source: str, overrides: list[str] = ()
            ) -> dict[tuple, str]:
    """Where each leaf of a resolved config comes from: `default`, `file:line` or
    `override 'KEY=VALUE'` (a list counts as one leaf)."""
    set_by = {tuple(o.partition("=")[0].strip().split(".")): o for o in overrides}
    found = {}
    for path in _leaves(resolved, ()):
        override = next((o for key, o in set_by.items() if path[:len(key)] == key), None)
        line = lines.get(path)
        if line is None and path[-1] == "name":
            line = lines.get(path[:-1])  # `optimizer: adam` is where optimizer.name is set
        if override is not None:
            found[path] = f"override {override!r}"
        elif line is not None:
            found[path] = at(source, line)
        else:
            found[path] = "default"
    return found


def _leaves(value, path: tuple):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    else:
        yield path


def annotated_yaml(resolved: dict, where: dict[tuple, str]) -> str:
    """The resolved config as YAML, each value followed by a comment saying where it comes from."""
    rows: list[tuple[str, str | None]] = []

    def walk(value: dict, path: tuple, indent: int):
        for key, item in value.items():
            here = (*path, key)
            if isinstance(item, dict) and item:
                rows.append((" " * indent + f"{key}:", None))
                walk(item, here, indent + 2)
            else:
                rows.append((" " * indent + f"{key}: {_flow(item)}", where.get(here, "default")))

    walk(resolved, (), 0)
    width = max(len(text) for text, _ in rows)
    return "".join(f"{text.ljust(width)}  # {note}\n" if note else f"{text}\n"
                   for text, note in rows)


def _flow(value) -> str:
    """One value as YAML on one line: 0.01, [10, 5], null, 'text'."""
    import yaml
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def resolved_text(path: str | Path, overrides: list[str] = (), origin: bool = False) -> str:
    """What `dlrun config` prints: the config as `dlrun train` would save it (every default
    filled in), checked against its data without training; with `origin`, where each value
    comes from."""
    from . import config as config_module
    from .training.experiment import prepare

    data, lines = config_module.read(path, overrides)
    experiment = config_module.validate(data, str(path), lines, overrides)
    try:  # what only the data can tell: labels that do not fit the output, a missing file
        prepare(experiment)
    except ConfigError as error:
        raise config_module.located(error, path, overrides, lines) from None
    if not origin:
        return experiment.to_yaml()
    resolved = experiment.model_dump(mode="json")
    return annotated_yaml(resolved, origins(resolved, lines, str(path), overrides))
