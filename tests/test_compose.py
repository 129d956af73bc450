"""Composed configs (`extends`) and `dlrun config`: merging, where errors point, cycles, origins."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.errors import ConfigError

runner = CliRunner()
CONFIGS = Path(__file__).parent.parent / "configs"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


BASE = """seed: 3
model:
  hidden_layers: [10, 5]
  activation: tanh
train:
  optimizer: {name: adam, beta1: 0.8}
  epochs: 4
"""


def test_a_child_merges_mappings_over_its_base_and_replaces_other_values(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nmodel:\n  hidden_layers: [4]\n"
                                          "train:\n  optimizer: {beta1: 0.7}\n")
    loaded = config.load(child)
    assert loaded.seed == 3 and loaded.model.activation == "tanh"
    assert loaded.model.hidden_layers == [4]  # a list replaces, never appends
    assert loaded.train.optimizer == {"name": "adam", "beta1": 0.7, "beta2": 0.999,
                                      "epsilon": 1e-8}
    assert loaded.train.epochs == 4


def test_a_registry_choice_by_another_name_drops_the_old_choices_options(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain:\n"
                                          "  optimizer: {name: momentum}\n")
    assert config.load(child).train.optimizer == {"name": "momentum", "beta": 0.9}


def test_bases_in_a_list_merge_in_order_relative_to_the_file(tmp_path):
    write(tmp_path, "bases/a.yaml", "seed: 1\ntrain: {epochs: 2}\n")
    write(tmp_path, "bases/b.yaml", "seed: 2\n")
    child = write(tmp_path, "exp/child.yaml", "extends: [../bases/a.yaml, ../bases/b.yaml]\n")
    loaded = config.load(child)
    assert (loaded.seed, loaded.train.epochs) == (2, 2)


def test_an_error_in_a_base_names_the_base_and_its_line(tmp_path):
    write(tmp_path, "base.yaml", "seed: 1\ntrain:\n  epochs: 4\n  learning_rat: 0.1\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: c\n")
    with pytest.raises(ConfigError, match=r"^.*base\.yaml:4: train\.learning_rat: unknown key"):
        config.load(child)


def test_a_key_the_child_sets_again_is_located_in_the_child(tmp_path):
    write(tmp_path, "base.yaml", "train:\n  epochs: 4\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain:\n  epochs: -1\n")
    with pytest.raises(ConfigError, match=r"child\.yaml:3: train\.epochs"):
        config.load(child)


def test_an_override_error_still_names_the_override(tmp_path):
    write(tmp_path, "base.yaml", "train:\n  epochs: 4\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\n")
    with pytest.raises(ConfigError, match=r"override 'train\.epochs=0'"):
        config.load(child, ["train.epochs=0"])


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "extends: a.yaml\n"},
     r"a\.yaml:1: extends .*a\.yaml: a cycle \(.*a\.yaml → .*a\.yaml\)"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "seed: 1\nextends: a.yaml\n"},
     r"b\.yaml:2: extends .*a\.yaml: a cycle \(.*a\.yaml → .*b\.yaml → .*a\.yaml\)"),
    ({"a.yaml": "extends: missing.yaml\n"}, r"a\.yaml:1: extends: .*missing\.yaml: no such"),
    ({"a.yaml": "extends: [1, 2]\n"}, r"a\.yaml:1: extends: expected a file name"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "- 1\n"}, r"b\.yaml: expected a mapping"),
])
def test_bad_extends_are_refused_in_one_line(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path / "a.yaml")
    result = invoke("config", tmp_path / "a.yaml")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_a_diamond_is_not_a_cycle(tmp_path):
    write(tmp_path, "root.yaml", "seed: 5\n")
    write(tmp_path, "left.yaml", "extends: root.yaml\n")
    write(tmp_path, "right.yaml", "extends: root.yaml\n")
    child = write(tmp_path, "child.yaml", "extends: [left.yaml, right.yaml]\n")
    assert config.load(child).seed == 5


def test_config_prints_what_train_would_save(tmp_path):
    result = invoke("config", CONFIGS / "quickstart.yaml", "train.epochs=7")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    expected = config.load(CONFIGS / "quickstart.yaml", ["train.epochs=7"])
    assert printed == expected.model_dump(mode="json")
    assert result.output == expected.to_yaml()


def test_config_origin_names_the_file_and_line_of_each_value(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: c\nmodel:\n"
                                          "  hidden_layers: [4]\n")
    result = invoke("config", child, "--origin", "train.learning_rate=0.5")
    assert result.exit_code == 0, result.output
    lines = {line.split(":")[0].strip(): line.split("#")[1].strip()
             for line in result.output.splitlines() if "#" in line}
    assert lines["hidden_layers"] == f"{child}:4"
    assert lines["activation"] == f"{tmp_path / 'base.yaml'}:4"
    assert lines["beta1"] == f"{tmp_path / 'base.yaml'}:6"
    assert lines["learning_rate"] == "override 'train.learning_rate=0.5'"
    assert lines["dtype"] == "default"
    body = "\n".join(line.split("#")[0] for line in result.output.splitlines())
    assert yaml.safe_load(body)["train"]["learning_rate"] == 0.5


@pytest.mark.parametrize("args, message", [
    (["train.epochs=0"], "override 'train.epochs=0'"),
    (["model.output=linear"], "model.output: linear needs real-valued targets"),
])
def test_config_validates_without_training(tmp_path, args, message):
    result = invoke("config", CONFIGS / "quickstart.yaml", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_config_runs_as_a_subprocess_and_refuses_a_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    done = subprocess.run([sys.executable, "-m", "dlrun", "config", str(tmp_path / "a.yaml")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "a cycle" in done.stderr and not done.stdout
