"""The sweep's asynchronous scheduling: backends pull jobs one at a time, ASHA promotes as soon
as a trial is in the top 1/factor of its rung, and a promoted trial ends as if never paused."""

import json
import shlex
import shutil

import pandas as pd
import pytest
from test_sweep import SPACE, invoke, run_sweep, table, write

from dlrun import detach
from dlrun.sweep import run as sweep
from dlrun.sweep.asha import Ladder
from dlrun.sweep.space import SearchSpace
from dlrun.sweep.trial import TrialTask
from dlrun.sweep.workers import ProcessBackend, SerialBackend
from dlrun.yamlio import parse

TINY = {"name": "tiny", "seed": 0, "data": {"generator": {"name": "moons", "n_samples": 60}},
        "model": {"hidden_layers": [3]}, "train": {"epochs": 1}}


class Jobs:
    """A next_job() that hands out `count` jobs and, every other time it is asked while a job is
    in flight, has nothing to start now; it records how many jobs were in flight at each call."""

    def __init__(self, count: int):
        self.count, self.given, self.returned, self.calls = count, 0, 0, 0
        self.in_flight_at_call: list[int] = []

    def __call__(self):
        in_flight = self.given - self.returned
        self.in_flight_at_call.append(in_flight)
        self.calls += 1
        if self.given == self.count or (in_flight and self.calls % 2):
            return None  # nothing can start now: the backend waits for a result, then asks again
        self.given += 1
        return TrialTask(self.given - 1, TINY, "tiny.yaml")


@pytest.mark.parametrize("make, slots", [(SerialBackend, 1), (lambda: ProcessBackend(2), 2)])
def test_a_backend_pulls_jobs_as_slots_free_and_ends_when_none_is_left(make, slots):
    backend = make()
    jobs = Jobs(count=5)
    try:
        indices = []
        for result in backend.run(jobs):
            jobs.returned += 1
            assert result.summary["status"] == "completed"
            indices.append(result.index)
    finally:
        backend.close()
    assert sorted(indices) == [0, 1, 2, 3, 4]
    assert max(jobs.in_flight_at_call) < slots  # never asked with its slots full
    assert jobs.in_flight_at_call[-1] == 0  # it ended with nothing in flight and nothing to start


LONGER = SPACE.replace("epochs: 4", "epochs: 9")


def serial_sweep(runs_dir, text=LONGER, **options) -> sweep.Sweep:
    data, lines = parse(text, "space.yaml")
    space = SearchSpace.from_data(data, "space.yaml", lines)
    options = sweep.Options(**{"trials": 9, "prune": True, "prune_min_epochs": 1, **options})
    return sweep.run(sweep.create(space, runs_dir, options, "this process"), SerialBackend())


def outcomes(swept: sweep.Sweep) -> pd.DataFrame:
    frame = sweep.results_frame(swept.space, list(swept.finished.values()))
    return frame.drop(columns=["seconds"])


def test_asha_with_one_worker_is_the_same_sweep_for_the_same_seed(tmp_path):
    first = outcomes(serial_sweep(tmp_path / "a"))
    pd.testing.assert_frame_equal(first, outcomes(serial_sweep(tmp_path / "b")))
    assert set(first["status"]) == {"completed", "pruned"}
    other = outcomes(serial_sweep(tmp_path / "c", seed=1))
    assert not other["train.learning_rate"].equals(first["train.learning_rate"])


def test_a_ladder_promotes_from_the_highest_rung_the_best_of_its_top_third():
    ladder = Ladder([1, 3], factor=3)
    for point, value in enumerate([0.5, 0.2, 0.9]):
        ladder.report(0, point, (value, 0, point))
    assert ladder.promotable({0: 0, 1: 0, 2: 0}) == (0, 1)  # ⌊3/3⌋ = 1: point 1 only
    ladder.report(1, 1, (0.1, 0, 1))
    assert ladder.promotable({0: 0, 1: 1, 2: 0}) is None  # rung 1 holds 1 < 3; point 1 went on
    # once nothing new can start, a rung with fewer than `factor` points still sends its best on
    assert ladder.promotable({0: 0, 1: 1, 2: 0}, last_call=True) == (1, 1)
    assert ladder.stop_after(None) == 1 and ladder.stop_after(0) == 3 and ladder.stop_after(1) is None


def test_total_epochs_pruned_never_exceed_unpruned(tmp_path):
    for factor, first_rung in [(2, 1), (3, 2), (4, 1)]:
        pruned = serial_sweep(tmp_path / f"p{factor}", prune_factor=factor,
                              prune_min_epochs=first_rung)
        unpruned = serial_sweep(tmp_path / f"u{factor}", prune=False)
        epochs = outcomes(pruned).set_index("trial")["epochs_run"]
        full = outcomes(unpruned).set_index("trial")["epochs_run"]
        assert (epochs <= full).all() and epochs.sum() < full.sum()


def test_pruned_trials_never_rank_even_with_the_best_figures():
    frame = pd.DataFrame({"trial": [0, 1, 2], "run": ["trial-0000", "trial-0001", "trial-0002"],
                          "status": ["pruned", "completed", "completed"],
                          "dev_error": [0.01, 0.2, 0.1], "dev_loss": [0.1, 0.5, 0.4],
                          **{c: [1.0] * 3 for c in sweep.RESULT_COLUMNS
                             if c not in ("dev_error", "dev_loss")}})
    assert sweep.ranked(frame)["trial"].tolist() == [2, 1]
    by_point = frame.assign(point=[0, 0, 1])  # a point ranks only if none of its trials was pruned
    assert sweep.ranked(by_point)["point"].tolist() == [1]


def test_a_pruned_sweep_chooses_a_completed_trial(tmp_path):
    swept = serial_sweep(tmp_path)
    chosen = swept.finished[swept.info["best"]["trial"]]
    assert chosen.summary["status"] == "completed"
    frame = outcomes(swept)
    assert swept.info["best"]["dev_error"] == frame[frame.status == "completed"]["dev_error"].min()


def fake_sweep(tmp_path, info: dict, rows: list[dict]):
    """A finished sweep directory as `dlrun sweep` leaves it, written by hand."""
    directory = tmp_path / "done"
    directory.mkdir()
    (directory / "sweep.yaml").write_text(SPACE)
    (directory / "sweep.json").write_text(json.dumps({"seed": 4, **info}))
    base = {"point": None, "seed": 4, "model.hidden_layers": "[6]", "train.optimizer.beta1": 0.9,
            "epochs_run": 4, "best_epoch": 4, "train_loss": 0.3, "train_error": 0.1,
            "seconds": 1.0, "dev_set": "abc"}
    frame = pd.DataFrame([{**base, "trial": i, "run": f"trial-{i:04d}", **row}
                          for i, row in enumerate(rows)]).drop(columns="point")
    frame.to_csv(directory / "sweep.csv", index=False)
    return directory


def test_refine_ranks_by_the_sweeps_own_optimize_and_satisfy(tmp_path):
    rows = [{"status": "completed", "train.learning_rate": lr, "train.batch_size": batch,
             "dev_error": error, "dev_loss": loss}
            for lr, batch, error, loss in [(0.001, 16, 0.10, 0.9), (0.01, 20, 0.30, 0.2),
                                           (0.05, 60, 0.05, 0.1), (0.02, 30, 0.20, 0.3)]]
    rows.append({"status": "pruned", "train.learning_rate": 0.1, "train.batch_size": 16,
                 "dev_error": 0.01, "dev_loss": 0.01})
    directory = fake_sweep(tmp_path, {"optimize": "dev_loss", "satisfy": ["batch_size<40"]}, rows)
    _, refined_from = sweep.refine(directory, top=2)
    # by dev loss among batch sizes under 40; dev error alone would say trials 2 and 0
    assert refined_from["trials"] == [1, 3]
    assert refined_from["optimize"] == "dev_loss" and refined_from["satisfy"] == ["batch_size<40"]
    result = invoke("sweep", "--refine", directory, "--top", 4, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "--top 4 needs 4 completed trials with a dev_loss meeting batch_size<40; the sweep has 3" \
        in result.output


def test_the_sweep_report_sorts_by_the_sweeps_own_choice(tmp_path):
    pytest.importorskip("plotly")
    sweep_dir = run_sweep(tmp_path, "--trials", 3, "--workers", 1, "--optimize", "-dev_loss")
    assert detach.wait_until_free(sweep_dir)  # the page is written after the command returns
    page = (sweep_dir / "report.html").read_text()
    assert "Sorted by dev loss (highest first)" in page
    frame = table(sweep_dir).sort_values("dev_loss", ascending=False)
    order = [page.index(f"/{run}</a>") for run in frame["run"]]
    assert order == sorted(order)


def test_the_header_command_reruns_a_pruned_sweep_with_the_same_trials(tmp_path):
    first = run_sweep(tmp_path, "--trials", 6, "--workers", 1, "--prune", "--prune-min-epochs", 1,
                      "--prune-factor", 2, "--optimize", "dev_loss", config=write(tmp_path, LONGER),
                      runs="a")
    info = json.loads((first / "sweep.json").read_text())
    assert info["pruner"]["name"] == "asha" and info["pruner"]["factor"] == 2
    assert info["pruner"]["rungs"] == [1, 2, 4, 8] and info["sampler"]["name"] == "random"
    header = (first / "sweep.yaml").read_text().splitlines()[1]
    command = shlex.split(header.removeprefix("#   dlrun sweep sweep.yaml "))
    assert command == ["--trials", "6", "--seed", "4", "--sampler", "random", "--optimize",
                       "dev_loss", "--prune", "--prune-factor", "2", "--prune-min-epochs", "1"]
    again = run_sweep(tmp_path, *command, "--workers", 1, config=first / "sweep.yaml", runs="b")
    pd.testing.assert_frame_equal(table(first).drop(columns="seconds"),
                                  table(again).drop(columns="seconds"))


class Counting(SerialBackend):
    """This process, remembering every job it was given."""

    def __init__(self):
        self.jobs = []

    def run(self, next_job):
        def counted():
            job = next_job()
            if job is not None:
                self.jobs.append(job)
            return job
        return super().run(counted)


def drive(swept: sweep.Sweep, backend) -> "sweep.asha.Scheduler":
    scheduler = sweep.schedule(swept, backend.slots)
    sweep._drive(swept, backend, scheduler, sweep.SweepReporter())
    for trial, result, reason in scheduler.close():
        swept.finish_trial(trial, {**result.summary, "stop_reason": reason}, result.files)
    return scheduler


def new_sweep(runs_dir, **options) -> sweep.Sweep:
    data, lines = parse(LONGER, "space.yaml")
    space = SearchSpace.from_data(data, "space.yaml", lines)
    options = sweep.Options(**{"trials": 9, "prune": True, "prune_min_epochs": 1, **options})
    return sweep.create(space, runs_dir, options, "this process")


def prefill(target: sweep.Sweep, source: sweep.Sweep, indices) -> None:
    """What `--resume` does before run(): the finished trials read back from their directories."""
    for trial in target.trials:
        if trial.index in indices:
            done = source.finished[trial.index]
            shutil.copytree(source.directory / done.name, target.directory / trial.name)
            trial.summary = json.loads((target.directory / trial.name / "summary.json").read_text())
            target.finished[trial.index] = trial


def test_a_resumed_sweep_skips_its_finished_trials_and_counts_them_at_every_rung_they_passed(
        tmp_path):
    whole = new_sweep(tmp_path / "whole")
    reference = drive(whole, SerialBackend())
    whole.lock.release()
    done = {0, 1, 2, 3}  # points 0-3, each finished (completed or pruned) in the whole sweep
    assert {whole.finished[i].summary["status"] for i in done} == {"completed", "pruned"}
    resumed = new_sweep(tmp_path / "resumed")
    prefill(resumed, whole, done)
    backend = Counting()
    scheduler = drive(resumed, backend)
    resumed.lock.release()
    assert {job.index for job in backend.jobs}.isdisjoint(done)  # never trained again
    assert set(resumed.finished) == set(range(9))
    for index in done:  # their files are those of the whole sweep, untouched
        name = whole.finished[index].name
        assert ((resumed.directory / name / "params.npz").read_bytes()
                == (whole.directory / name / "params.npz").read_bytes())
    for rung, stop in enumerate([1, 3]):
        for point in done:
            live = reference.ladder.scores[rung].get(point)
            if live is None:  # it never got that far
                assert point not in scheduler.ladder.scores[rung]
                continue
            # read back from its metrics.csv (or its summary, where it paused): what it reported
            assert scheduler.ladder.scores[rung][point] == live
    # with every trial finished before, nothing runs and the sweep still chooses
    again = new_sweep(tmp_path / "again")
    prefill(again, whole, set(range(9)))
    backend = Counting()
    swept = sweep.run(again, backend)
    assert backend.jobs == [] and swept.info["status"] == "completed"
    assert swept.info["best"] == whole.best()


@pytest.mark.slow
def test_tpe_with_asha_proposes_the_same_values_whatever_the_number_of_workers(tmp_path):
    pytest.importorskip("optuna")
    config = write(tmp_path, LONGER)
    args = ["--sampler", "tpe", "--trials", 20, "--batch", 2, "--prune", "--prune-min-epochs", 1]
    one = run_sweep(tmp_path, *args, "--workers", 1, config=config, runs="one")
    two = run_sweep(tmp_path, *args, "--workers", 2, config=config, runs="two")
    values = ["trial", "train.learning_rate", "train.optimizer.beta1", "train.batch_size",
              "model.hidden_layers"]
    # past TPE's 10 random start-up points too: it learned from the same first-rung results
    pd.testing.assert_frame_equal(table(one)[values], table(two)[values])


def test_unpruned_trials_of_one_architecture_go_as_stacked_groups_pruned_ones_alone(tmp_path):
    from test_stacked import SAME_ARCHITECTURE

    from dlrun.sweep.stacked import StackedTask

    data, lines = parse(SAME_ARCHITECTURE, "space.yaml")
    space = SearchSpace.from_data(data, "space.yaml", lines)
    kinds = {}
    for prune in (False, True):
        options = sweep.Options(trials=6, prune=prune, prune_min_epochs=1)
        backend = Counting()
        swept = sweep.run(sweep.create(space, tmp_path / str(prune), options, "here"), backend)
        assert len(swept.finished) == 6
        kinds[prune] = [type(job).__name__ for job in backend.jobs]
    assert kinds[False] == [StackedTask.__name__]  # all six in one job: nothing to wait for
    assert set(kinds[True]) == {TrialTask.__name__}  # a stack keeps no checkpoint to pause at
