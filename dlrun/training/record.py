"""Recording a run: lock a new run directory and write its config, labels and a "running"
summary (begin), train in it (train_in), then write everything a run holds: parameters, summary,
diagnosis, figures (conclude), so that a final status means every file is there.

Figures are the exception `figures` chooses: "now" draws them before the final summary; "later"
draws them in a detached child that holds run.lock until they are written (the final summary is
there first: a final status and a free lock mean every file is there); "none" leaves them to
`dlrun plot`, as sweep trials do."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from .. import provenance
from ..config import ExperimentConfig
from ..data.rows import check_mapped
from ..diagnosis import diagnose
from ..errors import RunDirError
from ..rundir import checkpoint, layout, runlock, tags
from .experiment import Experiment, evaluate
from .loop import Outcome, Reporter, fit, metric_columns


def begin(run_dir: Path, experiment: Experiment, source: str | Path | None = None,
          labels: dict | None = None, **fields) -> tuple[dict, object]:
    """Lock a new, empty run directory and write its config, its labels and a "running"
    summary (with `fields` added); (summary, lock)."""
    config, network, dataset = experiment.config, experiment.network, experiment.dataset
    try:
        lock = runlock.acquire(run_dir, wait=True)  # before "running": a dead holder = stale
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        started_at = time.time()
        summary = {"status": "running", "name": config.name, "seed": config.seed,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
                   "task": dataset.task, "n_features": dataset.n_features,
                   "n_outputs": network.dense[-1].W.shape[0], "classes": dataset.classes,
                   "examples": {name: len(X) for name, (X, _) in dataset.splits.items()},
                   "fingerprints": dataset.fingerprints,
                   "versions": layout.environment(), "command": layout.command_line(),
                   "provenance": _provenance(config, source, run_dir), **fields}
        if labels and (labels.get("tags") or labels.get("note")):
            tags.write(run_dir, labels.get("tags", []), labels.get("note", ""))
        layout.write_atomic(run_dir / layout.CONFIG, config.to_yaml().encode("utf-8"))
        if layout.durable():  # a scratch directory is read by nobody until its run has ended
            layout.write_json(run_dir / layout.SUMMARY, summary)
    except BaseException:
        lock.release()
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing trained: no half-made run is left
        raise
    return summary, lock


def _provenance(config: ExperimentConfig, source, run_dir: Path) -> dict:
    try:
        return provenance.collect(config, source, run_dir)
    except Exception as error:  # noqa: BLE001 - a record of the run must not stop the run
        return {"error": f"{type(error).__name__}: {error}"}


def _extra(summary: dict, what: str, write, *args):
    """Write one of the extras drawn from a trained run (diagnosis, figures). Parameters and
    metrics are already saved, so a failure here is recorded under summary["problems"] and the
    run keeps its status: `dlrun diagnose` and `dlrun plot` can write them again later."""
    try:
        return write(*args)
    except Exception as error:  # noqa: BLE001 - whatever broke, the trained run stands
        summary.setdefault("problems", {})[what] = f"{type(error).__name__}: {error}"
        return None


def train_in(run_dir: Path, experiment: Experiment, summary: dict, lock,
             reporter: Reporter | None = None, stop_check=None,
             resumed: Outcome | None = None, figures: str = "now",
             checkpoints: bool = True) -> tuple[Path, dict]:
    """Train in a run directory this process holds the lock of, then write its results;
    `resumed` (restored from a checkpoint) goes on from its epoch, appending to metrics.csv.
    `checkpoints=False` takes no checkpoint at all, not even the one a run that ends unfinished
    keeps (a sweep trial that cannot pause at a rung: it is run again, never resumed)."""
    reporter = reporter or Reporter()
    network, dataset, config = experiment.network, experiment.dataset, experiment.config
    started_at = time.time() - (resumed.seconds if resumed else 0.0)
    append = resumed is not None
    writer = steps = None
    keeper = None
    try:
        writer = layout.MetricsWriter(run_dir / layout.METRICS, metric_columns(network, dataset),
                                    append=append)
        steps = (layout.MetricsWriter(run_dir / layout.STEPS, layout.STEP_COLUMNS, flush_every=100,
                                    append=append) if config.train.record_steps else None)
        keeper = checkpoint.Keeper(run_dir, experiment,
                                   config.train.checkpoint_every if checkpoints else 0,
                                   [writer.flush, *([steps.flush] if steps else [])])
        reporter.start(config.train.epochs)

        def on_epoch(row):
            writer.write(row)
            reporter.epoch(row)
            reason = stop_check(row) if stop_check else None
            check_mapped(dataset.splits)  # before the next epoch reads a file changed under it
            return reason

        # Without checkpoints nothing is captured either: capturing costs a copy every epoch.
        outcome = fit(experiment, on_epoch, steps.write if steps else None, resumed,
                      keeper.epoch_end if checkpoints else None)
        keeper.finish(outcome.status)
        if steps:
            steps.close()
        reporter.finish()
        return conclude(run_dir, experiment, summary, outcome, started_at, lock, figures)
    except BaseException as error:
        if keeper is not None:
            _keep_latest(keeper)
        summary.update(status="failed", error=f"{type(error).__name__}: {error}",
                       duration_seconds=round(time.time() - started_at, 3))
        try:
            layout.write_json(run_dir / layout.SUMMARY, summary)
        except RunDirError:  # a full disk: the summary still says running, so once its lock is
            pass             # released the run reads as stale, and --resume takes it over
        raise
    finally:
        if writer:
            writer.close()
        if steps:
            steps.close()
        lock.release()


def conclude(run_dir: Path, experiment: Experiment, summary: dict, outcome: Outcome,
             started_at: float, lock, figures: str = "now") -> tuple[Path, dict]:
    """Write what a trained run holds besides its metrics: parameters, final metrics, diagnosis,
    figures (see `figures` above) and, last, the final summary."""
    network, dataset, config = experiment.network, experiment.dataset, experiment.config
    if figures == "later" and outcome.status != "completed":
        figures = "now"  # an interrupted or diverged run may be resumed at once: free its lock
    final = {name: evaluate(network, X, y, dataset.task)
             for name, (X, y) in dataset.splits.items() if len(X)}
    meta = {"classes": np.array(dataset.classes, dtype=str), "task": np.array(dataset.task),
            "features": np.array(dataset.features, dtype=str)}
    if dataset.mean is not None:
        meta.update(mean=dataset.mean, std=dataset.std)
    layout.save_params(run_dir / layout.PARAMS, network.state(), meta)
    summary.update(
        status=outcome.status, epochs_run=outcome.epochs_run, steps=outcome.steps,
        # `final` scores the weights in params.npz: those of epoch `kept_epoch`.
        kept_epoch=outcome.kept_epoch, restored=outcome.restored,
        best_epoch=outcome.best_epoch or None,
        best_dev_loss=outcome.best_dev_loss if outcome.best_epoch else None,
        best_dev_metric={"name": outcome.monitor, "value": outcome.best_dev_value},
        stop_reason=outcome.stop_reason, divergence=outcome.divergence, final=final,
        first_step=outcome.first_step,
        duration_seconds=round(time.time() - started_at, 3))
    # A pruned sweep trial is paused at a rung, cut short by design: a diagnosis would judge
    # a run that has not ended, and drawing it at every rung costs more than its epochs.
    if outcome.status != "pruned":
        bayes = _extra(summary, "diagnosis", diagnose.bayes_estimate, config, dataset)
        if bayes is not None:
            summary["bayes_error"] = bayes  # what human_error: auto measures the bias from
        verdict = _extra(summary, "diagnosis", diagnose.after_training, run_dir, summary,
                         experiment)  # diagnosis.json, .md
        if verdict:
            summary["bias_variance"] = verdict
        if figures == "now":
            _extra(summary, "figures", _draw, run_dir, network, dataset, summary)
    layout.write_json(run_dir / layout.SUMMARY, summary)  # last: a final status means all is there
    if figures == "later":
        _draw_later(run_dir, experiment, summary, lock)
    return run_dir, summary


def _draw(run_dir: Path, network, dataset, summary: dict):
    from .. import plots  # lazy: matplotlib comes with it; only what draws pays for the import
    return plots.draw(run_dir, network, dataset, summary)


def _draw_later(run_dir: Path, experiment: Experiment, summary: dict, lock) -> None:
    """Draw the figures in a detached child holding the lock; a failure there is recorded in
    summary.json as _extra records one, for `dlrun plot` to draw them again."""
    from .. import detach  # lazy: only a run that draws later needs the fork

    def job():
        _extra(summary, "figures", _draw, run_dir, experiment.network, experiment.dataset,
               summary)
        if "figures" in summary.get("problems", {}):
            layout.write_json(run_dir / layout.SUMMARY, summary)

    detach.run_detached(job, [lock])


def _keep_latest(keeper) -> None:
    """Write the last finished epoch's checkpoint of a run that failed, if it can be written."""
    try:
        keeper.write()
    except Exception:  # the failure being reported matters more than the checkpoint
        pass
