"""The figures the comments of configs/ quote, measured: each lesson is trained as its comment
says (seed 1, the config's dtype), and every figure must stay within the tolerance the comment
states. A change that moves one fails here, and the comment is corrected with it.

The figures are those of the weights each run keeps (summary.json's final), as `dlrun train`
and `dlrun compare` show them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.training import session

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


@pytest.fixture(scope="module")
def lesson_runs(tmp_path_factory):
    """train(lesson, *overrides) -> (run directory, summary), each trained once per module."""
    root = tmp_path_factory.mktemp("lessons")
    made = {}

    def train(lesson: str, *overrides: str):
        key = (lesson, overrides)
        if key not in made:
            cfg = config.load(CONFIGS / f"{lesson}.yaml", list(overrides))
            made[key] = session.run(cfg, root / lesson)
            assert made[key][1]["status"] == "completed"
        return made[key]

    return train


def figures(summary: dict) -> dict[str, float]:
    final = summary["final"]
    return {"train_error": final["train"]["error"], "dev_error": final["dev"]["error"],
            "train_loss": final["train"]["loss"], "dev_loss": final["dev"]["loss"],
            "gap": final["dev"]["error"] - final["train"]["error"]}


POINT = 0.01


def dev_error_at_best(run_dir: Path, summary: dict) -> float:
    """The dev error of the epoch with the lowest dev loss, from metrics.csv."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return float(metrics.loc[metrics["epoch"] == summary["best_epoch"], "dev_error"].iloc[0])


@pytest.mark.parametrize("overrides, train_error, dev_error, gap", [
    ((), 0.007, 0.263, 0.256),
    (("regularization.l2=0.7",), 0.133, 0.237, 0.104),
    (("model.keep_prob=0.86",), 0.067, 0.272, 0.206),
])
def test_regularization_figures(lesson_runs, overrides, train_error, dev_error, gap):
    run_dir, summary = lesson_runs("regularization", *overrides)
    found = figures(summary)
    assert found["train_error"] == pytest.approx(train_error, abs=1.5 * POINT)
    assert found["dev_error"] == pytest.approx(dev_error, abs=1.5 * POINT)
    assert found["gap"] == pytest.approx(gap, abs=3 * POINT)
    assert summary["kept_epoch"] == 2000  # the last epoch's weights, as the comment says
    assert summary["best_epoch"] <= 20  # the dev loss was lowest near epoch 10...
    assert dev_error_at_best(run_dir, summary) == pytest.approx(0.19, abs=1.5 * POINT)
    assert found["dev_loss"] > summary["best_dev_loss"]  # ...and climbed from there


def test_compare_shows_the_regularization_lesson_as_its_kept_weights_score(lesson_runs):
    runs = [lesson_runs("regularization", *o)[0] for o in
            ((), ("regularization.l2=0.7",), ("model.keep_prob=0.86",))]
    result = CliRunner().invoke(app, ["compare", *map(str, runs), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["path"]: row for row in json.loads(result.stdout)}
    for run_dir in runs:
        final = json.loads((run_dir / "summary.json").read_text())["final"]
        row = rows[str(run_dir)]
        assert row["dev_error"] == final["dev"]["error"]
        assert row["train_error"] == final["train"]["error"]
        assert row["kept_epoch"] == 2000 and row["best_epoch"] < 20
    by_l2 = sorted(rows.values(), key=lambda r: r["dev_error"])
    assert by_l2[0]["path"] == str(runs[1])  # L2 is the best cure, as the lesson says


def test_initialization_figures(lesson_runs):
    zeros = figures(lesson_runs("initialization", "model.init=zeros")[1])
    assert zeros["train_loss"] == pytest.approx(np.log(2), abs=0.001)
    assert zeros["train_error"] == pytest.approx(0.5, abs=POINT)
    assert zeros["dev_error"] == pytest.approx(0.5, abs=POINT)
    random10 = figures(lesson_runs("initialization", "model.init={name: random, scale: 10}")[1])
    assert random10["train_error"] == pytest.approx(0.293, abs=5 * POINT)
    assert random10["dev_error"] == pytest.approx(0.300, abs=5 * POINT)
    he = figures(lesson_runs("initialization")[1])
    assert he["train_error"] < POINT and he["dev_error"] < POINT


def test_optimization_figures(lesson_runs):
    gd = figures(lesson_runs("optimization", "train.optimizer=gd")[1])
    momentum = figures(lesson_runs("optimization", "train.optimizer=momentum")[1])
    for run in (gd, momentum):
        assert run["train_loss"] == pytest.approx(0.30, abs=0.02)
        assert run["train_error"] == pytest.approx(0.103, abs=1.5 * POINT)
    _, adam_summary = lesson_runs("optimization")
    adam = figures(adam_summary)
    assert adam["train_loss"] == pytest.approx(0.060, abs=0.02)
    assert gd["train_loss"] / adam["train_loss"] == pytest.approx(5, abs=1.5)  # "five times"
    assert adam["train_error"] == pytest.approx(0.023, abs=1.5 * POINT)
    assert adam["dev_error"] == pytest.approx(0.055, abs=1.5 * POINT)
    assert 340 <= adam_summary["best_epoch"] <= 540  # "near epoch 440"
    assert adam_summary["kept_epoch"] == 1500
    assert dev_error_at_best(*lesson_runs("optimization")) == pytest.approx(0.025,
                                                                            abs=1.5 * POINT)
    decayed = figures(lesson_runs("optimization", "train.optimizer=gd", "train.learning_rate=0.1",
                                  "train.decay={name: inverse_time, rate: 1, interval: 300}")[1])
    assert decayed["train_loss"] == pytest.approx(0.059, abs=0.02)


def test_batchnorm_figures(lesson_runs):
    _, with_norm = lesson_runs("batchnorm_softmax")
    # 0.6-3.3% by the BLAS kernels (OpenBLAS Haswell to SkylakeX): the last epoch of momentum
    # at rate 0.5 lands where the products' last bits take it; chance is 67%.
    assert with_norm["final"]["dev"]["error"] < 0.05
    assert with_norm["final"]["dev"]["macro_f1"] > 0.95
    _, without = lesson_runs("batchnorm_softmax", "model.batch_norm=false")
    assert without["final"]["train"]["error"] == pytest.approx(0.517, abs=5 * POINT)


def test_normalization_figures(lesson_runs):
    on = figures(lesson_runs("normalization")[1])
    assert on["train_error"] == pytest.approx(0.019, abs=1.5 * POINT)
    assert on["dev_error"] == pytest.approx(0.025, abs=1.5 * POINT)
    off = figures(lesson_runs("normalization", "data.normalize=false")[1])
    assert off["train_loss"] == pytest.approx(np.log(2), abs=0.001)
    assert off["train_error"] == pytest.approx(0.5, abs=1.5 * POINT)
    slow = figures(lesson_runs("normalization", "data.normalize=false",
                               "train.learning_rate=1e-6")[1])
    assert slow["train_error"] == pytest.approx(0.5, abs=1.5 * POINT)
    assert slow["train_loss"] > 1
