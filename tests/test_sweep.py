"""dlrun sweep on this machine: run directories, sweep.csv, seeds, pruning, refining, errors."""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from dlrun import detach
from dlrun.sweep import run as sweep
from dlrun.cli import app
from dlrun.sweep.trial import store
from dlrun.sweep.workers import SerialBackend

runner = CliRunner()

SPACE = """\
name: tiny
seed: 4
data:
  generator: {name: moons, n_samples: 200, noise: 0.2}
model:
  hidden_layers: {choice: [[8, 4], [6]]}
train:
  optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [16, 64]}
  epochs: 4
"""
KEYS = ["model.hidden_layers", "train.optimizer.beta1", "train.learning_rate", "train.batch_size"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path, text=SPACE, name="space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_sweep(tmp_path, *args, config=None, runs="runs") -> Path:
    result = invoke("sweep", config or write(tmp_path), "-q", "--runs-dir", tmp_path / runs, *args)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip())


def table(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "sweep.csv")


def test_local_sweep_writes_one_ordinary_run_per_trial_and_a_table(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 5, "--workers", 1)
    assert detach.wait_until_free(sweep_dir)  # its report is written after the command returns
    assert sweep_dir.parent == tmp_path / "runs" and sweep_dir.name.startswith("tiny-")
    assert sorted(p.name for p in sweep_dir.iterdir()) == [
        "report.html", "sweep.csv", "sweep.json", "sweep.yaml",
        *[f"trial-000{i}" for i in range(5)]]
    frame = table(sweep_dir)
    assert list(frame["trial"]) == [0, 1, 2, 3, 4] and set(frame["status"]) == {"completed"}
    assert set(KEYS) <= set(frame.columns)
    for _, row in frame.iterrows():
        run_dir = sweep_dir / row["run"]
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert config["train"]["learning_rate"] == row["train.learning_rate"]
        assert 1e-3 <= row["train.learning_rate"] <= 1e-1
        assert config["train"]["optimizer"]["beta1"] == row["train.optimizer.beta1"]
        assert config["train"]["batch_size"] == row["train.batch_size"]
        assert json.dumps(config["model"]["hidden_layers"], separators=(", ", ": ")) == row["model.hidden_layers"]
        assert config["seed"] == row["seed"]
        assert summary["final"]["dev"]["error"] == row["dev_error"]
        assert summary["sweep"]["trial"] == row["trial"]
        assert len(pd.read_csv(run_dir / "metrics.csv")) == 4
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["status"] == "completed" and info["mode"] == "random" and info["seed"] == 4
    best = frame.sort_values(["dev_error", "dev_loss", "trial"]).iloc[0]
    assert info["best"] == {"trial": int(best["trial"]), "dev_error": best["dev_error"],
                            "optimize": "dev_error", "value": best["dev_error"]}


def test_trial_values_come_from_the_sweep_seed_and_every_trial_keeps_the_configs_seed(tmp_path):
    # Before, each trial also drew its own training seed, and with it its own data and dev set.
    sweep_dir = run_sweep(tmp_path, "--trials", 3, "--workers", 1, "--seed", 11)
    space = sweep.load_space(write(tmp_path))
    for index, row in table(sweep_dir).iterrows():
        sampling, _ = np.random.SeedSequence(11, spawn_key=(index,)).spawn(2)
        values = space.sample(np.random.default_rng(sampling))
        assert row["train.learning_rate"] == values["train.learning_rate"]
        assert row["train.batch_size"] == values["train.batch_size"]
        assert row["seed"] == 4  # the config's
        config = yaml.safe_load((sweep_dir / row["run"] / "config.yaml").read_text())
        assert config["seed"] == 4 and config["data"]["seed"] is None
    assert table(sweep_dir)["dev_set"].nunique() == 1


def npz_arrays(path: Path) -> dict[str, bytes]:
    """Every array of a params.npz as its .npy bytes (header, dtype, shape, data)."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.slow
def test_a_grid_over_init_reproduces_the_standalone_runs_bit_for_bit(tmp_path):
    from dlrun import config as config_module
    from dlrun.training import session

    lesson = Path(__file__).resolve().parent.parent / "configs" / "initialization.yaml"
    inits = ["zeros", "{name: random, scale: 10}", "he"]
    sweep_dir = run_sweep(tmp_path, "--grid", "--trials", 3, "--workers", 1,
                          f"model.init={{choice: [{', '.join(inits)}]}}", config=lesson)
    frame = table(sweep_dir)
    assert len(frame) == 3 and set(frame["status"]) == {"completed"}
    for init, run in zip(inits, frame["run"]):
        alone, _ = session.run(config_module.load(lesson, [f"model.init={init}"]),
                               tmp_path / "alone")
        assert npz_arrays(sweep_dir / run / "params.npz") == npz_arrays(alone / "params.npz")
        trial = json.loads((sweep_dir / run / "summary.json").read_text())
        standalone = json.loads((alone / "summary.json").read_text())
        assert trial["final"] == standalone["final"]
        assert trial["fingerprints"] == standalone["fingerprints"]


def test_seeds_trains_every_point_with_n_seeds_on_one_data_set_and_ranks_by_the_mean(tmp_path):
    result = invoke("sweep", write(tmp_path), "--runs-dir", tmp_path / "runs", "--trials", 2,
                    "--seeds", 3, "--workers", 1)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    frame = table(sweep_dir)
    assert list(frame["point"]) == [0, 0, 0, 1, 1, 1] and list(frame["seed"]) == [4, 5, 6] * 2
    for run in frame["run"]:
        config = yaml.safe_load((sweep_dir / run / "config.yaml").read_text())
        assert config["data"]["seed"] == 4  # the data stays the config's
    assert frame["dev_set"].nunique() == 1
    for _, point in frame.groupby("point"):  # a point's trials share their values
        assert point["train.learning_rate"].nunique() == 1
    means = frame.groupby("point")["dev_error"].mean()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["seeds"] == 3
    best = min(means.index, key=lambda p: (means[p], frame[frame.point == p]["dev_loss"].mean(), p))
    assert info["best"]["point"] == best
    assert info["best"]["dev_error"] == pytest.approx(means[best])
    assert info["best"]["trials"] == [3 * best, 3 * best + 1, 3 * best + 2]
    ranked = sweep.ranked(frame).head(5)
    assert list(ranked["seeds"]) == [3, 3]
    assert ranked["dev_error_std"].iloc[0] == pytest.approx(
        frame[frame.point == best]["dev_error"].std(ddof=1))
    assert "mean dev error over the seeds" in result.output and "±" in result.output


def test_a_swept_seed_changes_the_model_but_not_the_data(tmp_path):
    config = write(tmp_path, SPACE.replace("seed: 4", "seed: {choice: [1, 2, 3]}"))
    sweep_dir = run_sweep(tmp_path, "--grid", "--trials", 6, "--workers", 1, config=config)
    frame = table(sweep_dir)
    assert set(frame["seed"]) == {1, 2, 3}
    assert frame["dev_set"].nunique() == 1  # one dev set, drawn from the sweep's seed
    for run in frame["run"]:
        config_yaml = yaml.safe_load((sweep_dir / run / "config.yaml").read_text())
        assert config_yaml["data"]["seed"] == 0


def test_prune_with_seeds_ranks_points_by_the_mean_over_their_seeds(tmp_path):
    config = write(tmp_path, SPACE.replace("epochs: 4", "epochs: 9"))
    sweep_dir = run_sweep(tmp_path, "--trials", 3, "--seeds", 2, "--workers", 1, "--prune",
                          "--prune-min-epochs", 3, "--prune-factor", 3, "--optimize", "dev_loss",
                          config=config)
    frame = table(sweep_dir)
    first_rung = {point: np.mean([pd.read_csv(sweep_dir / run / "metrics.csv")["dev_loss"][2]
                                  for run in trials["run"]])
                  for point, trials in frame.groupby("point")}
    survivor = min(first_rung, key=first_rung.get)
    for _, row in frame.iterrows():
        assert row["status"] == ("completed" if row["point"] == survivor else "pruned")
    reason = json.loads((sweep_dir / frame[frame.point != survivor]["run"].iloc[0] /
                         "summary.json").read_text())["stop_reason"]
    assert "mean dev_loss over its seeds" in reason


def test_a_data_seed_in_the_config_is_kept_by_every_trial(tmp_path):
    config = write(tmp_path, SPACE.replace("data:\n", "data:\n  seed: 7\n"))
    sweep_dir = run_sweep(tmp_path, "--trials", 1, "--seeds", 2, "--workers", 1, config=config)
    frame = table(sweep_dir)
    assert list(frame["seed"]) == [4, 5]
    for run in frame["run"]:
        assert yaml.safe_load((sweep_dir / run / "config.yaml").read_text())["data"]["seed"] == 7
    assert json.loads((sweep_dir / "sweep.json").read_text())["data_seed"] == 7


def test_seeds_with_a_swept_seed_is_refused(tmp_path):
    config = write(tmp_path, SPACE.replace("seed: 4", "seed: {choice: [1, 2]}"))
    result = invoke("sweep", config, "--runs-dir", tmp_path / "runs", "--seeds", 2)
    assert result.exit_code == 2
    assert "--seeds: the config sweeps seed itself" in result.output
    assert not (tmp_path / "runs").exists()


def test_trials_scored_on_different_dev_sets_are_flagged(tmp_path):
    config = write(tmp_path, SPACE.replace("noise: 0.2}", "noise: {choice: [0.1, 0.3]}}"))
    result = invoke("sweep", config, "--runs-dir", tmp_path / "runs", "--grid", "--trials", 4,
                    "--workers", 1)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    assert table(sweep_dir)["dev_set"].nunique() == 2
    assert "scored on 2 different dev sets" in result.output
    assert "dev set" in result.output  # the column that tells them apart


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    one = run_sweep(tmp_path, "--trials", 6, "--workers", 1, runs="one")
    two = run_sweep(tmp_path, "--trials", 6, "--workers", 2, runs="two")
    info = json.loads((two / "sweep.json").read_text())
    assert info["where"] == "2 local processes"
    pd.testing.assert_frame_equal(table(one).drop(columns="seconds"),
                                  table(two).drop(columns="seconds"))
    for trial in table(one)["run"]:
        metrics_one = pd.read_csv(one / trial / "metrics.csv").drop(columns="seconds")
        metrics_two = pd.read_csv(two / trial / "metrics.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(metrics_one, metrics_two)
    other_seed = run_sweep(tmp_path, "--trials", 6, "--workers", 1, "--seed", 5, runs="three")
    assert not table(other_seed)["train.learning_rate"].equals(table(one)["train.learning_rate"])


def test_sweep_yaml_reruns_the_same_space(tmp_path):
    first = run_sweep(tmp_path, "--trials", 2, "--workers", 1, runs="a")
    again = run_sweep(tmp_path, "--trials", 2, "--workers", 1, config=first / "sweep.yaml", runs="b")
    pd.testing.assert_frame_equal(table(first).drop(columns="seconds"),
                                  table(again).drop(columns="seconds"))


def test_a_diverged_trial_is_a_result_and_the_sweep_goes_on(tmp_path):
    config = write(tmp_path, SPACE.replace(
        "optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}", "optimizer: gd")
        .replace("learning_rate: {loguniform: [1e-3, 1e-1]}", "learning_rate: {choice: [1.0e+30, 0.01]}"))
    result = invoke("sweep", config, "--runs-dir", tmp_path / "runs", "--grid", "--trials", 7,
                    "--workers", 1)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    frame = table(sweep_dir)
    assert len(frame) == 2 * 2  # both choices of both, the middle batch size
    statuses = set(zip(frame["train.learning_rate"], frame["status"]))
    assert statuses == {(1e30, "diverged"), (0.01, "completed")}
    assert "best" in result.output and "diverged" in result.output


def test_grid_spans_every_choice(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--grid", "--trials", 15, "--workers", 1)
    frame = table(sweep_dir)
    # 2 layer choices × k points on 3 other axes ≤ 15: k = 1
    assert len(frame) == 2 and set(frame["model.hidden_layers"]) == {"[8, 4]", "[6]"}
    assert frame["train.learning_rate"].tolist() == pytest.approx([1e-2, 1e-2])
    assert json.loads((sweep_dir / "sweep.json").read_text())["mode"] == "grid"


def asha_in_order(curves: dict[int, list[float]], rungs: list[int], factor: int, epochs: int):
    """ASHA as Li et al. (2018) write it, one worker, from each trial's whole curve: whenever the
    worker is free, promote the best paused trial in the top 1/factor of its rung (highest rung
    first), else start the next trial; once all have started a rung promotes at least its best.
    Returns the epochs each trial trains and the rung each is left paused at."""
    reports = [{} for _ in rungs]
    paused, trained, started = {}, {}, 0
    while True:
        last_call, job = started == len(curves), None
        for rung in reversed(range(len(rungs))):
            ranked = sorted(reports[rung], key=lambda t: (reports[rung][t], t))
            keep = len(ranked) // factor
            keep = max(keep, 1) if last_call and ranked else keep
            waiting = [t for t in ranked[:keep] if paused.get(t) == rung]
            if waiting:
                job = (waiting[0], rung + 1)
                break
        if job is None and last_call:
            return trained, paused
        if job is None:
            job, started = (started, 0), started + 1
        trial, rung = job
        if rung < len(rungs):
            trained[trial] = rungs[rung]
            reports[rung][trial], paused[trial] = curves[trial][rungs[rung] - 1], rung
        else:
            trained[trial] = epochs
            paused.pop(trial, None)


def test_asha_promotes_as_the_algorithm_says_and_resumes_promoted_trials_bit_for_bit(tmp_path):
    config = write(tmp_path, SPACE.replace("epochs: 4", "epochs: 9"))
    full = run_sweep(tmp_path, "--trials", 9, "--workers", 1, config=config, runs="full")
    pruned = run_sweep(tmp_path, "--trials", 9, "--workers", 1, "--prune", "--prune-min-epochs", 1,
                       "--optimize", "dev_loss", config=config, runs="pruned")
    info = json.loads((pruned / "sweep.json").read_text())
    assert info["pruner"] == {"name": "asha", "factor": 3, "rungs": [1, 3],
                              "watches": "dev_loss", "promoted": "resumed from its checkpoint"}
    frame = table(pruned).set_index("trial")
    # the dev loss of the weights a trial paused with, read from the unpruned trials' curves
    curves = {t: pd.read_csv(full / f"trial-000{t}" / "metrics.csv")["dev_loss"].tolist()
              for t in range(9)}
    trained, left_paused = asha_in_order(curves, [1, 3], 3, 9)
    assert frame["epochs_run"].to_dict() == trained
    completed = [t for t in range(9) if trained[t] == 9]
    assert completed and set(left_paused) == set(range(9)) - set(completed)
    for trial in range(9):
        row = frame.loc[trial]
        if trial in completed:
            assert row["status"] == "completed"
            pd.testing.assert_frame_equal(
                pd.read_csv(pruned / row["run"] / "metrics.csv").drop(columns="seconds"),
                pd.read_csv(full / row["run"] / "metrics.csv").drop(columns="seconds"))
            # paused at epochs 1 and 3, gone on from its checkpoints: the very same weights
            assert ((pruned / row["run"] / "params.npz").read_bytes()
                    == (full / row["run"] / "params.npz").read_bytes())
            assert [r["from_epoch"] for r in json.loads(
                (pruned / row["run"] / "summary.json").read_text())["resumed"]] == [1, 3]
        else:
            assert row["status"] == "pruned"
            summary = json.loads((pruned / row["run"] / "summary.json").read_text())
            assert summary["status"] == "pruned"
            assert summary["stop_reason"].startswith(
                f"asynchronous successive halving at epoch {row['epochs_run']}: dev_loss")
            assert not (pruned / row["run"] / "checkpoint.npz").exists()
    # pruning only saves work: no trial trains an epoch more than it would unpruned
    unpruned = table(full).set_index("trial")["epochs_run"]
    assert (frame["epochs_run"] <= unpruned).all()
    assert frame["epochs_run"].sum() < unpruned.sum()


def test_refine_narrows_every_range_around_the_best_trials(tmp_path):
    first = run_sweep(tmp_path, "--trials", 8, "--workers", 1, runs="coarse")
    result = invoke("sweep", "--refine", first, "--top", 3, "--trials", 4, "--workers", 1, "-q",
                    "--runs-dir", tmp_path / "fine")
    assert result.exit_code == 0, result.output
    fine = Path(result.output.strip())
    coarse_table = table(first)
    best = coarse_table.sort_values(["dev_error", "dev_loss", "trial"]).head(3)
    space = yaml.safe_load((fine / "sweep.yaml").read_text())
    rates = np.log(best["train.learning_rate"])
    unit = (rates - math.log(1e-3)) / (math.log(1e-1) - math.log(1e-3))
    low, high = max(0, unit.min() - 0.1), min(1, unit.max() + 0.1)
    expected = [math.exp(math.log(1e-3) + u * (math.log(1e-1) - math.log(1e-3))) for u in (low, high)]
    assert space["train"]["learning_rate"]["loguniform"] == pytest.approx(expected)
    kept_layers = [layers for layers in ([8, 4], [6])
                   if json.dumps(layers, separators=(", ", ": ")) in set(best["model.hidden_layers"])]
    assert space["model"]["hidden_layers"] == {"choice": kept_layers}
    ints = space["train"]["batch_size"]["randint"]
    assert ints[0] <= best["train.batch_size"].min() and best["train.batch_size"].max() <= ints[1]
    fine_table = table(fine)
    assert len(fine_table) == 4
    assert fine_table["train.learning_rate"].between(*expected).all()
    info = json.loads((fine / "sweep.json").read_text())
    assert info["refined_from"]["top"] == 3
    assert info["refined_from"]["trials"] == best["trial"].tolist()
    assert info["seed"] == 5  # the coarse sweep's seed + 1: fresh draws


def test_interrupted_sweep_keeps_finished_trials(tmp_path):
    space = sweep.load_space(write(tmp_path))

    class StopAfterTwo(sweep.SweepReporter):
        def update(self, done, running, best):
            if done == 2:
                raise KeyboardInterrupt

    swept = sweep.create(space, tmp_path / "runs", sweep.Options(trials=5), "this process")
    with pytest.raises(KeyboardInterrupt):
        sweep.run(swept, SerialBackend(), StopAfterTwo())
    info = json.loads((swept.directory / "sweep.json").read_text())
    assert info["status"] == "interrupted"
    assert table(swept.directory)["trial"].tolist() == [0, 1]
    assert sorted(p.name for p in swept.directory.glob("trial-*")) == ["trial-0000", "trial-0001"]


def test_store_writes_a_trial_once_and_never_half(tmp_path):
    assert store(tmp_path, "trial-0001", {"status": "completed"}, {"metrics.csv": b"a\n1\n"})
    assert not store(tmp_path, "trial-0001", {"status": "failed"}, {"metrics.csv": b"other"})
    assert (tmp_path / "trial-0001" / "metrics.csv").read_bytes() == b"a\n1\n"
    assert json.loads((tmp_path / "trial-0001" / "summary.json").read_text())["status"] == "completed"
    with pytest.raises(ValueError, match="refusing file name"):
        store(tmp_path, "trial-0002", {}, {"ok.csv": b"x", "../escape": b"y"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial-0001"]


@pytest.mark.parametrize("text, args, expected", [
    (SPACE.replace("[1e-3, 1e-1]", "[0, 1e-1]"), [],
     ":9: train.learning_rate: loguniform needs bounds > 0"),
    (SPACE.replace("hidden_layers: {choice: [[8, 4], [6]]}", "keep_prob: {uniform: [0.5, 1.5]}"), [],
     "model.keep_prob: must be a number in (0, 1] or a list of them, got 1.5 "
     "(with model.keep_prob = 1.5, an end of uniform [0.5, 1.5])"),
    (SPACE.replace("{randint: [16, 64]}", "{choice: [16, full, -1]}"), [],
     "train.batch_size: must be a whole number >= 1 or 'full', got -1"),
    ("name: plain\ntrain: {epochs: 2}\n", [], "no distribution to sweep over"),
    (SPACE, ["--grid", "--trials", 1], "a grid over these choices has 2 points: --trials must be at least 2"),
    (SPACE, ["train.learning_rate={loguniform: [1, 0.1]}"], "loguniform needs low < high"),
    (SPACE, ["--cluster", "127.0.0.1:8786"], "expected a scheduler address such as tcp://HOST:8786"),
    (SPACE, ["--cluster", "tcp://127.0.0.1:8786", "--workers", 2], "--workers is for local runs"),
    (SPACE, ["diagnose.human_error=5"], "override 'diagnose.human_error=5': diagnose.human_error: "
                                        "5 is not an error rate"),
])
def test_bad_sweep_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, text, args, expected):
    config = write(tmp_path, text)
    result = invoke("sweep", config, "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_bad_refine_input_is_one_line_exit_2(tmp_path):
    result = invoke("sweep", "--refine", tmp_path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "not a sweep directory (no sweep.yaml)" in result.output
    coarse = run_sweep(tmp_path, "--trials", 2, "--workers", 1, runs="coarse")
    result = invoke("sweep", "--refine", coarse, "--top", 3, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "--top 3 needs 3 completed trials with a dev_error; the sweep has 2" in result.output
    result = invoke("sweep", write(tmp_path), "--refine", coarse, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "give CONFIG or --refine SWEEP_DIR, not both" in result.output
    (coarse / "sweep.csv").write_text(table(coarse).drop(columns="train.learning_rate").to_csv())
    result = invoke("sweep", "--refine", coarse, "--top", 1, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "missing column 'train.learning_rate'" in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_config_is_exit_2(tmp_path):
    result = invoke("sweep", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml: no such config file" in result.output


def test_rungs_grow_by_the_factor_below_the_epochs():
    assert sweep.rungs(60, 3, None) == [7, 21]
    assert sweep.rungs(9, 3, 1) == [1, 3]
    assert sweep.rungs(100, 2, 10) == [10, 20, 40, 80]
    assert sweep.rungs(3, 3, 5) == []


def test_bundled_search_config_is_a_valid_space():
    space = sweep.load_space(Path(__file__).parent.parent / "configs" / "search.yaml")
    sweep.check_space(space)
    assert len(sweep.plan(space, sweep.Options(trials=3))) == 3


def test_a_failing_trial_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path):
    missing = tmp_path / "missing.npz"
    config = write(tmp_path, SPACE.replace("hidden_layers: {choice: [[8, 4], [6]]}",
                                           f"init_from: {{choice: [null, '{missing}']}}"))
    sweep_dir = run_sweep(tmp_path, "--grid", "--trials", 2, "--workers", 1, config=config)
    frame = table(sweep_dir)
    assert frame["status"].tolist() == ["completed", "failed"]
    summary = json.loads((sweep_dir / "trial-0001" / "summary.json").read_text())
    assert "no such parameter file" in summary["error"]
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "completed"


def test_name_option_names_the_sweep_and_its_trials(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 1, "--workers", 1, "--name", "other")
    assert sweep_dir.name.startswith("other-")
    assert yaml.safe_load((sweep_dir / "trial-0000" / "config.yaml").read_text())["name"] == "other-0000"
    result = invoke("sweep", "--refine", sweep_dir, "--top", 1, "--trials", 1, "--workers", 1,
                    "--name", "finer", "-q", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()).name.startswith("finer-")


def test_refine_reads_back_a_choice_of_whole_and_decimal_numbers(tmp_path):
    """sweep.csv writes the choice 0 of [0, 0.01] as 0.0 (pandas keeps one dtype per column)."""
    text = SPACE.replace("  epochs: 4\n", "  epochs: 2\nregularization:\n  l2: {choice: [0, 0.01]}\n")
    first = run_sweep(tmp_path, "--trials", 6, "--workers", 1, runs="coarse",
                      config=write(tmp_path, text))
    assert set(table(first)["regularization.l2"]) == {0.0, 0.01}
    result = invoke("sweep", "--refine", first, "--top", 6, "--trials", 2, "--workers", 1, "-q",
                    "--runs-dir", tmp_path / "fine")
    assert result.exit_code == 0, result.output
    space = yaml.safe_load((Path(result.output.strip()) / "sweep.yaml").read_text())
    assert space["regularization"]["l2"] == {"choice": [0, 0.01]}


def test_refine_takes_overrides_and_names_them_in_errors(tmp_path):
    first = run_sweep(tmp_path, "--trials", 4, "--workers", 1, runs="coarse")
    fine = Path(invoke("sweep", "--refine", first, "train.epochs=6", "--top", 2, "--trials", 2,
                       "--workers", 1, "-q", "--runs-dir", tmp_path / "fine").stdout.strip())
    assert yaml.safe_load((fine / "sweep.yaml").read_text())["train"]["epochs"] == 6
    for trial in sorted(fine.glob("trial-*")):
        assert yaml.safe_load((trial / "config.yaml").read_text())["train"]["epochs"] == 6
    result = invoke("sweep", "--refine", first, "--top", 2, "--name", "../out", "--runs-dir",
                    tmp_path / "x")
    assert result.exit_code == 2
    assert "--name '../out': a run name must start with a letter" in result.output
    assert "an end of" not in result.output  # the name is wrong whatever the ranges are
    assert not (tmp_path / "x").exists()


def test_trials_draw_no_figures_and_the_sweep_draws_its_best_three(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 5, "--workers", 1)
    frame = table(sweep_dir)
    best = list(sweep.ranked(frame).head(3)["run"])
    assert json.loads((sweep_dir / "sweep.json").read_text())["figures"] == best
    for run in frame["run"]:
        assert detach.wait_until_free(sweep_dir / run)
        assert (sweep_dir / run / "curves.png").exists() == (run in best)
        assert (sweep_dir / run / "boundary.png").exists() == (run in best)
        assert not (sweep_dir / run / "run.lock").exists()


def test_a_trial_writes_its_scratch_files_without_waiting_for_the_disk(tmp_path, monkeypatch):
    """Scratch files are read back and stored durably by the launcher: fsync there buys nothing;
    no periodic checkpoint either (a trial is run again, never resumed)."""
    import os

    from dlrun.rundir import checkpoint
    from dlrun.sweep.trial import TrialTask, execute

    space = sweep.load_space(write(tmp_path, SPACE.replace("epochs: 4", "epochs: 25")))
    (trial,) = sweep.plan(space, sweep.Options(trials=1))
    synced, saved = [], []
    real_fsync, real_save = os.fsync, checkpoint.save
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(checkpoint, "save", lambda *a: (saved.append(a), real_save(*a)))
    result = execute(TrialTask(trial.index, trial.config, space.source))
    assert result.summary["status"] == "completed" and result.summary["epochs_run"] == 25
    assert synced == [] and saved == []
    assert store(tmp_path, "stored", result.summary, result.files)
    assert len(synced) == len(result.files)  # the stored copy is durable, file by file


def test_a_sweep_flushes_its_trials_to_disk_together_not_file_by_file(tmp_path, monkeypatch):
    import os

    from dlrun.sweep import trial as trial_module

    synced, flushed = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(trial_module, "flush_to_disk", lambda: flushed.append(1) or True)
    monkeypatch.setattr(sweep, "flush_to_disk", trial_module.flush_to_disk)
    sweep_dir = run_sweep(tmp_path, "--trials", 6, "--workers", 1)
    assert len(list(sweep_dir.glob("trial-*/summary.json"))) == 6
    assert flushed  # once the trials are stored
    assert len(synced) < 6 * 6  # not six fsyncs per trial: only sweep.json, .yaml and .csv


def test_scratch_goes_to_memory_unless_a_temporary_folder_was_chosen(tmp_path, monkeypatch):
    from dlrun.sweep import trial

    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(trial, "MEMORY_SCRATCH", str(memory))
    assert trial.local_scratch() == str(memory)
    system = tempfile.gettempdir()
    tempfile.tempdir = None
    monkeypatch.setattr(trial, "MEMORY_SCRATCH_FREE", 1 << 62)  # more than any disk has free
    assert trial.local_scratch() == system
    monkeypatch.setattr(trial, "MEMORY_SCRATCH_FREE", 0)
    assert trial.local_scratch() == str(memory)  # asking for the system's did not choose it
    monkeypatch.setattr(trial, "MEMORY_SCRATCH", str(tmp_path / "missing"))
    assert trial.local_scratch() == system
    monkeypatch.setattr(trial, "MEMORY_SCRATCH", str(memory))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert trial.local_scratch() == str(tmp_path)
    monkeypatch.delenv("TMPDIR")
    tempfile.tempdir = None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "chosen"))  # as a pool worker's
    assert trial.local_scratch() == str(tmp_path / "chosen")


@pytest.mark.parametrize("stack", ["--stack", "--no-stack"])
def test_a_trials_files_name_where_it_is_stored_never_its_scratch(tmp_path, stack):
    sweep_dir = run_sweep(tmp_path, "--trials", 4, "--workers", 1, stack)
    assert detach.wait_until_free(sweep_dir)
    for run in table(sweep_dir)["run"]:
        diagnosis = json.loads((sweep_dir / run / "diagnosis.json").read_text())
        assert diagnosis["run"] == str(sweep_dir / run)
        heading = (sweep_dir / run / "diagnosis.md").read_text().splitlines()[0]
        assert heading == f"# Diagnosis of {sweep_dir / run} (completed)"
    for path in sweep_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".yaml", ".csv", ".html"):
            assert "dlrun-trial" not in path.read_text(), path  # the scratch directories' names
