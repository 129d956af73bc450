"""The README's lists of names and options say what the registries hold, no more and no less."""

import re
from pathlib import Path

import pytest
import yaml

from dlrun import config
from dlrun.data.synthetic import GENERATORS
from dlrun.engine.init import INITIALIZERS
from dlrun.engine.layers import ACTIVATIONS
from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.registry import options_of
from dlrun.engine.schedules import SCHEDULES

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def comment_of(key: str, after: str = "## An experiment") -> str:
    """The comment on the first YAML line `key:` after the heading, with the comment-only lines
    right under it, as one line of text."""
    lines = README[README.index(after):].splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s+{key}:", line))
    parts = [lines[start].partition("#")[2]]
    for line in lines[start + 1:]:
        if not line.lstrip().startswith("#"):
            break
        parts.append(line.lstrip()[1:])
    return " ".join(part.strip() for part in parts)


def listed(text: str) -> dict[str, set[str]]:
    """{name: options} from `name {option, ...}, name, ...`, up to the first ';'."""
    entries = text.partition(";")[0]
    return {name: set(filter(None, options.replace(" ", "").split(",")))
            for name, options in re.findall(r"(\w+)(?:\s*\{([^}]*)\})?", entries)}


def registered(registry: dict[str, type], common: set[str] = frozenset()) -> dict[str, set[str]]:
    return {name: set(options_of(cls)) - common for name, cls in registry.items()}


@pytest.mark.parametrize("key, registry", [("init", INITIALIZERS), ("optimizer", OPTIMIZERS),
                                           ("decay", SCHEDULES)])
def test_the_readme_lists_every_entry_with_its_options(key, registry):
    assert listed(comment_of(key)) == registered(registry)


def test_the_readme_lists_every_activation():
    assert listed(comment_of("activation")) == {name: set() for name in ACTIVATIONS}


def test_the_readme_lists_every_generator_and_the_options_all_of_them_take():
    text = comment_of("generator", after="## Data, metrics")
    common = set(re.split(r",\s*(?:and\s+)?", re.search(r"all take ([\w, ]+)", text)[1].strip()))
    assert common == {"n_samples", "noise", "stretch"}
    assert all(common <= set(options_of(cls)) for cls in GENERATORS.values())
    assert listed(text) == registered(GENERATORS, common)


def test_the_readme_experiment_is_a_valid_config():
    """The annotated example itself, comments and all, validates."""
    block = README[README.index("## An experiment"):].split("```yaml\n", 1)[1].split("```")[0]
    assert config.validate(yaml.safe_load(block), "README.md").train.decay["name"] == "inverse_time"
