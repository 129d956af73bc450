"""Inputs and faults beyond the property tests' draws: each gets one line and exit status 2,
never a traceback, and nothing half-made is left looking like a run."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.errors import ConfigError

runner = CliRunner()
QUICKSTART = Path(__file__).parent.parent / "configs" / "quickstart.yaml"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun")


def one_line_exit_2(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def train_small(tmp_path, *overrides):
    runs = tmp_path / "runs"
    result = invoke("train", QUICKSTART, "-q", "--runs-dir", runs, "train.epochs=2", *overrides)
    assert result.exit_code == 0, result.output
    return Path(result.output.strip())


# --- nonsense accepted --------------------------------------------------------------------------

@pytest.mark.parametrize("override, key", [
    ("train.learning_rate=yes", "train.learning_rate"),
    ("train.epochs=on", "train.epochs"),
    ("seed=true", "seed"),
    ("model.hidden_layers=[10, no]", "model.hidden_layers"),
    ("regularization.l2=off", "regularization.l2"),
    ("diagnose.human_error=no", "diagnose.human_error"),
    ("data.split.train=yes", "data.split.train"),
    ("train.early_stopping.patience=on", "train.early_stopping.patience"),
])
def test_a_yaml_boolean_is_not_a_number(tmp_path, override, key):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path, [override])
    message = str(caught.value)
    assert f"override {override!r}: {key}: must be a number" in message
    assert "boolean" in message and "\n" not in message


def test_a_boolean_in_the_file_names_its_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\ntrain:\n  epochs: on\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:3: train.epochs: must be a number"):
        config.load(path)


def test_booleans_where_booleans_go_are_still_read(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  shuffle: no\n  early_stopping: yes\nmodel:\n  batch_norm: on\n")
    cfg = config.load(path)
    assert cfg.train.shuffle is False and cfg.model.batch_norm is True
    assert cfg.train.early_stopping.patience == 10


def test_predict_refuses_parameters_that_are_not_finite(tmp_path):
    run_dir = train_small(tmp_path)
    with np.load(run_dir / "params.npz") as saved:
        params = dict(saved)
    params[sorted(params)[0]].flat[0] = np.nan
    np.savez(run_dir / "params.npz", **params)
    data = tmp_path / "x.csv"
    data.write_text("x1,x2\n0.1,0.2\n")
    line = one_line_exit_2(invoke("predict", run_dir, data))
    assert "params.npz" in line and "not finite" in line
