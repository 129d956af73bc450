"""dlrun sweep --cluster on a real Dask LocalCluster: scheduler and worker processes on loopback."""

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import detach
from dlrun.cli import app
from dlrun.sweep import cluster as cluster_module

distributed = pytest.importorskip("distributed")
runner = CliRunner()

pytestmark = pytest.mark.slow

SPACE = """\
name: dask
seed: 2
data:
  generator: {name: moons, n_samples: 200, noise: 0.2}
model:
  hidden_layers: {choice: [[8, 4], [6]]}
train:
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [16, 64]}
  epochs: 4
"""


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


def sweep(tmp_path, config, runs, *args):
    result = runner.invoke(app, ["sweep", str(config), "-q", "--runs-dir", str(tmp_path / runs),
                                 *[str(a) for a in args]])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip())


def frame(sweep_dir):
    return pd.read_csv(sweep_dir / "sweep.csv").drop(columns="seconds")


def test_a_pruned_cluster_sweep_trains_the_epochs_of_a_local_unpruned_one(tmp_path, scheduler):
    """Which trials ASHA promotes depends on the order workers finish in, but every epoch a trial
    trains, paused and gone on from its checkpoint on whichever worker, is the local one's."""
    config = tmp_path / "space.yaml"
    config.write_text(SPACE)
    remote = sweep(tmp_path, config, "remote", "--trials", 6, "--prune", "--prune-min-epochs", 1,
                   "--cluster", scheduler.scheduler_address)
    local = sweep(tmp_path, config, "local", "--trials", 6, "--workers", 1)
    values = ["trial", "run", "seed", "model.hidden_layers", "train.learning_rate",
              "train.batch_size"]
    pd.testing.assert_frame_equal(frame(remote)[values], frame(local)[values])
    assert sorted(p.name for p in remote.iterdir() if p.name.startswith("trial-")) == [
        f"trial-000{i}" for i in range(6)]
    for row in frame(remote).itertuples():
        trained = pd.read_csv(remote / row.run / "metrics.csv").drop(columns="seconds")
        whole = pd.read_csv(local / row.run / "metrics.csv").drop(columns="seconds")
        assert len(trained) == row.epochs_run
        pd.testing.assert_frame_equal(trained, whole.head(row.epochs_run))
        if row.status == "completed":
            assert ((remote / row.run / "params.npz").read_bytes()
                    == (local / row.run / "params.npz").read_bytes())
    assert "completed" in set(frame(remote)["status"])


def test_a_worker_lost_mid_trial_neither_loses_nor_duplicates_a_trial(tmp_path, scheduler):
    config = tmp_path / "space.yaml"
    # trials long enough (about a second) for the kill to land in the middle of one
    config.write_text(SPACE.replace("n_samples: 200", "n_samples: 1500").replace("epochs: 4", "epochs: 250"))
    killed = []

    def kill_a_busy_worker():
        with distributed.Client(scheduler.scheduler_address, set_as_default=False) as client:
            deadline = time.time() + 60
            while time.time() < deadline:
                busy = [worker for worker, keys in client.processing().items() if keys]
                if busy:
                    time.sleep(0.3)  # well into its trial
                    pids = client.run(os.getpid, workers=busy[:1])
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                    return
                time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    remote = sweep(tmp_path, config, "remote", "--trials", 2, "--cluster", scheduler.scheduler_address)
    killer.join()
    assert killed, "no worker was busy to be killed"
    local = sweep(tmp_path, config, "local", "--trials", 2, "--workers", 1)
    results = frame(remote)
    assert results["trial"].tolist() == [0, 1] and set(results["status"]) == {"completed"}
    pd.testing.assert_frame_equal(results, frame(local))
    assert detach.wait_until_free(remote)  # its report is written after the command returns
    assert sorted(p.name for p in remote.iterdir()) == [
        "report.html", "sweep.csv", "sweep.json", "sweep.yaml", "trial-0000", "trial-0001"]


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", "1s")
    config = tmp_path / "space.yaml"
    config.write_text(SPACE)
    import socket
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["sweep", str(config), "--runs-dir", str(tmp_path / "runs"),
                                 "--cluster", f"tcp://127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert f"--cluster tcp://127.0.0.1:{port}: cannot reach the scheduler" in result.output
    assert not (tmp_path / "runs").exists()
