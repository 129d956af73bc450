"""Sweeps that lose a worker, or their own process, half way: every trial ends exactly once, with
the numbers of an undisturbed sweep, and `dlrun sweep --resume` finishes what a killed sweep left.

Workers are killed from outside, as the kernel's out-of-memory killer or a user would: the test
finds the worker process (a descendant of the sweep) that holds a trial's scratch metrics.csv open,
once that file has a few epochs in it, and sends it SIGKILL."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.rundir import runlock

pytestmark = pytest.mark.slow
runner = CliRunner()

# Trials of about a second (a kill lands in the middle of one), each with its own batch size and
# layers, so each runs alone.
SPACE = """\
name: faults
seed: 3
data:
  generator: {name: moons, n_samples: 600, noise: 0.2}
model:
  hidden_layers: {choice: [[8, 4], [6], [5, 5]]}
train:
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [8, 64]}
  epochs: 120
  early_stopping: null
"""
TIMINGS = ["seconds"]


def children(pid: int) -> list[int]:
    """Every live descendant of process `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def running_trial(root: int, scratch: Path, name: str | None, rows: int = 5):
    """(pid, metrics.csv) of a descendant of `root` training trial `name` (any trial if None) in
    `scratch`, once its metrics.csv has `rows` epochs; None if there is none yet."""
    for pid in children(root):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        for link in links:
            path = Path(link)
            if (path.name == "metrics.csv" and str(path).startswith(str(scratch))
                    and (name is None or path.parent.name.startswith(f"{name}-"))):
                try:
                    if path.read_text().count("\n") > rows:
                        return pid, path
                except OSError:
                    pass
    return None


class Killer(threading.Thread):
    """Kills the worker training trial `name` (the first busy one if None), `times` times."""

    def __init__(self, root: int, scratch: Path, name: str | None = None, times: int = 1):
        super().__init__(daemon=True)
        self.root, self.scratch, self.trial, self.times = root, scratch, name, times
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self):
        deadline = time.monotonic() + 120
        while len(self.killed) < self.times and not self.done.is_set() \
                and time.monotonic() < deadline:
            found = running_trial(self.root, self.scratch, self.trial)
            if found and found[0] not in self.killed:
                os.kill(found[0], signal.SIGKILL)
                self.killed.append(found[0])
            time.sleep(0.01)


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The temporary directory trials train in, for this test alone."""
    path = tmp_path / "scratch"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.setenv("TMPDIR", str(path))  # for the processes it starts
    return path


def sweep(space: Path, runs: Path, *args):
    result = runner.invoke(app, ["sweep", str(space), "-q", "--runs-dir", str(runs),
                                 *[str(a) for a in args]])
    return result, (Path(result.output.strip().splitlines()[-1]) if result.exit_code == 0 else None)


def table(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "sweep.csv").drop(columns=TIMINGS)


def digests(sweep_dir: Path) -> dict[str, str]:
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(sweep_dir.glob("trial-*/params.npz"))}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    """The sweep of SPACE with 8 trials, run in one process: what every other must equal."""
    directory = tmp_path_factory.mktemp("undisturbed")
    (directory / "space.yaml").write_text(SPACE)
    result, sweep_dir = sweep(directory / "space.yaml", directory / "runs", "--trials", 8,
                              "--workers", 1)
    assert result.exit_code == 0, result.output
    return sweep_dir


def assert_same_sweep(sweep_dir: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(table(sweep_dir), table(reference))
    assert digests(sweep_dir) == digests(reference)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.startswith("trial-")) == \
        [f"trial-{i:04d}" for i in range(8)]
    assert not list(sweep_dir.glob(".*partial*"))


def test_a_worker_killed_mid_trial_loses_no_trial_and_changes_no_number(space, scratch, tmp_path,
                                                                       undisturbed):
    killer = Killer(os.getpid(), scratch)
    killer.start()
    result, sweep_dir = sweep(space, tmp_path / "runs", "--trials", 8, "--workers", 2)
    killer.done.set()
    killer.join()
    assert result.exit_code == 0, result.output
    assert len(killer.killed) == 1, "no worker was killed mid-trial"
    frame = table(sweep_dir)
    assert set(frame["status"]) == {"completed"}
    assert_same_sweep(sweep_dir, undisturbed)
    assert list(scratch.iterdir()) == []  # the killed worker's scratch removed too
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "completed"


def test_a_trial_that_kills_its_worker_every_time_fails_after_two_retries(space, scratch,
                                                                         tmp_path, undisturbed):
    killer = Killer(os.getpid(), scratch, name="faults-0002", times=3)
    killer.start()
    result, sweep_dir = sweep(space, tmp_path / "runs", "--trials", 8, "--workers", 2)
    killer.done.set()
    killer.join()
    assert result.exit_code == 0, result.output
    assert len(killer.killed) == 3
    frame = table(sweep_dir).set_index("trial")
    assert frame.loc[2, "status"] == "failed"
    error = json.loads((sweep_dir / "trial-0002" / "summary.json").read_text())["error"]
    assert error.startswith("worker process lost 3 times: pid ") and "SIGKILL" in error
    others = frame.drop(index=2)
    assert set(others["status"]) == {"completed"}  # none of the waiting trials was failed
    pd.testing.assert_frame_equal(others, table(undisturbed).set_index("trial").drop(index=2),
                                  check_dtype=False)  # the failed row has no epochs
    assert {k: v for k, v in digests(sweep_dir).items() if k != "trial-0002"} == \
        {k: v for k, v in digests(undisturbed).items() if k != "trial-0002"}
    assert list(scratch.iterdir()) == []
