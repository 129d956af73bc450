"""`diagnose.human_error: auto`: the avoidable bias measured from an estimate of the Bayes error."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.config import DiagnoseConfig
from dlrun.data.bayes import bayes_error, nearest_neighbour_bounds
from dlrun.data.synthetic import GENERATORS
from dlrun.diagnosis.bias_variance import analyse
from dlrun.diagnosis.diagnose import DIAGNOSIS_JSON, DIAGNOSIS_MD
from dlrun.engine.registry import build
from dlrun.training.experiment import load_data

runner = CliRunner()
AUTO = DiagnoseConfig()
CONFIGS = Path(__file__).parent.parent / "configs"


def train(tmp_path, spec, *overrides):
    path = spec  # a config file of configs/ is trained where it is: it may extend others there
    if isinstance(spec, dict):
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs"),
                                 *overrides])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    return (run_dir, result.output, json.loads((run_dir / "summary.json").read_text()),
            json.loads((run_dir / DIAGNOSIS_JSON).read_text()))


def test_auto_is_the_default_and_a_number_given_always_wins():
    assert DiagnoseConfig().human_error == "auto"
    assert config.validate({"diagnose": {"human_error": 0.02}}, "t").diagnose.human_error == 0.02
    assert config.validate({"diagnose": {"human_error": "0"}}, "t").diagnose.human_error == 0.0


@pytest.mark.parametrize("value", ["Auto", -0.1, True, "two percent"])
def test_a_human_error_that_is_neither_auto_nor_a_rate_is_refused(value):
    with pytest.raises(Exception, match=r"diagnose.human_error: must be auto, or a number greater "
                                        r"than or equal to 0 \(0.02 for 2%\) \(got "):
        config.validate({"diagnose": {"human_error": value}}, "t")


def test_the_quick_start_is_diagnosed_against_the_bayes_error_of_its_moons(tmp_path):
    """Moons with noise 0.2 overlap: a train error of a few percent is at the Bayes error, not
    high bias (which a proxy of 0 made it)."""
    run_dir, output, summary, diagnosis = train(tmp_path, CONFIGS / "quickstart.yaml")
    expected = bayes_error(build(GENERATORS, "generator",
                                 {"name": "moons", "n_samples": 1000, "noise": 0.2}))
    assert 0.02 < expected.value < 0.04
    assert summary["bayes_error"] == diagnosis["bayes_error"] == expected.to_json()
    assert diagnosis["errors"]["human"] == expected.value
    bias = diagnosis["gaps"]["avoidable_bias"]
    assert bias["value"] == pytest.approx(summary["final"]["train"]["error"] - expected.value)
    assert diagnosis["verdict"] != "high bias" and "avoidable_bias" not in diagnosis["problems"]
    assert summary["bias_variance"]["verdict"] == diagnosis["verdict"]
    shown = f"{100 * expected.value:.2f}% ± {100 * expected.stderr:.2f}%"
    assert f"Bayes error {shown}" in " ".join(output.split())
    markdown = (run_dir / DIAGNOSIS_MD).read_text()
    assert f"| Bayes (estimated) | {shown} |" in markdown and expected.method in markdown
    text = runner.invoke(app, ["diagnose", str(run_dir)], env={"COLUMNS": "200"}).output
    assert f"verdict: {diagnosis['verdict']}" in text and shown in text
    assert "avoidable bias (train − Bayes)" in text


def test_a_human_error_given_on_the_command_line_replaces_the_estimate(tmp_path):
    run_dir, _, _, _ = train(tmp_path, {"train": {"epochs": 3}})
    result = runner.invoke(app, ["diagnose", str(run_dir), "--human-error", "0.1",
                                 "--format", "json"])
    diagnosis = json.loads(result.output)
    assert diagnosis["human_error"] == 0.1 and diagnosis["bayes_error"] is None
    assert diagnosis["errors"]["human"] == 0.1
    again = json.loads(runner.invoke(app, ["diagnose", str(run_dir), "--human-error", "auto",
                                           "--format", "json"]).output)
    assert again["bayes_error"]["value"] == again["errors"]["human"] != 0.1


def _moons_file(tmp_path, noise=0.3):
    X, y = build(GENERATORS, "generator", {"name": "moons", "n_samples": 600,
                                           "noise": noise}).generate(np.random.default_rng(3))
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": y}).to_csv(tmp_path / "moons.csv",
                                                                   index=False)
    return tmp_path / "moons.csv"


def test_data_from_a_file_gets_the_nearest_neighbour_bounds_of_its_training_split(tmp_path):
    spec = {"data": {"path": str(_moons_file(tmp_path)), "target": "label"},
            "model": {"hidden_layers": [16]}, "train": {"epochs": 30, "learning_rate": 0.01}}
    run_dir, output, summary, diagnosis = train(tmp_path, spec)
    X, y = load_data(config.validate(spec, "t")).splits["train"]
    expected = nearest_neighbour_bounds(X, y)
    assert summary["bayes_error"] == diagnosis["bayes_error"] == expected.to_json()
    assert expected.lower < expected.upper
    train_error = diagnosis["errors"]["train"]
    bias = diagnosis["gaps"]["avoidable_bias"]
    assert bias["value"] == pytest.approx(train_error - expected.upper)  # the least it can be
    assert bias["range"] == pytest.approx([train_error - expected.upper,
                                           train_error - expected.lower])
    shown = f"{100 * expected.lower:.1f}%–{100 * expected.upper:.1f}%"
    assert f"Bayes error {shown}" in " ".join(output.split())
    assert f"| Bayes (estimated) | {shown} |" in (run_dir / DIAGNOSIS_MD).read_text()
    text = runner.invoke(app, ["diagnose", str(run_dir)], env={"COLUMNS": "200"}).output
    assert "Cover–Hart" in text and "avoidable bias (train − Bayes upper bound)" in text


def test_a_train_error_within_the_bounds_is_said_to_be_at_the_bayes_error():
    bounds = {"lower": 0.02, "upper": 0.04, "nn_error": 0.04, "examples": 600, "method": "m"}
    result = analyse({"train": 0.03, "dev": 0.031}, AUTO, "binary", bounds)
    assert result["verdict"] == "good fit"
    assert result["caveat"] == ("avoidable bias cannot be told apart from 0: the train error "
                                "3.0% is within the Bayes error bounds 2.0%–4.0%")
    below = analyse({"train": 0.01, "dev": 0.011}, AUTO, "binary", bounds)
    assert "is below the Bayes error bounds" in below["caveat"]
    above = analyse({"train": 0.15, "dev": 0.16}, AUTO, "binary", bounds)
    assert above["verdict"] == "high bias" and above["caveat"] is None
    assert above["gaps"]["avoidable_bias"]["value"] == pytest.approx(0.11)
    assert above["gaps"]["avoidable_bias"]["range"] == pytest.approx([0.11, 0.13])


def test_regression_with_auto_says_the_avoidable_bias_is_not_measured(tmp_path):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["price"] = 3 * frame.a - frame.b + 0.5 * rng.normal(size=300)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    spec = {"data": {"path": str(tmp_path / "prices.csv"), "target": "price"},
            "model": {"hidden_layers": [8]}, "train": {"epochs": 5, "learning_rate": 0.01}}
    run_dir, output, summary, diagnosis = train(tmp_path, spec)
    assert diagnosis["gaps"]["avoidable_bias"] is None
    assert "avoidable_bias" not in diagnosis["problems"]
    assert diagnosis["caveat"].startswith("avoidable bias not measured: regression targets have "
                                          "no Bayes error rate")
    assert summary["bias_variance"]["caveat"] == diagnosis["caveat"]
    assert "avoidable bias not measured" in " ".join(output.split())
    assert diagnosis["caveat"] in (run_dir / DIAGNOSIS_MD).read_text()
