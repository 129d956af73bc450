"""`dlrun diagnose` on hand-written run directories: the verdicts, the settings and bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import dlrun.data
from dlrun import config
from dlrun.cli import app
from dlrun.diagnosis.diagnose import DIAGNOSIS_JSON, DIAGNOSIS_MD
from dlrun.errors import DataError
from dlrun.training import session

runner = CliRunner()
COLUMNS = ["epoch", "learning_rate", "train_cost", "train_loss", "train_error", "dev_loss",
           "dev_error", "grad_norm_1", "grad_norm_2", "grad_norm_3", "seconds"]


def write_run(path, train_error=0.15, dev_error=0.16, train_dev_error=None, status="completed",
              epochs=20, final=True):
    """A run directory as `dlrun train` writes it, with chosen final errors and no params.npz."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(config.validate({"name": "fixture"}, "test").to_yaml())
    errors = {"train": train_error, "dev": dev_error, "train_dev": train_dev_error}
    summary = {"status": status, "name": "fixture", "task": "binary", "best_epoch": epochs,
               "stop_reason": "all epochs run", "divergence": None,
               "examples": {"train": 600, "dev": 200}}
    if final:
        summary["final"] = {split: {"loss": 0.3, "error": error}
                            for split, error in errors.items() if error is not None}
    (path / "summary.json").write_text(json.dumps(summary))
    lines = [",".join(COLUMNS)]
    for epoch in range(1, epochs + 1):
        loss = 1.0 / epoch
        lines.append(",".join(str(v) for v in (epoch, 0.01, loss, loss, 0.5 / epoch, loss,
                                               0.6 / epoch, 0.5, 1.0, 0.8, 0.01 * epoch)))
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


def diagnose_json(*args):
    result = runner.invoke(app, ["diagnose", *map(str, args), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_train_and_dev_at_15_and_16_percent_is_high_bias(tmp_path):
    from dlrun.data.bayes import bayes_error
    from dlrun.data.synthetic import GENERATORS
    from dlrun.engine.registry import build

    diagnosis = diagnose_json(write_run(tmp_path / "run"))
    assert diagnosis["verdict"] == "high bias"
    # human_error: auto measures the bias from the Bayes error of the run's generator
    expected = bayes_error(build(GENERATORS, "generator", config.DataConfig().generator))
    assert diagnosis["human_error"] == "auto" and diagnosis["bayes_error"] == expected.to_json()
    assert diagnosis["errors"]["human"] == expected.value
    assert diagnosis["gaps"]["avoidable_bias"]["value"] == pytest.approx(0.15 - expected.value)


def test_human_error_of_14_percent_turns_the_same_run_variance_limited(tmp_path):
    run_dir = write_run(tmp_path / "run")
    diagnosis = diagnose_json(run_dir, "--human-error", "0.14")
    assert diagnosis["verdict"] == "high variance"
    assert diagnosis["limiting"] == "variance"
    assert diagnosis["settings"]["human_error"] == 0.14
    assert json.loads((run_dir / DIAGNOSIS_JSON).read_text()) == diagnosis


def test_thresholds_are_set_by_key_on_the_command_line(tmp_path):
    run_dir = write_run(tmp_path / "run", train_error=0.01, dev_error=0.11)
    assert diagnose_json(run_dir)["verdict"] == "high variance"
    relaxed = diagnose_json(run_dir, "min_gap=0.2", "diagnose.min_share=0.5")
    assert relaxed["verdict"] == "good fit"
    assert relaxed["settings"]["min_gap"] == 0.2 and relaxed["settings"]["min_share"] == 0.5
    assert relaxed["recommendations"] == []
    assert "Nothing stands out" in (run_dir / DIAGNOSIS_MD).read_text()


def test_a_train_dev_error_in_the_summary_brings_data_mismatch(tmp_path):
    diagnosis = diagnose_json(write_run(tmp_path / "run", train_error=0.02, dev_error=0.15,
                                        train_dev_error=0.025))
    assert diagnosis["verdict"] == "data mismatch"
    assert diagnosis["gaps"]["data_mismatch"]["value"] == pytest.approx(0.125)
    assert diagnosis["gaps"]["variance"]["value"] == pytest.approx(0.005)


def test_a_run_killed_before_its_summary_was_final_is_diagnosed_from_its_last_epoch(tmp_path):
    run_dir = write_run(tmp_path / "run", status="running", epochs=10, final=False)
    diagnosis = diagnose_json(run_dir)
    assert diagnosis["status"] == "stale"  # no process holds its lock: it was killed
    assert "dlrun train --resume" in diagnosis["notes"][0]
    assert diagnosis["errors"]["train"] == pytest.approx(0.05)
    assert diagnosis["errors"]["dev"] == pytest.approx(0.06)
    assert diagnosis["errors_from"].startswith("metrics.csv: epoch 10")
    assert diagnosis["units"]["source"] is None and "params.npz" in diagnosis["units"]["reason"]


def test_a_run_that_recorded_no_epoch_gets_no_verdict_but_a_report(tmp_path):
    run_dir = write_run(tmp_path / "run", status="interrupted", epochs=0, final=False)
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "verdict: no verdict" in result.output
    diagnosis = json.loads((run_dir / DIAGNOSIS_JSON).read_text())
    assert diagnosis["verdict"] is None and diagnosis["epochs_run"] == 0
    assert {found["status"] for found in diagnosis["dynamics"].values()} == {"skipped"}


def test_units_fall_back_to_what_training_measured_when_the_data_cannot_be_rebuilt(
        tmp_path, monkeypatch):
    run_dir, _ = session.run(config.validate({"model": {"init": "zeros", "activation": "tanh"},
                                            "train": {"epochs": 3}}, "test"), runs_dir=tmp_path)
    written = json.loads((run_dir / DIAGNOSIS_JSON).read_text())

    def unavailable(*args, **kwargs):
        raise DataError("data.path: no such file")

    monkeypatch.setattr(dlrun.data, "load", unavailable)
    diagnosis = diagnose_json(run_dir)
    assert diagnosis["units"]["layers"] == written["units"]["layers"]
    assert diagnosis["units"]["source"].startswith(DIAGNOSIS_JSON)
    assert diagnosis["units"]["checks"]["symmetry"]["status"] == "problem"


def corrupt(kind, run_dir):
    if kind == "no summary":
        (run_dir / "summary.json").unlink()
    elif kind == "garbled summary":
        (run_dir / "summary.json").write_text('{"status": "compl')
    elif kind == "summary not an object":
        (run_dir / "summary.json").write_text("[1, 2]")
    elif kind == "unknown status":
        (run_dir / "summary.json").write_text('{"status": "done"}')
    elif kind == "no metrics":
        (run_dir / "metrics.csv").unlink()
    elif kind == "truncated metrics":
        text = (run_dir / "metrics.csv").read_text()
        (run_dir / "metrics.csv").write_text(text[:len(text) // 2])
    elif kind == "short row":
        with open(run_dir / "metrics.csv", "a") as handle:
            handle.write("21,0.01,0.5\n")
    elif kind == "not a number":
        with open(run_dir / "metrics.csv", "a") as handle:
            handle.write("21," + ",".join(["abc"] * (len(COLUMNS) - 1)) + "\n")
    elif kind == "header":
        text = (run_dir / "metrics.csv").read_text()
        (run_dir / "metrics.csv").write_text(text.replace("dev_error", "dev_err", 1))
    elif kind == "no config":
        (run_dir / "config.yaml").unlink()
    elif kind == "corrupt params":
        (run_dir / "params.npz").write_bytes(b"PK\x03\x04 not really a zip")


@pytest.mark.parametrize("kind, message", [
    ("no summary", "not a run directory (no summary.json)"),
    ("garbled summary", "summary.json: not valid JSON"),
    ("summary not an object", "summary.json: expected a JSON object, got list"),
    ("unknown status", "summary.json: status: expected one of running, completed"),
    ("no metrics", "metrics.csv: missing"),
    ("truncated metrics", "the file is truncated"),
    ("short row", "metrics.csv:22: 3 fields where the header has 11"),
    ("not a number", "metrics.csv:22: 'abc' is not a number"),
    ("header", "metrics.csv:1: the header has no 'dev_error' column"),
    ("no config", "config.yaml: missing"),
    ("corrupt params", "params.npz: not a readable .npz parameter file"),
])
def test_a_corrupt_run_directory_is_one_line_and_exit_status_2(tmp_path, kind, message):
    run_dir = write_run(tmp_path / "run")
    if kind == "corrupt params":
        run_dir, _ = session.run(config.validate({"train": {"epochs": 2}}, "test"),
                               runs_dir=tmp_path / "runs")
        (run_dir / DIAGNOSIS_JSON).unlink()
        (run_dir / DIAGNOSIS_MD).unlink()
    corrupt(kind, run_dir)
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not any(path.name.startswith((".diagnosis", "diagnosis")) for path in run_dir.iterdir())


def test_a_percentage_recorded_as_human_error_is_refused_with_where_it_is_set(tmp_path):
    run_dir = write_run(tmp_path / "run")
    spec = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(spec.replace("human_error: auto", "human_error: 5.0"))
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert (f"(for 5% write 0.05) (set in {run_dir / 'config.yaml'}; --human-error overrides it)"
            in result.output)
    fixed = runner.invoke(app, ["diagnose", str(run_dir), "--human-error", "0.05"])
    assert fixed.exit_code == 0, fixed.output
    given = runner.invoke(app, ["diagnose", str(run_dir), "diagnose.human_error = 7"])
    assert given.exit_code == 2 and "(for 7% write 0.07)\n" in given.output  # no "set in"


def test_a_path_that_is_not_a_directory_is_refused(tmp_path):
    result = runner.invoke(app, ["diagnose", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "not a run directory (no such directory)" in result.output


@pytest.mark.parametrize("args, message", [
    (["min_gapp=0.1"], "diagnose.min_gapp: unknown key; allowed: human_error, min_gap"),
    (["train.epochs=3"], "expected KEY=VALUE with a key of the diagnose section"),
    (["--human-error", "-0.1"], "diagnose.human_error: "),
    (["min_share=0"], "diagnose.min_share: "),
    (["--human-error", "3"], "diagnose.human_error: 3 is not an error rate"),
    (["--format", "xml"], "--format: expected text or json, got 'xml'"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, args, message):
    run_dir = write_run(tmp_path / "run")
    result = runner.invoke(app, ["diagnose", str(run_dir), *args])
    assert result.exit_code == 2
    assert message in result.output
    if message.endswith(": "):  # a value out of range: the bound is named, however it is worded
        assert "greater than" in result.output and "(got " in result.output
    assert not (run_dir / DIAGNOSIS_JSON).exists()


def test_parameters_that_do_not_fit_the_config_are_a_corrupt_run(tmp_path):
    run_dir, _ = session.run(config.validate({"train": {"epochs": 2}}, "test"), runs_dir=tmp_path)
    np.savez(run_dir / "params.npz", W1=np.zeros((3, 3)))
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 2
    assert "params.npz has no 'b1'" in result.output


def test_a_regression_run_carries_its_verdict_in_rmse_units(tmp_path):
    """summary.json holds the short verdict for regression too, its gaps in RMSE (not percent)."""
    import pandas as pd
    import yaml

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["price"] = 3 * frame.a - frame.b + 0.5 * rng.normal(size=300)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    spec = {"name": "prices", "data": {"path": str(tmp_path / "prices.csv"), "target": "price"},
            "model": {"hidden_layers": [8]}, "train": {"epochs": 20, "learning_rate": 0.01},
            "diagnose": {"human_error": 0.0}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "--runs-dir",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    final = summary["final"]
    verdict = summary["bias_variance"]
    assert verdict["verdict"] == json.loads((run_dir / DIAGNOSIS_JSON).read_text())["verdict"]
    assert verdict["avoidable_bias"] == pytest.approx(final["train"]["error"], rel=1e-6)
    assert verdict["variance"] == pytest.approx(final["dev"]["error"] - final["train"]["error"],
                                                abs=1e-6)
    assert f"avoidable bias {verdict['avoidable_bias']:.4g}, variance" in result.output
