"""Living with many runs: names that tell runs apart, tags and notes, dlrun ls and dlrun rm."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dlrun import cli, detach, naming
from dlrun.cli import app
from dlrun.rundir import catalog, listview, runlock

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


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun", **kwargs)


def one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def train(tiny, runs, *args):
    result = invoke("train", tiny, "-q", "--runs-dir", runs, *args)
    assert result.exit_code == 0, result.output
    return Path(result.output.strip())


def fake_run(runs: Path, name: str, status: str = "completed", started: float | None = None,
             dev_error: float | None = 0.1, meta: dict | None = None) -> Path:
    """A run directory as train leaves it, written directly: summary, config, maybe meta."""
    path = runs / name
    path.mkdir(parents=True)
    started = time.time() if started is None else started
    summary = {"status": status, "name": name,
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
               "duration_seconds": 12.5, "final": {"dev": {"error": dev_error, "loss": 0.3}},
               "bias_variance": {"verdict": "high bias"}}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.yaml").write_text("name: x\n")
    if meta is not None:
        (path / "meta.json").write_text(json.dumps(meta))
    return path


# --- names -------------------------------------------------------------------------------------

def test_overrides_are_abbreviated_into_the_default_name(tiny, tmp_path):
    run = train(tiny, tmp_path / "runs", "train.learning_rate=0.003", "model.keep_prob=0.8",
                "model.hidden_layers=[6, 3]", "train.optimizer.name=gd")
    assert run.name.startswith("tiny-lr0.003-kp0.8-h6x3-optgd-")
    assert yaml.safe_load((run / "config.yaml").read_text())["name"] == run.name.rsplit("-", 3)[0]


def test_a_name_too_long_is_cut_with_a_hash_that_keeps_runs_apart():
    long_a = ["data.generator.noise=0.123456789"] * 1 + [f"seed={n}" for n in range(12)]
    long_b = ["data.generator.noise=0.123456789"] + [f"seed={n}" for n in range(1, 13)]
    a, b = naming.shorten("-".join(map(naming.abbreviate, long_a))), naming.shorten(
        "-".join(map(naming.abbreviate, long_b)))
    assert len(a) <= naming.MAX_NAME and len(b) <= naming.MAX_NAME and a != b
    assert naming.check(a) == a


def test_a_name_template_fills_in_config_values(tiny, tmp_path):
    run = train(tiny, tmp_path / "runs", "train.learning_rate=0.5",
                "--name", "lr{train.learning_rate}-{keep_prob}-{lr}-{optimizer}")
    assert run.name.startswith("lr0.5-1-0.5-adam-")


@pytest.mark.parametrize("template, fragment", [
    ("x{train.lrate}", "--name 'x{train.lrate}': unknown key {train.lrate}"),
    ("x{noise}", "{noise} could be data.generator.noise, data.augment.noise"),
    ("my run", "--name 'my run': a run name must start with a letter or digit"),
    ("{name}/../x", "--name '{name}/../x'"),
])
def test_a_bad_name_or_template_is_one_line_naming_the_option(tiny, tmp_path, template, fragment):
    result = invoke("train", tiny, "--runs-dir", tmp_path / "runs", "--name", template)
    one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists()


# --- tags and notes ----------------------------------------------------------------------------

def test_tags_and_a_note_go_to_meta_json_not_to_the_config(tiny, tmp_path):
    runs = tmp_path / "runs"
    run = train(tiny, runs, "--tag", "baseline", "--tag", "adam", "--note", "first try")
    assert json.loads((run / "meta.json").read_text()) == {"tags": ["adam", "baseline"],
                                                            "note": "first try"}
    assert "baseline" not in (run / "config.yaml").read_text()
    result = invoke("tag", run.name[:8], "+best", "-adam", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "meta.json").read_text())["tags"] == ["baseline", "best"]
    assert invoke("tag", run, "--runs-dir", runs).output.strip().endswith("baseline, best")
    assert invoke("note", run.name, "second thoughts", "--runs-dir", runs).exit_code == 0
    assert invoke("note", run.name, "--runs-dir", runs).output.strip() == "second thoughts"
    assert json.loads((run / "meta.json").read_text())["tags"] == ["baseline", "best"]


@pytest.mark.parametrize("args, fragment", [
    (["tag", "nosuch", "+x"], "nosuch: no such run directory"),
    (["tag", "tiny", "x"], "'x': write +TAG to add a tag or -TAG to remove one"),
    (["tag", "tiny", "+bad tag"], "+TAG 'bad tag': a tag starts with a letter or digit"),
    (["note", "nosuch", "hello"], "nosuch: no such run directory"),
    (["train", "TINY", "--tag", "-x"], "--tag '-x': a tag starts"),
    (["train", "TINY", "--note", "n" * 2001], "--note: 2001 characters; at most 2000"),
])
def test_bad_tags_and_unknown_runs_are_one_line(tiny, tmp_path, args, fragment):
    runs = tmp_path / "runs"
    fake_run(runs, "tiny-1")
    args = [tiny if a == "TINY" else a for a in args]
    result = invoke(*args, "--runs-dir", runs)
    one_line_error(result, fragment)


def test_tag_refuses_a_beginning_that_names_several_runs(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "tiny-1")
    fake_run(runs, "tiny-2")
    one_line_error(invoke("tag", "tiny", "+x", "--runs-dir", runs), "2 runs in", "start with")


def test_compare_filters_by_tag_and_shows_tags_apart_from_the_parameters(tiny, tmp_path):
    runs = tmp_path / "runs"
    base = train(tiny, runs, "--tag", "baseline")
    train(tiny, runs, "train.learning_rate=0.1", "--tag", "try")
    rows = json.loads(invoke("compare", runs, "--tag", "baseline", "--format", "json").output)
    assert [row["run"] for row in rows] == [base.name]
    assert rows[0]["tags"] == "baseline"
    every = json.loads(invoke("compare", runs, "--format", "json").output)
    assert sorted(row["tags"] for row in every) == ["baseline", "try"]
    assert "tags" not in [key for key in every[0] if "." in key]
    table = invoke("compare", runs).output
    assert "tags" in table and "baseline" in table
    assert "--tag" in invoke("compare", runs, "--tag", "nosuch").output  # "1 by --tag removed"


# --- ls ----------------------------------------------------------------------------------------

def test_ls_lists_newest_first_with_status_times_errors_and_tags(tmp_path):
    runs = tmp_path / "runs"
    now = time.time()
    fake_run(runs, "old-run", started=now - 7200, dev_error=0.25, meta={"tags": ["baseline"]})
    fake_run(runs, "new-run", status="failed", started=now - 60, dev_error=None)
    rows = json.loads(invoke("ls", runs, "--format", "json").output)
    assert [r["name"] for r in rows] == ["new-run", "old-run"]
    assert rows[1]["dev_error"] == 0.25 and rows[1]["tags"] == ["baseline"]
    assert rows[1]["verdict"] == "high bias" and rows[0]["status"] == "failed"
    table = invoke("ls", runs).output.splitlines()
    assert table[1].split()[:2] == ["new-run", "failed"]
    assert "0.2500" in table[2] and "baseline" in table[2] and " 12s " in table[2]
    assert table[-1] == "2 runs (1 failed, 1 completed)"


def test_ls_takes_the_runs_directory_as_every_other_command_names_it(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "only-run")
    by_option = json.loads(invoke("ls", "--runs-dir", runs, "--format", "json").output)
    assert [r["name"] for r in by_option] == ["only-run"]
    assert invoke("ls", runs, "--runs-dir", runs).exit_code == 0  # the same directory twice
    one_line_error(invoke("ls", runs, "--runs-dir", tmp_path / "elsewhere"),
                   "give the directory of runs once", "--runs-dir")


def test_ls_filters_by_status_tag_and_start(tmp_path):
    runs = tmp_path / "runs"
    now = time.time()
    fake_run(runs, "a", started=now - 3 * 86400, meta={"tags": ["x", "y"]})
    fake_run(runs, "b", status="diverged", started=now - 3600, meta={"tags": ["x"]})
    fake_run(runs, "c", started=now - 60)

    def names(*args):
        return [r["name"] for r in json.loads(invoke("ls", runs, "--format", "json",
                                                     *args).output)]
    assert names("--status", "diverged") == ["b"]
    assert names("--status", "diverged", "--status", "completed") == ["c", "b", "a"]
    assert names("--tag", "x") == ["b", "a"] and names("--tag", "x", "--tag", "y") == ["a"]
    assert names("--since", "2h") == ["c", "b"]
    since = time.strftime("%Y-%m-%dT%H:%M", time.localtime(now - 2 * 86400))
    assert names("--since", since) == ["c", "b"]
    assert "1 not matching left out" in invoke("ls", runs, "--since", "2d").output


def test_ls_shows_a_killed_run_as_stale_and_an_unreadable_one_as_corrupt(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "killed", status="running")
    (fake_run(runs, "broken") / "summary.json").write_text("{not json")
    rows = {r["name"]: r for r in json.loads(invoke("ls", runs, "--format", "json").output)}
    assert rows["killed"]["status"] == "stale"
    assert "dlrun train --resume" in rows["killed"]["problem"]
    assert rows["broken"]["status"] == "corrupt"


def test_ls_shows_a_live_run_as_running(tmp_path):
    runs = tmp_path / "runs"
    live = fake_run(runs, "live", status="running")
    lock = runlock.acquire(live, wait=True)
    try:
        (row,) = json.loads(invoke("ls", runs, "--format", "json").output)
        assert row["status"] == "running"
    finally:
        lock.release()


def test_ls_folds_a_sweep_into_one_line_and_trials_expands_it(tmp_path):
    runs = tmp_path / "runs"
    sweep = runs / "search-1"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"status": "completed", "started":
                                                  "2025-01-01T10:00:00+0000"}))
    fake_run(sweep, "trial-0000", dev_error=0.3)
    fake_run(sweep, "trial-0001", dev_error=0.2, status="pruned")
    fake_run(runs, "single")
    rows = json.loads(invoke("ls", runs, "--format", "json").output)
    assert [(r["name"], r["kind"]) for r in rows] == [("single", "run"), ("search-1", "sweep")]
    assert rows[1]["dev_error"] == 0.2 and rows[1]["trials"] == 2
    folded = invoke("ls", runs).output
    assert "trial-0000" not in folded and "sweep, 2 trials" in folded
    expanded = invoke("ls", runs, "--trials").output
    assert "  trial-0000" in expanded and "pruned" in expanded
    csv_text = invoke("ls", runs, "--format", "csv", "--trials").output.splitlines()
    assert csv_text[0].startswith("name,kind,status") and len(csv_text) == 5


def test_ls_fits_80_columns_by_dropping_columns_before_cutting_names(tmp_path):
    runs = tmp_path / "runs"
    name = "quickstart-lr0.003-kp0.8-h20x10-optmomentum-20250101-120000-a1b2c3"
    fake_run(runs, name, meta={"tags": ["baseline", "lr-test"]})
    found, _ = catalog.listing(runs)
    text, notes = listview.table(found, 80)
    lines = text.plain.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "a1b2c3" in lines[1] and "quickstart-l" in lines[1]  # both ends of the name
    assert "baseline,lr-test" in lines[1] and notes
    wide, wide_notes = listview.table(found, 200)
    assert name in wide.plain and "high bias" in wide.plain and not wide_notes


@pytest.mark.parametrize("args, fragment", [
    (["--status", "done"], "--status 'done': expected one of running, completed"),
    (["--since", "yesterday"], "--since 'yesterday': expected an age"),
    (["--format", "xml"], "--format: expected table, csv, json"),
    (["--tag", "a b"], "--tag 'a b'"),
])
def test_ls_bad_options_are_one_line(tmp_path, args, fragment):
    fake_run(tmp_path / "runs", "a")
    one_line_error(invoke("ls", tmp_path / "runs", *args), fragment)


def test_ls_of_a_missing_directory_is_one_line(tmp_path):
    one_line_error(invoke("ls", tmp_path / "nope"), "no such runs directory")


# --- rm ----------------------------------------------------------------------------------------

def test_rm_with_yes_removes_by_name_and_by_status(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "keep-1")
    fake_run(runs, "bad-1", status="failed")
    fake_run(runs, "bad-2", status="failed")
    fake_run(runs, "gone-1")
    assert invoke("rm", "gone", "--yes", "--runs-dir", runs).exit_code == 0
    result = invoke("rm", "--status", "failed", "--yes", "--runs-dir", runs)
    assert result.exit_code == 0 and "removed 2" in result.output
    assert sorted(p.name for p in runs.iterdir()) == ["keep-1"]
    assert "nothing to remove" in invoke("rm", "--status", "failed", "--yes",
                                         "--runs-dir", runs).output


def test_rm_older_than_removes_only_runs_started_before(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "old", started=time.time() - 10 * 86400)
    fake_run(runs, "new")
    assert invoke("rm", "--older-than", "7d", "--yes", "--runs-dir", runs).exit_code == 0
    assert [p.name for p in runs.iterdir()] == ["new"]


def test_rm_without_a_terminal_needs_yes(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "a")
    one_line_error(invoke("rm", "a", "--runs-dir", runs), "1 run(s) would be removed",
                   "--yes")
    assert (runs / "a").is_dir()


def test_rm_asks_at_a_terminal(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    fake_run(runs, "a")
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    kept = invoke("rm", "a", "--runs-dir", runs, input="n\n")
    assert kept.exit_code == 1 and (runs / "a").is_dir() and "Remove these 1?" in kept.output
    assert invoke("rm", "a", "--runs-dir", runs, input="y\n").exit_code == 0
    assert not (runs / "a").exists()


def test_rm_refuses_a_live_run_and_removes_nothing(tmp_path):
    runs = tmp_path / "runs"
    live = fake_run(runs, "run-live", status="running")
    fake_run(runs, "run-done")
    lock = runlock.acquire(live, wait=True)
    try:
        one_line_error(invoke("rm", "run", "--yes", "--runs-dir", runs), "run-live: still running",
                       f"pid {os.getpid()}")
    finally:
        lock.release()
    assert (runs / "run-live").is_dir() and (runs / "run-done").is_dir()


def test_rm_never_follows_a_link_or_a_path_out_of_the_runs_directory(tmp_path):
    runs = tmp_path / "runs"
    outside = fake_run(tmp_path / "elsewhere", "precious")
    fake_run(runs, "a")
    (runs / "link").symlink_to(outside, target_is_directory=True)
    one_line_error(invoke("rm", runs / "link", "--yes", "--runs-dir", runs), "symbolic link")
    one_line_error(invoke("rm", outside, "--yes", "--runs-dir", runs),
                   "not a run directly inside")
    one_line_error(invoke("rm", runs / "a" / ".." / ".." / "elsewhere" / "precious", "--yes",
                          "--runs-dir", runs), "not a run directly inside")
    assert invoke("rm", "--status", "completed", "--yes", "--runs-dir", runs).exit_code == 0
    assert (outside / "summary.json").is_file() and (runs / "link").is_symlink()
    assert not (runs / "a").exists()


@pytest.mark.parametrize("args, fragment", [
    ([], "give the runs to remove"),
    (["nosuch"], "nosuch: no such run directory"),
    (["--older-than", "soon"], "--older-than 'soon': expected an age"),
    (["--status", "bad"], "--status 'bad'"),
])
def test_rm_bad_input_is_one_line(tmp_path, args, fragment):
    fake_run(tmp_path / "runs", "a")
    one_line_error(invoke("rm", *args, "--yes", "--runs-dir", tmp_path / "runs"), fragment)
    assert (tmp_path / "runs" / "a").is_dir()


def test_rm_removes_a_sweep_whole_unless_it_still_runs(tmp_path):
    runs = tmp_path / "runs"
    sweep = runs / "search-1"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"status": "running"}))
    fake_run(sweep, "trial-0000")
    one_line_error(invoke("rm", "search", "--yes", "--runs-dir", runs), "holds no lock")
    lock = runlock.acquire(sweep, wait=True)  # as `dlrun sweep` holds it while it runs
    try:
        (row,) = json.loads(invoke("ls", runs, "--format", "json").output)
        assert row["status"] == "running"
        one_line_error(invoke("rm", "search", "--yes", "--runs-dir", runs),
                       "a sweep still running", f"pid {os.getpid()}")
    finally:
        lock.release()
    (sweep / "run.lock").write_text("{}")  # what a killed sweep leaves: a lock nobody holds
    (row,) = json.loads(invoke("ls", runs, "--format", "json").output)
    assert row["status"] == "stale" and "killed" in row["problem"]
    assert invoke("rm", "--status", "stale", "--yes", "--runs-dir", runs).exit_code == 0
    assert not sweep.exists()


def test_a_finished_sweep_lists_as_completed_and_leaves_no_lock(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(TINY + "  learning_rate: {loguniform: [0.001, 0.1]}\n")
    result = invoke("sweep", space, "--trials", 2, "--workers", 1, "-q", "--runs-dir",
                    tmp_path / "runs")
    assert result.exit_code == 0, result.output
    sweep = Path(result.output.strip().splitlines()[-1])
    (row,) = json.loads(invoke("ls", tmp_path / "runs", "--format", "json").output)
    assert (row["kind"], row["status"]) == ("sweep", "completed")  # its report still being written
    assert detach.wait_until_free(sweep)
    assert not (sweep / "run.lock").exists()
    (row,) = json.loads(invoke("ls", tmp_path / "runs", "--format", "json").output)
    assert (row["kind"], row["status"], row["trials"]) == ("sweep", "completed", 2)


# --- the real command line ---------------------------------------------------------------------

def dlrun(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dlrun", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, stdin=subprocess.DEVNULL)


def test_a_day_of_work_through_the_real_command_line(tiny, tmp_path):
    run = Path(dlrun("train", tiny, "-q", "--tag", "baseline", "--note", "ok", cwd=tmp_path)
               .stdout.strip())
    failed = fake_run(tmp_path / "runs", "broken-1", status="failed")
    listed = dlrun("ls", cwd=tmp_path)
    assert listed.returncode == 0 and run.name[:10] in listed.stdout
    assert dlrun("tag", run.name, "+best", cwd=tmp_path).stdout.strip().endswith("baseline, best")
    assert dlrun("note", run.name, cwd=tmp_path).stdout.strip() == "ok"
    asked = dlrun("rm", "--status", "failed", cwd=tmp_path)
    assert asked.returncode == 2 and "--yes" in asked.stderr and failed.is_dir()
    assert dlrun("rm", "--status", "failed", "--yes", cwd=tmp_path).returncode == 0
    assert not failed.exists() and (tmp_path / run).is_dir()
    unknown = dlrun("tag", "nosuch", "+x", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
