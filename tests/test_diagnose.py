import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import dlrun.data
from dlrun import config
from dlrun.cli import app
from dlrun.diagnosis.diagnose import DIAGNOSIS_JSON, DIAGNOSIS_MD
from dlrun.training import loop, session

runner = CliRunner()

TINY_ON_CIRCLES = {"data": {"generator": {"name": "circles", "n_samples": 400, "noise": 0.05}},
                   "model": {"hidden_layers": [1]}, "train": {"learning_rate": 0.01, "epochs": 40}}
WIDE_ON_FEW_POINTS = {"data": {"generator": {"name": "moons", "n_samples": 60, "noise": 0.35},
                               "split": {"train": 0.5, "dev": 0.5, "test": 0.0}},
                      "model": {"hidden_layers": [100, 100]},
                      "train": {"learning_rate": 0.01, "epochs": 300, "batch_size": "full"}}
LEARNING_RATE_10 = {"model": {"activation": "leaky_relu"},
                    "train": {"optimizer": "gd", "learning_rate": 10, "epochs": 20}}
ZEROS_INIT = {"model": {"init": "zeros", "activation": "sigmoid"},
              "train": {"epochs": 20, "learning_rate": 0.01}}
DEEP_SIGMOID = {"model": {"hidden_layers": [10] * 15, "activation": "sigmoid",
                          "init": {"name": "random", "scale": 1.0}},  # 3x Xavier's scale
                "train": {"epochs": 10, "learning_rate": 0.01}}


def train_run(tmp_path, spec):
    run_dir, summary = session.run(config.validate(spec, "test"), runs_dir=tmp_path / "runs")
    return run_dir, summary, json.loads((run_dir / DIAGNOSIS_JSON).read_text())


def problems(diagnosis):
    checks = {**diagnosis["dynamics"], **diagnosis["units"]["checks"]}
    return {name for name, found in checks.items() if found["status"] == "problem"}


def test_a_tiny_network_on_circles_has_high_bias(tmp_path):
    _, summary, diagnosis = train_run(tmp_path, TINY_ON_CIRCLES)
    assert diagnosis["verdict"] == "high bias"
    assert diagnosis["errors"]["train"] > 0.2
    assert diagnosis["recommendations"][0]["problem"] == "high bias"
    assert "bigger network" in diagnosis["recommendations"][0]["actions"][0]
    assert summary["bias_variance"]["verdict"] == "high bias"


def test_a_wide_network_on_few_points_has_high_variance(tmp_path):
    _, _, diagnosis = train_run(tmp_path, WIDE_ON_FEW_POINTS)
    assert diagnosis["verdict"] == "high variance"
    assert diagnosis["errors"]["train"] == 0.0 and diagnosis["errors"]["dev"] > 0.1
    assert "early_stopping" in problems(diagnosis)  # the dev loss bottomed out long before the end
    variance = next(r for r in diagnosis["recommendations"] if r["problem"] == "high variance")
    assert any("L2" in action for action in variance["actions"])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_learning_rate_of_10_diverges_and_says_where(tmp_path):
    _, summary, diagnosis = train_run(tmp_path, LEARNING_RATE_10)
    assert summary["status"] == diagnosis["status"] == "diverged"
    divergence = diagnosis["dynamics"]["divergence"]
    assert divergence["status"] == "problem"
    assert divergence["step"] == summary["divergence"]["step"]
    assert divergence["learning_rate"] == 10
    assert diagnosis["recommendations"][0]["problem"] == "divergence"
    assert "learning rate" in diagnosis["recommendations"][0]["actions"][0]


def test_zeros_initialization_never_breaks_symmetry(tmp_path):
    _, _, diagnosis = train_run(tmp_path, ZEROS_INIT)
    assert "symmetry" in problems(diagnosis)
    assert [layer["distinct"] for layer in diagnosis["units"]["layers"]] == [1, 1]
    symmetry = next(r for r in diagnosis["recommendations"]
                    if r["problem"] == "symmetry not broken")
    assert "model.init" in symmetry["actions"][0]


def test_a_deep_sigmoid_network_with_large_init_has_vanishing_gradients(tmp_path):
    run_dir, _, diagnosis = train_run(tmp_path, DEEP_SIGMOID)
    gradients = diagnosis["dynamics"]["gradients"]
    assert gradients["kind"] == "vanishing"
    # Independently: ‖dW1‖/‖dW16‖ from metrics.csv, median over the first half of the epochs.
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    ratios = [float(row["grad_norm_1"]) / float(row["grad_norm_16"]) for row in rows]
    assert gradients["ratio_median"] == pytest.approx(np.median(ratios[:len(ratios) // 2]))
    assert gradients["ratio_median"] < 1e-3


def test_a_huge_step_kills_relu_units_and_saturates_tanh_units(tmp_path):
    _, _, relu = train_run(tmp_path, {"train": {"optimizer": "gd", "learning_rate": 10,
                                                "epochs": 20}})
    assert "dead_relu" in problems(relu)
    assert relu["units"]["layers"][-1]["dead"] == relu["units"]["layers"][-1]["units"]
    _, _, tanh = train_run(tmp_path, {"model": {"activation": "tanh"},
                                      "train": {"learning_rate": 10, "epochs": 20}})
    assert "saturation" in problems(tanh)
    assert max(layer["saturated_share"] for layer in tanh["units"]["layers"]) > 0.9


def test_full_batch_gradient_descent_descends_every_step_unless_the_step_is_too_large(tmp_path):
    def spec(learning_rate):
        return {"data": {"generator": {"name": "moons", "n_samples": 400}},
                "train": {"optimizer": "gd", "batch_size": "full", "epochs": 200,
                          "learning_rate": learning_rate}}

    _, _, calm = train_run(tmp_path, spec(0.5))
    assert calm["dynamics"]["cost_decrease"]["status"] == "ok"
    assert calm["dynamics"]["cost_decrease"]["steps"] == 199
    _, _, hot = train_run(tmp_path, spec(3.0))
    assert hot["dynamics"]["cost_decrease"]["status"] == "problem"
    assert hot["dynamics"]["cost_decrease"]["largest_rise"] > 0.1
    assert hot["recommendations"][0]["problem"] == "cost not decreasing"


def test_a_shifted_dev_set_is_a_data_mismatch(tmp_path, monkeypatch):
    real_load = dlrun.data.load

    def train_dev_and_shifted_dev(*args, **kwargs):
        dataset = real_load(*args, **kwargs)
        X, y = dataset.splits["train"]
        held_out = len(X) // 4  # a train-dev set: training distribution, never trained on
        dataset.splits["train_dev"] = X[:held_out], y[:held_out]
        dataset.splits["train"] = X[held_out:], y[held_out:]
        X_dev, y_dev = dataset.splits["dev"]
        dataset.splits["dev"] = X_dev + np.array([1.0, 0.0], dtype=X_dev.dtype), y_dev
        return dataset

    monkeypatch.setattr(dlrun.data, "load", train_dev_and_shifted_dev)
    _, summary, diagnosis = train_run(tmp_path, {"model": {"hidden_layers": [20, 10]},
                                                 "train": {"epochs": 60, "learning_rate": 0.01}})
    assert "train_dev" in summary["final"]
    assert diagnosis["verdict"] == "data mismatch"
    gaps = diagnosis["gaps"]
    final = summary["final"]
    assert gaps["data_mismatch"]["value"] == pytest.approx(
        final["dev"]["error"] - final["train_dev"]["error"])
    assert gaps["variance"]["value"] == pytest.approx(
        final["train_dev"]["error"] - final["train"]["error"])
    first_gap = next(r for r in diagnosis["recommendations"] if r["gap"] is not None)
    assert first_gap["problem"] == "data mismatch"
    assert any("training data more like the dev data" in action for action in first_gap["actions"])


def test_an_interrupted_run_is_diagnosed_from_what_it_has(tmp_path):
    class InterruptAtEpoch3(loop.Reporter):
        def epoch(self, row):
            if row["epoch"] == 3:
                raise KeyboardInterrupt

    run_dir, summary = session.run(config.validate({"train": {"epochs": 50}}, "test"),
                                 runs_dir=tmp_path, reporter=InterruptAtEpoch3())
    diagnosis = json.loads((run_dir / DIAGNOSIS_JSON).read_text())
    assert summary["status"] == diagnosis["status"] == "interrupted"
    assert diagnosis["epochs_run"] == 3
    assert diagnosis["verdict"] is not None


def test_the_diagnose_command_agrees_with_the_diagnosis_written_by_training(tmp_path):
    run_dir, _, written = train_run(tmp_path, ZEROS_INIT)
    (run_dir / DIAGNOSIS_JSON).unlink()
    result = runner.invoke(app, ["diagnose", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.output)
    assert again == json.loads((run_dir / DIAGNOSIS_JSON).read_text())
    # Rebuilt from config.yaml and params.npz, the units measure as they did in memory.
    assert again["units"]["layers"] == written["units"]["layers"]
    assert again["units"]["source"] != written["units"]["source"]
    for key in ("verdict", "errors", "gaps", "dynamics", "recommendations"):
        assert again[key] == written[key]


def test_the_terminal_report_and_markdown_name_the_verdict_and_what_to_try(tmp_path):
    run_dir, _, _ = train_run(tmp_path, TINY_ON_CIRCLES)
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "verdict: high bias" in result.output
    assert "What to try next" in result.output and "bigger network" in result.output
    markdown = (run_dir / DIAGNOSIS_MD).read_text()
    assert "**Verdict: high bias**" in markdown
    assert "| avoidable bias (train − Bayes) |" in markdown  # human_error: auto
    assert "| Bayes (estimated) | 0.00% ± 0.00% |" in markdown  # noise 0.05: the circles never meet


def test_training_from_the_command_line_writes_the_diagnosis(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("train: {epochs: 5}\ndiagnose: {human_error: 0.05}\n")
    result = runner.invoke(app, ["train", str(spec), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    diagnosis = json.loads((run_dir / DIAGNOSIS_JSON).read_text())
    assert diagnosis["errors"]["human"] == 0.05
    assert (run_dir / DIAGNOSIS_MD).is_file()


def test_an_unknown_key_in_the_diagnose_section_of_a_config_names_its_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\ndiagnose:\n  human_eror: 0.05\n")
    result = runner.invoke(app, ["train", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "spec.yaml:3: diagnose.human_eror: unknown key" in result.output
    assert "did you mean 'human_error'" in result.output
