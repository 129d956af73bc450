"""Metrics against counts done by hand, and how training records and uses them."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun import config, metrics
from dlrun.cli import app
from dlrun.errors import ConfigError
from dlrun.training import session
from dlrun.training.experiment import load_data, prepare


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them for every run here costs time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def test_binary_precision_recall_f1_match_hand_counts():
    y_true = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    y_pred = np.array([1, 0, 1, 1, 0, 0, 0, 0])
    # true positives 2, false positives 1, false negatives 2, true negatives 3
    scores = metrics.classification(y_true, y_pred, "binary", 2)
    assert scores["accuracy"] == pytest.approx(5 / 8)
    assert scores["error"] == pytest.approx(3 / 8)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_no_predicted_positive_gives_zero_precision_not_nan():
    scores = metrics.classification(np.array([1, 0, 0]), np.array([0, 0, 0]), "binary", 2)
    assert scores["precision"] == 0.0 and scores["recall"] == 0.0 and scores["f1"] == 0.0


def _macro_f1_by_loops(y_true, y_pred):
    f1s = []
    for label in sorted(set(y_true) | set(y_pred)):
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred))
        fp = sum(t != label and p == label for t, p in zip(y_true, y_pred))
        fn = sum(t == label and p != label for t, p in zip(y_true, y_pred))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_agrees_with_a_loop_over_classes(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, 5, 60))
    scores = metrics.classification(y_true, y_pred, "multiclass", 5)
    assert scores["macro_f1"] == pytest.approx(_macro_f1_by_loops(y_true.tolist(), y_pred.tolist()))
    assert scores["accuracy"] == pytest.approx(np.mean(y_true == y_pred))


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions():
    scores = metrics.classification(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1]), "multiclass", 4)
    assert scores["macro_f1"] == 1.0


def test_rmse_is_the_root_of_the_mean_squared_difference():
    scores = metrics.regression(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]))
    assert scores["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    assert scores["error"] == scores["rmse"]


def test_monitored_metric_must_exist_for_the_task():
    assert metrics.check_monitored("f1", "binary") is None
    assert "macro_f1" in metrics.check_monitored("f1", "multiclass")
    assert metrics.check_monitored("loss", "regression") is None
    assert metrics.improvement("f1", 0.9) < metrics.improvement("f1", 0.8)
    assert metrics.improvement("error", 0.1) < metrics.improvement("error", 0.2)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


BINARY = """
name: binary
seed: 3
data:
  generator: {name: moons, n_samples: 300, noise: 0.25}
model: {hidden_layers: [8]}
train: {optimizer: adam, learning_rate: 0.02, epochs: 12}
"""


def _rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_epoch_rows_add_f1_columns_after_the_existing_ones(tmp_path):
    run_dir, summary = session.run(config.load(_write(tmp_path, BINARY)), tmp_path / "runs")
    with open(run_dir / "metrics.csv", newline="") as handle:
        header = next(csv.reader(handle))
    base = ["epoch", "learning_rate", "train_cost", "train_loss", "train_error", "dev_loss",
            "dev_error", "grad_norm_1", "grad_norm_2", "seconds"]
    assert header[:len(base)] == base
    assert header[len(base):] == ["train_precision", "train_recall", "train_f1",
                                  "dev_precision", "dev_recall", "dev_f1"]
    final_dev = summary["final"]["dev"]
    assert set(final_dev) == {"loss", "error", "accuracy", "precision", "recall", "f1"}
    assert final_dev["accuracy"] == pytest.approx(1 - final_dev["error"])


def test_final_f1_agrees_with_predictions_of_the_saved_network(tmp_path):
    from dlrun.predict import load_model

    cfg = config.load(_write(tmp_path, BINARY))
    run_dir, summary = session.run(cfg, tmp_path / "runs")
    X, y = load_data(cfg).splits["dev"]
    predicted = (load_model(run_dir).network.predict(X) > 0.5).astype(int)
    tp = int(np.sum((predicted == 1) & (y == 1)))
    precision, recall = tp / max(predicted.sum(), 1), tp / max(y.sum(), 1)
    assert summary["final"]["dev"]["precision"] == pytest.approx(precision)
    assert summary["final"]["dev"]["recall"] == pytest.approx(recall)


def test_early_stopping_can_watch_dev_f1(tmp_path):
    path = _write(tmp_path, BINARY)
    cfg = config.load(path, ["train.epochs=60", "train.early_stopping={patience: 3, metric: f1}"])
    run_dir, summary = session.run(cfg, tmp_path / "runs")
    rows = _rows(run_dir)
    f1 = [float(row["dev_f1"]) for row in rows]
    best = summary["best_epoch"]
    assert summary["best_dev_metric"] == {"name": "f1", "value": pytest.approx(max(f1))}
    assert f1[best - 1] == max(f1) and best == f1.index(max(f1)) + 1  # first epoch at the maximum
    if summary["epochs_run"] < 60:
        assert summary["epochs_run"] == best + 3
        assert "dev f1 did not improve" in summary["stop_reason"]
    assert summary["final"]["dev"]["f1"] == pytest.approx(max(f1))  # best weights restored


def test_early_stopping_metric_foreign_to_the_task_is_a_config_error(tmp_path):
    path = _write(tmp_path, BINARY.replace("moons, n_samples: 300", "blobs, classes: 3, n_samples: 300"))
    with pytest.raises(ConfigError, match="f1 is not measured on a multiclass task"):
        prepare(config.load(path, ["train.early_stopping={metric: f1}"]))
    result = CliRunner().invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs"),
                                      "train.early_stopping.metric=f1", "-q"])
    assert result.exit_code == 2
    assert "train.early_stopping.metric" in result.output and "macro_f1" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unknown_early_stopping_metric_lists_the_allowed_ones(tmp_path):
    path = _write(tmp_path, BINARY)
    with pytest.raises(ConfigError, match="macro_f1"):
        config.load(path, ["train.early_stopping={metric: auc}"])


def test_multiclass_rows_carry_macro_f1(tmp_path):
    path = _write(tmp_path, BINARY.replace("moons, n_samples: 300",
                                           "blobs, classes: 4, n_samples: 400"))
    run_dir, summary = session.run(config.load(path), tmp_path / "runs")
    rows = _rows(run_dir)
    assert "dev_macro_f1" in rows[0] and "dev_f1" not in rows[0]
    assert 0 <= float(rows[-1]["dev_macro_f1"]) <= 1
    assert json.loads((run_dir / "summary.json").read_text())["final"]["test"]["macro_f1"] > 0.5


def test_steps_csv_holds_one_cost_per_mini_batch(tmp_path):
    path = _write(tmp_path, BINARY)
    run_dir, summary = session.run(config.load(path, ["train.record_steps=true"]), tmp_path / "runs")
    with open(run_dir / "steps.csv", newline="") as handle:
        steps = list(csv.DictReader(handle))
    assert len(steps) == summary["steps"] == 12 * math.ceil(180 / 64)
    assert [int(row["step"]) for row in steps] == list(range(1, len(steps) + 1))
    epoch_one = [float(row["cost"]) for row in steps if row["epoch"] == "1"]
    assert np.mean(epoch_one) == pytest.approx(float(_rows(run_dir)[0]["train_cost"]))
    plain, _ = session.run(config.load(path), tmp_path / "runs")
    assert not (plain / "steps.csv").exists()


def test_train_dev_split_is_evaluated_every_epoch_and_reported(tmp_path):
    path = _write(tmp_path, BINARY)
    run_dir, summary = session.run(config.load(path, ["data.train_dev=0.2"]), tmp_path / "runs")
    assert summary["examples"] == {"train": 144, "train_dev": 36, "dev": 60, "test": 60}
    assert set(summary["final"]) == {"train", "train_dev", "dev", "test"}
    rows = _rows(run_dir)
    columns = list(rows[0])
    assert columns[columns.index("seconds") + 1:] == [
        "train_dev_loss", "train_dev_error", "train_precision", "train_recall", "train_f1",
        "train_dev_precision", "train_dev_recall", "train_dev_f1", "dev_precision", "dev_recall",
        "dev_f1"]
    assert float(rows[-1]["train_dev_loss"]) == pytest.approx(summary["final"]["train_dev"]["loss"])
    assert summary["final"]["train_dev"]["error"] * 36 == pytest.approx(
        round(summary["final"]["train_dev"]["error"] * 36))
