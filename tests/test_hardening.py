"""Inputs and faults beyond the property tests' draws: each gets one line and exit status 2,
never a traceback, and nothing half-made is left looking like a run."""

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun import config, detach, yamlio
from dlrun.cli import app
from dlrun.errors import ConfigError
from dlrun.rundir import layout

runner = CliRunner()
QUICKSTART = Path(__file__).parent.parent / "configs" / "quickstart.yaml"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="dlrun")


def one_line_exit_2(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def train_small(tmp_path, *overrides):
    runs = tmp_path / "runs"
    result = invoke("train", QUICKSTART, "-q", "--runs-dir", runs, "train.epochs=2", *overrides)
    assert result.exit_code == 0, result.output
    run_dir = Path(result.output.strip())
    assert detach.wait_until_free(run_dir)  # the figures are drawn after the command returns
    return run_dir


# --- nonsense accepted --------------------------------------------------------------------------

@pytest.mark.parametrize("override, key", [
    ("train.learning_rate=yes", "train.learning_rate"),
    ("train.epochs=on", "train.epochs"),
    ("seed=true", "seed"),
    ("model.hidden_layers=[10, no]", "model.hidden_layers"),
    ("regularization.l2=off", "regularization.l2"),
    ("diagnose.min_gap=no", "diagnose.min_gap"),
    ("data.split.train=yes", "data.split.train"),
    ("train.early_stopping.patience=on", "train.early_stopping.patience"),
])
def test_a_yaml_boolean_is_not_a_number(tmp_path, override, key):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path, [override])
    message = str(caught.value)
    assert f"override {override!r}: {key}: must be a number" in message
    assert "boolean" in message and "\n" not in message


def test_a_boolean_in_the_file_names_its_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\ntrain:\n  epochs: on\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:3: train.epochs: must be a number"):
        config.load(path)


def test_booleans_where_booleans_go_are_still_read(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  shuffle: no\n  early_stopping: yes\nmodel:\n  batch_norm: on\n")
    cfg = config.load(path)
    assert cfg.train.shuffle is False and cfg.model.batch_norm is True
    assert cfg.train.early_stopping.patience == 10


def test_predict_refuses_parameters_that_are_not_finite(tmp_path):
    run_dir = train_small(tmp_path)
    with np.load(run_dir / "params.npz") as saved:
        params = dict(saved)
    params[min(params)].flat[0] = np.nan
    np.savez(run_dir / "params.npz", **params)
    data = tmp_path / "x.csv"
    data.write_text("x1,x2\n0.1,0.2\n")
    line = one_line_exit_2(invoke("predict", run_dir, data))
    assert "params.npz" in line and "not finite" in line


# --- tracebacks instead of one line -------------------------------------------------------------

def test_a_negative_seed_is_refused(tmp_path):
    line = one_line_exit_2(invoke("train", QUICKSTART, "--runs-dir", tmp_path / "runs", "seed=-1"))
    assert "override 'seed=-1': seed: must be greater than or equal to 0" in line
    assert not (tmp_path / "runs").exists()


def test_a_network_too_large_for_memory_is_refused_before_it_is_allocated(tmp_path):
    runs = tmp_path / "runs"
    line = one_line_exit_2(invoke("train", QUICKSTART, "--runs-dir", runs,
                                  "model.hidden_layers=[1000000000000]"))
    assert "override 'model.hidden_layers=[1000000000000]': model.hidden_layers:" in line
    assert "GiB of memory in float32" in line and "GiB is available" in line
    assert not runs.exists()


def test_float32_weights_are_drawn_without_a_float64_copy_and_as_before():
    from dlrun.engine.init import INITIALIZERS
    he = INITIALIZERS["he"]()
    W = he(np.random.default_rng(3), 3000, 700, np.float32)  # more rows than one block holds
    assert W.dtype == np.float32
    whole = (np.random.default_rng(3).standard_normal((3000, 700)) * he.std(3000, 700))
    np.testing.assert_array_equal(W, whole.astype(np.float32))


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_config_that_is_not_a_regular_file_is_refused(tmp_path, target):
    import os
    if target == "fifo":
        target = tmp_path / "fifo"
        os.mkfifo(target)
    link = tmp_path / "exp.yaml"
    link.symlink_to(target)
    line = one_line_exit_2(invoke("train", link, "--runs-dir", tmp_path / "runs"))
    assert f"{link}: not a regular file" in line


def test_a_config_larger_than_the_cap_is_refused(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("# " + "x" * (yamlio.MAX_CONFIG_BYTES + 1) + "\n")
    line = one_line_exit_2(invoke("train", path, "--runs-dir", tmp_path / "runs"))
    assert f"{path}: larger than 1 MiB" in line


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_runs_dir_that_cannot_be_made_is_named(tmp_path, where):
    (tmp_path / "f").write_text("")
    runs = tmp_path / "f" if where == "file" else tmp_path / "f" / "runs"
    line = one_line_exit_2(invoke("train", QUICKSTART, "--runs-dir", runs))
    assert f"--runs-dir {runs}: " + ("is a file" if where == "file" else
                                     "cannot be created (Not a directory)") in line


def test_a_read_only_runs_dir_is_named(tmp_path, monkeypatch):
    import errno
    from pathlib import PosixPath
    real_mkdir = PosixPath.mkdir

    def read_only(self, *args, **kwargs):  # the tests may run as root, whom chmod does not stop
        if self.parent == tmp_path / "runs":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(PosixPath, "mkdir", read_only)
    line = one_line_exit_2(invoke("train", QUICKSTART, "--runs-dir", tmp_path / "runs"))
    assert f"--runs-dir {tmp_path / 'runs'}: cannot create a directory in it (Permission denied)" \
        in line


def test_plot_into_a_read_only_run_is_one_line(tmp_path, monkeypatch):
    import errno
    import tempfile
    run_dir = train_small(tmp_path)

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = one_line_exit_2(invoke("plot", run_dir))
    assert f"{run_dir / 'curves.png'}: cannot write (Permission denied)" in line


def _disk_full_after(monkeypatch, writes: int):
    """Make the `writes`-th write of a file (fsync of an atomic write, or a CSV row) fail as a
    full disk does."""
    import csv
    import errno
    import os
    count = {"n": 0}

    def full(real):
        def wrapper(*args, **kwargs):
            count["n"] += 1
            if count["n"] > writes:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(os, "fsync", full(os.fsync))
    monkeypatch.setattr(csv.DictWriter, "writerow", full(csv.DictWriter.writerow))
    return count


@pytest.mark.slow
@pytest.mark.parametrize("writes", range(14))
def test_a_full_disk_leaves_no_run_or_a_resumable_one(tmp_path, monkeypatch, writes):
    runs = tmp_path / "runs"
    with monkeypatch.context() as patch:
        _disk_full_after(patch, writes)
        result = invoke("train", QUICKSTART, "-q", "--runs-dir", runs, "train.epochs=3",
                        "train.checkpoint_every=1")
    if result.exit_code == 0:
        return  # the disk filled up only after the run was complete (not for small `writes`)
    line = one_line_exit_2(result)
    assert "No space left on device" in line
    runs_left = list(runs.iterdir()) if runs.exists() else []
    for run_dir in runs_left:
        resumed = invoke("train", "-q", "--resume", run_dir)
        assert resumed.exit_code == 0, (sorted(p.name for p in run_dir.iterdir()), resumed.output)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs_run"] == 3


@pytest.mark.parametrize("key, value", [("final", "x"), ("final", {"dev": {"error": "low"}}),
                                        ("classes", 5), ("task", 1), ("best_epoch", "2")])
def test_plot_refuses_a_summary_with_wrong_types(tmp_path, key, value):
    run_dir = train_small(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary[key] = value
    (run_dir / "summary.json").write_text(json.dumps(summary))
    line = one_line_exit_2(invoke("plot", run_dir))
    assert f"{run_dir / 'summary.json'}: {key}: expected" in line


# --- writing outside the run --------------------------------------------------------------------

@pytest.mark.parametrize("figure", ["curves.png", "boundary.png"])
def test_plot_replaces_a_figure_that_is_a_symlink_instead_of_writing_through_it(tmp_path, figure):
    run_dir = train_small(tmp_path)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (run_dir / figure).unlink()
    (run_dir / figure).symlink_to(outside)
    result = invoke("plot", run_dir)
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "keep me"
    assert not (run_dir / figure).is_symlink()
    assert (run_dir / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_resume_never_writes_through_a_lock_file_that_is_a_symlink(tmp_path):
    run_dir = train_small(tmp_path, "train.epochs=4")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (run_dir / "run.lock").unlink(missing_ok=True)
    (run_dir / "run.lock").symlink_to(outside)
    line = one_line_exit_2(invoke("train", "--resume", run_dir))
    assert f"{run_dir / 'run.lock'}: cannot write" in line
    assert outside.read_text() == "keep me"


# --- vague ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("override", ["model.hidden_layers=[10,", "train.optimizer={name: adam",
                                      "train.learning_rate='0.1"])
def test_an_override_that_is_not_yaml_names_the_override_and_its_key(tmp_path, override):
    key = override.partition("=")[0]
    line = one_line_exit_2(invoke("train", QUICKSTART, "--runs-dir", tmp_path / "runs", override))
    assert f"override {override!r}: {key}: the value is invalid YAML" in line
    assert "override:1" not in line


# --- silent ---------------------------------------------------------------------------------------

def _npy_experiment(tmp_path, m=300):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, 2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", (X[:, 0] * X[:, 1] > 0).astype(np.int64))
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: mapped\ndata: {{path: {tmp_path / 'X.npy'}, target: {tmp_path / 'y.npy'}}}\n"
                    "model: {hidden_layers: [6]}\ntrain: {epochs: 6, checkpoint_every: 1}\n")
    return path


def _interrupted_run(tmp_path):
    from dlrun.training import session
    cfg = config.load(_npy_experiment(tmp_path))

    def stop(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    run_dir, summary = session.run(cfg, tmp_path / "runs", stop_check=stop)
    assert summary["status"] == "interrupted"
    return run_dir


def test_resume_refuses_data_that_changed_unless_told(tmp_path):
    run_dir = _interrupted_run(tmp_path)
    X = np.load(tmp_path / "X.npy")
    np.save(tmp_path / "X.npy", X[:250])
    np.save(tmp_path / "y.npy", np.load(tmp_path / "y.npy")[:250])
    line = one_line_exit_2(invoke("train", "-q", "--resume", run_dir))
    assert f"{run_dir}: the data changed since the run started (" in line
    assert "train: 180 examples then, 150 now" in line and "--data-changed" in line
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"

    result = invoke("train", "-q", "--resume", run_dir, "--data-changed")
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["examples"]["train"] == 150
    assert "train: 180 examples then, 150 now" in summary["resumed"][-1]["data_changed"]


def test_resume_with_the_same_data_is_not_refused(tmp_path):
    run_dir = _interrupted_run(tmp_path)
    result = invoke("train", "-q", "--resume", run_dir)
    assert result.exit_code == 0, result.output


def test_diagnose_and_plot_do_not_measure_changed_data_as_the_run(tmp_path):
    run_dir = _interrupted_run(tmp_path)
    assert invoke("train", "-q", "--resume", run_dir).exit_code == 0
    X = np.load(tmp_path / "X.npy")
    np.save(tmp_path / "X.npy", X[::-1])  # the same examples, in another order: other splits
    from dlrun.diagnosis.diagnose import diagnose_run_dir
    (run_dir / "diagnosis.json").unlink()  # else the units measured at the end of training
    units = diagnose_run_dir(run_dir)["units"]
    assert units["reason"].startswith("the data changed since training (train: 180 examples,")
    result = invoke("plot", run_dir)
    assert result.exit_code == 0, result.output
    assert "boundary drawn without the examples: the data changed since training" in result.output


@pytest.mark.parametrize("change", ["cut short", "changed"])
def test_a_mapped_file_changed_during_training_stops_the_run_resumably(tmp_path, change):
    from dlrun.errors import DataError
    from dlrun.training import session
    cfg = config.load(_npy_experiment(tmp_path))
    original = (tmp_path / "X.npy").read_bytes()

    def meddle(row):
        if row["epoch"] == 2:
            with open(tmp_path / "X.npy", "r+b") as handle:
                if change == "cut short":
                    handle.truncate(len(original) // 2)
                else:
                    handle.seek(len(original) - 8)
                    handle.write(b"\0" * 8)

    with pytest.raises(DataError, match=f"X.npy: {change} while the run read it"):
        session.run(cfg, tmp_path / "runs", stop_check=meddle)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "X.npy" in summary["error"]
    assert (run_dir / "checkpoint.npz").exists()
    (tmp_path / "X.npy").write_bytes(original)
    result = invoke("train", "-q", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "summary.json").read_text())["epochs_run"] == 6


# --- sweeps ---------------------------------------------------------------------------------------

WORKER = """
import sys, tempfile, time
from dlrun.sweep.workers import _worker_init
_worker_init()
with tempfile.TemporaryDirectory(dir=sys.argv[1], prefix="dlrun-trial-") as scratch:
    print(scratch, flush=True)
    time.sleep(120)
"""

LAUNCHER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE,
                          text=True)
print(worker.pid, worker.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    import os
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie waiting for its new parent to reap it is gone too
        return open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
    except OSError:
        return True


def test_a_worker_whose_sweep_was_killed_stops_and_removes_its_scratch(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, WORKER, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
    pid, scratch = launcher.stdout.readline().split()
    assert Path(scratch).is_dir()
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    for _ in range(200):  # the worker polls for its parent every second
        if _gone(int(pid)):
            break
        time.sleep(0.1)
    assert _gone(int(pid)), "the worker outlived its sweep"
    assert not Path(scratch).exists()


def test_a_terminated_worker_removes_its_scratch(tmp_path):
    import signal
    import subprocess
    import sys
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    scratch = worker.stdout.readline().strip()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 128 + signal.SIGTERM
    assert not Path(scratch).exists()


@pytest.mark.parametrize("scratch", [False, True])
def test_write_atomic_replaces_a_symlink_and_leaves_no_temporary_file(tmp_path, scratch):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").symlink_to(outside)
    with layout.scratch_writes() if scratch else contextlib.nullcontext():
        layout.write_atomic(run_dir / "summary.json", b"{}\n")
        layout.write_atomic(run_dir / "config.yaml", b"a: 1\n")
    assert outside.read_text() == "keep me"
    assert not (run_dir / "summary.json").is_symlink()
    assert (run_dir / "summary.json").read_bytes() == b"{}\n"
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "summary.json"]
