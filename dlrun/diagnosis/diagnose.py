"""`dlrun diagnose`: what is wrong with a run and what to try next, read from its run directory.

A diagnosis joins the error analysis (bias_variance.py), the training dynamics (training_checks.py), the
health of the hidden units (hidden_units.py) and the recipe's advice (recipe.py). It is written beside
the run's other files as diagnosis.json (every figure) and diagnosis.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as config_module
from ..config import DiagnoseConfig, ExperimentConfig
from ..data import bayes
from ..data.fingerprint import changed_splits
from ..data.synthetic import GENERATORS
from ..engine.registry import build
from ..errors import ConfigError, DlrunError, RunDirError
from ..rundir import layout, reader, result, runlock
from ..training.experiment import load_data, prepare
from . import bias_variance, hidden_units, recipe, training_checks
from .report import markdown

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
    config = apply_settings(reader.read_config(path), list(settings))
    return Run(path, summary, config, reader.read_metrics(path / layout.METRICS, REQUIRED_COLUMNS))


def final_errors(run: Run) -> tuple[dict[str, float | None], str]:
    """Errors per split and where they come from: the run's final metrics, else its last epoch."""
    final = run.summary.get("final") or {}
    if final:
        return ({split: final.get(split, {}).get("error") for split in SPLITS},
                ("summary.json: final metrics of the weights the run kept "
                 f"({result.kept_label(run.summary)})"))
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
        stored = reader.read_diagnosis(run.path)
    except RunDirError:
        return None  # nothing usable recorded: the units stay unmeasured
    measured = stored.get("units")
    if not isinstance(measured, dict) or not measured.get("layers"):
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
    changed = changed_splits(run.summary.get("fingerprints"), experiment.dataset.fingerprints,
                             run.summary.get("examples"))
    if changed:  # units measured on other data would not describe this run
        return _stored_units(run) or _unmeasured("the data changed since training "
                                                 f"({'; '.join(changed)})")
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
    if config.diagnose.human_error != "auto":
        return None
    if config.data.generator is not None:
        generator = build(GENERATORS, "generator", config.data.generator)
        try:
            return bayes.bayes_error(generator).to_json()
        except NotImplementedError as error:  # a generator whose densities are not known
            return {"reason": str(error)}
    if dataset is None:
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
    layout.write_json(Path(run_dir) / DIAGNOSIS_JSON, diagnosis)
    layout.write_atomic(Path(run_dir) / DIAGNOSIS_MD, markdown(diagnosis).encode("utf-8"))


def relocated(files: dict[str, bytes], run_dir: Path) -> dict[str, bytes]:
    """A run directory's files (name -> bytes) with its diagnosis naming `run_dir` where it named
    the directory it was diagnosed in: a sweep trial is diagnosed in a scratch directory and
    stored in the sweep's. Files without a readable diagnosis are returned as they are."""
    try:
        old = json.loads(files[DIAGNOSIS_JSON]).get("run")
    except (KeyError, ValueError, AttributeError):
        return files
    if not isinstance(old, str):
        return files
    moved = dict(files)
    moved[DIAGNOSIS_JSON] = files[DIAGNOSIS_JSON].replace(json.dumps(old).encode(),
                                                          json.dumps(str(run_dir)).encode())
    if DIAGNOSIS_MD in files:
        moved[DIAGNOSIS_MD] = files[DIAGNOSIS_MD].replace(old.encode(), str(run_dir).encode())
    return moved


def adopt(run_dir: str | Path, diagnosis: dict, settings: list[str]) -> None:
    """Make a diagnosis with other thresholds the run's own: its settings go into config.yaml's
    diagnose section and its verdict into summary.json, then diagnosis.json and .md are written,
    so diagnose, compare and summary.json all say the same. A run still training is refused."""
    path = Path(run_dir)
    if runlock.is_held(path):  # its summary.json is the training process's to write
        if settings:
            raise RunDirError(f"{path}: still training (its lock is held); save a diagnosis "
                              "with other thresholds once it has ended")
        save(path, diagnosis)
        return
    if settings:
        config = apply_settings(config_module.load(path / layout.CONFIG), list(settings))
        layout.write_atomic(path / layout.CONFIG, config.to_yaml().encode("utf-8"))
    summary = reader.read_summary(path)
    verdict = short_verdict(diagnosis)
    if verdict:
        summary["bias_variance"] = verdict
    else:
        summary.pop("bias_variance", None)
    layout.write_json(path / layout.SUMMARY, summary)
    save(path, diagnosis)


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
    metrics = reader.read_metrics(Path(run_dir) / layout.METRICS, REQUIRED_COLUMNS)
    run = Run(Path(run_dir), summary, experiment.config, metrics)
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
