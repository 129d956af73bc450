"""data.folds: K-fold cross-validation over train + dev, and the final model from the folds."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.data.split import folds
from dlrun.strategy import folds as cv
from dlrun.training.experiment import load_data

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_run_figures(monkeypatch):
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def test_folds_are_stratified_and_even():
    y = np.array([0] * 50 + [1] * 31 + [2] * 19)
    fold = folds(y, 4, np.random.default_rng(0), stratify=True)
    assert set(fold) == {0, 1, 2, 3}
    sizes = np.bincount(fold)
    assert sizes.max() - sizes.min() <= 1
    for label in (0, 1, 2):
        per_fold = np.bincount(fold[y == label], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1


def test_the_fold_runs_dev_sets_partition_train_plus_dev_and_leave_test(make_config):
    base = make_config(data={"generator": {"name": "blobs", "n_samples": 300}})
    plain = load_data(base)
    pool = set(plain.rows["train"]) | set(plain.rows["dev"])
    seen = []
    for k in range(3):
        variant = make_config(data={"generator": {"name": "blobs", "n_samples": 300},
                                    "folds": 3, "fold": k})
        dataset = load_data(variant)
        train, dev = set(dataset.rows["train"]), set(dataset.rows["dev"])
        assert not train & dev and train | dev == pool
        np.testing.assert_array_equal(dataset.rows["test"], plain.rows["test"])
        seen.append(dev)
    assert set().union(*seen) == pool and sum(map(len, seen)) == len(pool)


def test_cross_validation_reports_the_folds_mean_and_trains_the_final_model(make_config,
                                                                           tmp_path):
    spec = make_config(data={"folds": 3},
                       train={"epochs": 40, "learning_rate": 0.05,
                              "early_stopping": {"patience": 3}, "refit": True})
    result = cv.cross_validate(spec, tmp_path)
    saved = json.loads((result.directory / "cv.json").read_text())
    summaries = [json.loads((result.directory / f["run"] / "summary.json").read_text())
                 for f in result.folds]
    errors = [s["final"]["dev"]["error"] for s in summaries]
    assert saved["mean"]["error"] == pytest.approx(np.mean(errors))
    assert saved["std"]["error"] == pytest.approx(np.std(errors, ddof=1))
    assert saved["epochs"] == round(np.mean([s["best_epoch"] for s in summaries]))
    final = json.loads((result.directory / "final" / "summary.json").read_text())
    assert final["epochs_run"] == saved["epochs"]
    assert final["held_out"] == {"dev": False, "test": True}
    plain = load_data(make_config())
    assert final["examples"]["train"] == len(plain.rows["train"]) + len(plain.rows["dev"])
    assert saved["final"]["test"] == final["final"]["test"]
    # compare lists the folds and the final model, whose dev figures rank nothing
    listed = runner.invoke(app, ["compare", str(result.directory), "--format", "csv"])
    table = pd.read_csv(io.StringIO(listed.stdout))
    assert len(table) == 4 and table["dev_error"].isna().sum() == 1
    assert table.loc[table["run"] == "final", "dev_error"].isna().all()
    assert (result.directory / "cv.yaml").is_file()


@pytest.mark.parametrize("override, message", [
    ("data.folds=1", "1 fold leaves nothing to validate on"),
    ("data.fold=5", "fold: 5 is not one of the 0 folds"),
])
def test_bad_fold_settings_are_one_line_errors(override, message, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("data: {generator: moons}\ntrain: {epochs: 2}\n")
    result = runner.invoke(app, ["train", str(spec), override, "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_folds_need_one_source_to_pool(tmp_path):
    rows = np.random.default_rng(0).normal(size=(40, 2))
    for name in ("a", "b"):
        np.savez(tmp_path / f"{name}.npz", X=rows, y=(rows[:, 0] > 0).astype(int))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"data: {{train: {tmp_path / 'a.npz'}, dev: {tmp_path / 'b.npz'}, "
                    "folds: 2}\ntrain: {epochs: 2}\n")
    result = runner.invoke(app, ["train", str(spec), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "data.folds" in result.output and "file per split" in result.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_fold_is_validated_against_folds():
    with pytest.raises(config.ConfigError, match="fold: 3 is not one of the 3 folds"):
        config.validate({"data": {"folds": 3, "fold": 3}}, "spec")
