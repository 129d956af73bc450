"""dlrun errors: the confusion matrix, the worst examples, errors.csv and the tag table."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.diagnosis import error_table
from dlrun.training import session

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_run_figures(monkeypatch):
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def _run(make_config, tmp_path, **sections):
    run_dir, summary = session.run(make_config(**sections), tmp_path / "runs")
    return run_dir, summary


@pytest.fixture
def spirals_run(make_config, tmp_path):
    """A three-class run that gets a fair share of its dev examples wrong."""
    return _run(make_config, tmp_path, data={"generator": {"name": "spirals", "n_samples": 300,
                                                           "noise": 0.3}},
                train={"epochs": 8})


def test_the_counts_agree_with_the_runs_own_dev_and_test_error(spirals_run):
    run_dir, summary = spirals_run
    for split in ("dev", "test"):
        analysis = error_table.analyse(run_dir, split)
        assert analysis.misclassified / analysis.examples == pytest.approx(
            summary["final"][split]["error"])
        assert analysis.examples == summary["examples"][split]
        assert analysis.confusion.sum() == analysis.examples
        assert analysis.examples - np.trace(analysis.confusion) == analysis.misclassified
        assert analysis.misclassified > 3  # the test means something only with errors to count


def test_per_class_figures_follow_from_the_confusion_matrix(spirals_run):
    analysis = error_table.analyse(spirals_run[0])
    counts = analysis.confusion
    per_class = analysis.per_class
    for k in range(len(counts)):
        tp = counts[k, k]
        precision = tp / counts[:, k].sum() if counts[:, k].sum() else 0.0
        recall = tp / counts[k].sum()
        assert per_class["precision"][k] == pytest.approx(precision)
        assert per_class["recall"][k] == pytest.approx(recall)
        assert per_class["error"][k] == pytest.approx(1 - recall)
        assert per_class["errors"][k] == counts[k].sum() - tp
    macro_f1 = json.loads((spirals_run[0] / "summary.json").read_text())["final"]["dev"]["macro_f1"]
    assert per_class["f1"].mean() == pytest.approx(macro_f1)


def test_examples_are_ranked_by_their_loss_and_carry_their_data_row(spirals_run):
    run_dir, _ = spirals_run
    analysis = error_table.analyse(run_dir)
    ranked = analysis.ranked
    assert list(ranked["loss"]) == sorted(ranked["loss"], reverse=True)
    assert (ranked["true"] != ranked["predicted"]).all()
    # the predicted class is the most probable, and the true class then has less than 1/2
    assert (ranked["probability"] >= 1 / 3).all()
    assert np.all(np.exp(-ranked["loss"]) < ranked["probability"] + 1e-12)
    # `row` finds the example in the generated set again: its features are the ones shown
    from dlrun.data.synthetic import GENERATORS
    from dlrun.engine.registry import build
    from dlrun.predict import load_model
    from dlrun.training.experiment import load_data
    config = load_model(run_dir).config
    generator = build(GENERATORS, "generator", config.data.generator)
    data_seed = np.random.SeedSequence(config.seed).spawn(1)[0]
    X, y = generator.generate(np.random.default_rng(data_seed))
    first = ranked.iloc[0]
    assert X[first["row"] - 1] == pytest.approx([first["x1"], first["x2"]], rel=1e-5)
    assert load_data(config).classes[int(y[first["row"] - 1])] == first["true"]


def test_the_command_writes_errors_csv_with_an_empty_tag_column_and_a_confusion_png(spirals_run):
    run_dir, summary = spirals_run
    result = runner.invoke(app, ["errors", str(run_dir), "--top", "3"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(run_dir / "errors.csv", keep_default_na=False)
    dev = summary["final"]["dev"]["error"]
    assert len(table) == round(dev * summary["examples"]["dev"])
    assert list(table.columns) == ["rank", "row", "true", "predicted", "probability", "loss",
                                   "x1", "x2", "tag"]
    assert (table["tag"] == "").all()
    assert (run_dir / "confusion.png").stat().st_size > 1000
    assert f"{len(table)} of {summary['examples']['dev']} misclassified" in result.output


def test_the_tag_ceiling_is_the_error_less_the_share_of_errors_a_tag_covers():
    assert error_table.ceiling(0.10, 0.08) == pytest.approx(0.092)  # the course's example
    assert error_table.ceiling(0.10, 0.5) == pytest.approx(0.05)
    assert error_table.ceiling(0.10, 0.0) == pytest.approx(0.10)
    assert error_table.split_tags(" blurry; dark |blurry ;") == ["blurry", "dark"]


def test_tags_read_back_give_each_tags_share_and_ceiling(spirals_run):
    run_dir, summary = spirals_run
    runner.invoke(app, ["errors", str(run_dir)])
    table = pd.read_csv(run_dir / "errors.csv", keep_default_na=False, dtype=str)
    n = len(table)
    tags = ["blurry; dark" if i % 4 == 0 else "dark" if i % 4 == 1 else "" for i in range(n)]
    table["tag"] = tags
    table = table.iloc[::-1]  # the user may sort the file any way
    table.to_csv(run_dir / "errors.csv", index=False)
    analysis = error_table.analyse(run_dir)
    rows, untagged = error_table.tag_table(analysis, run_dir / "errors.csv")
    found = {row.tag: row for row in rows}
    blurry = sum(i % 4 == 0 for i in range(n))
    dark = sum(i % 4 in (0, 1) for i in range(n))
    dev_error = summary["final"]["dev"]["error"]
    assert found["dark"].count == dark and found["blurry"].count == blurry
    assert found["dark"].share == pytest.approx(dark / n)
    assert found["dark"].ceiling == pytest.approx(dev_error * (1 - dark / n))
    assert untagged == n - dark
    result = runner.invoke(app, ["errors", str(run_dir), "--tags", str(run_dir / "errors.csv")])
    assert result.exit_code == 0, result.output
    assert f"{100 * dark / n:.2f}%" in result.output
    assert f"{100 * dev_error * (1 - dark / n):.2f}%" in result.output
    # running again keeps the tagged file, the user's work
    assert "kept" in result.output
    assert pd.read_csv(run_dir / "errors.csv", keep_default_na=False)["tag"].ne("").sum() == dark


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns=["loss"]), "missing 'loss'"),
    (lambda t: t.assign(extra=1), "unexpected 'extra'"),
    (lambda t: t.iloc[1:], "distinct rows"),
    (lambda t: t.assign(row=t["row"].astype(int) + 100000), "is not one of"),
])
def test_a_tags_file_with_other_rows_or_columns_is_refused_in_one_line(spirals_run, change,
                                                                      message):
    run_dir, _ = spirals_run
    runner.invoke(app, ["errors", str(run_dir)])
    path = run_dir.parent / "tags.csv"
    change(pd.read_csv(run_dir / "errors.csv", dtype=str, keep_default_na=False)).to_csv(
        path, index=False)
    result = runner.invoke(app, ["errors", str(run_dir), "--tags", str(path)])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_unknown_runs_and_splits_and_missing_tag_files_are_one_line_errors(spirals_run, tmp_path):
    run_dir, _ = spirals_run
    for args, message in [
        (["errors", str(tmp_path / "nope")], "no such run directory"),
        (["errors", str(run_dir), "--split", "validation"], "'validation' is not a split"),
        (["errors", str(run_dir), "--tags", str(tmp_path / "none.csv")], "no such file"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_regression_run_ranks_its_largest_residuals(make_config, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(0, 0.1, 200)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    run_dir, summary = _run(make_config, tmp_path, data={"generator": None, "path": str(tmp_path / "reg.npz")})
    analysis = error_table.analyse(run_dir)
    assert analysis.error == pytest.approx(summary["final"]["dev"]["rmse"], rel=1e-5)
    residual = analysis.ranked["residual"].abs()
    assert list(residual) == sorted(residual, reverse=True)
    assert np.allclose(analysis.ranked["predicted"] - analysis.ranked["true"],
                       analysis.ranked["residual"])
    result = runner.invoke(app, ["errors", str(run_dir), "--tags", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "regression" in result.output


def test_image_shaped_inputs_get_a_grid_of_their_worst_examples(make_config, tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 240)
    X = rng.normal(0, 1, (240, 16)) + np.where(y[:, None] == 1, np.tile([1, 0], 8), 0)
    np.savez(tmp_path / "img.npz", X=X, y=y)
    run_dir, _ = _run(make_config, tmp_path, data={"generator": None, "path": str(tmp_path / "img.npz"),
                                                   "augment": {"image_shape": [4, 4]}})
    result = runner.invoke(app, ["errors", str(run_dir), "--top", "6"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "errors.png").stat().st_size > 1000
    table = pd.read_csv(run_dir / "errors.csv")
    assert "x1" not in table.columns  # the pixels are drawn, not tabled


def test_a_run_whose_data_changed_since_training_is_flagged(make_config, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    run_dir, _ = _run(make_config, tmp_path, data={"generator": None,
                                                   "path": str(tmp_path / "d.npz")})
    assert error_table.report(run_dir).disagreement is None
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] <= 0).astype(int))  # labels flipped since
    result = runner.invoke(app, ["errors", str(run_dir)])
    assert result.exit_code == 0
    assert "changed after training" in result.output
