"""Sweeps that lose a worker, or their own process, half way: every trial ends exactly once, with
the numbers of an undisturbed sweep, and `dlrun sweep --resume` finishes what a killed sweep left.

Workers are killed from outside, as the kernel's out-of-memory killer or a user would: the test
finds the worker process (a descendant of the sweep) that holds a trial's scratch metrics.csv open,
once that file has a few epochs in it, and sends it SIGKILL."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import detach
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


def running_trial(root: int, scratch: Path, name: str | None, rows: int = 5,
                  itself: bool = False):
    """(pid, metrics.csv) of a descendant of `root` (or `root` itself) training trial `name`
    (any trial if None) in `scratch`, once its metrics.csv has `rows` epochs; None if there is
    none yet."""
    for pid in [root] * itself + children(root):
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


def sweep_killing_trial_two(space, tmp_path, where: Path, *options):
    """An 8-trial sweep whose trial 2 has its worker killed each of the 3 times it runs (its
    scratch found under `where`): the sweep directory, its table by trial, trial 2's error."""
    killer = Killer(os.getpid(), where, name="faults-0002", times=3)
    killer.start()
    result, sweep_dir = sweep(space, tmp_path / "runs", "--trials", 8, *options)
    killer.done.set()
    killer.join()
    assert result.exit_code == 0, result.output
    assert len(killer.killed) == 3
    frame = table(sweep_dir).set_index("trial")
    assert frame.loc[2, "status"] == "failed"
    error = json.loads((sweep_dir / "trial-0002" / "summary.json").read_text())["error"]
    return sweep_dir, frame, error


def test_a_trial_that_kills_its_worker_every_time_fails_after_two_retries(space, scratch,
                                                                         tmp_path, undisturbed):
    sweep_dir, frame, error = sweep_killing_trial_two(space, tmp_path, scratch, "--workers", 2)
    assert error.startswith("worker process lost 3 times: pid ") and "SIGKILL" in error
    others = frame.drop(index=2)
    assert set(others["status"]) == {"completed"}  # none of the waiting trials was failed
    pd.testing.assert_frame_equal(others, table(undisturbed).set_index("trial").drop(index=2),
                                  check_dtype=False)  # the failed row has no epochs
    assert {k: v for k, v in digests(sweep_dir).items() if k != "trial-0002"} == \
        {k: v for k, v in digests(undisturbed).items() if k != "trial-0002"}
    assert list(scratch.iterdir()) == []


# --- the sweep's own process killed, then `--resume` -----------------------------------------------

def launch(space: Path, runs: Path, scratch: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlrun.cli", "sweep", str(space), "-q",
                             "--runs-dir", str(runs), *[str(a) for a in args]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})


def wait_until(condition, process: subprocess.Popen, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process is None or process.poll() is None, process.communicate()
        time.sleep(0.02)
    if process is not None:
        process.kill()
    raise AssertionError(f"not within {seconds} s: {what}")


def status_in_ls(runs: Path) -> str:
    result = runner.invoke(app, ["ls", str(runs), "--format", "json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)
    return entry["status"]


def test_a_killed_sweep_reads_stale_and_resume_ends_it_as_if_never_killed(space, scratch, tmp_path,
                                                                         undisturbed):
    runs = tmp_path / "runs"
    process = launch(space, runs, scratch, "--trials", 8, "--workers", 2)
    try:
        wait_until(lambda: len(list(runs.glob("*/trial-*"))) >= 3
                   and running_trial(process.pid, scratch, None), process,
                   "three trials stored and one training")
        workers = children(process.pid)
        process.kill()
        process.wait()
    finally:
        process.kill()
    (sweep_dir,) = runs.iterdir()
    # Its workers notice, stop and remove their scratch directories.
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and "Z" not in
                               Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                               for pid in workers), None, "the workers gone", 30)
    wait_until(lambda: list(scratch.iterdir()) == [], None, "scratch removed", 10)
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "running"
    assert status_in_ls(runs) == "stale"  # never "running" once its process is gone
    kept = sorted(p.name for p in sweep_dir.glob("trial-*"))
    before = {name: (sweep_dir / name / "params.npz").read_bytes() for name in kept}
    (sweep_dir / ".trial-0007.partial-x1y2z3").mkdir()  # a store the kill cut short

    result = runner.invoke(app, ["sweep", "--resume", str(sweep_dir), "-q", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert_same_sweep(sweep_dir, undisturbed)
    assert {name: (sweep_dir / name / "params.npz").read_bytes() for name in kept} == before
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["status"] == "completed" and status_in_ls(runs) == "completed"
    assert [(r["was"], r["kept"]) for r in info["resumed"]] == [("running", len(kept))]
    assert detach.wait_until_free(sweep_dir)  # its report is written after the command returns
    assert not (sweep_dir / runlock.LOCK).exists()


def test_a_killed_sweep_training_in_its_own_process_leaves_a_scratch_resume_removes(
        space, scratch, tmp_path, undisturbed):
    runs = tmp_path / "runs"
    process = launch(space, runs, scratch, "--trials", 8, "--workers", 1)
    wait_until(lambda: list(runs.glob("*/trial-*"))
               and running_trial(process.pid, scratch, None, itself=True),
               process, "a trial stored and one training")
    process.kill()
    process.wait()
    (left,) = scratch.iterdir()  # SIGKILL gives no process the chance to clean up
    assert left.name.startswith(f"dlrun-trial-{process.pid}-")
    (sweep_dir,) = runs.iterdir()
    result = runner.invoke(app, ["sweep", "--resume", str(sweep_dir), "-q", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert list(scratch.iterdir()) == []
    assert_same_sweep(sweep_dir, undisturbed)


@pytest.mark.parametrize("workers", [2, 1])  # with one, the trial stopped is stored interrupted
def test_sigint_stops_a_sweep_as_interrupted_its_scratch_removed_and_resume_finishes_it(
        space, scratch, tmp_path, undisturbed, workers):
    runs = tmp_path / "runs"
    process = launch(space, runs, scratch, "--trials", 8, "--workers", workers)
    wait_until(lambda: list(runs.glob("*/trial-*"))
               and running_trial(process.pid, scratch, None, itself=workers == 1),
               process, "a trial stored and one training")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    (sweep_dir,) = runs.iterdir()
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "interrupted"
    assert status_in_ls(runs) == "interrupted"
    assert list(scratch.iterdir()) == []
    statuses = set(pd.read_csv(sweep_dir / "sweep.csv")["status"])
    assert statuses == ({"completed", "interrupted"} if workers == 1 else {"completed"})
    result = runner.invoke(app, ["sweep", "--resume", str(sweep_dir), "-q", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert_same_sweep(sweep_dir, undisturbed)


# --- what --resume refuses -------------------------------------------------------------------------

QUICK = SPACE.replace("epochs: 120", "epochs: 3").replace("n_samples: 600", "n_samples: 100")


@pytest.fixture
def quick_sweep(tmp_path) -> Path:
    (tmp_path / "quick.yaml").write_text(QUICK)
    result, sweep_dir = sweep(tmp_path / "quick.yaml", tmp_path / "runs", "--trials", 3,
                              "--workers", 1, "--seed", 5)
    assert result.exit_code == 0, result.output
    return sweep_dir


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None
            for p in sorted(directory.rglob("*"))}


@pytest.mark.parametrize("args, message", [
    (["--trials", "4"], "--trials 4: the sweep in {d} was run with --trials 3; --resume goes on "
                        "with its own options"),
    (["--seed", "0"], "--seed 0: the sweep in {d} was run with --seed 5"),
    (["--grid"], "--sampler grid: the sweep in {d} was run with --sampler random"),
    (["--satisfy", "duration<2"], "--satisfy duration<2: the sweep in {d} was run with "
                                  "--satisfy (none)"),
    (["--name", "other"], "--resume {d}: give the sweep directory alone"),
])
def test_resume_refuses_options_that_are_not_the_sweeps_own(quick_sweep, args, message):
    before = snapshot(quick_sweep)
    result = runner.invoke(app, ["sweep", "--resume", str(quick_sweep), *args])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and message.format(d=quick_sweep) in result.output
    assert snapshot(quick_sweep) == before


def test_resume_accepts_the_sweeps_own_options_and_a_finished_sweep_stays_as_it_was(quick_sweep):
    frame = table(quick_sweep)
    result = runner.invoke(app, ["sweep", "--resume", str(quick_sweep), "-q", "--trials", "3",
                                 "--seed", "5"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(table(quick_sweep), frame)


def test_resume_refuses_a_directory_that_is_not_a_sweep(tmp_path, quick_sweep):
    run_dir = quick_sweep / "trial-0000"
    for directory in (tmp_path / "empty", run_dir):
        directory.mkdir(exist_ok=True)
        before = snapshot(directory)
        result = runner.invoke(app, ["sweep", "--resume", str(directory)])
        assert result.exit_code == 2
        assert result.output == (f"error: {directory}: not a sweep directory (no sweep.yaml); "
                                 "--resume takes a directory made by dlrun sweep\n")
        assert snapshot(directory) == before


def test_resume_refuses_a_sweep_still_running(quick_sweep):
    lock = runlock.acquire(quick_sweep, wait=True)  # as the sweep's own process holds it
    try:
        before = snapshot(quick_sweep)
        result = runner.invoke(app, ["sweep", "--resume", str(quick_sweep)])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1
        assert f"{quick_sweep}: the sweep is still running (pid {os.getpid()} on host" in \
            result.output
        assert snapshot(quick_sweep) == before
    finally:
        lock.release()


def test_resume_of_a_tpe_sweep_replays_its_trials_and_proposes_what_it_would_have(tmp_path):
    """Ten random start-up trials, then TPE: the trials after them depend on what it was told."""
    (tmp_path / "quick.yaml").write_text(QUICK)
    result, whole = sweep(tmp_path / "quick.yaml", tmp_path / "runs", "--trials", 14,
                          "--sampler", "tpe", "--batch", 2, "--workers", 1)
    assert result.exit_code == 0, result.output
    cut = tmp_path / "cut" / whole.name
    shutil.copytree(whole, cut)
    for name in ("trial-0007", "trial-0011", "trial-0012", "trial-0013"):
        shutil.rmtree(cut / name)  # never stored: the sweep was killed before them
    summary = json.loads((cut / "trial-0004" / "summary.json").read_text())
    (cut / "trial-0004" / "summary.json").write_text(json.dumps({**summary, "status": "failed"}))
    info = json.loads((cut / "sweep.json").read_text())
    (cut / "sweep.json").write_text(json.dumps({**info, "status": "running"}))

    result = runner.invoke(app, ["sweep", "--resume", str(cut), "-q"])  # one worker, as before
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(table(cut), table(whole))
    assert digests(cut) == digests(whole)
    assert json.loads((cut / "sweep.json").read_text())["resumed"][0]["kept"] == 9


def test_resume_of_a_pruned_sweep_keeps_what_it_stored_and_ends_as_the_whole_one(tmp_path):
    """One worker, so the whole sweep is one order of events; the kill is played back by
    removing the trials it stored last (a trial paused at a rung is stored only once it is
    pruned or ends: after a kill it is trained again from the start)."""
    (tmp_path / "quick.yaml").write_text(QUICK.replace("epochs: 3", "epochs: 9"))
    result, whole = sweep(tmp_path / "quick.yaml", tmp_path / "runs", "--trials", 9, "--prune",
                          "--prune-min-epochs", 1, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert {"pruned", "completed"} <= set(table(whole)["status"])
    cut = tmp_path / "cut" / whole.name
    shutil.copytree(whole, cut)
    order = sorted(cut.glob("trial-*"), key=lambda p: (p / "summary.json").stat().st_mtime_ns)
    for run_dir in order[len(order) // 2:]:
        shutil.rmtree(run_dir)
    info = json.loads((cut / "sweep.json").read_text())
    (cut / "sweep.json").write_text(json.dumps({**info, "status": "running"}))

    result = runner.invoke(app, ["sweep", "--resume", str(cut), "-q"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(table(cut), table(whole))
    assert digests(cut) == digests(whole)


# --- the same on a Dask cluster --------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """Two single-threaded Dask workers in their own processes (nannies restart a killed one);
    the scheduler gives a task up after 2 lost workers' worth of retries, as a local sweep does."""
    distributed = pytest.importorskip("distributed")
    import dask
    work = tmp_path_factory.mktemp("dask")
    with dask.config.set({"distributed.scheduler.allowed-failures": 2}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None,
                                     local_directory=str(work)) as cluster:
        yield cluster, work


def leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("dlrun-trial*")]


def test_a_dask_worker_killed_mid_trial_loses_no_trial_and_changes_no_number(
        space, tmp_path, dask_cluster, undisturbed):
    cluster, work = dask_cluster
    killer = Killer(os.getpid(), work)
    killer.start()
    result, sweep_dir = sweep(space, tmp_path / "runs", "--trials", 8, "--cluster",
                              cluster.scheduler_address)
    killer.done.set()
    killer.join()
    assert result.exit_code == 0, result.output
    assert len(killer.killed) == 1, "no worker was killed mid-trial"
    assert set(table(sweep_dir)["status"]) == {"completed"}
    assert_same_sweep(sweep_dir, undisturbed)
    # the killed worker's scratch was in its Dask work directory, removed once it was restarted
    wait_until(lambda: leftovers(work) == [], None, "the killed worker's scratch removed", 30)


def test_a_trial_that_kills_every_dask_worker_it_runs_on_fails_the_others_complete(
        space, tmp_path, dask_cluster, undisturbed):
    cluster, work = dask_cluster
    _, frame, error = sweep_killing_trial_two(space, tmp_path, work, "--cluster",
                                              cluster.scheduler_address)
    assert error.startswith("worker process lost 3 times: the 3 Dask workers that ran it died")
    pd.testing.assert_frame_equal(frame.drop(index=2),
                                  table(undisturbed).set_index("trial").drop(index=2),
                                  check_dtype=False)
    wait_until(lambda: leftovers(work) == [], None, "the killed workers' scratch removed", 30)


# --- the pool and its losses, with jobs of this test's own ----------------------------------------

@dataclass(frozen=True)
class Job:
    index: int
    poison: bool = False  # its worker dies (SIGKILL) whenever it runs it


@dataclass(frozen=True)
class Group:
    tasks: tuple


def run_or_die(job):
    """A worker's work: each trial's number back, unless the job holds a poisoned one."""
    tasks = getattr(job, "tasks", (job,))
    if any(task.poison for task in tasks):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return [task.index for task in tasks]


def no_init():
    pass


def test_the_pool_runs_again_only_what_a_dead_worker_held_and_a_group_as_single_trials():
    from dlrun.sweep.lost import Losses
    from dlrun.sweep.pool import WorkerPool

    jobs = [Job(0), Group((Job(1), Job(2, poison=True), Job(3))), *[Job(i) for i in range(4, 9)]]
    pending = list(jobs)
    losses = Losses()
    pool = WorkerPool(2, run_or_die, no_init)
    try:
        results = list(pool.run(lambda: pending.pop(0) if pending else None, losses.lost))
    finally:
        pool.close()
    done = sorted(i for result in results if isinstance(result[0], int) for i in result)
    (failed,) = [r for result in results if not isinstance(result[0], int) for r in result]
    assert done == [0, 1, 3, 4, 5, 6, 7, 8]  # each exactly once
    assert failed.index == 2 and failed.summary["status"] == "failed"
    assert failed.summary["error"].startswith("worker process lost 3 times: pid ")
    assert failed.summary["error"].endswith("ended by SIGKILL")
    # the group counted one loss for each of its trials; nothing else was ever counted as lost
    assert losses.counts == {1: 1, 2: 3, 3: 1}


def test_resume_refuses_a_sweep_that_recorded_no_options(quick_sweep):
    info = json.loads((quick_sweep / "sweep.json").read_text())
    del info["options"]  # as a sweep made before sweep.json kept them
    (quick_sweep / "sweep.json").write_text(json.dumps(info))
    before = snapshot(quick_sweep)
    result = runner.invoke(app, ["sweep", "--resume", str(quick_sweep)])
    assert result.exit_code == 2
    assert result.output == (f"error: {quick_sweep / 'sweep.json'}: records no options this dlrun "
                             "knows (an older or newer dlrun made it); start it again: dlrun "
                             f"sweep {quick_sweep / 'sweep.yaml'}\n")
    assert snapshot(quick_sweep) == before
