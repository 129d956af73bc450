"""The course's training problems, each made by a config of configs/ and diagnosed on a real run:
the finding and the advice the lesson teaches."""

import json
from pathlib import Path

import numpy as np
import pytest

from dlrun import config, plots
from dlrun.diagnosis.diagnose import DIAGNOSIS_JSON
from dlrun.rundir.layout import load_params
from dlrun.training import session

CONFIGS = Path(__file__).parent.parent / "configs"


def train(tmp_path, name, *overrides):
    experiment = config.load(CONFIGS / f"{name}.yaml", list(overrides))
    run_dir, summary = session.run(experiment, runs_dir=tmp_path / "runs")
    return run_dir, summary, json.loads((run_dir / DIAGNOSIS_JSON).read_text())


def advice_for(diagnosis, problem):
    return next(a for a in diagnosis["recommendations"] if a["problem"] == problem)["actions"]


def test_zeros_init_is_symmetry_not_broken_even_when_the_units_are_dead_too(tmp_path):
    run_dir, _, diagnosis = train(tmp_path, "initialization", "model.init=zeros",
                                  "train.epochs=20")
    params, _ = load_params(run_dir / "params.npz")
    assert not params["W1"].any() and not params["W2"].any()  # zeros: W1, W2 never moved
    layers = diagnosis["units"]["layers"]
    assert [(h["distinct"], h["distinct_weights"], h["dead"]) for h in layers] == [(1, 1, 10),
                                                                                  (1, 1, 5)]
    symmetry = diagnosis["units"]["checks"]["symmetry"]
    assert symmetry["status"] == "problem" and symmetry["layers"] == [1, 2]
    assert "incoming weights are all equal" in symmetry["message"]
    assert "dead as well" in symmetry["message"]
    problems = [a["problem"] for a in diagnosis["recommendations"]]
    assert "symmetry not broken" in problems
    assert "dead ReLU units" not in problems  # copies of one dead unit: leaky ReLU is no cure
    assert "random initialization (model.init: he; it is zeros)" in \
        advice_for(diagnosis, "symmetry not broken")[0]
    assert not any("learning rate" in a for a in advice_for(diagnosis, "zero gradients"))


def test_dead_relu_units_with_distinct_weights_are_not_a_symmetry_problem():
    from dlrun.diagnosis.hidden_units import symmetry

    dead = {"units": 5, "distinct": 1, "dead": 5, "distinct_weights": 5, "layer": 1}
    assert symmetry([dead])["status"] == "ok"
    assert symmetry([{**dead, "distinct_weights": 1}])["status"] == "problem"
    assert symmetry([{k: v for k, v in dead.items() if k != "distinct_weights"}])["status"] == "ok"


@pytest.mark.slow
def test_deep_sigmoids_without_batch_norm_have_vanishing_gradients_and_are_told_batch_norm(
        tmp_path):
    """configs/batchnorm_softmax.yaml with model.batch_norm=false: ‖dW1‖/‖dW5‖ about 0.003
    while the error sits at chance (67%); with batch norm, about 0.1 to 1."""
    _, _, off = train(tmp_path / "off", "batchnorm_softmax", "model.batch_norm=false",
                      "train.epochs=20")
    gradients = off["dynamics"]["gradients"]
    assert gradients["kind"] == "vanishing" and gradients["ratio_median"] < 0.01
    assert off["errors"]["train"] > 0.6
    actions = advice_for(off, "vanishing gradients")
    assert "batch norm (model.batch_norm: true)" in actions
    assert any("ReLU" in a for a in actions)
    _, _, on = train(tmp_path / "on", "batchnorm_softmax", "train.epochs=20")
    assert on["dynamics"]["gradients"]["status"] == "ok"
    assert on["dynamics"]["gradients"]["ratio_median"] > 0.05


def test_a_deep_relu_network_with_scale_1_weights_explodes_and_is_told_how_to_start(tmp_path):
    run_dir, summary, diagnosis = train(tmp_path, "exploding")
    assert summary["status"] == "diverged" and summary["epochs_run"] == 0
    rms = summary["first_step"]["activation_rms"]
    assert len(rms) == 6 and all(later > 3 * earlier for earlier, later in zip(rms, rms[1:]))
    gradients = diagnosis["dynamics"]["gradients"]
    assert gradients["kind"] == "exploding"
    assert gradients["activation_growth"] == pytest.approx(rms[-1] / rms[0]) and rms[-1] > 1e3 * rms[0]
    actions = advice_for(diagnosis, "exploding gradients")
    assert actions == ["initialization scaled to each layer's fan-in (model.init: he; it is random)",
                       "a smaller initialization scale (model.init: {name: random, scale: 0.1}; "
                       "it is 1)", "batch norm (model.batch_norm: true)",
                       "a learning rate 3 to 10 times smaller (train.learning_rate is 0.05)"]
    # no epoch trained: its errors are the untrained network's, so no gap is advised on
    assert [a["problem"] for a in diagnosis["recommendations"]] == ["divergence",
                                                                    "exploding gradients"]
    assert (run_dir / "curves.png").stat().st_size > 0


def test_the_same_network_from_he_init_keeps_its_activations_in_scale(tmp_path):
    _, summary, diagnosis = train(tmp_path, "exploding", "model.init=he", "train.epochs=2")
    rms = summary["first_step"]["activation_rms"]
    assert 0.5 < rms[-1] / rms[0] < 2
    assert diagnosis["dynamics"]["gradients"]["status"] == "ok"


def test_a_run_that_diverged_in_its_first_epoch_says_so_on_its_curves():
    summary = {"name": "explode", "status": "diverged", "epochs_run": 0,
               "stop_reason": "non-finite gradient dW1 at step 3 (epoch 1, learning rate 0.05)",
               "first_step": {"cost": 4902.6, "examples": 64}}
    message = plots.no_epoch_message(summary)
    assert message.startswith("No epoch finished: the run diverged in its first epoch "
                              "(non-finite gradient dW1 at step 3")
    assert "before any update, was 4903" in message and "no curve" in message
    assert "cost of each mini-batch" in plots.no_epoch_message(summary, steps=True)


@pytest.mark.parametrize("steps", [None, {"step": np.array([1.0, 2.0]),
                                          "cost": np.array([4903.0, 3e6])}])
def test_the_no_epoch_figure_draws_the_message_and_any_steps(tmp_path, steps, monkeypatch):
    from matplotlib.figure import Figure

    drawn = {}
    monkeypatch.setattr(Figure, "savefig", lambda fig, path: drawn.update(fig=fig))
    summary = {"name": "x", "status": "diverged", "stop_reason": "non-finite cost"}
    empty = {"epoch": np.zeros(0), "train_loss": np.zeros(0)}
    plots.draw_curves(empty, summary, tmp_path / "curves.png", steps)
    fig = drawn["fig"]
    texts = [t.get_text() for t in fig.texts] + [t.get_text() for a in fig.axes for t in a.texts]
    assert any(text.startswith("No epoch finished") for text in texts)
    lines = [line for axis in fig.axes for line in axis.get_lines()]
    assert len(lines) == (0 if steps is None else 1)
