"""The final model on train + dev: train.refit and dlrun refit."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.diagnosis import error_table
from dlrun.training import loop, refit, resume, session
from dlrun.training.experiment import prepare

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


STOPPING = {"epochs": 60, "learning_rate": 0.05, "early_stopping": {"patience": 3}}


def test_refit_trains_on_train_plus_dev_for_the_epochs_early_stopping_chose(make_config,
                                                                           tmp_path):
    config = make_config(train={**STOPPING, "refit": True})
    run_dir, summary = session.run(config, tmp_path / "runs")
    assert summary["stop_reason"].startswith("early stopping")  # else nothing was chosen
    child = json.loads((run_dir / "refit" / "summary.json").read_text())
    child_config = yaml.safe_load((run_dir / "refit" / "config.yaml").read_text())
    assert child_config["train"]["epochs"] == summary["best_epoch"]
    assert child_config["train"]["early_stopping"] is None
    assert child["epochs_run"] == summary["best_epoch"]
    assert child["examples"]["train"] == summary["examples"]["train"] + summary["examples"]["dev"]
    assert child["held_out"] == {"dev": False, "test": True}
    assert child["refit_of"] == str(run_dir.resolve())
    entry = summary["refit"]
    assert entry["selected_epochs"] == entry["epochs"] == summary["best_epoch"]
    assert entry["test"] == child["final"]["test"]
    assert entry["dev_not_held_out"] == child["final"]["dev"]
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["refit"] == entry and saved["final"] == summary["final"]  # selection kept


def test_the_refit_test_error_is_the_refit_networks_own(make_config, tmp_path):
    run_dir, summary = session.run(make_config(train={**STOPPING, "refit": True}),
                                   tmp_path / "runs")
    analysis = error_table.analyse(run_dir / "refit", "test")  # rebuilt from refit/params.npz
    assert analysis.misclassified / analysis.examples == pytest.approx(
        summary["refit"]["test"]["error"])


def test_the_refit_starts_from_the_selection_runs_initial_weights(make_config):
    config = make_config(train=STOPPING)
    first = prepare(config).network.state()
    again = prepare(refit.refit_config(config, 7)).network.state()
    assert first.keys() == again.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_scaling_to_the_larger_set_keeps_epochs_or_steps():
    assert refit.scaled_epochs(10, "epochs", 64, 600, 800) == 10
    # 600 rows in batches of 64: 10 steps an epoch, 100 in all; 800 rows: 13 an epoch
    assert refit.scaled_epochs(10, "steps", 64, 600, 800) == round(100 / 13)
    assert refit.scaled_epochs(10, "steps", "full", 600, 800) == 10  # one step an epoch
    assert refit.scaled_epochs(1, "steps", 10, 10, 1000) == 1  # never zero


def test_without_early_stopping_the_kept_last_epoch_is_the_count():
    assert refit.chosen_epochs({"stop_reason": "all epochs run", "best_epoch": 3,
                                "epochs_run": 20}) == 20
    assert refit.chosen_epochs({"stop_reason": "early stopping: dev loss did not improve",
                                "best_epoch": 3, "epochs_run": 13}) == 3


def test_dlrun_refit_on_a_finished_run_and_its_refusals(make_config, tmp_path):
    run_dir, _ = session.run(make_config(train=STOPPING), tmp_path / "runs")
    result = runner.invoke(app, ["refit", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    assert "test error" in result.output and "not held out" in result.output
    assert json.loads((run_dir / "summary.json").read_text())["refit"]["status"] == "completed"
    for target, message in [(run_dir, "already refit"), (run_dir / "refit", "is itself a refit"),
                            (tmp_path / "nope", "not a run directory")]:
        again = runner.invoke(app, ["refit", str(target), "-q"])
        assert again.exit_code == 2, again.output
        assert message in again.output and len(again.output.strip().splitlines()) == 1


def test_a_run_that_did_not_complete_is_not_refit(make_config, tmp_path):
    run_dir, _ = session.run(make_config(train=STOPPING), tmp_path / "runs")
    path = run_dir / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "status": "interrupted"}))
    result = runner.invoke(app, ["refit", str(run_dir), "-q"])
    assert result.exit_code == 2 and "'interrupted'" in result.output
    assert not (run_dir / "refit").exists()


class _InterruptAt(loop.Reporter):
    def __init__(self, epoch: int):
        self.at = epoch

    def epoch(self, row):
        if row["epoch"] == self.at:
            raise KeyboardInterrupt


def test_a_resumed_run_is_refit_once_it_completes_as_an_uninterrupted_one(make_config,
                                                                         tmp_path):
    config = make_config(train={**STOPPING, "refit": True, "checkpoint_every": 1})
    _, whole = session.run(config, tmp_path / "whole")
    run_dir, stopped = session.run(config, tmp_path / "cut", _InterruptAt(2))
    assert stopped["status"] == "interrupted" and not (run_dir / "refit").exists()
    _, resumed = resume.resume(run_dir)
    assert resumed["refit"]["test"] == whole["refit"]["test"]
    assert resumed["refit"]["epochs"] == whole["refit"]["epochs"]
