"""Safe YAML reading that keeps line numbers, refuses duplicate keys and reads 1e-3 as a number."""

from __future__ import annotations

import re
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

Lines = dict[tuple, int]
MAX_VALUES = 100_000  # far beyond any experiment; bounds what aliases (*name) can expand to


def _index(node: yaml.Node, path: tuple, lines: Lines, source: str,
           enclosing: tuple = ()) -> None:
    """Record the line of every key path; refuse a key that appears twice in one mapping, an
    alias that contains itself, and aliases that expand to more than MAX_VALUES values."""
    if any(node is outer for outer in enclosing):
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: "
                          f"{'.'.join(map(str, path)) or 'the document'}: an alias that "
                          "contains itself; write the value out")
    if len(lines) > MAX_VALUES:
        raise ConfigError(f"{source}: more than {MAX_VALUES} values once aliases are expanded")
    enclosing = (*enclosing, node)
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
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


def parse(text: str, source: str) -> tuple[Any, Lines]:
    """(data, {key path: line}) from YAML text; errors name `source` and the line."""
    try:
        loader = _Loader(text)  # refuses unprintable characters already
    except yaml.reader.ReaderError as error:
        line = text[:error.position].count("\n") + 1
        raise ConfigError(f"{source}:{line}: invalid YAML: {str(error).splitlines()[0]}") from None
    try:
        node = loader.get_single_node()
        lines: Lines = {}
        if node is None:
            return None, lines
        _index(node, (), lines, source)
        return loader.construct_document(node), lines
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


def scalar(text: str) -> Any:
    """A command-line value read as YAML: '0.01' → 0.01, '[20, 10]' → [20, 10], 'null' → None."""
    return parse(text, "override")[0]


# libyaml's emitter writes the same text as the pure-Python one, four times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=None,
                     allow_unicode=True)
