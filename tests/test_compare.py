"""`dlrun compare` and `dlrun diff` on real run directories, and on damaged copies of them."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.compare import collect
from dlrun.rundir import layout, reader, runlock
from dlrun.training import session


def experiment(seed: int = 0, **train_options) -> config.ExperimentConfig:
    return config.validate({"name": "t", "seed": seed,
                            "data": {"generator": {"name": "moons", "n_samples": 200}},
                            "train": {"epochs": 4, **train_options}}, "test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Six real runs: adam lr 0.01 with seeds 0-2, momentum lr 0.01 with seeds 0-1, adam 0.003."""
    root = tmp_path_factory.mktemp("trained")
    made = {}
    for key, seed, options in [("adam0", 0, {}), ("adam1", 1, {}), ("adam2", 2, {}),
                               ("mom0", 0, {"optimizer": "momentum"}),
                               ("mom1", 1, {"optimizer": "momentum"}),
                               ("slow", 0, {"learning_rate": 0.003})]:
        options = {"learning_rate": 0.01, **options}
        made[key], _ = session.run(experiment(seed, **options), runs_dir=root)
    return made


@pytest.fixture
def runs_dir(tmp_path, trained) -> Path:
    """A fresh copy of the six runs, free to edit."""
    target = tmp_path / "runs"
    target.mkdir()
    for path in trained.values():
        shutil.copytree(path, target / path.name)
    return target


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch):
    """The console is made once per process; tests set its width and restore it afterwards."""
    from dlrun.console import console
    monkeypatch.setattr(console, "_width", console._width)
    return console


def invoke(*args, columns: int = 250):
    from dlrun.console import console
    console._width = columns
    return CliRunner().invoke(app, [str(a) for a in args])


def as_json(*args) -> list[dict]:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def set_dotted(mapping: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def edited_copy(source: Path, target: Path, *, config_changes=None, summary_changes=None,
                metrics_changes=None) -> Path:
    """A copy of a run directory with some config, summary and metrics values replaced."""
    shutil.copytree(source, target)
    if config_changes:
        data = yaml.safe_load((target / layout.CONFIG).read_text())
        for key, value in config_changes.items():
            set_dotted(data, key, value)
        (target / layout.CONFIG).write_text(yaml.safe_dump(data, sort_keys=False))
    if summary_changes:
        data = json.loads((target / layout.SUMMARY).read_text())
        for key, value in summary_changes.items():
            set_dotted(data, key, value)
        (target / layout.SUMMARY).write_text(json.dumps(data))
    if metrics_changes:
        frame = pd.read_csv(target / layout.METRICS)
        for column, value in metrics_changes.items():
            frame[column] = value
        frame.to_csv(target / layout.METRICS, index=False)
    return target


def at_best_epoch(run_dir: Path, column: str) -> float:
    """An independent reading of one metric at the run's best epoch."""
    summary = json.loads((run_dir / layout.SUMMARY).read_text())
    frame = pd.read_csv(run_dir / layout.METRICS)
    return float(frame.loc[frame["epoch"] == summary["best_epoch"], column].iloc[0])


# Reading and flattening


def test_table_holds_flattened_config_and_results_at_the_best_epoch(runs_dir):
    table, params, _ = collect.load([runs_dir])
    assert len(table) == 6
    assert {"train.optimizer.name", "train.learning_rate", "model.hidden_layers",
            "train.optimizer.beta1", "train.optimizer.beta"} <= set(params)
    for row in table.to_dict("records"):
        run_dir = Path(row["path"])
        summary = json.loads((run_dir / layout.SUMMARY).read_text())
        assert row["model.hidden_layers"] == "[10, 5]"
        assert row["status"] == "completed"
        for column in ("train_error", "dev_error", "train_loss", "dev_loss"):
            assert row[column] == pytest.approx(at_best_epoch(run_dir, column))
        assert row["test_error"] == pytest.approx(summary["final"]["test"]["error"])
        diagnosis = run_dir / layout.DIAGNOSIS
        verdict = (json.loads(diagnosis.read_text())["verdict"] if diagnosis.exists()
                   else summary["bias_variance"]["verdict"])
        assert row["verdict"] == verdict
        assert row["duration"] == pytest.approx(summary["duration_seconds"])


def test_flatten_turns_nesting_into_dotted_keys_and_lists_into_text():
    flat = collect.flatten({"train": {"optimizer": {"name": "adam", "beta1": 0.9}},
                            "model": {"hidden_layers": [20, 10], "keep_prob": [0.8, 0.5]},
                            "regularization": {"l2": 0.0}, "seed": 3, "x": None})
    assert flat == {"train.optimizer.name": "adam", "train.optimizer.beta1": 0.9,
                    "model.hidden_layers": "[20, 10]", "model.keep_prob": "[0.8, 0.5]",
                    "regularization.l2": 0.0, "seed": 3, "x": None}


def test_only_config_keys_that_differ_are_shown(runs_dir):
    rows = as_json("compare", runs_dir)
    keys = set(rows[0])
    assert {"seed", "train.optimizer.name", "train.learning_rate"} <= keys
    # beta1 exists for adam only, beta for momentum only: the optimizer's name says that already.
    assert not keys & {"train.optimizer.beta1", "train.optimizer.beta", "model.hidden_layers",
                       "train.epochs", "name"}
    every = as_json("compare", runs_dir, "--all-params")
    assert {"model.hidden_layers", "train.epochs", "train.optimizer.beta1", "name"} <= set(every[0])


def test_an_option_that_differs_between_runs_of_one_optimizer_is_shown(tmp_path, trained):
    edited_copy(trained["adam0"], tmp_path / "a")
    edited_copy(trained["adam0"], tmp_path / "b", config_changes={"train.optimizer.beta1": 0.95})
    rows = as_json("compare", tmp_path)
    assert [row["train.optimizer.beta1"] for row in sorted(rows, key=lambda r: r["run"])] \
        == [0.9, 0.95]


# Sorting, top, filters


def test_rows_are_sorted_by_dev_error_by_default_and_by_any_column_on_request(runs_dir):
    rows = as_json("compare", runs_dir)
    errors = [row["dev_error"] for row in rows]
    assert errors == sorted(errors)
    rates = [row["train.learning_rate"] for row in as_json("compare", runs_dir,
                                                             "--sort", "learning_rate")]
    assert rates == sorted(rates) and rates[0] == 0.003
    losses = [row["dev_loss"] for row in as_json("compare", runs_dir, "--sort=-dev_loss")]
    assert losses == sorted(losses, reverse=True)


def test_runs_without_the_sort_value_come_last(runs_dir):
    (runs_dir / "empty-run").mkdir()
    rows = as_json("compare", runs_dir)
    assert rows[-1]["run"] == "empty-run" and rows[-1]["dev_error"] is None
    assert as_json("compare", runs_dir, "--sort=-dev_error")[-1]["run"] == "empty-run"


def test_top_keeps_the_first_rows_and_shows_what_differs_among_them(runs_dir):
    everything = as_json("compare", runs_dir, "--all-params")
    top = as_json("compare", runs_dir, "--top", 2, "--all-params")
    assert top == everything[:2]
    differing = set(as_json("compare", runs_dir, "--top", 2)[0])
    for key in ("seed", "train.optimizer.name", "train.learning_rate"):
        assert (key in differing) == (top[0][key] != top[1][key])


def test_filter_shorthand_matches_registry_names_and_dotted_keys(runs_dir):
    adam = as_json("compare", runs_dir, "--filter", "optimizer=adam", "--all-params")
    assert len(adam) == 4 and {r["train.optimizer.name"] for r in adam} == {"adam"}
    same = as_json("compare", runs_dir, "--filter", "train.optimizer.name=adam", "--all-params")
    assert [r["run"] for r in same] == [r["run"] for r in adam]
    both = as_json("compare", runs_dir, "--filter", "optimizer=adam", "--filter",
                   "learning_rate=1e-2", "--all-params")
    assert len(both) == 3 and {r["train.learning_rate"] for r in both} == {0.01}
    layers = as_json("compare", runs_dir, "--filter", "hidden_layers=[10, 5]")
    assert len(layers) == 6
    assert as_json("compare", runs_dir, "--filter", "status=diverged") == []


def test_filter_accepts_pandas_queries_with_short_names(runs_dir):
    slow = as_json("compare", runs_dir, "--filter", "learning_rate < 0.005", "--all-params")
    assert [r["train.learning_rate"] for r in slow] == [0.003]
    dotted = as_json("compare", runs_dir, "--filter",
                     "`train.optimizer.name` == 'momentum' and seed > 0", "--all-params")
    assert [(r["train.optimizer.name"], r["seed"]) for r in dotted] == [("momentum", 1)]


@pytest.mark.parametrize("expression, message", [
    ("optimiser=adam", "unknown key 'optimiser' (did you mean optimizer"),
    ("lrate < 0.1", "unknown key 'lrate'"),
    ("learning_rate <", "--filter 'learning_rate <'"),
    ("learning_rate * 2", "not a condition"),
    ("optimizer=", "no value after '='"),
])
def test_bad_filters_are_one_line_errors(runs_dir, expression, message):
    result = invoke("compare", runs_dir, "--filter", expression)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3


def test_an_ambiguous_short_name_lists_what_it_could_mean(tmp_path, trained):
    edited_copy(trained["adam0"], tmp_path / "a", config_changes={
        "train.decay": {"name": "inverse_time", "rate": 0.05}, "data.generator.rate": 0.1})
    result = invoke("compare", tmp_path, "--filter", "rate=0.05")
    assert result.exit_code == 2
    assert "'rate' is ambiguous" in result.output
    assert "data.generator.rate" in result.output and "train.decay.rate" in result.output


def test_resolve_prefers_an_exact_column_then_a_unique_suffix():
    columns = ["name", "train.optimizer.name", "train.learning_rate", "epochs_run", "train.epochs"]
    assert collect.resolve("name", columns) == "name"
    assert collect.resolve("optimizer", columns) == "train.optimizer.name"
    assert collect.resolve("train.optimizer", columns) == "train.optimizer.name"
    assert collect.resolve("epochs", columns) == "train.epochs"
    assert collect.resolve("epochs_run", columns) == "epochs_run"
    with pytest.raises(collect.CompareError, match="ambiguous"):
        collect.resolve("x", ["a.x", "b.x"])
    assert collect.short_name("train.optimizer.name", columns) == "optimizer"
    assert collect.short_name("train.learning_rate", columns) == "learning_rate"


# Optimizing and satisficing metrics


def satisficing_runs(tmp_path: Path, source: Path) -> Path:
    """Four runs with chosen dev errors and durations."""
    for name, dev_error, duration, lr in [("a", 0.10, 120.0, 0.1), ("b", 0.20, 30.0, 0.2),
                                          ("c", 0.15, 50.0, 0.3), ("d", 0.12, 90.0, 0.4)]:
        edited_copy(source, tmp_path / name, config_changes={"train.learning_rate": lr},
                    summary_changes={"duration_seconds": duration},
                    metrics_changes={"dev_error": dev_error})
    return tmp_path


def test_optimize_picks_the_best_run_among_those_meeting_every_constraint(tmp_path, trained):
    root = satisficing_runs(tmp_path, trained["adam0"])
    rows = as_json("compare", root, "--optimize", "dev_error", "--satisfy", "duration<60")
    assert [(r["run"], r["best"]) for r in rows] == [("c", True), ("b", False)]
    unconstrained = as_json("compare", root, "--optimize", "dev_error")
    assert [r["run"] for r in unconstrained if r["best"]] == ["a"]
    two = as_json("compare", root, "--optimize", "dev_error", "--satisfy", "duration<100",
                  "--satisfy", "learning_rate>0.25")
    assert [(r["run"], r["best"]) for r in two] == [("d", True), ("c", False)]
    result = invoke("compare", root, "--optimize", "dev_error", "--satisfy", "duration<60")
    assert "best by dev_error among those meeting every --satisfy: c" in result.output
    assert "2 by --satisfy removed" in result.output


def test_optimize_with_a_minus_sign_maximizes(tmp_path, trained):
    root = satisficing_runs(tmp_path, trained["adam0"])
    rows = as_json("compare", root, "--optimize", "-learning_rate", "--satisfy", "dev_error<0.18")
    assert [r["run"] for r in rows if r["best"]] == ["d"]


# Seed groups


def test_runs_differing_only_by_seed_form_one_row_with_mean_and_std(runs_dir, trained):
    rows = as_json("compare", runs_dir, "--group-seeds")
    assert sorted(r["runs"] for r in rows) == [1, 2, 3]
    adam = next(r for r in rows if r["runs"] == 3)
    assert adam["seeds"] == "0, 1, 2" and adam["train.optimizer.name"] == "adam"
    errors = [at_best_epoch(trained[key], "dev_error") for key in ("adam0", "adam1", "adam2")]
    assert adam["dev_error"] == pytest.approx(np.mean(errors))
    assert adam["dev_error_std"] == pytest.approx(np.std(errors, ddof=1))
    single = next(r for r in rows if r["runs"] == 1)
    assert single["dev_error_std"] is None
    assert [r["dev_error"] for r in rows] == sorted(r["dev_error"] for r in rows)
    assert "seed" not in adam and len(adam["path"]) == 3


def test_seed_groups_show_mean_plus_minus_std_in_the_terminal(runs_dir):
    result = invoke("compare", runs_dir, "--group-seeds")
    assert result.exit_code == 0, result.output
    assert "±" in result.output and "0, 1, 2" in result.output
    assert "3 groups of seeds shown of 6 runs read" in result.output


def test_group_status_counts_members_of_each_status(runs_dir, trained):
    diverged = runs_dir / trained["adam2"].name
    summary = json.loads((diverged / layout.SUMMARY).read_text())
    summary["status"] = "diverged"
    (diverged / layout.SUMMARY).write_text(json.dumps(summary))
    rows = as_json("compare", runs_dir, "--group-seeds")
    assert next(r for r in rows if r["runs"] == 3)["status"] == "2 completed, 1 diverged"


# Output formats


def test_csv_parses_back_to_the_same_values_as_json(runs_dir):
    result = invoke("compare", runs_dir, "--format", "csv")
    assert result.exit_code == 0
    frame = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False, na_values=[""])
    rows = as_json("compare", runs_dir)
    assert list(frame.columns) == list(rows[0])
    assert list(frame["run"]) == [r["run"] for r in rows]
    assert np.allclose(frame["dev_error"], [r["dev_error"] for r in rows])
    assert list(frame["train.optimizer.name"]) == [r["train.optimizer.name"] for r in rows]


def test_markdown_is_a_table_with_one_line_per_run(runs_dir):
    result = invoke("compare", runs_dir, "--format", "markdown")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, rule, body = cells[0], lines[1], cells[2:]
    assert {"run", "optimizer", "learning_rate", "dev_error", "test_error"} <= set(header)
    assert set(rule) <= set("|-: ") and len(body) == 6
    rows = as_json("compare", runs_dir)
    column = header.index("dev_error")
    assert [float(line[column]) for line in body] == \
        [pytest.approx(r["dev_error"], abs=5e-5) for r in rows]


def test_json_is_a_list_of_records_with_paths(runs_dir):
    rows = as_json("compare", runs_dir)
    assert len(rows) == 6
    assert all(Path(r["path"]).parent == runs_dir for r in rows)
    assert all(r["note"] == "" for r in rows)
    assert all(type(r["epochs_run"]) is int and type(r["best_epoch"]) is int for r in rows)
    header, first = list(csv.reader(io.StringIO(invoke("compare", runs_dir, "--format",
                                                       "csv").stdout)))[:2]
    assert first[header.index("epochs_run")] == str(rows[0]["epochs_run"])  # 3, not 3.0


def test_terminal_table_names_runs_and_results(runs_dir):
    result = invoke("compare", runs_dir)
    assert result.exit_code == 0
    for text in ("dev", "test", "optimizer", "learning_rate", "momentum", "completed",
                 "6 runs shown of 6 runs read"):
        assert text in result.output
    assert all(path.name in result.output for path in runs_dir.iterdir())


def test_a_narrow_terminal_keeps_names_and_results_and_names_the_keys_left_out(runs_dir):
    result = invoke("compare", runs_dir, columns=80)
    assert result.exit_code == 0
    assert "not shown for width: optimizer, learning_rate" in " ".join(result.output.split())
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert all(path.name in result.output for path in runs_dir.iterdir())  # never cut


def test_unknown_format_is_refused(runs_dir, trained):
    result = invoke("compare", runs_dir, "--format", "xml")
    assert result.exit_code == 2
    assert "--format: expected table, csv, markdown, json, got 'xml'" in result.output
    result = invoke("diff", trained["adam0"], trained["slow"], "--format", "csv")
    assert result.exit_code == 2
    assert "--format: expected table, json, got 'csv'" in result.output


# Curves


def test_plot_writes_one_figure_of_the_runs_shown(runs_dir, tmp_path):
    target = tmp_path / "curves.png"
    result = invoke("compare", runs_dir, "--top", 3, "--plot", target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grouped = tmp_path / "groups.svg"
    assert invoke("compare", runs_dir, "--group-seeds", "--plot", grouped).exit_code == 0
    assert grouped.read_text().count("<svg") == 1


def test_plot_with_json_output_keeps_stdout_parseable(runs_dir, tmp_path):
    result = invoke("compare", runs_dir, "--format", "json", "--plot", tmp_path / "c.pdf")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 6
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("name, message", [("curves.xyz", "unknown image format '.xyz'"),
                                           ("missing/curves.png", "does not exist")])
def test_plot_to_an_unusable_path_fails_before_writing_anything(runs_dir, tmp_path, name, message):
    result = invoke("compare", runs_dir, "--plot", tmp_path / name)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / name).exists()
    assert not (tmp_path / "missing").exists()


# Damaged run directories


@pytest.fixture
def damaged(tmp_path, trained) -> Path:
    """One run directory of each kind the real world produces."""
    root = tmp_path / "damaged"
    source = trained["adam0"]
    edited_copy(source, root / "ok")
    (edited_copy(source, root / "no-summary") / layout.SUMMARY).unlink()
    (edited_copy(source, root / "bad-json") / layout.SUMMARY).write_text('{"status": "compl')
    (edited_copy(source, root / "no-metrics") / layout.METRICS).unlink()
    (edited_copy(source, root / "bad-yaml") / layout.CONFIG).write_text("train: [1, 2\n")
    metrics = (source / layout.METRICS).read_text()
    (edited_copy(source, root / "truncated") / layout.METRICS).write_text(metrics[:-25])
    (root / "empty").mkdir()
    running = edited_copy(source, root / "running")
    summary = json.loads((source / layout.SUMMARY).read_text())
    partial = {k: v for k, v in summary.items()
               if k not in ("final", "best_epoch", "best_dev_loss", "epochs_run",
                            "duration_seconds", "bias_variance")}
    (running / layout.SUMMARY).write_text(json.dumps({**partial, "status": "running"}))
    (running / layout.METRICS).write_text("".join(metrics.splitlines(keepends=True)[:3]))
    lock = runlock.acquire(running, wait=True)  # this test's process plays the trainer
    killed = edited_copy(running, root / "killed")
    (killed / runlock.LOCK).write_text('{"pid": 4194304, "host": "gone"}')  # nobody holds it
    edited_copy(source, root / "diverged", summary_changes={"status": "diverged"})
    edited_copy(source, root / "interrupted", summary_changes={"status": "interrupted"})
    (edited_copy(source, root / "diagnosed") / layout.DIAGNOSIS).write_text(
        json.dumps({"verdict": "data mismatch", "figures": {}}))
    (edited_copy(source, root / "bad-diagnosis") / layout.DIAGNOSIS).write_text("[1, 2]")
    yield root
    lock.release()


def test_every_damaged_run_appears_with_its_status_or_a_note(damaged, trained):
    result = invoke("compare", damaged, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["run"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {p.name for p in damaged.iterdir()}
    expected_status = {"ok": "completed", "no-summary": "corrupt", "bad-json": "corrupt",
                       "empty": "corrupt", "running": "running", "diverged": "diverged",
                       "interrupted": "interrupted", "no-metrics": "completed",
                       "killed": "stale"}
    for run, status in expected_status.items():
        assert rows[run]["status"] == status
    notes = {run: row["note"] for run, row in rows.items()}
    assert notes["ok"] == "" and notes["running"] == "" and notes["diagnosed"] == ""
    assert notes["no-summary"] == "summary.json missing"
    assert notes["bad-json"].startswith("summary.json:1: invalid JSON")
    assert notes["bad-yaml"].startswith("config.yaml:2: invalid YAML")
    assert "metrics.csv missing" in notes["no-metrics"]
    assert "last row incomplete (ignored)" in notes["truncated"]
    assert notes["empty"] == "config.yaml missing; summary.json missing; metrics.csv missing"
    assert notes["bad-diagnosis"] == "diagnosis.json: expected a mapping, found list"
    assert notes["killed"].startswith("stale: marked running, but the process that ran it "
                                      "(pid 4194304 on host gone")


def test_damaged_runs_keep_every_figure_that_can_still_be_read(damaged, trained):
    rows = {r["run"]: r for r in as_json("compare", damaged, "--all-params")}
    source = trained["adam0"]
    summary = json.loads((source / layout.SUMMARY).read_text())
    frame = pd.read_csv(source / layout.METRICS)
    # Running: no best epoch in the summary yet, so the lowest dev loss of the rows written so far.
    first_two = frame.iloc[:2]
    best = first_two.loc[first_two["dev_loss"].idxmin()]
    assert rows["running"]["best_epoch"] == best["epoch"]
    assert rows["running"]["dev_error"] == pytest.approx(best["dev_error"])
    assert rows["running"]["epochs_run"] == 2
    # Missing metrics: the final figures of summary.json stand in, and the note says so.
    assert rows["no-metrics"]["train_error"] == pytest.approx(summary["final"]["train"]["error"])
    assert rows["bad-json"]["dev_error"] == pytest.approx(at_best_epoch(source, "dev_error"))
    assert rows["bad-json"]["seed"] == 0  # the config still names it
    assert rows["bad-yaml"]["seed"] == 0  # from summary.json when the config is unreadable
    assert rows["truncated"]["epochs_run"] == summary["epochs_run"]
    assert rows["diagnosed"]["verdict"] == "data mismatch"
    assert rows["bad-diagnosis"]["verdict"] == summary["bias_variance"]["verdict"]


def test_damaged_runs_are_listed_under_the_terminal_table(damaged):
    result = invoke("compare", damaged)
    assert result.exit_code == 0
    assert "* bad-json: summary.json:1: invalid JSON" in result.output
    assert "* empty: config.yaml missing" in result.output
    assert "Traceback" not in result.output


def test_an_unreadable_config_does_not_make_every_key_look_different(damaged):
    rows = as_json("compare", damaged)
    assert "model.hidden_layers" not in rows[0] and "train.optimizer.name" not in rows[0]


def test_damaged_runs_survive_grouping_sorting_and_plotting(damaged, tmp_path):
    result = invoke("compare", damaged, "--group-seeds", "--sort", "learning_rate",
                    "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert "empty: no curves to draw" in result.output
    assert (tmp_path / "c.png").exists()


@pytest.mark.parametrize("text, problem", [
    ("epoch,dev_loss\n1,0.5\n2,0.4\n3,0.", "metrics.csv:4: last row incomplete (ignored)"),
    ("epoch,dev_loss\n1,0.5\nx,0.4\n3,0.3\n", "metrics.csv: 1 malformed row(s) ignored (first "
                                             "at line 3)"),
    ("epoch,dev_loss\n1,0.5\n2\n", "metrics.csv: 1 malformed row(s) ignored (first at line 3)"),
])
def test_metrics_rows_that_cannot_be_read_are_skipped_and_reported(tmp_path, text, problem):
    (tmp_path / layout.METRICS).write_text(text)
    record = reader.read_run(tmp_path)
    assert problem in record.problems
    assert list(record.metrics["epoch"]) in ([1.0, 2.0], [1.0, 3.0], [1.0])


def test_metrics_without_an_epoch_header_or_in_binary_are_problems(tmp_path):
    (tmp_path / layout.METRICS).write_text("a,b\n1,2\n")
    assert "metrics.csv:1: header has no 'epoch' column" in reader.read_run(tmp_path).problems
    (tmp_path / layout.METRICS).write_bytes(b"\xff\xfe\x00garbage")
    assert "metrics.csv: not UTF-8 text" in reader.read_run(tmp_path).problems


# Finding runs


def test_folders_of_runs_are_searched_and_names_found_by_their_beginning(runs_dir, trained):
    sweep = runs_dir / "sweep-1"
    sweep.mkdir()
    shutil.copytree(trained["adam0"], sweep / "inner-run")
    assert len(as_json("compare", runs_dir)) == 7
    one = trained["slow"].name
    assert [r["run"] for r in as_json("compare", one[:-2], "--runs-dir", runs_dir)] == [one]


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "nowhere", "no such run directory"),
    (lambda root: (root / "void").mkdir() or root / "void", "no run directories found"),
    (lambda root: (root / "file.txt").write_text("x") and root / "file.txt", "not a directory"),
])
def test_compare_refuses_paths_with_no_runs(tmp_path, make, message):
    result = invoke("compare", make(tmp_path), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_compare_without_arguments_reads_the_runs_directory(runs_dir, tmp_path):
    assert len(as_json("compare", "--runs-dir", runs_dir)) == 6
    result = invoke("compare", "--runs-dir", tmp_path / "nothing-yet")
    assert result.exit_code == 2
    assert "nothing-yet: no such directory; train a run first" in result.output


# diff


def test_diff_lists_changed_keys_and_result_deltas(trained):
    a, b = trained["adam1"], trained["mom0"]
    result = invoke("diff", a, b, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    changes = {c["key"]: (c["change"], c["a"], c["b"]) for c in report["config"]}
    assert changes == {
        "seed": ("changed", 1, 0),
        "train.optimizer.name": ("changed", "adam", "momentum"),
        "train.optimizer.beta": ("added", None, 0.9),
        "train.optimizer.beta1": ("removed", 0.9, None),
        "train.optimizer.beta2": ("removed", 0.999, None),
        "train.optimizer.epsilon": ("removed", 1e-08, None),
    }
    metrics = {m["metric"]: m for m in report["metrics"]}
    for column in ("dev_error", "train_loss"):
        expected = at_best_epoch(b, column) - at_best_epoch(a, column)
        assert metrics[column]["delta"] == pytest.approx(expected)
    assert metrics["status"]["delta"] is None


def test_diff_table_shows_old_and_new_values(trained):
    result = invoke("diff", trained["adam0"], trained["slow"])
    assert result.exit_code == 0
    assert "train.learning_rate" in result.output
    assert "0.01" in result.output and "0.003" in result.output
    assert "dev_error" in result.output and "B − A" in result.output


def test_diff_of_identical_configs_says_so(trained, tmp_path):
    copy = edited_copy(trained["adam0"], tmp_path / "copy")
    result = invoke("diff", trained["adam0"], copy)
    assert result.exit_code == 0
    assert "configs are identical" in result.output


def test_diff_with_an_unreadable_config_still_compares_results(trained, tmp_path):
    broken = edited_copy(trained["adam0"], tmp_path / "broken")
    (broken / layout.CONFIG).write_text("{")
    result = invoke("diff", trained["adam0"], broken)
    assert result.exit_code == 0
    assert "config not compared" in result.output
    assert "B broken: config.yaml" in result.output


def test_diff_finds_runs_by_the_beginning_of_their_names(runs_dir, trained):
    result = invoke("diff", trained["adam0"].name, trained["slow"].name[:-1], "--runs-dir",
                    runs_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["b"]).name == trained["slow"].name


@pytest.mark.parametrize("arg, message", [("t-", "runs in"), ("zzz", "no such run directory")])
def test_diff_refuses_ambiguous_or_unknown_names(runs_dir, trained, arg, message):
    result = invoke("diff", trained["adam0"], arg, "--runs-dir", runs_dir)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_diff_refuses_a_directory_that_is_not_a_run(trained, tmp_path):
    result = invoke("diff", trained["adam0"], tmp_path)
    assert result.exit_code == 2
    assert "not a run directory" in result.output


@pytest.mark.parametrize("output_format, parse", [
    ("json", json.loads),
    ("csv", lambda text: pd.read_csv(io.StringIO(text)).to_dict("records")),
    ("markdown", lambda text: text.strip().splitlines()[2:]),
])
def test_when_nothing_is_left_every_format_says_so_cleanly(runs_dir, output_format, parse):
    result = invoke("compare", runs_dir, "--filter", "status=failed", "--group-seeds",
                    "--format", output_format)
    assert result.exit_code == 0, result.output
    assert parse(result.stdout) == []


def test_when_nothing_is_left_the_terminal_says_why(runs_dir):
    result = invoke("compare", runs_dir, "--filter", "optimizer=rmsprop")
    assert result.exit_code == 0
    assert "0 runs shown of 6 runs read (6 by --filter removed)" in result.output
