"""Samplers (random, grid, TPE) reproducible per seed, and sweeps that choose as compare does."""

import json
import math
import shlex
import sys

import pandas as pd
import pytest
from test_sweep import SPACE, invoke, run_sweep, table, write

from dlrun import yamlio
from dlrun.sweep import samplers
from dlrun.sweep.space import SearchSpace

pytest.importorskip("optuna")


def space() -> SearchSpace:
    return SearchSpace.from_data(yamlio.parse(SPACE, "space.yaml")[0], "space.yaml")


def bowl(values) -> float:
    """A made-up objective, lowest at learning rate 1e-2 and beta1 0.9: TPE is told it."""
    return (math.log10(values["train.learning_rate"]) + 2) ** 2 + (
        math.log10(1 - values["train.optimizer.beta1"]) + 1) ** 2


def asked(name: str, seed: int, count: int = 16, batch: int = 4) -> list[dict]:
    sampler = samplers.make(name, space(), seed, count)
    found = []
    for first in range(0, count, batch):
        new = [(i, sampler.ask(i)) for i in range(first, first + batch)]
        for index, values in new:
            sampler.tell(index, bowl(values))
        found += [values for _, values in new]
    return found


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_a_sampler_proposes_the_same_trials_for_the_same_seed(name):
    assert asked(name, 3) == asked(name, 3)
    assert asked(name, 3) != asked(name, 4)


def test_tpe_stays_inside_every_range_on_its_scale():
    for values in asked("tpe", 1, count=24):
        assert 1e-3 <= values["train.learning_rate"] <= 1e-1
        assert 0.8 <= values["train.optimizer.beta1"] <= 0.99
        assert 16 <= values["train.batch_size"] <= 64 and isinstance(values["train.batch_size"], int)
        assert values["model.hidden_layers"] in ([8, 4], [6])


def test_tpe_learns_from_what_it_is_told():
    """After its random start-up trials, TPE's proposals are nearer the bowl's bottom."""
    values = asked("tpe", 0, count=40)
    start, later = values[:10], values[-10:]
    assert (sorted(map(bowl, later))[5] < sorted(map(bowl, start))[5])


def test_a_tpe_sweep_records_its_sampler_and_its_rerun_repeats_it(tmp_path):
    first = run_sweep(tmp_path, "--sampler", "tpe", "--trials", 4, "--batch", 2, "--workers", 1,
                      runs="a")
    info = json.loads((first / "sweep.json").read_text())
    assert info["mode"] == "tpe" and info["sampler"]["name"] == "tpe"
    assert info["sampler"]["seed"] == 4 and info["sampler"]["batch"] == 2
    assert info["optimize"] == "dev_error"
    header = (first / "sweep.yaml").read_text().splitlines()[1]
    command = shlex.split(header.removeprefix("#   dlrun sweep sweep.yaml "))
    assert command == ["--trials", "4", "--seed", "4", "--sampler", "tpe", "--optimize",
                       "dev_error", "--batch", "2"]
    again = run_sweep(tmp_path, *command, "--workers", 1, config=first / "sweep.yaml", runs="b")
    columns = ["train.learning_rate", "train.optimizer.beta1", "train.batch_size", "dev_error"]
    pd.testing.assert_frame_equal(table(first)[columns], table(again)[columns])


def test_satisfy_and_optimize_choose_as_compare_does(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 5, "--workers", 1, "--optimize", "-dev_loss",
                          "--satisfy", "batch_size<40")
    frame = table(sweep_dir)
    allowed = frame[frame["train.batch_size"] < 40]
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["satisfy"] == ["batch_size<40"] and info["optimize"] == "-dev_loss"
    if allowed.empty:
        assert info["best"] is None
    else:
        best = allowed.loc[allowed["dev_loss"].idxmax()]
        assert info["best"]["trial"] == best["trial"] and info["best"]["value"] == best["dev_loss"]


def test_optimizing_a_column_of_words_chooses_no_trial(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 2, "--workers", 1, "--optimize", "status")
    assert json.loads((sweep_dir / "sweep.json").read_text())["best"] is None


def test_duration_is_a_name_satisfy_knows(tmp_path):
    sweep_dir = run_sweep(tmp_path, "--trials", 2, "--workers", 1, "--satisfy", "duration<0")
    assert json.loads((sweep_dir / "sweep.json").read_text())["best"] is None


@pytest.mark.parametrize("args, message", [
    (["--optimize", "dev_eror"], "--optimize: unknown key 'dev_eror' (did you mean dev_error"),
    (["--satisfy", "speed<2"], "--satisfy 'speed<2'"),
    (["--sampler", "bayes"], "--sampler 'bayes': expected one of random, grid, tpe"),
    (["--grid", "--sampler", "tpe"], "--grid is --sampler grid"),
])
def test_a_bad_choice_is_one_line_and_no_sweep_directory(tmp_path, args, message):
    result = invoke("sweep", write(tmp_path), "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_tpe_without_optuna_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    result = invoke("sweep", write(tmp_path), "--runs-dir", tmp_path / "runs", "--sampler", "tpe")
    assert result.exit_code == 2
    assert 'needs Optuna: pip install "dlrun[search]"' in result.output
