"""dlrun predict: the saved normalization and parameters applied to new rows."""

import io
import json
import os
import stat
import subprocess

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.training import session


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them for every run here costs time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


runner = CliRunner()


def _forward(params: dict, X: np.ndarray, activation=lambda Z: np.maximum(Z, 0)) -> np.ndarray:
    """Logits from the course-layout parameters, computed here independently of the engine."""
    A = (X - params["meta_mean"]) / params["meta_std"]
    layers = sorted(int(k[1:]) for k in params if k[0] == "W" and k[1:].isdigit())
    for l in layers:
        Z = A @ params[f"W{l}"].T + params[f"b{l}"].T
        A = activation(Z) if l < layers[-1] else Z
    return A


def _train(tmp_path, data_section: str, extra: str = ""):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"seed: 2\ndtype: float64\ndata: {data_section}\nmodel: {{hidden_layers: [6, 4]}}\n"
                    f"train: {{epochs: 15, learning_rate: 0.02}}\n{extra}")
    run_dir, _ = session.run(config.load(spec), tmp_path / "runs")
    return run_dir, dict(np.load(run_dir / "params.npz"))


@pytest.fixture
def trained(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"height": rng.normal(170, 10, 300), "weight": rng.normal(70, 12, 300)})
    frame["size"] = np.where((frame.height - 170) / 10 + (frame.weight - 70) / 12 > 0, "big", "small")
    frame.to_csv(tmp_path / "people.csv", index=False)
    run_dir, params = _train(tmp_path, f"{{path: {tmp_path / 'people.csv'}, target: size}}")
    new = pd.DataFrame({"id": range(25), "weight": rng.normal(70, 12, 25),
                        "height": rng.normal(170, 10, 25)})
    new.to_csv(tmp_path / "new.csv", index=False)
    return run_dir, params, new


def test_predictions_follow_the_saved_normalization_and_parameters(tmp_path, trained):
    run_dir, params, new = trained
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 25 predictions" in result.output
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["prediction", "probability_big", "probability_small"]
    X = new[["height", "weight"]].to_numpy()  # the training column order, whatever the file's
    p_small = 1 / (1 + np.exp(-_forward(params, X)[:, 0]))
    assert predicted["probability_small"].to_numpy() == pytest.approx(p_small, abs=1e-5)
    assert predicted["probability_big"].to_numpy() == pytest.approx(1 - p_small, abs=1e-5)
    assert predicted["prediction"].tolist() == np.where(p_small > 0.5, "small", "big").tolist()


def test_without_output_the_csv_goes_to_standard_output(tmp_path, trained):
    run_dir, _, _ = trained
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv")])
    assert result.exit_code == 0
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert len(frame) == 25 and set(frame["prediction"]) <= {"big", "small"}


def test_targets_in_the_file_are_scored(tmp_path, trained):
    run_dir, _, _ = trained
    frame = pd.read_csv(tmp_path / "people.csv")
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "people.csv"), "-o", str(out)])
    assert result.exit_code == 0
    predicted = pd.read_csv(out)
    accuracy = np.mean(predicted["prediction"] == frame["size"])
    assert f"accuracy {accuracy:.4g}" in result.output and "f1" in result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"(kept weights: last epoch {summary['epochs_run']} of" in result.output
    # The loss as training measures it: the mean cross-entropy of the true labels' probability.
    p_true = np.where(frame["size"] == "big", predicted["probability_big"],
                      predicted["probability_small"])
    loss = float(result.output.split("loss ")[1].split(",")[0])
    assert loss == pytest.approx(-np.mean(np.log(p_true)), rel=1e-3)


def test_multiclass_predictions_from_an_npy_file(tmp_path):
    run_dir, params = _train(tmp_path, "{generator: {name: blobs, classes: 3, n_samples: 300}}")
    X = np.random.default_rng(1).normal(0, 4, (40, 2))
    np.save(tmp_path / "rows.npy", X)
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "rows.npy")])
    assert result.exit_code == 0
    frame = pd.read_csv(io.StringIO(result.stdout))
    Z = _forward(params, X)
    probabilities = np.exp(Z - Z.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert frame[["probability_0", "probability_1", "probability_2"]].to_numpy() == pytest.approx(
        probabilities, abs=1e-5)
    assert frame["prediction"].tolist() == Z.argmax(axis=1).tolist()


def test_regression_predictions_are_values(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["price"] = 2.5 * frame.a - frame.b + 0.1 * rng.normal(size=200)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    run_dir, params = _train(tmp_path, f"{{path: {tmp_path / 'prices.csv'}, target: price}}")
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "prices.csv")])
    assert result.exit_code == 0
    predicted = pd.read_csv(io.StringIO(result.stdout))
    assert list(predicted.columns) == ["prediction"]
    expected = _forward(params, frame[["a", "b"]].to_numpy())[:, 0]
    assert predicted["prediction"].to_numpy() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert "rmse" in result.stderr
    mse = np.mean((expected - frame["price"].to_numpy()) ** 2)  # the training loss
    assert float(result.stderr.split("loss ")[1].split(",")[0]) == pytest.approx(mse, rel=1e-3)


@pytest.mark.parametrize("contents, message", [
    ("weight,id\n1,2\n", "no column 'height'; the model was trained on height, weight"),
    ("height,weight\n170,abc\n", "feature column 'weight' is not numeric (line 2: 'abc')"),
    ("height,weight\n170,\n180,80\n", "feature 'weight' is missing, NaN or infinite in 1 rows"),
    ("", "the file is empty"),
])
def test_bad_rows_are_one_line_errors_and_nothing_is_written(tmp_path, trained, contents, message):
    run_dir, _, _ = trained
    (tmp_path / "bad.csv").write_text(contents)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "bad.csv"), "-o", str(out)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_wrong_number_of_features_in_an_array(tmp_path, trained):
    run_dir, _, _ = trained
    np.save(tmp_path / "rows.npy", np.zeros((3, 5)))
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "rows.npy")])
    assert result.exit_code == 2 and "rows have 5 features; the model takes 2" in result.output


def test_unusable_run_directories(tmp_path, trained):
    run_dir, _, _ = trained
    data = str(tmp_path / "new.csv")
    result = runner.invoke(app, ["predict", str(tmp_path / "nope"), data])
    assert result.exit_code == 2 and "no such run directory" in result.output
    (run_dir / "params.npz").write_bytes(b"not a zip")
    result = runner.invoke(app, ["predict", str(run_dir), data])
    assert result.exit_code == 2 and "not a readable .npz" in result.output
    (run_dir / "params.npz").unlink()
    result = runner.invoke(app, ["predict", str(run_dir), data])
    assert result.exit_code == 2 and "no params.npz" in result.output


def test_config_edited_after_training_is_detected(tmp_path, trained):
    run_dir, _, _ = trained
    text = (run_dir / "config.yaml").read_text().replace("hidden_layers: [6, 4]", "hidden_layers: [7, 4]")
    (run_dir / "config.yaml").write_text(text)
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv")])
    assert result.exit_code == 2
    assert "W1 has shape (6, 2), this network needs (7, 2)" in result.output
    assert "edited after training" in result.output


def test_output_into_a_device_or_through_a_symlink_keeps_it_what_it_was(tmp_path, trained):
    """-o /dev/null writes into the device (a rename would have replaced it with a file); a
    symlink stays a symlink and its target gets the predictions."""
    run_dir, _, _ = trained
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv"), "-o",
                                 str(fifo)])
    assert result.exit_code == 0, result.output
    assert reader.communicate(timeout=30)[0].startswith("prediction,")
    assert stat.S_ISFIFO(fifo.stat().st_mode)

    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv"), "-o",
                                 str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text().startswith("prediction,")
    assert len(target.read_text().splitlines()) == 26


@pytest.mark.parametrize("where, message", [
    ("outdir", "outdir: is a directory; give a file name for the predictions"),
    ("missing/p.csv", "no such directory"),
    ("p.npz", "predictions are written as CSV text; name the file .csv"),
])
def test_an_unusable_output_path_is_one_line_before_any_work(tmp_path, trained, where, message):
    run_dir, _, _ = trained
    (tmp_path / "outdir").mkdir()
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "new.csv"), "-o",
                                 str(tmp_path / where)])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before  # no temporary file left anywhere
