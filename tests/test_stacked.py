"""Stacked trials: K experiments trained as one computation give each the numbers it gets alone.

The reference is loop.fit on each experiment by itself. Every metrics value, every outcome field
and every final parameter must be bit-identical, except the grad_norm_l columns: their squares
are summed in another order (einsum instead of vdot), so they agree to 1e-12 relative in float64
and 1e-5 in float32.
"""

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config, detach
from dlrun.cli import app
from dlrun.sweep import run as sweep
from dlrun.sweep import stacked
from dlrun.sweep.trial import TrialTask, _stopper
from dlrun.training.experiment import prepare
from dlrun.training.loop import fit
from dlrun.training.stacked_fit import fit_stacked

GRAD_NORM_RTOL = {"float64": 1e-12, "float32": 1e-5}


def _trials(count: int, dtype="float64", activation="relu", optimizer="adam", data=None,
            epochs=12, **train):
    rng = np.random.default_rng(count)
    configs = []
    for k in range(count):
        options = {"name": optimizer}
        if optimizer == "adam":
            options["beta1"] = float(1 - 10 ** rng.uniform(-2, -0.7))
        elif optimizer in ("momentum", "rmsprop"):
            options["beta"] = float(1 - 10 ** rng.uniform(-2, -0.7))
        configs.append(config.validate({
            "name": f"t{k}", "seed": 100 + k, "dtype": dtype,
            "data": data or {"generator": {"name": "moons", "n_samples": 300, "noise": 0.2}},
            "model": {"hidden_layers": [8, 5], "activation": activation,
                      "keep_prob": 1.0 if k % 3 == 0 else float(rng.uniform(0.6, 0.95)),
                      "init": {"name": "random", "scale": float(10 ** rng.uniform(-2, 0))}},
            "regularization": {"l2": float(10 ** rng.uniform(-4, 0)) if k % 2 else 0.0,
                               "l1": 0.01 if k % 4 == 1 else 0.0},
            "train": {"epochs": epochs, "batch_size": 32, "optimizer": options,
                      "learning_rate": float(10 ** rng.uniform(-3, -1)),
                      "decay": {"name": "inverse_time", "rate": 0.1} if k % 2 else "none",
                      "early_stopping": {"patience": 3 + k % 3} if k % 2 else None, **train},
        }, "test"))
    return configs


def _alone(configs, stop_checks=None):
    results = []
    for cfg, stop in zip(configs, stop_checks or [None] * len(configs)):
        experiment, rows = prepare(cfg), []

        def on_epoch(row, rows=rows, stop=stop):
            rows.append(dict(row))
            return stop(row) if stop else None

        outcome = fit(experiment, on_epoch)
        results.append((rows, outcome, experiment.network.state()))
    return results


def _together(configs, stop_checks=None):
    experiments = [prepare(cfg) for cfg in configs]
    trained = fit_stacked(experiments, stop_checks)
    return [(rows, outcome, e.network.state()) for (rows, outcome), e in zip(trained, experiments)]


def assert_same(alone, together, dtype="float64"):
    for (rows, outcome, state), (rows2, outcome2, state2) in zip(alone, together):
        assert len(rows) == len(rows2)
        for row, row2 in zip(rows, rows2):
            assert row.keys() == row2.keys()
            for key in row:
                if key.startswith("grad_norm"):
                    assert row2[key] == pytest.approx(row[key], rel=GRAD_NORM_RTOL[dtype]), key
                elif key != "seconds":
                    assert row2[key] == row[key] or (math.isnan(row[key]) and math.isnan(row2[key])), key
        for field in ("status", "epochs_run", "steps", "best_epoch", "best_dev_loss",
                      "best_dev_value", "stop_reason", "divergence", "first_step"):
            assert getattr(outcome2, field) == getattr(outcome, field), field
        assert state.keys() == state2.keys()
        for name in state:
            assert np.array_equal(state[name], state2[name]), name


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_every_optimizer_gives_each_trial_its_own_numbers(optimizer):
    configs = _trials(5, optimizer=optimizer)
    assert_same(_alone(configs), _together(configs))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "leaky_relu"])
def test_every_activation_gives_each_trial_its_own_numbers(activation):
    configs = _trials(4, activation=activation)
    assert_same(_alone(configs), _together(configs))


def test_float32_trials_are_bit_identical_too():
    configs = _trials(4, dtype="float32")
    assert_same(_alone(configs), _together(configs), "float32")


@pytest.mark.parametrize("decay", [{"name": "cosine", "floor": 0.1},
                                   {"name": "inverse_sqrt_step", "k": 0.5}])
def test_a_schedule_that_moves_every_step_moves_every_trials_rate(decay):
    configs = [config.validate({**c.model_dump(mode="json"),
                                "train": {**c.model_dump(mode="json")["train"], "decay": decay}},
                               "test") for c in _trials(4, epochs=5)]
    assert_same(_alone(configs), _together(configs))


def test_trials_dropping_different_layers_draw_their_own_masks():
    keeps = [[0.8, 0.6], [1.0, 0.7], [0.9, 1.0], 1.0, 0.75]
    configs = []
    for c, keep in zip(_trials(5, epochs=4), keeps):
        data = c.model_dump(mode="json")
        configs.append(config.validate({**data, "model": {**data["model"], "keep_prob": keep}},
                                       "test"))
    assert_same(_alone(configs), _together(configs))


def test_softmax_and_linear_outputs_stack(tmp_path):
    blobs = {"generator": {"name": "blobs", "classes": 3, "n_samples": 300, "noise": 0.5}}
    configs = _trials(4, data=blobs)
    assert_same(_alone(configs), _together(configs))
    configs = _trials(3, data=_regression_file(tmp_path))
    assert_same(_alone(configs), _together(configs))


def _regression_file(directory) -> dict:
    path = directory / "surface.npz"
    X = np.random.default_rng(0).normal(size=(240, 2))
    np.savez_compressed(path, X=X, y=X[:, 0] - 2 * X[:, 1])
    return {"path": str(path)}


def test_a_diverging_trial_leaves_the_stack_and_the_others_go_on(tmp_path):
    configs = _trials(4, epochs=8, optimizer="gd", activation="tanh",
                      data=_regression_file(tmp_path))
    blown = configs[2].model_dump(mode="json")
    blown["train"]["learning_rate"] = 1e4  # a linear output on tanh units: the step overflows
    configs[2] = config.validate(blown, "test")
    alone, together = _alone(configs), _together(configs)
    assert [outcome.status for _, outcome, _ in alone] == ["completed"] * 2 + ["diverged", "completed"]
    assert_same(alone, together)


def test_pruned_trials_stop_at_their_own_rung():
    configs = _trials(4, epochs=9)
    stops = [_stopper(3), None, _stopper(5), None]
    alone, together = _alone(configs, stops), _together(configs, stops)
    assert [outcome.status for _, outcome, _ in alone][0] == "pruned"
    assert_same(alone, together)


def test_grouping_keeps_what_cannot_stack_apart():
    space_configs = _trials(6)
    varied = [c.model_dump(mode="json") for c in space_configs]
    varied[4]["train"]["batch_size"] = 16  # another batch size: its own group (of one)
    varied[5]["model"]["batch_norm"] = True  # batch norm is never stacked
    tasks = [TrialTask(i, data, "test") for i, data in enumerate(varied)]
    jobs = stacked.group(tasks, slots=1)
    groups = [job for job in jobs if isinstance(job, stacked.StackedTask)]
    assert [g.indices for g in groups] == [[0, 1, 2, 3]]
    assert sorted(job.index for job in jobs if isinstance(job, TrialTask)) == [4, 5]
    assert all(isinstance(job, TrialTask) for job in stacked.group(tasks[:3], slots=1))
    many = [TrialTask(i, varied[i % 4], "test") for i in range(8)]
    split = stacked.group(many, slots=2)
    assert [g.indices for g in split] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # one group per worker


SAME_ARCHITECTURE = """\
name: same
seed: 3
data:
  generator: {name: moons, n_samples: 300, noise: 0.2}
model:
  hidden_layers: [8, 4]
  keep_prob: {uniform: [0.7, 1.0]}
  init: {name: random, scale: {loguniform: [0.01, 1.0]}}
regularization:
  l2: {loguniform: [1e-4, 1.0]}
train:
  optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}
  learning_rate: {loguniform: [1e-3, 1e-1]}
  epochs: 9
  early_stopping: {patience: 3}
"""


@pytest.mark.parametrize("extra", [[], ["--prune"]])
def test_a_stacked_sweep_writes_the_run_directories_an_unstacked_one_does(tmp_path, extra):
    spec = tmp_path / "space.yaml"
    spec.write_text(SAME_ARCHITECTURE)
    dirs = {}
    for flag in ("--stack", "--no-stack"):
        result = CliRunner().invoke(app, ["sweep", str(spec), "--trials", "6", "--workers", "1",
                                          "-q", "--runs-dir", str(tmp_path / flag), flag, *extra])
        assert result.exit_code == 0, result.output
        dirs[flag] = tmp_path / flag / result.stdout.strip().rsplit("/", 1)[-1]
    tables = [pd.read_csv(dirs[flag] / sweep.TABLE).drop(columns="seconds") for flag in dirs]
    pd.testing.assert_frame_equal(*tables)
    for run in tables[0]["run"]:
        stacked_run, alone_run = dirs["--stack"] / run, dirs["--no-stack"] / run
        assert detach.wait_until_free(stacked_run) and detach.wait_until_free(alone_run)
        with np.load(stacked_run / "params.npz") as a, np.load(alone_run / "params.npz") as b:
            assert all(np.array_equal(a[k], b[k]) for k in b.files)
        metrics = [pd.read_csv(d / "metrics.csv") for d in (stacked_run, alone_run)]
        plain = [c for c in metrics[1].columns if c != "seconds" and not c.startswith("grad_norm")]
        pd.testing.assert_frame_equal(metrics[0][plain], metrics[1][plain])
        assert sorted(p.name for p in stacked_run.iterdir()) == sorted(
            p.name for p in alone_run.iterdir())


def test_a_stacked_trial_that_fails_while_written_keeps_what_its_run_recorded(monkeypatch):
    configs = _trials(4, epochs=3)
    tasks = [TrialTask(i, c.model_dump(mode="json"), "test") for i, c in enumerate(configs)]
    real = stacked.record.conclude

    def conclude(run_dir, experiment, *args, **kwargs):
        if experiment.config.name == "t2":
            raise OSError(28, "No space left on device")
        return real(run_dir, experiment, *args, **kwargs)

    monkeypatch.setattr(stacked.record, "conclude", conclude)
    results = sorted(stacked.execute_group(stacked.StackedTask(tuple(tasks))),
                     key=lambda r: r.index)
    assert [r.summary["status"] for r in results] == ["completed", "completed", "failed",
                                                     "completed"]
    failed = results[2].summary
    assert "No space left on device" in failed["error"]
    assert failed["name"] == "t2" and failed["seed"] == 102 and failed["examples"]["train"] > 0
