"""dlrun learning-curve: growing shares of the training split, one dev set, and a verdict."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.strategy import learning_curve as lc
from dlrun.training.experiment import load_data

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(autouse=True)
def _no_run_figures(monkeypatch):
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def test_a_smaller_share_is_a_subset_of_a_larger_one_and_dev_and_test_stay(make_config):
    base = make_config(data={"generator": {"name": "blobs", "n_samples": 400}})
    full = load_data(base)
    previous = None
    for share in (0.2, 0.5, 1.0):
        dataset = load_data(lc.at_share(base, share, base.seed))
        rows = set(dataset.rows["train"])
        assert len(rows) == pytest.approx(share * len(full.rows["train"]), abs=3)
        assert rows <= set(full.rows["train"])
        if previous is not None:
            assert previous <= rows
        previous = rows
        for split in ("dev", "test"):
            np.testing.assert_array_equal(dataset.rows[split], full.rows[split])
        # stratified: each class keeps its share of the training split
        shares = np.bincount(dataset.splits["train"][1]) / len(rows)
        full_shares = np.bincount(full.splits["train"][1]) / len(full.rows["train"])
        assert shares == pytest.approx(full_shares, abs=0.03)


def _point(examples, train, dev):
    return lc.Point(examples / 1000, examples, [train], [dev])


@pytest.mark.parametrize("points, reference, verdict, words", [
    ([_point(100, 0.20, 0.30), _point(200, 0.22, 0.28)], 0.05,
     "more data unlikely to help", "above the target"),
    ([_point(100, 0.10, 0.15), _point(200, 0.125, 0.13)], None,
     "more data unlikely to help", "already at the dev error"),
    ([_point(100, 0.0, 0.30), _point(200, 0.05, 0.25), _point(400, 0.08, 0.20)], 0.10,
     "more data likely helps", "-5.0 points"),
    ([_point(100, 0.0, 0.30), _point(200, 0.0, 0.30), _point(400, 0.0, 0.31)], 0.0,
     "flattened", "gains little"),
])
def test_the_verdict_reads_the_largest_sizes(points, reference, verdict, words):
    found, reason = lc.judge(points, reference, min_gap=0.01, human_margin=0.1)
    assert found == verdict and words in reason


def test_per_doubling_slopes_are_least_squares_against_log2_examples():
    points = [_point(100, 0.0, 0.30), _point(200, 0.0, 0.26), _point(400, 0.0, 0.22)]
    dev, gap = lc.per_doubling(points)
    assert dev == pytest.approx(-0.04) and gap == pytest.approx(-0.04)


@pytest.mark.slow
def test_a_learning_curve_on_the_regularization_lesson_shows_the_gap_closing(tmp_path):
    result = runner.invoke(app, ["learning-curve", str(CONFIGS / "regularization.yaml"),
                                 "--sizes", "0.2,0.6,1.0", "--runs-dir", str(tmp_path),
                                 "train.epochs=300"])
    assert result.exit_code == 0, result.output
    (directory,) = tmp_path.iterdir()
    table = pd.read_csv(directory / "learning_curve.csv")
    assert list(table["share"]) == [0.2, 0.6, 1.0]
    assert list(table["examples"]) == [30, 90, 150]  # 15% of 1,000 examples trains
    assert table["gap"].iloc[-1] < table["gap"].iloc[0] - 0.05  # closing with data
    assert table["train_error"].is_monotonic_increasing  # harder to fit more noisy points
    assert table["reference_error"].iloc[0] == pytest.approx(0.18, abs=0.005)  # XOR's Bayes error
    assert len([p for p in directory.iterdir() if p.is_dir()]) == 3  # ordinary run directories
    assert (directory / "learning_curve.png").stat().st_size > 1000
    assert (directory / "learning_curve.yaml").is_file()  # not config.yaml: not itself a run
    assert "more data likely helps" in result.output


def test_the_reference_is_the_generators_bayes_error_else_the_human_error(make_config, tmp_path):
    generated = make_config(data={"generator": {"name": "xor", "n_samples": 300, "noise": 0.25}})
    value, name = lc.reference_error(generated)
    assert name == "Bayes error" and value == pytest.approx(0.18, abs=0.005)
    rows = np.random.default_rng(0).normal(size=(50, 3))
    np.savez(tmp_path / "d.npz", X=rows, y=(rows[:, 0] > 0).astype(int))
    filed = make_config(data={"generator": None, "path": str(tmp_path / "d.npz")},
                        diagnose={"human_error": 0.04})
    assert lc.reference_error(filed) == (0.04, "human-level error")


@pytest.mark.parametrize("args, message", [
    (["--sizes", "0.5,1.5"], "every share must be in (0, 1]"),
    (["--sizes", "half"], "expected shares of the training split"),
    (["--sizes", "0.5,0.5"], "repeats a share"),
    (["data.subsample=0.5"], "data.subsample: a learning curve sets it"),
])
def test_bad_sizes_and_a_preset_subsample_are_one_line_errors(args, message, tmp_path):
    result = runner.invoke(app, ["learning-curve", str(CONFIGS / "quickstart.yaml"), *args,
                                 "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_subsample_is_validated_like_any_share():
    with pytest.raises(config.ConfigError, match="data.subsample"):
        config.validate({"data": {"subsample": 0}}, "spec")


def test_a_key_refused_once_the_data_is_loaded_names_its_line_and_leaves_no_directory(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("data: {generator: moons}\ntrain:\n  epochs: 2\n"
                    "  early_stopping: {metric: rmse}\n")
    result = runner.invoke(app, ["learning-curve", str(spec), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "spec.yaml:4" in result.output and "rmse is not measured" in result.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
