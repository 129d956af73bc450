"""`dlrun diagnose`: what is wrong with a run and what to try next, read from its run directory.

A diagnosis joins the error analysis (bias_variance.py), the training dynamics (training_checks.py), the
health of the hidden units (hidden_units.py) and the recipe's advice (recipe.py). It is written beside
the run's other files as diagnosis.json (every figure) and diagnosis.md.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as config_module
from ..config import DiagnoseConfig, ExperimentConfig
from ..errors import ConfigError, DlrunError, RunDirError
from ..rundir import layout, reader, runlock
from . import bias_variance, hidden_units, recipe, training_checks

DIAGNOSIS_JSON, DIAGNOSIS_MD = "diagnosis.json", "diagnosis.md"
REQUIRED_COLUMNS = ("epoch", "train_cost", "train_loss", "train_error", "dev_loss", "dev_error")
SPLITS = ("train", "train_dev", "dev", "test")


@dataclass
class Run:
    """What a diagnosis reads: the run's summary, resolved config and per-epoch metrics."""

    path: Path
    summary: dict
    config: ExperimentConfig
    metrics: dict[str, np.ndarray]


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as {column: values over the epochs}; RunDirError naming the line if malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing (a run directory records one row per epoch "
                          "there)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: cannot read: {error}") from None
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise RunDirError(f"{path}:1: the header has no {missing[0]!r} column; a metrics file "
                          f"starts with {', '.join(REQUIRED_COLUMNS)}")
    if not text.endswith("\n"):
        raise RunDirError(f"{path}:{len(rows)}: the last row is cut short (no line end): the file "
                          "is truncated")
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise RunDirError(f"{path}:{line}: {len(row)} fields where the header has "
                              f"{len(header)}: the file is truncated or corrupt")
        try:
            values.append([float(value) if value else math.nan for value in row])
        except ValueError:
            bad = next(v for v in row if v and not _is_number(v))
            raise RunDirError(f"{path}:{line}: {bad!r} is not a number") from None
    table = np.array(values, dtype=float).reshape(len(values), len(header))
    return {column: table[:, i] for i, column in enumerate(header)}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_summary(summary, path: Path) -> dict:
    if not isinstance(summary, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    if summary.get("status") not in layout.STATUSES:
        raise RunDirError(f"{path}: status: expected one of {', '.join(layout.STATUSES)}, got "
                          f"{summary.get('status')!r}")
    final = summary.get("final") or {}
    if not isinstance(final, dict) or not all(
            isinstance(entry, dict) and isinstance(entry.get("error"), (int, float, type(None)))
            for entry in final.values()):
        raise RunDirError(f"{path}: final: expected {{split: {{loss, error}}}} with numbers")
    return summary


def apply_settings(config: ExperimentConfig, settings: list[str]) -> ExperimentConfig:
    """The config with `KEY=VALUE` settings of its diagnose section applied and validated."""
    if not settings:
        return config
    data = config.model_dump(mode="json")
    for setting in settings:
        _, sep, value = setting.partition("=")
        key = _setting_key(setting)
        if not sep or not key or "." in key:
            raise ConfigError(f"setting {setting!r}: expected KEY=VALUE with a key of the diagnose "
                              f"section ({', '.join(DiagnoseConfig.model_fields)})")
        config_module.apply_override(data, f"diagnose.{key}={value}")
    return config_module.validate(data, "command line")


def _setting_key(setting: str) -> str:
    """The diagnose key a `KEY=VALUE` setting names: `human_error`, `diagnose.human_error`."""
    return setting.partition("=")[0].strip().removeprefix("diagnose.")


def read_run(run_dir: str | Path, settings: list[str] = ()) -> Run:
    """A run directory's summary, config (with settings applied) and metrics, all checked."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a run directory (no such directory)")
    summary = _check_summary(reader.read_summary(path), path / layout.SUMMARY)
    if not (path / layout.CONFIG).is_file():
        raise RunDirError(f"{path / layout.CONFIG}: missing (a run directory keeps its resolved "
                          "config there)")
    config = apply_settings(config_module.load(path / layout.CONFIG), list(settings))
    return Run(path, summary, config, read_metrics(path / layout.METRICS))


def final_errors(run: Run) -> tuple[dict[str, float | None], str]:
    """Errors per split and where they come from: the run's final metrics, else its last epoch."""
    final = run.summary.get("final") or {}
    if final:
        return ({split: final.get(split, {}).get("error") for split in SPLITS},
                "summary.json: final metrics of the weights the run kept")
    epochs = run.metrics["epoch"]
    if len(epochs):
        return ({split: run.metrics[f"{split}_error"][-1] if f"{split}_error" in run.metrics
                 else None for split in SPLITS},
                f"metrics.csv: epoch {int(epochs[-1])} (the run recorded no final metrics)")
    return {}, "none: the run recorded no epoch"


def _unmeasured(reason: str) -> dict:
    skipped = training_checks.check("skipped", reason)
    return {"source": None, "reason": reason, "split": None, "examples": 0, "layers": [],
            "checks": {name: skipped for name in ("symmetry", "dead_relu", "saturation")}}


def _stored_units(run: Run) -> dict | None:
    """Unit figures an earlier diagnosis recorded (at the end of training, from memory)."""
    try:
        stored = json.loads((run.path / DIAGNOSIS_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # nothing usable recorded: the units stay unmeasured
    measured = (stored.get("units") or {}) if isinstance(stored, dict) else {}
    if not measured.get("layers"):
        return None
    try:
        report = hidden_units.judge(measured["layers"], run.config.diagnose,
                             measured.get("split") or "dev")
    except (KeyError, TypeError, ZeroDivisionError):
        return None  # a hand-edited file: better unmeasured than misread
    source = str(measured.get("source"))
    report.update(examples=measured.get("examples", 0), source=source if source.startswith(
        DIAGNOSIS_JSON) else f"{DIAGNOSIS_JSON}, measured earlier on {source}")
    return report


def measure_units(run: Run) -> dict:
    """Unit health of the run's kept weights, rebuilt from config.yaml and params.npz."""
    from ..training.experiment import prepare

    params = run.path / layout.PARAMS
    if not params.is_file():
        return _stored_units(run) or _unmeasured(f"no {layout.PARAMS}: the run saved no parameters")
    state, _ = layout.load_params(params)
    config = run.config.model_copy(
        update={"model": run.config.model.model_copy(update={"init_from": None})})
    try:
        experiment = prepare(config)
    except DlrunError as error:
        return _stored_units(run) or _unmeasured(f"the data could not be rebuilt: {error}")
    try:
        experiment.network.load_state(state, source=str(params))
    except ValueError as error:
        raise RunDirError(f"{error} (it does not match {run.path / layout.CONFIG})") from None
    report = measure_dataset(experiment.network, experiment.dataset, run.config.diagnose)
    report["source"] = f"the weights in {layout.PARAMS}, data rebuilt from {layout.CONFIG}"
    return report


def measure_dataset(network, dataset, settings) -> dict:
    """Units measured over the dev data, or the training data when there is no dev set."""
    X_dev = dataset.splits["dev"][0] if "dev" in dataset.splits else None
    split = "dev" if X_dev is not None and len(X_dev) else "train"
    return hidden_units.measure(network, dataset.splits[split][0], settings, split)


def bayes_estimate(config: ExperimentConfig, dataset=None) -> dict | None:
    """The Bayes error `human_error: auto` stands for, as JSON, or None when a number was given.

    Data from a built-in generator: computed from its densities (dlrun.data.bayes, cached per set
    of generator options). Data from files: Cover–Hart bounds from the 1-nearest-neighbour error
    of the training split, read from `dataset` (loaded from the config when not given).
    Regression: {reason} alone, as there is no error rate to bound.
    """
    from ..data import bayes
    from ..data.synthetic import GENERATORS
    from ..engine.registry import build

    if config.diagnose.human_error != "auto":
        return None
    if config.data.generator is not None:
        generator = build(GENERATORS, "generator", config.data.generator)
        try:
            return bayes.bayes_error(generator).to_json()
        except NotImplementedError as error:  # a generator whose densities are not known
            return {"reason": str(error)}
    if dataset is None:
        from ..training.experiment import load_data
        dataset = load_data(config)
    if dataset.task == "regression":
        return {"reason": "regression targets have no Bayes error rate to estimate"}
    X, y = dataset.splits["train"]
    bounds = bayes.nearest_neighbour_bounds(X, y) if len(y) >= 2 else None
    return bounds.to_json() if bounds else {"reason": f"{len(y)} training examples: too few "
                                                      "for nearest-neighbour bounds"}


def _stored_bayes(run: Run) -> dict | None:
    """The estimate training recorded in summary.json, if it is one bayes_estimate makes."""
    stored = run.summary.get("bayes_error")
    if not isinstance(stored, dict) or not isinstance(stored.get("method"), str):
        return None
    numbers = ("lower", "upper") if "lower" in stored else ("value", "stderr")
    if all(isinstance(stored.get(key), (int, float)) and 0 <= stored[key] <= 1
           for key in numbers):
        return stored
    return None


def diagnose(run: Run, unit_report: dict, bayes: dict | None = None) -> dict:
    """The whole diagnosis of a run as plain JSON-ready data; `bayes` as bayes_estimate()."""
    settings = run.config.diagnose
    task = run.summary.get("task", "binary")
    errors, source = final_errors(run)
    analysis = bias_variance.analyse(errors, settings, task, bayes)
    checks = training_checks.analyse(run.metrics, run.summary, run.config,
                              high_bias="avoidable_bias" in analysis["problems"])
    advice = recipe.recommend(analysis, {**checks, **unit_report["checks"]}, run.config,
                              run.summary)
    return plain({
        "run": str(run.path), "name": run.summary.get("name"), "status": run.summary["status"],
        "task": task, "epochs_run": len(run.metrics["epoch"]),
        "verdict": analysis["verdict"], "caveat": analysis["caveat"],
        "limiting": analysis["limiting"],
        "problems": analysis["problems"], "reasons": analysis["reasons"],
        "human_error": settings.human_error, "bayes_error": bayes,
        "errors": analysis["errors"], "errors_from": source, "gaps": analysis["gaps"],
        "dynamics": checks, "units": unit_report, "recommendations": advice,
        "settings": settings.model_dump(),
    })


def plain(value):
    """JSON-ready: numpy numbers become Python ones, NaN and inf become null."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def save(run_dir: Path, diagnosis: dict) -> None:
    """diagnosis.json and diagnosis.md into the run directory, each replaced atomically."""
    from .report import markdown

    layout.write_json(Path(run_dir) / DIAGNOSIS_JSON, diagnosis)
    layout.write_atomic(Path(run_dir) / DIAGNOSIS_MD, markdown(diagnosis).encode("utf-8"))


def diagnose_run_dir(run_dir: str | Path, settings: list[str] = ()) -> dict:
    """Read a run directory and diagnose it (nothing is written)."""
    run = read_run(run_dir, settings)
    problem = bias_variance.check_human_error(run.config.diagnose.human_error,
                                               run.summary.get("task", "binary"))
    if problem:  # before any work
        given = any(_setting_key(setting) == "human_error" for setting in settings)
        where = "" if given else (f" (set in {run.path / layout.CONFIG}; --human-error overrides "
                                  "it)")
        raise ConfigError(f"diagnose.human_error: {problem}{where}")
    status, stale = runlock.effective_status(run.path, run.summary["status"])
    if stale:
        run.summary = {**run.summary, "status": status}
    bayes = None
    if run.config.diagnose.human_error == "auto":
        bayes = _stored_bayes(run) or bayes_estimate(run.config)
    diagnosis = diagnose(run, measure_units(run), bayes)
    if stale:
        diagnosis["notes"] = [stale]
    return diagnosis


def after_training(run_dir: Path, summary: dict, experiment) -> dict | None:
    """Diagnose a run that just ended, measuring units on the network still in memory; writes
    diagnosis.json and .md and returns the short bias/variance verdict for summary.json."""
    run = Run(Path(run_dir), summary, experiment.config, read_metrics(Path(run_dir) / layout.METRICS))
    unit_report = measure_dataset(experiment.network, experiment.dataset,
                                  experiment.config.diagnose)
    unit_report["source"] = "the trained network at the end of training"
    diagnosis = diagnose(run, unit_report, summary.get("bayes_error"))
    save(run_dir, diagnosis)
    return short_verdict(diagnosis)


def short_verdict(diagnosis: dict) -> dict | None:
    """The verdict and its gaps, as summary.json carries them (in RMSE units for regression)."""
    if diagnosis["verdict"] is None:
        return None
    gaps = diagnosis["gaps"]
    return {"verdict": diagnosis["verdict"], "caveat": diagnosis["caveat"],
            "limiting": diagnosis["limiting"], "human_error": diagnosis["errors"]["human"],
            **{name: (gaps[name] or {}).get("value")
               for name in ("avoidable_bias", "variance", "data_mismatch")}}
