"""Figures: curves.png in every run, boundary.png for 2-D inputs, and `dlrun plot`."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from dlrun import config, plots
from dlrun.cli import app
from dlrun.rundir import reader
from dlrun.training import session

runner = CliRunner()


def test_bias_corrected_average_follows_the_formula():
    values = np.array([10.0, 20.0, 5.0])
    beta = 0.9
    v1 = 0.1 * 10
    v2 = 0.9 * v1 + 0.1 * 20
    v3 = 0.9 * v2 + 0.1 * 5
    expected = [v1 / (1 - beta), v2 / (1 - beta ** 2), v3 / (1 - beta ** 3)]
    assert plots.ewa(values, beta) == pytest.approx(expected)
    assert plots.ewa(np.full(50, 3.0)) == pytest.approx(np.full(50, 3.0))  # no zero-start drag


def _run(tmp_path, generator: str, train_options: str = ""):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: pic\nseed: 1\ndata:\n  generator: {generator}\n"
                    f"train: {{epochs: 20, learning_rate: 0.02{train_options}}}\n")
    return session.run(config.load(spec), tmp_path / "runs")[0]


def _share_near(image: np.ndarray, hex_colour: str, alpha: float) -> float:
    """Fraction of pixels showing `hex_colour` laid over white with `alpha`."""
    colour = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    tint = 1 - alpha * (1 - colour)
    return float(np.mean(np.all(np.abs(image[:, :, :3] - tint) < 0.02, axis=2)))


def test_a_two_dimensional_run_draws_curves_and_the_decision_regions(tmp_path):
    run_dir = _run(tmp_path, "{name: moons, n_samples: 400}")
    curves = imread(run_dir / "curves.png")
    assert curves.shape[:2] == (420, 1500)
    boundary = imread(run_dir / "boundary.png")
    assert boundary.shape[1] > boundary.shape[0]  # train and dev side by side
    assert _share_near(boundary, "#1f77b4", 0.25) > 0.1  # class 0's region
    assert _share_near(boundary, "#d62728", 0.25) > 0.1  # class 1's region


def test_three_classes_get_three_regions(tmp_path):
    run_dir = _run(tmp_path, "{name: blobs, classes: 3, n_samples: 600, noise: 0.5}")
    boundary = imread(run_dir / "boundary.png")
    for colour in ("#1f77b4", "#d62728", "#2ca02c"):
        assert _share_near(boundary, colour, 0.25) > 0.03


def test_recorded_steps_add_the_mini_batch_panel(tmp_path):
    stepped = _run(tmp_path, "moons", ", record_steps: true")
    assert imread(stepped / "curves.png").shape[:2] == (800, 1200)  # a 2 x 2 grid, not a row


def test_more_than_two_features_have_no_boundary_figure(tmp_path):
    run_dir = _run(tmp_path, "{name: blobs, features: 5}")
    assert (run_dir / "curves.png").exists() and not (run_dir / "boundary.png").exists()


def test_regression_on_two_features_draws_the_predicted_surface(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    np.savez(tmp_path / "surface.npz", X=X, y=X[:, 0] * 1.5 - X[:, 1] + 0.01)
    run_dir = _run(tmp_path, "null\n  path: " + str(tmp_path / "surface.npz"))
    assert imread(run_dir / "boundary.png").shape[1] > 800


def test_plot_command_redraws_the_figures(tmp_path):
    run_dir = _run(tmp_path, "{name: circles, n_samples: 300}")
    before = imread(run_dir / "boundary.png")
    (run_dir / "curves.png").unlink()
    (run_dir / "boundary.png").unlink()
    result = runner.invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "curves.png" in result.output and "boundary.png" in result.output
    assert np.array_equal(imread(run_dir / "boundary.png"), before)  # same data, same network
    assert (run_dir / "curves.png").exists()


def test_plot_without_the_data_file_still_draws_the_regions(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    run_dir = _run(tmp_path, "null\n  path: " + str(tmp_path / "d.npz"))
    (tmp_path / "d.npz").unlink()
    result = runner.invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 0
    assert "boundary drawn without the examples" in result.output
    assert (run_dir / "boundary.png").exists()


def test_plot_of_a_broken_run_directory_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["plot", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such run directory" in result.output
    run_dir = _run(tmp_path, "moons")
    (run_dir / "metrics.csv").unlink()
    result = runner.invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 2 and "metrics.csv: missing" in result.output
    assert "Traceback" not in result.output


def test_rows_a_kill_cut_short_or_garbled_are_left_out_of_the_plot_and_said(tmp_path):
    run_dir = _run(tmp_path, "moons")
    metrics = run_dir / "metrics.csv"
    rows = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(rows[:4]) + "x,y\n" + "".join(rows[4:]) + rows[5][:7])
    result = runner.invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "note: metrics.csv:23: last row incomplete (ignored)" in result.output
    assert "note: metrics.csv: 1 malformed row(s) ignored (first at line 5)" in result.output
    assert (run_dir / "curves.png").exists()


def test_a_row_cut_short_at_the_end_is_one_plot_reads_without(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss\n1,0.5\n2,0.4\n3,")
    notes = []
    table = reader.read_metrics(path, notes=notes)
    assert table["epoch"].tolist() == [1.0, 2.0]  # "3," may be "3,0.37" cut short: not a NaN
    assert notes == ["metrics.csv:4: last row incomplete (ignored)"]
    path.write_text("epoch,train_loss\n1,0.5\n2,\n")
    assert np.isnan(reader.read_metrics(path)["train_loss"][1])  # an empty cell is a gap


@pytest.mark.parametrize("first_loss, scale", [(1413.0, "log"), (0.9, "linear")])
def test_a_cost_spanning_decades_is_drawn_on_a_log_scale(tmp_path, monkeypatch, first_loss, scale):
    """A huge first loss (a too-large init) would flatten the rest of a linear curve at zero."""
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kwargs: saved.append(self))
    losses = np.array([first_loss, 0.7, 0.5, 0.4, 0.35])
    metrics = {"epoch": np.arange(1, 6), "train_cost": losses, "train_loss": losses,
               "dev_loss": losses + 0.05, "train_error": np.full(5, 0.1),
               "learning_rate": np.full(5, 0.01)}
    plots.draw_curves(metrics, {"task": "binary"}, tmp_path / "curves.png")
    (figure,) = saved
    assert figure.axes[0].get_yscale() == scale
    assert figure.axes[1].get_yscale() == "linear"  # errors stay fractions on a linear scale


SMALL_SPEC = ("name: later\nseed: 1\ndata:\n  generator: {name: moons, n_samples: 200}\n"
              "train: {epochs: 3}\n")


def test_train_command_writes_the_final_summary_then_draws_while_holding_the_lock(tmp_path):
    """`dlrun train` returns before its figures are drawn: the summary is final at once, and the
    figures are there as soon as the run lock is free."""
    import subprocess
    import sys

    from dlrun import detach
    from dlrun.rundir import reader

    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL_SPEC)
    code = ("import sys; from dlrun.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, "train", str(spec), "-q",
                             "--runs-dir", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    run_line, imported = result.stdout.split()
    assert imported == "False"  # the command itself never imported matplotlib
    run_dir = Path(run_line)
    assert reader.read_summary(run_dir)["status"] == "completed"
    assert detach.wait_until_free(run_dir)
    assert imread(run_dir / "curves.png").shape[:2] == (420, 1500)
    assert (run_dir / "boundary.png").exists() and not (run_dir / "run.lock").exists()


def test_without_fork_the_figures_are_drawn_before_the_command_returns(tmp_path, monkeypatch):
    from dlrun import detach

    monkeypatch.setattr(detach, "can_fork", lambda: False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL_SPEC)
    result = runner.invoke(app, ["train", str(spec), "-q", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip())
    assert (run_dir / "curves.png").exists() and (run_dir / "boundary.png").exists()
    assert not (run_dir / "run.lock").exists()


def test_a_run_trained_without_figures_is_whole_and_plot_draws_them(tmp_path):
    cfg = config.load(_spec_file(tmp_path))
    run_dir, summary = session.run(cfg, tmp_path / "runs", figures="none")
    assert summary["status"] == "completed" and "problems" not in summary
    assert not (run_dir / "curves.png").exists() and not (run_dir / "boundary.png").exists()
    assert {"params.npz", "metrics.csv", "diagnosis.json", "summary.json"} <= {
        p.name for p in run_dir.iterdir()}
    diagnosed = runner.invoke(app, ["diagnose", str(run_dir), "--format", "json"])
    compared = runner.invoke(app, ["compare", str(run_dir)])
    assert diagnosed.exit_code == 0 and compared.exit_code == 0, diagnosed.output + compared.output
    result = runner.invoke(app, ["plot", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert imread(run_dir / "curves.png").shape[:2] == (420, 1500)
    assert (run_dir / "boundary.png").exists()


def _spec_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL_SPEC)
    return spec
