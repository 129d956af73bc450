"""What `dlrun sweep` prints at the end, in a normal terminal and a wide one: every figure whole."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.console import console

SPACE = """\
name: wide
seed: 3
data:
  generator: {name: moons, n_samples: 200, noise: 0.2}
model:
  hidden_layers: {choice: [[8, 4], [6]]}
  keep_prob: {uniform: [0.7, 1.0]}
regularization:
  l2: {loguniform: [1e-4, 1]}
train:
  optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [16, 64]}
  epochs: 3
"""


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch):
    monkeypatch.setattr(console, "_width", console._width)


def sweep(tmp_path, columns: int):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    console._width = columns
    result = CliRunner().invoke(app, ["sweep", str(space), "--trials", "6", "--workers", "1",
                                      "--runs-dir", str(tmp_path / f"runs{columns}")])
    assert result.exit_code == 0, result.output
    (directory,) = (tmp_path / f"runs{columns}").iterdir()
    return result.stdout, pd.read_csv(directory / "sweep.csv")


@pytest.mark.parametrize("columns", [80, 200])
def test_the_best_trials_show_whole_values_at_any_width(tmp_path, columns):
    output, table = sweep(tmp_path, columns)
    lines = output.splitlines()
    assert "…" not in output
    # Only a path to copy (the report's) may run past the edge: it is never broken.
    assert [line for line in lines if len(line) > columns and "/" not in line] == []
    rows = {int(line.split()[0]): line.split() for line in lines
            if line.split() and line.split()[0].isdigit() and "trials:" not in line}
    assert len(rows) == 5  # the five best, every one on its own line
    for trial, cells in rows.items():
        expected = table.loc[table["trial"] == trial].iloc[0]
        assert float(cells[-1]) == pytest.approx(expected["dev_error"], abs=5e-5)
        assert float(cells[-2]) == pytest.approx(expected["dev_loss"], rel=5e-4)
        assert cells[-3] == str(int(expected["epochs_run"]))


def test_a_narrow_terminal_names_the_values_it_leaves_out(tmp_path):
    narrow, _ = sweep(tmp_path, 80)
    wide, _ = sweep(tmp_path, 200)
    assert "not shown" not in wide
    (note,) = [line for line in narrow.splitlines() if "not shown for width" in line]
    left_out = note.split(": ", 1)[1].split(" (")[0].split(", ")
    assert left_out and all(name in wide for name in left_out)
    header = "\n".join(line for line in narrow.splitlines()[:12])
    assert "learning_" in header and "rate" in header  # folded at its underscore, never cut


def test_the_progress_line_follows_the_metric_the_sweep_optimizes(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    console._width = 120
    result = CliRunner().invoke(app, ["sweep", str(space), "--trials", "4", "--workers", "1",
                                      "--optimize", "dev_loss", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("trials ")]
    (directory,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    table = pd.read_csv(directory / "sweep.csv")
    best = table.loc[table["dev_loss"].idxmin()]
    assert f"best dev loss {best['dev_loss']:.4g} (trial {best['trial']})" in line
