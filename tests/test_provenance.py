"""What a run records of where it came from; the help, completion and entry points of the CLI."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlrun import provenance
from dlrun.cli import app
from dlrun.console import ProgressReporter
from dlrun.data import fingerprint

runner = CliRunner()
TINY = """name: tiny
seed: 0
data:
  generator: {name: moons, n_samples: 120, noise: 0.1}
model:
  hidden_layers: [4]
train:
  epochs: 2
  batch_size: 32
"""
HAS_GIT = shutil.which("git") is not None


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun", **kwargs)


def train(config: Path, runs: Path, *args) -> tuple[Path, dict]:
    result = invoke("train", config, "-q", "--runs-dir", runs, *args)
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip())
    return run, json.loads((run / "summary.json").read_text())


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, "GIT_AUTHOR_NAME": "t",
                                          "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                                          "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
def test_a_run_records_the_commit_and_saves_uncommitted_changes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    config = repo / "tiny.yaml"
    config.write_text(TINY)
    git(repo, "add", "tiny.yaml")
    git(repo, "commit", "-qm", "first")
    clean_run, clean = train(config, tmp_path / "runs")
    assert clean["provenance"]["git"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert clean["provenance"]["git"]["dirty"] is False
    assert not (clean_run / provenance.CODE_DIFF).exists()
    config.write_text(TINY.replace("epochs: 2", "epochs: 3"))
    dirty_run, dirty = train(config, tmp_path / "runs")
    assert dirty["provenance"]["git"]["dirty"] is True
    assert (dirty_run / "code.diff").read_text() == git(repo, "diff", "HEAD")
    assert "+  epochs: 3" in (dirty_run / "code.diff").read_text()


def test_without_git_or_a_repository_a_run_still_completes(tmp_path, monkeypatch):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    _, outside = train(config, tmp_path / "runs")
    if HAS_GIT and subprocess.run(["git", "-C", str(tmp_path), "rev-parse"],
                                  capture_output=True).returncode != 0:
        assert outside["provenance"]["git"] is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _, no_git = train(config, tmp_path / "runs")
    assert no_git["status"] == "completed"
    assert no_git["provenance"]["git"] == {"error": "git is not installed"}


def test_git_that_hangs_is_given_up_on(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(provenance, "GIT_TIMEOUT", 0.2)
    assert provenance.git_state(tmp_path, tmp_path) == {"error": "git took over 0.2s"}


def test_a_run_records_packages_blas_cpu_and_its_data_files(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "points.npz"
    np.savez(data, X=rng.normal(size=(120, 2)), y=(rng.random(120) > 0.5).astype(int))
    config = tmp_path / "file.yaml"
    config.write_text(f"name: f\ndata: {{path: {data}}}\ntrain: {{epochs: 2}}\n")
    _, summary = train(config, tmp_path / "runs")
    found = summary["provenance"]
    assert found["packages"]["numpy"] == np.__version__
    assert found["packages"]["pydantic"] == metadata.version("pydantic")
    assert any(isinstance(lib.get("num_threads"), int) for lib in found["blas"])
    assert found["cpu"]["cores"] == os.cpu_count()
    (record,) = found["data_files"]
    assert record["path"] == str(data) and record["size"] == data.stat().st_size
    assert record["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_a_fingerprint_tells_a_changed_file_from_an_unchanged_one(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,0\n")
    recorded = fingerprint.file_fingerprint(path)
    assert fingerprint.changed(recorded) is None
    path.write_text("x,y\n2,0\n")  # same size, other bytes
    assert "contents changed" in fingerprint.changed(recorded)
    path.write_text("x,y\n1,0\n3,1\n")
    assert "bytes when read" in fingerprint.changed(recorded)
    path.unlink()
    assert "No such file" in fingerprint.changed(recorded)


def test_a_file_over_the_hash_limit_is_recorded_by_size_and_time(tmp_path):
    path = tmp_path / "big.npy"
    path.write_bytes(b"\0" * 1000)
    record = fingerprint.file_fingerprint(path, hash_limit=999)
    assert record["sha256"] is None and "not hashed" in record["note"]
    assert record["size"] == 1000


# --- the command line itself -------------------------------------------------------------------

COMMANDS = ["train", "diagnose", "predict", "compare", "diff", "config", "ls", "rm", "tag", "note",
            "gradcheck", "sweep", "plot"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_choices_and_shows_no_type_tags(command):
    result = invoke(command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert not re.search(r"<(bool|str|int|float|path|list\[)", result.output), result.output
    if command in ("compare", "ls", "diff", "diagnose", "gradcheck"):
        assert re.search(r"--format\s+\[(table|text)\|", result.output)


def test_shell_completion_is_offered(monkeypatch):
    assert "--install-completion" in invoke("--help").output
    # Typer finds the shell among this process's ancestors; a test run with none (started in
    # the background, or by CI) names it instead, as the option then takes it.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    shown = invoke("--show-completion", "bash")
    assert shown.exit_code == 0, shown.output
    assert "complete -o default -F _dlrun_completion dlrun" in shown.output
    done = subprocess.run([sys.executable, "-m", "dlrun"], capture_output=True, text=True,
                          env={**os.environ, "_DLRUN_COMPLETE": "complete_bash",
                               "COMP_WORDS": "dlrun l", "COMP_CWORD": "1"})
    assert sorted(done.stdout.split()) == ["learning-curve", "ls"]


def test_python_dash_m_dlrun_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "dlrun", "--version"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.startswith("dlrun ")


def test_the_progress_bar_shows_steps_per_second_and_time_left():
    reporter = ProgressReporter("tiny")
    reporter.progress.live.console = Console(record=True, width=120)
    reporter.start(10)
    row = {"train_loss": 0.5, "dev_error": 0.1}
    reporter.epoch({**row, "epoch": 1, "steps": 4})
    reporter.first = (reporter.first[0] - 2.0, 4)  # as if the first epoch ended two seconds ago
    reporter.epoch({**row, "epoch": 2, "steps": 8})
    rendered = Console(record=True, width=120)
    rendered.print(reporter.progress.make_tasks_table(reporter.progress.tasks))
    reporter.finish()
    text = rendered.export_text()
    assert re.search(r"\b2 steps/s", text) and "eta" in text and "2/10" in text


def test_package_versions_are_those_importlib_metadata_gives():
    expected = {}
    for name in provenance.PACKAGES:
        try:
            expected[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    assert provenance.packages() == expected and "numpy" in expected
