"""The experiment spec: defaults, YAML quirks, overrides and every error path."""

import pytest

from dlrun import config
from dlrun.engine.init import INITIALIZERS
from dlrun.engine.layers import ACTIVATIONS
from dlrun.errors import ConfigError

*_FIRST, _LAST = map(repr, ACTIVATIONS)


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text, overrides=()):
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), list(overrides))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_empty_file_gives_documented_defaults(tmp_path):
    cfg = config.load(write(tmp_path, ""))
    assert cfg.dtype == "float32"
    assert cfg.train.optimizer == {"name": "adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    assert cfg.model.init == {"name": "he"}
    assert cfg.model.keep_probs() == [1.0, 1.0]


def test_exponent_notation_is_a_number(tmp_path):
    cfg = config.load(write(tmp_path, "train:\n  learning_rate: 1e-3\n  optimizer: {name: adam, epsilon: 1E-7}\n"))
    assert cfg.train.learning_rate == 0.001
    assert cfg.train.optimizer["epsilon"] == 1e-7


def test_resolved_config_round_trips(tmp_path):
    cfg = config.load(write(tmp_path, "model:\n  init: {name: random, scale: 10}\n  keep_prob: [0.8, 0.9]\n"))
    again = config.load(write(tmp_path, cfg.to_yaml(), "resolved.yaml"))
    assert again == cfg
    assert again.model.init == {"name": "random", "scale": 10}


@pytest.mark.parametrize("text, expected", [
    ("train:\n  optimizer: adam\n  lr: 0.1\n",
     "exp.yaml:3: train.lr: unknown key; allowed: optimizer, learning_rate,"),
    ("train:\n  learnig_rate: 0.1\n", "did you mean 'learning_rate'?"),
    ("train:\n  learning_rate: -1\n", "exp.yaml:2: train.learning_rate: must be greater than 0 (got -1)"),
    ("model:\n  activation: relux\n",
     f"exp.yaml:2: model.activation: must be {', '.join(_FIRST)} or {_LAST} (got 'relux')"),
    ("model:\n  init: glorious\n", f"model.init: unknown init 'glorious'; allowed: {', '.join(INITIALIZERS)}"),
    ("model:\n  init: {name: random, scale: -1}\n", "Argument `scale` must be > 0"),
    ("train:\n  optimizer: {name: adam, beta: 0.9}\n", "unknown option 'beta' for optimizer 'adam'; allowed: beta1, beta2, epsilon"),
    ("train:\n  decay: {name: inverse_time, interval: 0}\n", "train.decay: Argument `interval`"),
    ("train:\n  epochs: 3\n  epochs: 4\n", "exp.yaml:3: duplicate key 'train.epochs'"),
    ("train: [1\n", "exp.yaml:2: invalid YAML"),
    ("model:\n  keep_prob: [0.5]\n", "exp.yaml:2: model.keep_prob: has 1 values for 2 hidden layers"),
    ("model:\n  keep_prob: 0\n", "model.keep_prob: must be a number in (0, 1]"),
    ("model:\n  keep_prob: 1.5\n", "model.keep_prob: must be a number in (0, 1]"),
    ("regularization:\n  l2: -0.1\n", "regularization.l2: must be greater than or equal to 0"),
    ("name: ../escape\n", "exp.yaml:1: name: must start with a letter or digit"),
    ("name: a/b\n", "name: must start with a letter or digit"),
    ("data:\n  split: {train: 0.5, dev: 0.2, test: 0.2}\n", "data.split: train + dev + test must be 1"),
    ("data:\n  split: {train: 0.9, dev: 0.2}\n", "data.split: train + dev is 1.1: the shares must add up to 1"),
    ("data:\n  split: {dev: 0.1}\n", "got 0.9 (train 0.6, test 0.2 by default)"),
    ("data:\n  split: {train: 0.5, test: 0.5}\n", "data.split: train + test is 1, which leaves no dev set"),
    ("data:\n  split: {train: 1}\n", "data.split: train is 1, which leaves no dev set"),
    ("data:\n  split: {train: 1" + "0" * 400 + ", dev: 0.1}\n", "data.split.train: must be a valid number"),
    ("train:\n  batch_size: half\n", "train.batch_size: must be a whole number >= 1 or 'full', got 'half'"),
    ("train:\n  batch_size: 0\n", "train.batch_size: must be a whole number >= 1 or 'full'"),
    ("model:\n  hidden_layers: [10, 0]\n", "model.hidden_layers.1: must be greater than 0"),
    ("- 1\n- 2\n", "expected a mapping of sections"),
    ("a: !!python/object/apply:os.system [ls]\n", "invalid YAML: could not determine a constructor"),
    ("dtype: float16\n", "dtype: must be 'float32' or 'float64'"),
    ("data:\n  generator: {name: moons, n_samples: 1}\n", "n_samples"),
])
def test_invalid_specs_name_file_line_and_key(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: no such config file"):
        config.load(tmp_path / "nope.yaml")


def test_overrides_set_nested_keys_with_yaml_values(tmp_path):
    path = write(tmp_path, "train:\n  optimizer: adam\n")
    cfg = config.load(path, ["train.learning_rate=1e-2", "model.keep_prob=0.8",
                             "model.hidden_layers=[20, 10]", "train.optimizer.beta1=0.95",
                             "train.decay.name=inverse_time", "train.decay.rate=2"])
    assert cfg.train.learning_rate == 0.01
    assert cfg.model.keep_prob == 0.8
    assert cfg.model.hidden_layers == [20, 10]
    assert cfg.train.optimizer["beta1"] == 0.95
    assert cfg.train.decay == {"name": "inverse_time", "rate": 2, "interval": 1}


def test_override_of_a_registry_option_left_at_default_keeps_the_default_name(tmp_path):
    cfg = config.load(write(tmp_path, ""), ["train.optimizer.beta2=0.99"])
    assert cfg.train.optimizer["name"] == "adam" and cfg.train.optimizer["beta2"] == 0.99


@pytest.mark.parametrize("override, expected", [
    ("train.lr=3", "override 'train.lr=3': train.lr: unknown key"),
    ("train.learning_rate=-3", "override 'train.learning_rate=-3': train.learning_rate: must be greater than 0"),
    ("train.learning_rate", "expected KEY.PATH=VALUE"),
    ("train..x=1", "expected KEY.PATH=VALUE"),
    ("diagnose.human_error=.inf", "diagnose.human_error: must be a finite number (got inf)"),
    ("regularization.l2=.nan", "regularization.l2: must be a finite number (got nan)"),
    ("train.optimizer={name: adam, epsilon: .inf}",
     "train.optimizer: optimizer 'adam' option 'epsilon' must be a finite number, got inf"),
    ("data.generator={name: moons, noise: -.inf}",
     "data.generator: generator 'moons' option 'noise' must be a finite number, got -inf"),
])
def test_bad_overrides_are_named(tmp_path, override, expected):
    assert expected in error_of(tmp_path, "train:\n  epochs: 2\n", [override])
