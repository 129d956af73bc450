"""Run names that tell runs apart: a `--name` template filled from the resolved config, or by
default the config's name followed by the overridden keys and values, abbreviated:

    dlrun train configs/quickstart.yaml train.learning_rate=0.003 model.keep_prob=0.8
        -> runs/quickstart-lr0.003-kp0.8-<stamp>-<id>
    dlrun train configs/quickstart.yaml --name "lr{train.learning_rate}-{model.keep_prob}"
        -> runs/lr0.01-1.0-<stamp>-<id>

Names keep to the config's rule (letters, digits, . _ -, at most 64 characters); one cut short
ends with a hash of what was left out, so two different sets of overrides never share a name.
"""

from __future__ import annotations

import difflib
import hashlib
import re

from .config import NAME_PATTERN, ExperimentConfig
from .errors import ConfigError

MAX_NAME = 64  # config.NAME_PATTERN's limit
# The keys people override most, by the short names they say out loud.
ABBREVIATIONS = {"learning_rate": "lr", "keep_prob": "kp", "batch_size": "bs", "epochs": "ep",
                 "hidden_layers": "h", "optimizer": "opt", "activation": "act", "seed": "seed",
                 "batch_norm": "bn", "decay": "decay", "init": "init", "n_samples": "n",
                 "noise": "noise", "patience": "pat", "dtype": "", "train_dev": "td"}
_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check(name: str, option: str = "--name", template: str | None = None) -> str:
    """`name` if it is a valid run name, else a ConfigError naming the option (and the
    template `name` was filled in from)."""
    if not re.match(NAME_PATTERN, name):
        given = f"{template!r} gives {name!r}" if template not in (None, name) else repr(name)
        raise ConfigError(f"{option} {given}: a run name must start with a letter or digit and "
                          f"use only letters, digits, '.', '_' and '-' (at most {MAX_NAME})")
    return name


def run_name(config: ExperimentConfig, overrides: list[str] = (),
             template: str | None = None) -> str:
    """The name a run of `config` gets: the filled-in `template`, else the config's name with
    the overrides abbreviated into it."""
    if template is not None:
        return check(fill(template, config), template=template)
    parts = [abbreviate(override) for override in overrides]
    parts = [part for part in parts if part]
    if not parts:
        return config.name
    return shorten("-".join([config.name, *parts]))


def fill(template: str, config: ExperimentConfig) -> str:
    """`template` with each {dotted.key} (or its unique last part) replaced by its value."""
    flat = _flatten(config.model_dump(mode="json"))

    def value(match: re.Match) -> str:
        key = match[1].strip()
        return _text(flat[_resolve(key, flat, template)])

    return _TEMPLATE_FIELD.sub(value, template)


def _resolve(key: str, flat: dict, template: str) -> str:
    if key in flat:
        return key
    head, _, last = key.rpartition(".")
    full = {short: name for name, short in ABBREVIATIONS.items() if short}.get(last)
    if full is not None:  # {lr} and {train.lr} as in the default names
        key = f"{head}.{full}" if head else full
        if key in flat:
            return key
    matches = [k for k in flat if k.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"--name {template!r}: {{{key}}} could be {', '.join(matches)}; give "
                          "more of the dotted key")
    hint = difflib.get_close_matches(key, list(flat), n=1)
    suggestion = f" (did you mean {{{hint[0]}}}?)" if hint else ""
    raise ConfigError(f"--name {template!r}: unknown key {{{key}}}{suggestion}; allowed: a "
                      "dotted key of the resolved config (see `dlrun config CONFIG`), e.g. "
                      "{train.learning_rate}")


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            if "name" in value:  # a registry choice: {train.optimizer} is its name
                flat[f"{prefix}{key}"] = value["name"]
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def abbreviate(override: str) -> str:
    """`train.learning_rate=0.003` -> `lr0.003`; `model.hidden_layers=[20, 10]` -> `h20x10`."""
    path, _, text = override.partition("=")
    keys = path.strip().split(".")
    if keys == ["name"]:
        return ""
    last = keys[-1]
    if last == "name" and len(keys) > 1:  # train.optimizer.name=gd reads as optimizer gd
        last = keys[-2]
    short = ABBREVIATIONS.get(last)
    if short is None:
        words = last.split("_")
        short = "".join(w[0] for w in words) if len(words) > 1 else last
    return _UNSAFE.sub("_", short + _value_text(text)).strip("_")


def _value_text(text: str) -> str:
    from . import yamlio
    try:
        value = yamlio.scalar(text)
    except ConfigError:
        return text
    return _text(value)


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "_".join(_text(item) for item in value.values())
    return "none" if value is None else _UNSAFE.sub("_", str(value))


def shorten(name: str) -> str:
    """`name` within MAX_NAME characters; a cut one ends with a hash of the whole."""
    name = _UNSAFE.sub("_", name).lstrip("._-") or "run"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:MAX_NAME - 7].rstrip('._-')}-{digest}"
