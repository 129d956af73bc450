"""Safe YAML reading that keeps line numbers, refuses duplicate keys and reads 1e-3 as a number.

The one YAML parser of dlrun: configs a person wrote (config.load) and the config.yaml of every
run directory (rundir.reader) are read here. Two speeds: the pure-Python parser, whose error
messages name the character or alias at fault, for files a person edits; libyaml's C parser, ten
times faster, for reading hundreds of run directories at once (`fast=True`)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader (no object tags) whose floats follow YAML 1.2: `1e-3` is 0.001, not a string."""


_Loader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same rules over libyaml's parser, when PyYAML was built with it."""


_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

Lines = dict[tuple, int]
MAX_VALUES = 100_000  # far beyond any experiment; bounds what aliases (*name) can expand to
MAX_DEPTH = 100  # a config nests four deep; this keeps every reader of the data off the stack limit


def _index(node: yaml.Node, path: tuple, lines: Lines, source: str,
           enclosing: tuple = ()) -> None:
    """Record the line of every key path; refuse a key that appears twice in one mapping, an
    alias that contains itself, aliases that expand to more than MAX_VALUES values and nesting
    deeper than MAX_DEPTH."""
    if any(node is outer for outer in enclosing):
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: "
                          f"{'.'.join(map(str, path)) or 'the document'}: an alias that "
                          "contains itself; write the value out")
    if len(lines) > MAX_VALUES:
        raise ConfigError(f"{source}: more than {MAX_VALUES} values once aliases are expanded")
    if len(path) > MAX_DEPTH:
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} "
                          "levels")
    enclosing = (*enclosing, node)
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]`: no dotted name for it
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise ConfigError(f"{source}:{line}: {'.'.join(map(str, path)) or 'the document'}:"
                                  f" a key must be a name, not a {kind}")
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                raise ConfigError(f"{source}:{line}: duplicate key {dotted!r}: "
                                  "each key may appear once")
            seen.add(key)
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, source, enclosing)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, source, enclosing)


def parse(text: str, source: str, fast: bool = False) -> tuple[Any, Lines]:
    """(data, {key path: line}) from YAML text; errors name `source` and the line. `fast` reads
    with libyaml (the same data and checks, terser error messages)."""
    try:
        loader = (_FastLoader if fast else _Loader)(text)  # refuses unprintable characters
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text, source) from None
    try:
        node = loader.get_single_node()
        lines: Lines = {}
        if node is None:
            return None, lines
        _index(node, (), lines, source)
        return loader.construct_document(node), lines
    except yaml.reader.ReaderError as error:  # libyaml finds them only as it reads
        raise _unreadable(error, text, source) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _unreadable(error: yaml.reader.ReaderError, text: str, source: str) -> ConfigError:
    line = text[:error.position].count("\n") + 1
    return ConfigError(f"{source}:{line}: invalid YAML: {str(error).splitlines()[0]}")


MAX_CONFIG_BYTES = 1 << 20  # a spec is a page of YAML; a megabyte is far beyond any


def read_text(path: Path) -> str:
    """A config file's text: a regular file (not a FIFO or a device such as /dev/zero, which
    never end, even behind a symlink) of at most MAX_CONFIG_BYTES."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: not a regular file; a config is a YAML file")
    with open(path, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the stat
            raise ConfigError(f"{path}: not a regular file; a config is a YAML file")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; a config is a "
                          "YAML file of a few keys")
    return data.decode("utf-8")


def scalar(text: str) -> Any:
    """A command-line value read as YAML: '0.01' → 0.01, '[20, 10]' → [20, 10], 'null' → None."""
    return parse(text, "override")[0]


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as {dotted key: value}, e.g. {"train.optimizer.name": "adam"}; lists and
    empty mappings are values, as the keys of an override or a compare column name them."""
    flat = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


# libyaml's emitter writes the same text as the pure-Python one, four times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=None,
                     allow_unicode=True)
