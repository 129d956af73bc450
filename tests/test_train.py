"""Training behaviour: learning, determinism, the run directory, divergence, interruption."""

import json

import numpy as np
import pandas as pd
import pytest

from dlrun import config, detach
from dlrun.errors import ConfigError
from dlrun.rundir import layout, reader
from dlrun.training import loop, session
from dlrun.training.experiment import prepare


def metrics_of(run_dir):
    return pd.read_csv(run_dir / "metrics.csv")


def test_training_reduces_the_cost_on_a_separable_problem(tmp_path, make_config):
    cfg = make_config(data={"generator": {"name": "circles", "n_samples": 400, "noise": 0.02}},
                      train={"epochs": 60, "learning_rate": 0.02})
    run_dir, summary = session.run(cfg, tmp_path)
    metrics = metrics_of(run_dir)
    assert metrics["train_loss"].iloc[-1] < 0.2 * metrics["train_loss"].iloc[0]
    assert summary["final"]["dev"]["error"] <= 0.02
    assert summary["status"] == "completed"


def test_run_directory_holds_the_contract_files(tmp_path, make_config):
    cfg = make_config()
    run_dir, summary = session.run(cfg, tmp_path)
    assert run_dir.parent == tmp_path and run_dir.name.startswith("t-")
    assert config.load(run_dir / "config.yaml") == cfg
    metrics = metrics_of(run_dir)
    assert list(metrics.columns[:7]) == ["epoch", "learning_rate", "train_cost", "train_loss",
                                         "train_error", "dev_loss", "dev_error"]
    assert {"grad_norm_1", "grad_norm_2", "grad_norm_3", "seconds"} <= set(metrics.columns)
    assert metrics["epoch"].tolist() == [1, 2, 3, 4, 5]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == summary
    assert on_disk["status"] == "completed" and on_disk["epochs_run"] == 5
    assert on_disk["examples"] == {"train": 120, "dev": 40, "test": 40}
    assert set(on_disk["final"]) == {"train", "dev", "test"}
    assert on_disk["versions"]["numpy"] == np.__version__
    state, meta = layout.load_params(run_dir / "params.npz")
    assert {k: v.shape for k, v in state.items()} == {
        "W1": (8, 2), "b1": (8, 1), "W2": (4, 8), "b2": (4, 1), "W3": (1, 4), "b3": (1, 1)}
    assert state["W1"].dtype == np.float32
    assert meta["classes"].tolist() == ["0", "1"] and meta["mean"].shape == (2,)
    assert not list(run_dir.glob(".*"))  # no temporary files left behind


def test_same_config_and_seed_give_identical_numbers(tmp_path, make_config):
    cfg = make_config(model={"keep_prob": 0.8, "batch_norm": True})
    first, _ = session.run(cfg, tmp_path)
    second, _ = session.run(cfg, tmp_path)
    columns = lambda frame: frame.drop(columns="seconds")
    pd.testing.assert_frame_equal(columns(metrics_of(first)), columns(metrics_of(second)))
    a, _ = layout.load_params(first / "params.npz")
    b, _ = layout.load_params(second / "params.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    third, _ = session.run(make_config(seed=1, model={"keep_prob": 0.8, "batch_norm": True}), tmp_path)
    assert not metrics_of(third)["train_loss"].equals(metrics_of(first)["train_loss"])


def test_full_batch_gradient_descent_decreases_the_cost_every_step(tmp_path, make_config):
    cfg = make_config(train={"optimizer": "gd", "batch_size": "full", "epochs": 30,
                             "learning_rate": 0.1})
    run_dir, summary = session.run(cfg, tmp_path)
    costs = metrics_of(run_dir)["train_cost"]
    assert summary["steps"] == 30
    assert (costs.diff().dropna() < 0).all()


def test_batch_size_one_is_one_step_per_example(tmp_path, make_config):
    _, summary = session.run(make_config(train={"batch_size": 1, "epochs": 2}), tmp_path)
    assert summary["steps"] == 2 * 120


def test_last_batch_may_be_smaller(tmp_path, make_config):
    _, summary = session.run(make_config(train={"batch_size": 50, "epochs": 2}), tmp_path)
    assert summary["steps"] == 2 * 3  # 120 = 50 + 50 + 20


def test_learning_rate_column_follows_the_schedule(tmp_path, make_config):
    cfg = make_config(train={"learning_rate": 0.2, "decay": {"name": "inverse_time", "rate": 1}})
    run_dir, _ = session.run(cfg, tmp_path)
    assert metrics_of(run_dir)["learning_rate"].tolist() == pytest.approx([0.2, 0.1, 0.2 / 3, 0.05, 0.04])


@pytest.mark.parametrize("epochs", [4, 8])
def test_a_cosine_schedule_spans_the_epochs_the_run_is_given(tmp_path, make_config, epochs):
    cfg = make_config(train={"learning_rate": 0.2, "epochs": epochs, "decay": "cosine"})
    run_dir, summary = session.run(cfg, tmp_path)
    steps = summary["steps"] // epochs  # 120 examples in batches of 32: 4 steps an epoch
    expected = [0.1 * (1 + np.cos(np.pi * e * steps / summary["steps"])) for e in range(epochs)]
    assert steps == 4 and metrics_of(run_dir)["learning_rate"].tolist() == pytest.approx(expected)


def test_huge_learning_rate_diverges_and_keeps_finite_parameters(tmp_path, make_config):
    cfg = make_config(train={"optimizer": "gd", "learning_rate": 1e30, "epochs": 20})
    run_dir, summary = session.run(cfg, tmp_path)
    assert summary["status"] == "diverged"
    detail = summary["divergence"]
    assert detail["learning_rate"] == 1e30 and detail["step"] >= 1
    assert "learning rate" in detail["message"]
    state, _ = layout.load_params(run_dir / "params.npz")
    assert all(np.all(np.isfinite(v)) for v in state.values())


def test_early_stopping_restores_the_best_weights(tmp_path, make_config):
    cfg = make_config(data={"generator": {"name": "moons", "n_samples": 60, "noise": 0.4}},
                      model={"hidden_layers": [64, 64]},
                      train={"epochs": 300, "learning_rate": 0.05, "early_stopping": {"patience": 5}})
    run_dir, summary = session.run(cfg, tmp_path)
    metrics = metrics_of(run_dir)
    assert summary["epochs_run"] < 300 and "early stopping" in summary["stop_reason"]
    assert summary["epochs_run"] == summary["best_epoch"] + 5
    assert summary["best_dev_loss"] == pytest.approx(metrics["dev_loss"].min())
    assert summary["final"]["dev"]["loss"] == pytest.approx(summary["best_dev_loss"], rel=1e-5)


def scores_of_saved_params(run_dir, cfg) -> dict:
    """An independent scoring of params.npz: the network rebuilt, its state loaded from the file."""
    from dlrun.training.experiment import evaluate

    experiment = prepare(cfg)
    state, _ = layout.load_params(run_dir / "params.npz")
    experiment.network.load_state(state)
    return {split: evaluate(experiment.network, X, y, experiment.dataset.task)
            for split, (X, y) in experiment.dataset.splits.items() if len(X)}


def test_summary_names_the_epoch_of_the_kept_weights_and_final_is_what_they_score(
        tmp_path, make_config):
    overfit = {"data": {"generator": {"name": "moons", "n_samples": 60, "noise": 0.4}},
               "model": {"hidden_layers": [64, 64]}}
    stopped = make_config(**overfit, train={"epochs": 300, "learning_rate": 0.05,
                                            "early_stopping": {"patience": 5}})
    run_dir, summary = session.run(stopped, tmp_path)
    assert summary["kept_epoch"] == summary["best_epoch"] < summary["epochs_run"]
    assert summary["restored"] is True
    assert summary["final"] == scores_of_saved_params(run_dir, stopped)
    every_epoch = make_config(**overfit, train={"epochs": 40, "learning_rate": 0.05})
    run_dir, summary = session.run(every_epoch, tmp_path)
    assert summary["kept_epoch"] == summary["epochs_run"] == 40 and summary["restored"] is False
    assert summary["final"] == scores_of_saved_params(run_dir, every_epoch)
    last = metrics_of(run_dir).iloc[-1]
    assert summary["final"]["dev"]["error"] == pytest.approx(last["dev_error"])


def test_a_run_that_diverges_at_once_keeps_its_initial_weights_as_epoch_0(tmp_path, make_config):
    cfg = make_config(train={"optimizer": "gd", "learning_rate": 1e30, "epochs": 20})
    _, summary = session.run(cfg, tmp_path)
    assert summary["status"] == "diverged"
    assert summary["kept_epoch"] == (summary["best_epoch"] or 0) and summary["restored"] is True


def test_summary_fingerprints_every_split_independently_of_dtype_and_normalization(
        tmp_path, make_config):
    _, base = session.run(make_config(), tmp_path)
    _, other = session.run(make_config(dtype="float64", data={"normalize": False}), tmp_path)
    _, moved = session.run(make_config(seed=1), tmp_path)
    assert set(base["fingerprints"]) == {"train", "dev", "test"}
    assert base["fingerprints"] == other["fingerprints"]  # the same examples
    for split in ("train", "dev", "test"):
        entry = base["fingerprints"][split]
        assert entry["X"] == {"dtype": "float64", "shape": [base["examples"][split], 2]}
        assert moved["fingerprints"][split]["sha256"] != entry["sha256"]  # another split
    _, pinned = session.run(make_config(seed=1, data={"seed": 0}), tmp_path)
    assert pinned["fingerprints"] == base["fingerprints"]  # data.seed draws the data alone


def test_the_training_output_names_the_epoch_its_figures_come_from(tmp_path):
    from typer.testing import CliRunner

    from dlrun.cli import app

    spec = tmp_path / "spec.yaml"
    spec.write_text("data: {generator: {name: moons, n_samples: 60, noise: 0.4}}\n"
                    "model: {hidden_layers: [64, 64]}\n"
                    "train: {epochs: 300, learning_rate: 0.05, early_stopping: {patience: 5}}\n")
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", str(spec), "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (f"figures of the kept weights: restored epoch {summary['best_epoch']} of "
            f"{summary['epochs_run']} (lowest dev loss)") in result.output
    result = CliRunner().invoke(app, ["train", str(spec), "--runs-dir", str(runs),
                                      "train.early_stopping=null", "train.epochs=12"])
    assert "figures of the kept weights: last epoch 12 of 12" in result.output


def test_ctrl_c_marks_the_run_interrupted_and_keeps_what_was_learned(tmp_path, make_config, monkeypatch):
    cfg = make_config(train={"epochs": 50})
    experiment = prepare(cfg)
    calls = {"n": 0}
    original = type(experiment.optimizer).step

    def step(self, params, grads, lr):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        original(self, params, grads, lr)

    monkeypatch.setattr(type(experiment.optimizer), "step", step)
    run_dir, summary = session.run(cfg, tmp_path)
    assert summary["status"] == "interrupted"
    assert summary["steps"] == 9 and summary["epochs_run"] == 2
    assert len(metrics_of(run_dir)) == 2
    assert (run_dir / "params.npz").exists()


def test_an_unexpected_crash_marks_the_run_failed(tmp_path, make_config, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(loop, "evaluate", broken)
    with pytest.raises(RuntimeError):
        session.run(make_config(), tmp_path)
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "boom" in summary["error"]


@pytest.mark.parametrize("extra, module, function, redo", [
    ("diagnosis", "diagnosis.diagnose", "after_training", "dlrun diagnose"),
    ("figures", "plots", "draw", "dlrun plot"),
])
def test_a_broken_extra_leaves_a_trained_run_completed(tmp_path, make_config, monkeypatch,
                                                       extra, module, function, redo):
    """Parameters and metrics are saved before the diagnosis and figures: if drawing one of
    them breaks, the run is still complete, says what is missing, and the command says how to
    write it again."""
    import importlib

    from typer.testing import CliRunner

    from dlrun.cli import app

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(importlib.import_module(f"dlrun.{module}"), function, broken)
    path = tmp_path / "c.yaml"
    path.write_text(make_config().to_yaml())
    result = CliRunner().invoke(app, ["train", str(path), "-q", "--runs-dir",
                                      str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert detach.wait_until_free(run_dir)  # figures are drawn after the command returns
    summary = reader.read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["problems"] == {extra: "RuntimeError: boom"}
    layout.load_params(run_dir / layout.PARAMS)
    if extra == "diagnosis":  # the figures' failure comes after the command has printed
        assert f"could not write the {extra} (RuntimeError: boom)" in result.output
        assert f"{redo} {run_dir}" in result.output


def test_warm_start_begins_from_saved_parameters(tmp_path, make_config):
    first, _ = session.run(make_config(), tmp_path)
    saved, _ = layout.load_params(first / "params.npz")
    warm = make_config(model={"init_from": str(first / "params.npz")})
    experiment = prepare(warm)
    assert all(np.array_equal(experiment.network.params[k], saved[k]) for k in experiment.network.params)
    wrong = make_config(model={"hidden_layers": [3], "init_from": str(first / "params.npz")})
    with pytest.raises(ConfigError, match="model.init_from: .*W1 has shape"):
        prepare(wrong)
    with pytest.raises(ConfigError, match="model.init_from: .*no such parameter file"):
        prepare(make_config(model={"init_from": str(tmp_path / "missing.npz")}))


def test_output_that_does_not_fit_the_task_is_refused_before_any_file(tmp_path, make_config):
    with pytest.raises(ConfigError, match="model.output: linear needs real-valued targets"):
        session.run(make_config(model={"output": "linear"}), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_a_percentage_for_human_error_is_refused_before_training(tmp_path, make_config):
    with pytest.raises(ConfigError, match=r"diagnose.human_error: 5 is not an error rate: a "
                       r"binary error is the fraction .* \(for 5% write 0.05\)"):
        session.run(make_config(diagnose={"human_error": 5}), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    regression = {"generator": {"name": "moons", "n_samples": 200}, "task": "regression"}
    run_dir, _ = session.run(make_config(data=regression, diagnose={"human_error": 5},
                                       train={"epochs": 1}), tmp_path / "runs")
    assert reader.read_summary(run_dir)["status"] == "completed"  # RMSE units: any size is fine


def test_float64_runs_keep_float64_parameters(tmp_path, make_config):
    run_dir, _ = session.run(make_config(dtype="float64"), tmp_path)
    state, _ = layout.load_params(run_dir / "params.npz")
    assert state["W1"].dtype == np.float64


def test_run_files_are_readable_by_others_like_any_new_file(tmp_path, make_config):
    import os
    import stat
    run_dir, _ = session.run(make_config(train={"epochs": 1}), tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("summary.json", "params.npz"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("batch_size, shuffle, sizes", [
    (4, True, [4, 4, 2]), (4, False, [4, 4, 2]), ("full", True, [10]), (64, False, [10])])
def test_an_epoch_of_mini_batches_takes_every_row_once(batch_size, shuffle, sizes):
    from dlrun.training.batches import batch_rows

    train = config.validate({"train": {"batch_size": batch_size, "shuffle": shuffle}}, "t").train
    batches = list(batch_rows(train, 10, np.random.default_rng(3)))
    assert [len(rows) for rows in batches] == sizes
    order = np.random.default_rng(3).permutation(10) if shuffle else np.arange(10)
    assert np.concatenate(batches).tolist() == order.tolist()


def test_gradcheck_trains_on_the_mini_batches_training_takes(make_config):
    """gradcheck's steps before its second check are the run's own first steps."""
    from dlrun.gradcheck import check

    cfg = make_config(dtype="float64", train={"epochs": 1, "batch_size": 16, "shuffle": True})
    trained = prepare(cfg)
    steps = []
    loop.fit(trained, lambda row: None, steps.append)
    checked = prepare(cfg)
    check.train_steps(checked.network, checked.optimizer, check._config_batches(checked, len(steps)))
    for name, array in trained.network.params.items():
        np.testing.assert_array_equal(checked.network.params[name], array)
