"""compare's terminal table at any width, sweep trials by their sweep's name, and its figure."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.compare import collect, plot
from dlrun.rundir import layout
from dlrun.training import session

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch):
    from dlrun.console import console
    monkeypatch.setattr(console, "_width", console._width)
    return console


def invoke(*args, columns: int = 200):
    from dlrun.console import console
    console._width = columns
    return CliRunner().invoke(app, [str(a) for a in args])


def lesson_commands() -> list[list[str]]:
    """The `dlrun train` lines each lesson's comment lists (continuations joined); a config
    that lists none (the quick-start) trained as it is, and sweep spaces left out."""
    found = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        text = re.sub(r"\\\n#\s*", " ", path.read_text())
        listed = [shlex.split(line[len("#   dlrun train "):]) for line in text.splitlines()
                  if line.startswith("#   dlrun train ")]
        if not listed and "dlrun sweep" not in text:
            listed = [[f"configs/{path.name}", "--name", path.stem]]
        found += listed
    return found


@pytest.fixture(scope="module")
def lessons(tmp_path_factory) -> Path:
    """Every lesson's variants as its comment lists them, trained for 3 epochs: real run
    directories with the lessons' names and configs."""
    runs_dir = tmp_path_factory.mktemp("lessons")
    for arguments in lesson_commands():
        source = CONFIGS.parent / arguments[0]
        name = arguments[arguments.index("--name") + 1]
        overrides = [a for a in arguments[1:] if "=" in a and not a.startswith("--")]
        experiment = config.load(source, [*overrides, "train.epochs=3", f"name={name}"])
        session.run(experiment, runs_dir=runs_dir)
    return runs_dir


def table_rows(output: str) -> list[tuple[str, list[str]]]:
    """(run name with its wrapped lines joined, the other cells' words) per row of the table."""
    lines = output.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"─"})
    start = lines[rule - 1].index("status")
    rows = []
    for line in lines[rule + 1:]:
        if not line.strip() or re.match(r"\d+ runs shown", line):
            break  # the footer begins with the count of runs shown
        name, rest = line[:start].strip(), line[start:].split()
        if rest:
            rows.append((name, rest))
        else:
            rows[-1] = (rows[-1][0] + name, rows[-1][1])
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 200])
def test_every_lesson_run_shows_its_whole_name_and_dev_and_test_error(lessons, width):
    expected = {r["run"]: r for r in json.loads(invoke("compare", lessons, "--format",
                                                       "json").stdout)}
    assert len(expected) == len(lesson_commands()) == 16
    result = invoke("compare", lessons, columns=width)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= width for line in result.stdout.splitlines())
    rows = table_rows(result.stdout)
    assert sorted(name for name, _ in rows) == sorted(expected)
    for name, cells in rows:
        status, dev, test = cells[:3]
        assert status == expected[name]["status"]
        assert float(dev) == pytest.approx(expected[name]["dev_error"], abs=5e-5)
        assert float(test) == pytest.approx(expected[name]["test_error"], abs=5e-5)
    assert "…" not in result.stdout


@pytest.mark.slow
def test_wide_terminals_show_the_keys_that_tell_runs_apart_and_name_the_rest(lessons):
    result = invoke("compare", lessons, columns=200)
    header = " ".join(result.stdout.splitlines()[:2])
    assert "learning_rate" in header and "init" in header
    footer = result.stdout[result.stdout.index("runs shown"):]
    assert "differing config keys not shown for width:" in footer
    narrow = invoke("compare", lessons, columns=80).stdout
    assert "learning_rate" in narrow[narrow.index("not shown for width"):]


@pytest.mark.slow
def test_a_registry_choice_keeps_its_options(lessons):
    rows = {r["run"].split("-2")[0]: r for r in json.loads(
        invoke("compare", lessons, "--format", "json").stdout)}
    assert rows["init-random10"]["model.init.name"] == "random"
    result = invoke("compare", lessons, "--filter", "name.str.startswith('init')",
                    "--columns", "init,dev_error")
    assert "random(scale=10)" in result.stdout
    comparison = collect.compare([lessons], filters=["name.str.startswith('init')"])
    assert any("random(scale=10)" in label for label in plot.labels(comparison))


def fake_run(root: Path, name: str, dev_error: float, extra: dict | None = None,
             losses=None) -> Path:
    """A run directory with a config, a summary and metrics written by hand."""
    path = root / name
    path.mkdir(parents=True)
    cfg = config.validate({"name": name.split("/")[-1], "train": {"epochs": 4,
                           "learning_rate": 0.01 + dev_error}}, "test").model_dump()
    (path / layout.CONFIG).write_text(json.dumps(cfg))  # JSON is YAML
    losses = losses if losses is not None else [0.7, 0.5, 0.4, 0.35]
    epochs = np.arange(1, len(losses) + 1)
    pd.DataFrame({"epoch": epochs, "train_loss": losses, "dev_loss": losses,
                  "train_error": [dev_error] * len(losses), "dev_error": [dev_error] * len(losses)}
                 ).to_csv(path / layout.METRICS, index=False)
    summary = {"status": "completed", "best_epoch": len(losses), "epochs_run": len(losses),
               "final": {"test": {"error": dev_error + 0.01}}, **(extra or {})}
    (path / layout.SUMMARY).write_text(json.dumps(summary))
    return path


def fake_sweep(runs_dir: Path, name: str, trials: int) -> Path:
    directory = runs_dir / name
    for i in range(trials):
        fake_run(directory, f"trial-{i:04d}", 0.1 + i / 100,
                 {"sweep": {"directory": name, "trial": i, "values": {}}})
    (directory / "sweep.json").write_text("{}")
    return directory


def test_sweep_trials_are_named_with_their_sweep_and_a_prefix_expands_a_sweep(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_sweep(runs_dir, "alpha-20260101-000000-aaaaaa", 2)
    fake_sweep(runs_dir, "beta-20260101-000000-bbbbbb", 2)
    rows = json.loads(invoke("compare", "alpha", "--runs-dir", runs_dir, "--format",
                             "json").stdout)
    assert sorted(r["run"] for r in rows) == ["alpha-20260101-000000-aaaaaa/trial-0000",
                                              "alpha-20260101-000000-aaaaaa/trial-0001"]
    assert all(r["status"] == "completed" for r in rows)
    # A trial's label is its values, not its name: the sweep numbered its trials by itself.
    assert plot.labels(collect.compare([runs_dir / "alpha-20260101-000000-aaaaaa"])) == [
        "1 lr=0.11", "2 lr=0.12"]
    both = invoke("compare", runs_dir, columns=200).stdout
    assert "beta-20260101-000000-bbbbbb/trial-0001" in both
    assert "alpha-20260101-000000-aaaaaa/trial-0001" in both


def test_a_terminal_too_narrow_for_a_table_gets_one_block_per_run(tmp_path):
    fake_run(tmp_path, "a-very-long-run-name-20260101-000000-aaaaaa", 0.1)
    fake_run(tmp_path, "b-20260101-000000-bbbbbb", 0.2)
    result = invoke("compare", tmp_path, columns=40)
    assert result.exit_code == 0
    assert all(len(line) <= 40 for line in result.stdout.splitlines())
    assert "a-very-long-run-name-20260101-000000-" in result.stdout  # wrapped, never cut
    assert "dev error: 0.1000" in result.stdout and "test error: 0.2100" in result.stdout
    assert "learning_rate: 0.11" in result.stdout  # every differing key has room here


def test_columns_picks_the_table_and_refuses_unknown_keys(tmp_path):
    fake_run(tmp_path, "a", 0.1)
    fake_run(tmp_path, "b", 0.2)
    result = invoke("compare", tmp_path, "--columns", "learning_rate,test_error")
    header = result.stdout.splitlines()[1]
    assert header.split() == ["run", "learning_rate", "error"]  # "test" sits on the line above
    assert "status" not in result.stdout.splitlines()[0]
    bad = invoke("compare", tmp_path, "--columns", "learning_rat")
    assert bad.exit_code == 2
    assert "--columns: unknown key 'learning_rat' (did you mean learning_rate" in bad.output


def test_transpose_shows_runs_as_columns(tmp_path):
    fake_run(tmp_path, "first-run", 0.1)
    fake_run(tmp_path, "second-run", 0.2)
    result = invoke("compare", tmp_path, "--transpose", columns=80)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["first-run", "second-run"]
    by_key = {line.split("  ")[0].strip(): line.split()[-2:] for line in lines[2:]
              if line.strip() and not line.startswith("2 runs")}
    assert by_key["dev error"] == ["0.1000", "0.2000"]
    assert by_key["learning_rate"] == ["0.11", "0.21"]


def test_plot_labels_are_short_and_the_full_mapping_is_written_beside(tmp_path):
    for i in range(14):
        fake_run(tmp_path / "runs", f"run-{i:02d}", i / 100)
    target = tmp_path / "curves.png"
    result = invoke("compare", tmp_path / "runs", "--plot", target)
    assert result.exit_code == 0, result.output
    assert "4 runs after the first 10 drawn in grey" in result.output
    legend = plot.legend_path(target).read_text()
    assert "run-13" in legend and "train.learning_rate=0.14" in legend
    comparison = collect.compare([tmp_path / "runs"])
    labels = plot.labels(comparison)
    assert labels[0] == "1 run-00 lr=0.01"  # the run's name, then what differs
    assert all(len(label) <= 3 + plot.LABEL_WIDTH for label in labels)
    figure, _ = plot.draw(comparison, "curves.legend.txt")
    entries = [t.get_text() for t in figure.legends[0].get_texts()]
    assert entries == [*labels[:plot.LABELLED], "others, in grey"]


def test_plot_loss_axis_is_logarithmic_when_a_run_diverges(tmp_path):
    fake_run(tmp_path, "calm", 0.1)
    comparison = collect.compare([tmp_path])
    figure, _ = plot.draw(comparison, "x")
    assert figure.axes[0].get_yscale() == "linear"
    fake_run(tmp_path, "wild", 0.5, losses=[0.7, 50.0, 900.0, 400.0])
    figure, _ = plot.draw(collect.compare([tmp_path]), "x")
    assert figure.axes[0].get_yscale() == "log"


def test_overlapping_runs_keep_distinct_markers(tmp_path):
    fake_run(tmp_path, "a", 0.1)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    figure, _ = plot.draw(collect.compare([tmp_path]), "x")
    dev_lines = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "-"]
    assert len({line.get_marker() for line in dev_lines}) == 2
