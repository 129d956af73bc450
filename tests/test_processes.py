"""Real `dlrun train` processes: stopped by SIGTERM, killed by SIGKILL, eight started at once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_resume import assert_same_run
from typer.testing import CliRunner

from dlrun import config, detach
from dlrun.cli import app
from dlrun.rundir import checkpoint, layout, reader, runlock
from dlrun.training import session

pytestmark = pytest.mark.slow
runner = CliRunner()
LONG = {"name": "long", "seed": 2, "dtype": "float64",
        "data": {"generator": {"name": "moons", "n_samples": 1000, "noise": 0.2}},
        "model": {"hidden_layers": [16, 8], "keep_prob": 0.9},
        "train": {"epochs": 100000, "batch_size": 16, "learning_rate": 0.005,
                  "checkpoint_every": 5}}


def start(config_path: Path, runs_dir: Path, *args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlrun.cli", "train", str(config_path), "-q",
                             "--runs-dir", str(runs_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_for_rows(runs_dir: Path, rows: int, process: subprocess.Popen) -> Path:
    """The run directory once its metrics.csv holds `rows` epochs (a guard, not a timing)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for metrics in runs_dir.glob(f"*/{layout.METRICS}"):
            if metrics.read_text().count("\n") > rows:
                return metrics.parent
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"no {rows} epochs written in two minutes")


def straight_run(tmp_path: Path, epochs: int) -> Path:
    cfg = config.validate({**LONG, "train": {**LONG["train"], "epochs": epochs}}, "test")
    return session.run(cfg, tmp_path / "straight")[0]


@pytest.fixture
def long_config(tmp_path) -> Path:
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(LONG))
    return path


def test_sigterm_stops_a_real_run_like_ctrl_c_and_resume_finishes_it_exactly(tmp_path,
                                                                              long_config):
    process = start(long_config, tmp_path / "runs")
    run_dir = wait_for_rows(tmp_path / "runs", 8, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert out.strip() == str(run_dir) and "Traceback" not in err
    summary = reader.read_summary(run_dir)
    assert summary["status"] == "interrupted"
    epoch = checkpoint.load(run_dir / checkpoint.CHECKPOINT).epoch
    assert epoch >= 8 and epoch in (summary["epochs_run"], summary["epochs_run"] - 1)
    result = runner.invoke(app, ["train", "--resume", str(run_dir), f"train.epochs={epoch + 4}",
                                 "-q"])
    assert result.exit_code == 0, result.output
    assert_same_run(straight_run(tmp_path, epoch + 4), run_dir)


def test_after_sigkill_the_run_is_stale_and_resume_finishes_it_exactly(tmp_path, long_config):
    process = start(long_config, tmp_path / "runs")
    run_dir = wait_for_rows(tmp_path / "runs", 12, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert reader.read_summary(run_dir)["status"] == "running"
    assert runlock.holder(run_dir)["pid"] == process.pid

    shown = runner.invoke(app, ["compare", str(run_dir), "--format", "json"])
    (row,) = json.loads(shown.stdout)
    assert row["status"] == "stale"
    assert f"the process that ran it (pid {process.pid} on host" in row["note"]
    diagnosed = runner.invoke(app, ["diagnose", str(run_dir), "--format", "json"])
    assert diagnosed.exit_code == 0, diagnosed.output
    assert json.loads(diagnosed.stdout)["status"] == "stale"

    epoch = checkpoint.load(run_dir / checkpoint.CHECKPOINT).epoch
    assert epoch >= 10 and epoch % 5 == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), f"train.epochs={epoch + 4}",
                                 "-q"])
    assert result.exit_code == 0, result.output
    assert reader.read_summary(run_dir)["resumed"][0]["previous_status"] == "stale"
    assert_same_run(straight_run(tmp_path, epoch + 4), run_dir)
    assert detach.wait_until_free(run_dir)  # the figures are drawn after the command returns
    assert not (run_dir / runlock.LOCK).exists()


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path, long_config):
    process = start(long_config, tmp_path / "runs")
    try:
        run_dir = wait_for_rows(tmp_path / "runs", 2, process)
        result = runner.invoke(app, ["train", "--resume", str(run_dir)])
        assert result.exit_code == 2
        assert f"still running (pid {process.pid} on host" in result.output
        (row,) = json.loads(runner.invoke(app, ["compare", str(run_dir), "--format",
                                                "json"]).stdout)
        assert row["status"] == "running" and row["note"] == ""
    finally:
        process.kill()
        process.communicate()


def test_eight_runs_started_at_once_with_one_name_get_eight_complete_directories(tmp_path):
    config_path = tmp_path / "small.yaml"
    config_path.write_text(yaml.safe_dump({
        "name": "shared", "data": {"generator": {"name": "blobs", "n_samples": 120,
                                                  "features": 3}},
        "model": {"hidden_layers": [4]}, "train": {"epochs": 3, "checkpoint_every": 1}}))
    runs_dir = tmp_path / "runs"
    # Eight processes each spinning a BLAS thread per core would take turns rather than share.
    one_thread = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                         "MKL_NUM_THREADS")}
    processes = [start(config_path, runs_dir, "--name", "same", env=one_thread)
                 for _ in range(8)]
    printed = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        printed.append(out.strip())
    directories = sorted(runs_dir.iterdir())
    assert len(directories) == 8 and sorted(printed) == [str(d) for d in directories]
    for run_dir in directories:
        assert detach.wait_until_free(run_dir)  # the figures are drawn after the command returns
        assert run_dir.name.startswith("same-")
        summary = reader.read_summary(run_dir)
        assert summary["status"] == "completed" and summary["epochs_run"] == 3
        assert config.load(run_dir / layout.CONFIG).name == "same"
        state, _ = layout.load_params(run_dir / layout.PARAMS)
        assert state["W1"].shape == (4, 3)
        assert (run_dir / layout.METRICS).read_text().count("\n") == 4
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "config.yaml", "curves.png", "diagnosis.json", "diagnosis.md", "metrics.csv",
            "params.npz", "summary.json"]  # no lock, checkpoint or temporary file left


def test_sigterm_stops_a_sweep_like_ctrl_c_and_leaves_no_worker_behind(tmp_path):
    space = {**LONG, "train": {**LONG["train"], "epochs": 10**6, "early_stopping": None,
                               "learning_rate": {"loguniform": [1e-3, 1e-2]}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    runs_dir = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "dlrun.cli", "sweep",
                                str(tmp_path / "space.yaml"), "--trials", "4", "--workers", "2",
                                "-q", "--runs-dir", str(runs_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(runs_dir.glob("*/sweep.json")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    workers = []
    while len(workers) < 2 and time.monotonic() < deadline:  # both trials have begun
        workers = [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()]
        time.sleep(0.05)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    try:  # the trials never end by themselves: only the sweep stopping them ends them
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "interrupted" in out and "Traceback" not in err
        (sweep_dir,) = runs_dir.iterdir()
        assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "interrupted"
        time.sleep(0.5)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
        assert alive == [], "worker processes outlived the sweep"
    finally:  # a failure here must not leave endless trials running through the suite
        process.kill()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
