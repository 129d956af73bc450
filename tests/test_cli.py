"""The command line: exit codes, one-line errors, nothing left behind on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlrun.cli import app

runner = CliRunner()
QUICKSTART = Path(__file__).parent.parent / "configs" / "quickstart.yaml"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun")


def test_train_quickstart_writes_a_completed_run(tmp_path):
    result = invoke("train", QUICKSTART, "--runs-dir", tmp_path, "train.epochs=3")
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("quickstart-")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert "train" in result.output and "bias/variance" in result.output


def test_quiet_prints_only_the_run_directory_and_name_renames(tmp_path):
    result = invoke("train", QUICKSTART, "-q", "--runs-dir", tmp_path, "--name", "mine",
                    "train.epochs=2")
    assert result.exit_code == 0
    (run_dir,) = tmp_path.iterdir()
    assert result.output.strip() == str(run_dir)
    assert run_dir.name.startswith("mine-")


@pytest.mark.parametrize("args, expected", [
    (["train.lr=0.1"], "train.lr: unknown key"),
    (["model.keep_prob=2"], "model.keep_prob: must be a number in (0, 1]"),
    (["--name", "../../etc"], "--name '../../etc': a run name must start with a letter or digit"),
    (["model.output=linear"], "quickstart.yaml: override 'model.output=linear': model.output: "
                              "linear needs real-valued targets"),
    (["diagnose.human_error=5"], "override 'diagnose.human_error=5': diagnose.human_error: 5 is "
                                 "not an error rate"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_no_run(tmp_path, args, expected):
    runs_dir = tmp_path / "runs"
    result = invoke("train", QUICKSTART, "--runs-dir", runs_dir, *args)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_key_refused_once_the_data_is_read_is_named_with_its_line(tmp_path):
    spec = tmp_path / "e.yaml"
    spec.write_text("data:\n  generator: moons\nmodel:\n  hidden_layers: [3]\n"
                    "  output: softmax\ntrain:\n  epochs: 2\n  early_stopping:\n"
                    "    metric: rmse\n")
    result = invoke("train", spec, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert f"{spec}:9: train.early_stopping.metric: rmse is not measured" in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_config_is_exit_2(tmp_path):
    result = invoke("train", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml: no such config file" in result.output


def test_diverged_run_exits_1_and_says_why(tmp_path):
    result = invoke("train", QUICKSTART, "--runs-dir", tmp_path, "train.optimizer=gd",
                    "train.learning_rate=1e30", "train.early_stopping=null")
    assert result.exit_code == 1
    assert "diverged" in result.output and "learning rate" in result.output
    (run_dir,) = tmp_path.iterdir()
    assert (f"go on with a smaller step: dlrun train --resume {run_dir} "
            "train.learning_rate=1e+29") in result.output


def test_help_and_version_run_as_a_real_process():
    help_text = subprocess.run([sys.executable, "-m", "dlrun.cli", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "train" in help_text
    assert invoke("--version").output.startswith("dlrun ")


@pytest.mark.parametrize("args, expected", [
    (["compare", "--top", "0"], "error: Invalid value for '--top'"),
    (["compare", "--top", "abc"], "error: Invalid value for '--top'"),
    (["train", "--bogus"], "error: No such option: --bogus (see dlrun train --help)"),
    (["diff", "only-one"], "error: Missing argument 'run_b'. (see dlrun diff --help)"),
    (["bogus"], "error: No such command 'bogus'. (see dlrun --help)"),
])
def test_a_usage_mistake_is_one_line_and_exit_2(args, expected):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(expected)


def test_no_arguments_show_the_help_and_help_exits_0():
    assert "Usage: dlrun" in invoke().output
    result = invoke("train", "--help")
    assert result.exit_code == 0 and "Usage: dlrun train" in result.output


def test_the_run_directory_is_printed_whole_with_the_task_it_was_read_as(tmp_path):
    runs_dir = tmp_path / ("a-rather-long-directory-name-" * 3) / "runs"
    result = invoke("train", QUICKSTART, "--runs-dir", runs_dir, "train.epochs=2")
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    assert f"{run_dir}  completed  binary, 2 classes (0, 1)" in result.output.splitlines()
    assert len(str(run_dir)) > 100  # longer than the terminal: still on one line
