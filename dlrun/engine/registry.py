"""Building engine objects from their YAML names, with errors that list what is allowed.

A registry is a dict {name: class} (INITIALIZERS, ACTIVATIONS, OPTIMIZERS, SCHEDULES, GENERATORS).
A new entry is one class, whose constructor's keyword arguments are its YAML options and whose
class attributes are its traits, and one line in its registry: config validation reads the
registries when a config is validated, and the diagnosis, its advice and gradient checking read
the traits, never lists of names.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any


def check(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless condition holds (constructors validate with this)."""
    if not condition:
        raise ValueError(message)


def options_of(cls: type) -> dict[str, Any]:
    """The keyword arguments cls accepts, with their defaults (inspect.Parameter.empty if none)."""
    return dict(_options_of(cls))


@functools.lru_cache(maxsize=None)
def _options_of(cls: type) -> dict[str, Any]:
    # inspect.signature costs more than the rest of validating a config: once per class.
    params = inspect.signature(cls.__init__).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: p.default for name, p in params.items() if name != "self" and p.kind in named}


def build(registry: dict[str, type], kind: str, spec: str | dict[str, Any]):
    """Build registry[name](**options) from `name` or `{name: ..., option: value}`.

    Raises ValueError naming the unknown name or option and listing the allowed ones.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"expected a name or a mapping with a 'name' key; "
                         f"allowed names: {', '.join(registry)}")
    options = dict(spec)
    name = options.pop("name")
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; allowed: {', '.join(registry)}")
    cls = registry[name]
    allowed = options_of(cls)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(allowed) or "none"
        raise ValueError(f"unknown option {unknown[0]!r} for {kind} {name!r}; allowed: {listed}")
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{kind} {name!r} option {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{kind} {name!r} option {key!r} must be a finite number, got "
                             f"{value!r}")
    return cls(**options)


def describe(obj) -> dict[str, Any]:
    """The {name, **options} mapping that rebuilds obj through build()."""
    config = {"name": obj.name}
    config.update({key: getattr(obj, key) for key in options_of(type(obj))})
    return config
