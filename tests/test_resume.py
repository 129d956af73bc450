"""Checkpoints and `dlrun train --resume`: an interrupted run, resumed, ends exactly as if it
had never stopped; what cannot be resumed is refused in one line."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.errors import RunDirError
from dlrun.rundir import checkpoint, layout, reader, runlock
from dlrun.training import loop, resume, session
from dlrun.training.experiment import evaluate as loop_evaluate
from dlrun.training.experiment import prepare

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Drawing takes forty times as long as training these runs; figures are test_plots' job."""
    from dlrun import plots
    monkeypatch.setattr(plots, "draw", lambda *args, **kwargs: [])


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def spec(**train_options) -> dict:
    """Every source of randomness the loop has: shuffling, dropout, augmentation; plus batch
    norm's running statistics, Adam's moments and a step-based decay."""
    return {"name": "r", "seed": 3, "dtype": "float64",
            "data": {"generator": {"name": "moons", "n_samples": 200, "noise": 0.25},
                     "augment": {"noise": 0.05}},
            "model": {"hidden_layers": [8, 4], "keep_prob": 0.8, "batch_norm": True},
            "train": {"epochs": 12, "learning_rate": 0.01, "batch_size": 32,
                      "decay": {"name": "inverse_sqrt_step"}, "record_steps": True,
                      "checkpoint_every": 4, **train_options}}


class InterruptAt(loop.Reporter):
    """Ctrl-C right after epoch `epoch` has been written to metrics.csv."""

    def __init__(self, epoch: int):
        self.at = epoch

    def epoch(self, row):
        if row["epoch"] == self.at:
            raise KeyboardInterrupt


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-for-bit the same parameters, the same metrics but for the clock, the same results."""
    params_a, meta_a = layout.load_params(a / layout.PARAMS)
    params_b, meta_b = layout.load_params(b / layout.PARAMS)
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        assert params_a[name].dtype == params_b[name].dtype
        assert params_a[name].tobytes() == params_b[name].tobytes(), name
    assert all(np.array_equal(meta_a[k], meta_b[k]) for k in meta_a)
    metrics_a = pd.read_csv(a / layout.METRICS).drop(columns="seconds")
    metrics_b = pd.read_csv(b / layout.METRICS).drop(columns="seconds")
    pd.testing.assert_frame_equal(metrics_a, metrics_b, check_exact=True)
    if (a / layout.STEPS).exists():
        assert (a / layout.STEPS).read_bytes() == (b / layout.STEPS).read_bytes()
    summary_a, summary_b = reader.read_summary(a), reader.read_summary(b)
    for key in ("status", "epochs_run", "steps", "best_epoch", "best_dev_loss", "final",
                "stop_reason", "best_dev_metric", "bias_variance"):
        assert summary_a.get(key) == summary_b.get(key), key


@pytest.mark.parametrize("options, stops", [
    ({}, [7]),  # the checkpoint of epoch 6 is written when Ctrl-C comes in epoch 7
    ({"decay": "cosine"}, [7]),  # a schedule bound to the run's length
    ({"checkpoint_every": 0}, [3, 9]),  # interrupted twice, checkpoints only on interrupts
    # Early stopping ends this run at epoch 16, three epochs after its best (13): the second
    # interruption comes with patience partly spent, and the best weights from before it.
    ({"optimizer": "momentum", "early_stopping": {"patience": 3, "min_delta": 0.002},
      "epochs": 40}, [9, 15]),
])
def test_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, options,
                                                                            stops):
    cfg = config.validate(spec(**options), "test")
    straight, _ = session.run(cfg, tmp_path / "straight")
    stopped, summary = session.run(cfg, tmp_path / "stopped", InterruptAt(stops[0]))
    assert summary["status"] == "interrupted"
    assert len(pd.read_csv(stopped / layout.METRICS)) == stops[0]
    for again in stops[1:]:
        _, summary = resume.resume(stopped, reporter=InterruptAt(again))
        assert summary["status"] == "interrupted"
    _, summary = resume.resume(stopped)
    assert [entry["from_epoch"] for entry in summary["resumed"]] == [s - 1 for s in stops]
    assert_same_run(straight, stopped)
    assert not (stopped / checkpoint.CHECKPOINT).exists() and not (stopped / runlock.LOCK).exists()


def test_a_cosine_schedule_follows_the_epochs_a_resumed_run_is_given(tmp_path):
    cfg = config.validate(spec(epochs=8, decay="cosine"), "test")
    stopped, _ = session.run(cfg, tmp_path, InterruptAt(5))  # goes on from epoch 4's checkpoint
    _, summary = resume.resume(stopped, ["train.epochs=12"])
    steps = summary["steps"] // 12
    lrs = pd.read_csv(stopped / layout.METRICS)["learning_rate"].tolist()
    cosine = lambda e, epochs: 0.005 * (1 + np.cos(np.pi * e / epochs))  # noqa: E731
    assert lrs == pytest.approx([cosine(e, 8) for e in range(4)] + [cosine(e, 12)
                                                                    for e in range(4, 12)])
    assert steps == 4


def test_a_float32_run_resumes_exactly_too(tmp_path):
    cfg = config.validate({**spec(), "dtype": "float32"}, "test")
    straight, _ = session.run(cfg, tmp_path / "straight")
    stopped, _ = session.run(cfg, tmp_path / "stopped", InterruptAt(5))
    resume.resume(stopped)
    assert_same_run(straight, stopped)


def test_an_interrupt_inside_an_epoch_discards_that_epochs_half_done_work(tmp_path, monkeypatch):
    cfg = config.validate(spec(epochs=8), "test")
    straight, _ = session.run(cfg, tmp_path / "straight")
    calls = {"n": 0}

    def interrupted_in_epoch_6(*args):
        calls["n"] += 1  # two evaluations (train, dev) per epoch: the 11th comes in epoch 6
        if calls["n"] == 11:
            raise KeyboardInterrupt  # epoch 6's mini-batches have changed the weights already
        return loop_evaluate(*args)

    monkeypatch.setattr(loop, "evaluate", interrupted_in_epoch_6)
    stopped, summary = session.run(cfg, tmp_path / "stopped")
    monkeypatch.setattr(loop, "evaluate", loop_evaluate)
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 5
    saved = checkpoint.load(stopped / checkpoint.CHECKPOINT)
    assert saved.epoch == 5 and saved.meta["steps"] == 5 * 4
    resume.resume(stopped)
    assert_same_run(straight, stopped)


def test_rows_after_the_checkpoint_are_cut_before_training_goes_on(tmp_path, monkeypatch):
    cfg = config.validate(spec(epochs=10, checkpoint_every=3), "test")
    straight, _ = session.run(cfg, tmp_path / "straight")
    # What a SIGKILL in epoch 9 leaves: the checkpoint of epoch 6, rows up to 8, half a row.
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.Keeper, "finish", lambda self, status: None)
        killed, summary = session.run(cfg, tmp_path / "killed", InterruptAt(8))
    with open(killed / layout.METRICS, "a") as handle:
        handle.write("9,0.0")
    layout.write_json(killed / layout.SUMMARY, {**summary, "status": "running"})
    assert checkpoint.load(killed / checkpoint.CHECKPOINT).epoch == 6
    result = invoke("train", "--resume", killed, "-q")
    assert result.exit_code == 0, result.output
    (entry,) = reader.read_summary(killed)["resumed"]
    assert entry["from_epoch"] == 6 and entry["previous_status"] == "stale"
    assert_same_run(straight, killed)


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_epoch_one(tmp_path):
    cfg = config.validate(spec(epochs=6), "test")
    straight, _ = session.run(cfg, tmp_path / "straight")
    killed, summary = session.run(cfg, tmp_path / "killed", InterruptAt(3))
    (killed / checkpoint.CHECKPOINT).unlink()
    layout.write_json(killed / layout.SUMMARY, {**summary, "status": "running"})
    _, summary = resume.resume(killed)
    assert summary["resumed"][0]["from_epoch"] == 0
    assert_same_run(straight, killed)


def test_checkpoints_are_written_every_k_epochs_and_load_without_pickles(tmp_path):
    seen = {}

    class Watch(loop.Reporter):
        def epoch(self, row):
            path = run_dir(tmp_path) / checkpoint.CHECKPOINT
            seen[row["epoch"]] = None
            if path.exists():
                with np.load(path, allow_pickle=False) as archive:
                    seen[row["epoch"]] = json.loads(str(archive["meta"]))["epoch"]

    cfg = config.validate(spec(epochs=8, checkpoint_every=3), "test")
    _, summary = session.run(cfg, tmp_path, Watch())
    # A row is written before its epoch's checkpoint: epoch 4 sees the one of epoch 3.
    assert seen == {1: None, 2: None, 3: None, 4: 3, 5: 3, 6: 3, 7: 6, 8: 6}
    assert summary["status"] == "completed"
    assert sorted(p.name for p in run_dir(tmp_path).iterdir() if p.name.startswith(
        ("checkpoint", "run.lock", "."))) == []  # a completed run needs neither


def run_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def test_the_checkpoint_holds_every_generator_and_the_optimizer_state(tmp_path):
    cfg = config.validate(spec(epochs=4), "test")
    stopped, _ = session.run(cfg, tmp_path, InterruptAt(3))
    saved = checkpoint.load(stopped / checkpoint.CHECKPOINT)
    assert saved.epoch == 2 and saved.meta["optimizer"] == {"name": "adam", "t": 2 * 4}
    assert set(saved.meta["generators"]) == {"shuffle", "dropout", "augment"}
    assert set(saved.network) == {"W1", "W2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2",
                                  "running_mean1", "running_var1", "running_mean2",
                                  "running_var2"}
    assert set(saved.optimizer["W1"]) == {"V", "S"}
    assert saved.network["W1"].dtype == np.float64


def test_restoring_copies_into_the_arrays_the_engine_already_has(tmp_path):
    cfg = config.validate(spec(epochs=4), "test")
    stopped, _ = session.run(cfg, tmp_path, InterruptAt(3))
    experiment = prepare(cfg)
    experiment.optimizer.step(experiment.network.params,
                              {k: np.zeros_like(v) for k, v in experiment.network.params.items()},
                              0.0)  # the optimizer now owns its moment arrays
    params = dict(experiment.network.params)
    moments = {name: dict(slots) for name, slots in experiment.optimizer.state.items()}
    saved = checkpoint.load(stopped / checkpoint.CHECKPOINT)
    checkpoint.restore(experiment, saved, loop.Outcome(), "test")
    for name, array in experiment.network.params.items():
        assert array is params[name] and np.array_equal(array, saved.network[name])
    for name, slots in experiment.optimizer.state.items():
        for slot, array in slots.items():
            assert array is moments[name][slot]
            assert np.array_equal(array, saved.optimizer[name][slot])
    assert experiment.optimizer.t == saved.meta["optimizer"]["t"]


def test_sigterm_during_training_stops_the_run_as_ctrl_c_does(tmp_path, monkeypatch):
    from dlrun import console

    def terminated_at_epoch_3(self, row):
        if row["epoch"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(console.ProgressReporter, "epoch", terminated_at_epoch_3)
    config_path = tmp_path / "r.yaml"
    config_path.write_text(json.dumps(spec(epochs=20)))
    result = invoke("train", config_path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 130, result.output  # not 0: `dlrun train a.yaml && next` stops
    assert "interrupted" in result.output and "dlrun train --resume" in result.output
    stopped = run_dir(tmp_path / "runs")
    assert reader.read_summary(stopped)["status"] == "interrupted"
    assert checkpoint.load(stopped / checkpoint.CHECKPOINT).epoch == 2
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lasts as long as the command


# What cannot be resumed: one line, exit status 2, the run directory left as it was.


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture
def interrupted(tmp_path) -> Path:
    stopped, _ = session.run(config.validate(spec(epochs=8), "test"), tmp_path / "runs",
                           InterruptAt(5))
    return stopped


def refused(run: Path, *args) -> str:
    before = files_of(run)
    result = invoke("train", "--resume", run, *args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert files_of(run) == before
    return result.output


def test_a_run_that_is_still_running_is_not_resumed(interrupted):
    summary = reader.read_summary(interrupted)
    layout.write_json(interrupted / layout.SUMMARY, {**summary, "status": "running"})
    lock = runlock.acquire(interrupted, wait=True)  # a live process: this one
    try:
        output = refused(interrupted)
    finally:
        lock.release()
    assert f"still running (pid {os.getpid()} on host" in output and "kill" in output


@pytest.mark.parametrize("status", ["completed", "pruned"])
def test_a_finished_run_has_nothing_to_resume(interrupted, status):
    summary = reader.read_summary(interrupted)
    layout.write_json(interrupted / layout.SUMMARY, {**summary, "status": status})
    assert f"{status}, nothing to resume" in refused(interrupted)


@pytest.mark.parametrize("args, message", [
    (["model.hidden_layers=[3]"], "may change only train.learning_rate, train.epochs"),
    (["--name", "other"], "--name: a resumed run keeps its name"),
    (["train.epochs=3"], "train.epochs: 3 is fewer than the 4 epochs"),
    (["train.learning_rate=-1"], "train.learning_rate: must be greater than 0"),
])
def test_resume_accepts_only_overrides_that_fit_its_checkpoint(interrupted, args, message):
    assert message in refused(interrupted, *args)


def test_resume_with_both_a_config_and_a_run_directory_is_refused(interrupted, tmp_path):
    (tmp_path / "other.yaml").write_text("name: x\n")
    assert "give CONFIG or --resume RUN_DIR, not both" in refused(interrupted, tmp_path / "other.yaml")


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / checkpoint.CHECKPOINT).write_bytes(b"PK\x03\x04 cut"),
     "checkpoint.npz: not a readable checkpoint"),
    (lambda run: (run / checkpoint.CHECKPOINT).write_bytes(b"\x80\x04K\x01."),
     "not an archive of plain arrays; dlrun never unpickles files"),
    (lambda run: (run / layout.METRICS).write_text("epoch,cost\n1,2\n"),
     "metrics.csv:1: the header is not the one this run's config writes"),
    (lambda run: (run / layout.CONFIG).write_text((run / layout.CONFIG).read_text().replace(
        "hidden_layers: [8, 4]", "hidden_layers: [8, 3]")),
     "config.yaml: model.hidden_layers is [8, 3], but the checkpoint was trained with [8, 4]"),
    (lambda run: (run / layout.CONFIG).write_text("model: {hidden_layers: [8, 4]}\n"),
     "config.yaml: name is 'experiment', but the checkpoint was trained with 'r'"),
])
def test_a_damaged_run_directory_is_named_and_left_alone(interrupted, damage, message):
    damage(interrupted)
    assert message in refused(interrupted)


def test_a_diverged_run_goes_on_with_a_lower_learning_rate(tmp_path):
    cfg = config.validate({**spec(epochs=6, learning_rate=1e12, optimizer="gd",
                                  checkpoint_every=1, decay={"name": "exponential", "base": 0.5}),
                           "model": {"hidden_layers": [8]}}, "test")
    diverged, summary = session.run(cfg, tmp_path)
    assert summary["status"] == "diverged" and summary["divergence"]["epoch"] > 1
    # The last epoch that ended with finite numbers is the one to go on from.
    assert checkpoint.load(diverged / checkpoint.CHECKPOINT).epoch == \
        summary["divergence"]["epoch"] - 1
    result = invoke("train", "--resume", diverged, "train.learning_rate=0.01", "-q")
    assert result.exit_code == 0, result.output
    summary = reader.read_summary(diverged)
    assert summary["status"] == "completed" and summary["epochs_run"] == 6
    assert summary["resumed"][0]["overrides"] == ["train.learning_rate=0.01"]
    assert config.load(diverged / layout.CONFIG).train.learning_rate == 0.01
    assert len(pd.read_csv(diverged / layout.METRICS)) == 6


def test_a_run_that_recorded_relative_data_paths_still_resumes(tmp_path, monkeypatch):
    """Runs used to record data paths as written; config.yaml and the checkpoint both holding
    `table.csv` must not read as a config edited since the checkpoint."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    table["y"] = (table.a > table.b).astype(int)
    table.to_csv("table.csv", index=False)
    stopped, _ = session.run(config.validate({**spec(epochs=8), "data": {
        "path": "table.csv", "target": "y"}}, "test"), tmp_path / "runs", InterruptAt(5))
    absolute = str(tmp_path / "table.csv")
    (stopped / layout.CONFIG).write_text((stopped / layout.CONFIG).read_text().replace(
        absolute, "table.csv"))
    saved = checkpoint.load(stopped / checkpoint.CHECKPOINT)
    assert saved.meta["config"]["data"]["path"] == absolute
    saved.meta["config"]["data"]["path"] = "table.csv"
    checkpoint.save(stopped / checkpoint.CHECKPOINT, saved)
    result = invoke("train", "--resume", stopped, "-q")
    assert result.exit_code == 0, result.output
    assert reader.read_summary(stopped)["status"] == "completed"


def test_load_refuses_a_checkpoint_of_another_format(tmp_path):
    path = tmp_path / checkpoint.CHECKPOINT
    np.savez(path, meta=np.array(json.dumps({"format": 99})))
    with pytest.raises(RunDirError, match="not a dlrun checkpoint .*format 99"):
        checkpoint.load(path)
