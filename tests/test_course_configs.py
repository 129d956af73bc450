"""The configs in configs/ reproduce the course's lessons with real numbers.

Each lesson's variants are trained with the config's own seed and one other; the margins were
checked on 12 to 40 seeds each, so they hold whatever the seed."""

from pathlib import Path

import numpy as np
import pytest

from dlrun import config
from dlrun.rundir.layout import load_params
from dlrun.training import session

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SEEDS = [1, 7]


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them here would only cost time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def _train(tmp_path, lesson: str, seed: int, *overrides: str):
    cfg = config.load(CONFIGS / f"{lesson}.yaml", [*overrides, f"seed={seed}"])
    run_dir, summary = session.run(cfg, tmp_path / "runs")
    assert summary["status"] == "completed", summary["stop_reason"]
    return run_dir, summary["final"]


def _gap(final: dict) -> float:
    return final["dev"]["error"] - final["train"]["error"]


def test_quickstart_fits_the_moons(tmp_path):
    _, final = _train(tmp_path, "quickstart", 1)
    assert final["dev"]["error"] < 0.08


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_zero_init_fails_to_break_symmetry_and_he_fits(tmp_path, seed):
    zeros_dir, zeros = _train(tmp_path, "initialization", seed, "model.init=zeros")
    _, he = _train(tmp_path, "initialization", seed)
    assert zeros["dev"]["error"] > 0.45 and zeros["train"]["loss"] == pytest.approx(np.log(2), abs=0.01)
    params, _ = load_params(zeros_dir / "params.npz")
    for name in ("W1", "W2"):  # every unit of a layer still the same as its neighbours
        assert np.all(params[name] == params[name][0])
    assert he["train"]["error"] < 0.02 and he["dev"]["error"] < 0.04


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_l2_and_dropout_shrink_the_train_dev_gap(tmp_path, seed):
    _, none = _train(tmp_path, "regularization", seed)
    _, l2 = _train(tmp_path, "regularization", seed, "regularization.l2=0.7")
    _, dropout = _train(tmp_path, "regularization", seed, "model.keep_prob=0.86")
    assert none["train"]["error"] < 0.12 and _gap(none) > 0.12  # it overfits
    assert _gap(l2) < _gap(none) - 0.06
    assert _gap(dropout) < _gap(none) - 0.03


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_adam_clearly_beats_gradient_descent_at_equal_epochs(tmp_path, seed):
    gd_dir, gd = _train(tmp_path, "optimization", seed, "train.optimizer=gd")
    _, adam = _train(tmp_path, "optimization", seed)
    assert adam["train"]["loss"] < 0.5 * gd["train"]["loss"]  # 0.31 at worst over 24 seeds
    assert adam["train"]["loss"] < 0.15 and gd["train"]["loss"] > 0.25
    assert (gd_dir / "steps.csv").exists()
    if seed == SEEDS[0]:  # learning-rate decay lets plain gd start a hundred times bigger
        _, decayed = _train(tmp_path, "optimization", seed, "train.optimizer=gd",
                            "train.learning_rate=0.1",
                            "train.decay={name: inverse_time, rate: 1, interval: 300}")
        assert decayed["train"]["loss"] < 0.5 * gd["train"]["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_trains_the_deep_softmax_network(tmp_path, seed):
    run_dir, with_norm = _train(tmp_path, "batchnorm_softmax", seed)
    _, without = _train(tmp_path, "batchnorm_softmax", seed, "model.batch_norm=false")
    assert with_norm["dev"]["error"] < 0.08 and with_norm["dev"]["macro_f1"] > 0.9
    assert without["train"]["error"] > with_norm["train"]["error"] + 0.25
    params, meta = load_params(run_dir / "params.npz")
    assert params["W5"].shape == (3, 32) and "gamma1" in params and "b1" not in params
    assert meta["classes"].tolist() == ["0", "1", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_normalization_makes_badly_scaled_features_learnable(tmp_path, seed):
    run_dir, normalized = _train(tmp_path, "normalization", seed)
    _, raw = _train(tmp_path, "normalization", seed, "data.normalize=false")
    _, raw_slow = _train(tmp_path, "normalization", seed, "data.normalize=false",
                         "train.learning_rate=1e-6")
    _, meta = load_params(run_dir / "params.npz")
    assert meta["std"][1] > 100 * meta["std"][0]  # x2 is stretched a thousand times
    assert normalized["train"]["error"] < 0.07 and normalized["dev"]["error"] < 0.12
    assert raw["dev"]["error"] > 0.4  # the same learning rate: ReLUs thrown dead, chance level
    assert raw_slow["train"]["error"] > normalized["train"]["error"] + 0.08
