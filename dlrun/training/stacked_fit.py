"""loop.fit for K prepared experiments at once, on one stacked network (dlrun.engine.stacked).

Each experiment keeps what makes it itself: its data split, initial weights, shuffling, dropout
generator, schedule, hyperparameters and early-stopping rule. Every epoch each trial gets the
metrics row loop.fit would write, and the same judgment (loop.judge_epoch); a trial whose run ends
leaves the stack with its parameters written back into its own network, so the session writes
its run directory as it would after loop.fit.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import metrics
from ..engine.stacked import StackedNetwork, StackedOptimizer
from .experiment import Experiment, score_logits
from .loop import Diverged, Outcome, _divergence, _extra_columns, _snapshot, judge_epoch


class _Stack:
    """The trials still training: their rows in the stacked arrays, in `live` order."""

    def __init__(self, experiments: list[Experiment]):
        self.experiments = experiments
        self.net = StackedNetwork([e.network for e in experiments])
        self.opt = StackedOptimizer([e.optimizer for e in experiments], self.net.params.shape,
                                    self.net.dtype)
        self.live = list(range(len(experiments)))  # experiment index of each stacked row
        self.data = {}  # split: (X shared (m, n) or stacked (K, m, n), y (K, m))
        for split in experiments[0].dataset.splits:
            Xs = [e.dataset.splits[split][0] for e in experiments]
            ys = [e.dataset.splits[split][1] for e in experiments]
            same = all(np.array_equal(X, Xs[0]) for X in Xs[1:])
            self.data[split] = (np.asarray(Xs[0]) if same else np.stack(Xs), np.stack(ys))

    def leave(self, rows: list[int]) -> None:
        """Drop the stacked rows `rows` (their trials have ended)."""
        keep = np.array([r for r in range(len(self.live)) if r not in rows], dtype=int)
        self.net.keep_rows(keep)
        self.opt.keep_rows(keep)
        self.live = [self.live[r] for r in keep]
        self.data = {split: (X if X.ndim == 2 else X[keep], y[keep])
                     for split, (X, y) in self.data.items()}

    def inputs(self, split: str, index: np.ndarray) -> np.ndarray:
        """The rows `index` (K, B) of each trial's split, (K, B, n)."""
        X = self.data[split][0]
        if X.ndim == 2:
            return X.take(index, axis=0)
        return X[np.arange(len(X))[:, None], index]

    def labels(self, split: str, index: np.ndarray) -> np.ndarray:
        """The labels of those rows, (K, B)."""
        X, y = self.data[split]
        if X.ndim == 2:  # one data set for all: the same labels in every row
            return y[0].take(index)
        return np.take_along_axis(y, index, axis=1)


def fit_stacked(experiments: list[Experiment], stop_checks: list | None = None
                ) -> list[tuple[list[dict], Outcome]]:
    """Train the experiments together; (metrics rows, Outcome) per experiment, as loop.fit gives
    them one by one. stop_checks[k](row), if given, may return a reason to stop trial k (status
    "pruned"), as loop.fit's on_epoch does."""
    stop_checks = stop_checks or [None] * len(experiments)
    config = experiments[0].config.train  # shared: batch size, epochs, shuffle
    stack = _Stack(experiments)
    outcomes = []
    for e in experiments:
        stopping = e.config.train.early_stopping
        outcomes.append(Outcome(best_state=_snapshot(e.network),
                                monitor=stopping.metric if stopping else "loss",
                                patience_left=stopping.patience if stopping else None))
    rows: list[list[dict]] = [[] for _ in experiments]
    extra = _extra_columns(experiments[0].dataset)
    started = time.perf_counter()

    def end(row_numbers: list[int]) -> None:
        """Trials at these stacked rows are done: their parameters go back to their networks."""
        for r in row_numbers:
            i = stack.live[r]
            experiment, outcome = experiments[i], outcomes[i]
            experiment.network.load_state(stack.net.state(r))
            if outcome.status == "diverged" or experiment.config.train.early_stopping:
                experiment.network.load_state(outcome.best_state)
        stack.leave(row_numbers)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        try:
            for epoch in range(config.epochs):
                if not stack.live:
                    break
                epoch_rows = _train_epoch(stack, outcomes, epoch, config, end)
                if not stack.live:
                    break
                ended = _judge(stack, outcomes, rows, epoch_rows, epoch, stop_checks, extra,
                               started)
                end(ended)
        except KeyboardInterrupt:
            for i in stack.live:
                outcomes[i].status, outcomes[i].stop_reason = "interrupted", "interrupted by the user"
        end(list(range(len(stack.live))))
    return list(zip(rows, outcomes))


def _train_epoch(stack: _Stack, outcomes: list[Outcome], epoch: int, config, end) -> dict:
    """One pass over each trial's shuffled training split; the start of each trial's row.

    The trials of a stack start together and take every step together, so one count of steps
    serves them all; each step's costs and norms are kept as (K,) and (K, L) arrays, and
    nothing is done per trial unless one diverges."""
    m = len(stack.data["train"][1][0])
    batch_size = m if config.batch_size == "full" else min(config.batch_size, m)
    experiments = stack.experiments
    orders = np.stack([experiments[i].shuffle_rng.permutation(m) if config.shuffle
                       else np.arange(m) for i in stack.live])
    steps = outcomes[stack.live[0]].steps
    per_step = any(experiments[i].schedule.per_step for i in stack.live)
    epoch_lrs = [_lr(experiments[i], epoch, steps) for i in stack.live]
    lrs = np.array(epoch_lrs)[:, None]
    costs: list[np.ndarray] = []  # each step's total cost per trial
    norms_sum = np.zeros((len(stack.live), stack.net.n_layers))
    try:
        for start in range(0, m, batch_size):
            batch = orders[:, start:start + batch_size]
            if per_step:
                lrs = np.array([_lr(experiments[i], epoch, steps) for i in stack.live])[:, None]
            net = stack.net
            Z = net.forward(stack.inputs("train", batch), training=True)
            cost, dZ = net.cost_and_grad(Z, stack.labels("train", batch))
            net.backward(dZ)
            totals = cost.astype(float) + net.penalty(batch.shape[1])
            norms = net.grad_norms().astype(float)
            if steps == 0:
                for r, i in enumerate(stack.live):
                    outcomes[i].first_step = {"cost": float(totals[r]), "examples": batch.shape[1],
                                              "activation_rms": _activation_rms(net, r)}
            finite = np.isfinite(totals) & np.isfinite(norms).all(axis=1)
            if not finite.all():
                diverged = np.flatnonzero(~finite).tolist()
                for r in diverged:
                    outcome = outcomes[stack.live[r]]
                    outcome.steps = steps
                    detail = _divergence(steps, epoch, float(lrs[r, 0]), float(totals[r]),
                                         norms[r].tolist())
                    outcome.status, outcome.divergence = "diverged", detail
                    outcome.stop_reason = detail["message"]
                keep = np.flatnonzero(finite)
                end(diverged)  # before the step, as loop.fit stops before it
                if not stack.live:
                    break
                orders, lrs, totals, norms = orders[keep], lrs[keep], totals[keep], norms[keep]
                epoch_lrs = [epoch_lrs[r] for r in keep]
                costs = [step_costs[keep] for step_costs in costs]
                norms_sum = norms_sum[keep]
            stack.opt.step(stack.net.params, stack.net.grads, lrs)
            steps += 1
            costs.append(totals)
            norms_sum += norms
    finally:
        for i in stack.live:
            outcomes[i].steps = steps
    if not stack.live:
        return {}
    # The mean of each trial's row of step costs, as np.mean takes it over loop.fit's list.
    train_costs = np.mean(np.stack(costs, axis=1), axis=1).tolist()
    count = len(costs)
    return {i: {"epoch": epoch + 1, "learning_rate": epoch_lrs[r], "train_cost": train_costs[r],
                **{f"grad_norm_{l + 1}": n / count for l, n in enumerate(norms_sum[r])}}
            for r, i in enumerate(stack.live)}


def _activation_rms(net, r: int) -> list[float | None]:
    """loop.activation_rms for stacked row r: √mean(A²) of each hidden layer's activations."""
    with np.errstate(over="ignore", invalid="ignore"):
        rms = [math.sqrt(float(np.mean(np.square(A[r], dtype=np.float64))))
               for _, _, A, _ in net.cache[:-1]]
    return [value if math.isfinite(value) else None for value in rms]


def _lr(experiment: Experiment, epoch: int, steps: int) -> float:
    return experiment.schedule.lr(experiment.config.train.learning_rate, epoch, steps)


def _judge(stack: _Stack, outcomes, rows, epoch_rows, epoch, stop_checks, extra,
           started: float) -> list[int]:
    """Score every live trial, write its row, judge it as loop.fit does; the rows that end."""
    experiments = stack.experiments
    splits = [split for split in stack.data if split != "test"]
    scores = {split: _scores(stack, split) for split in splits}
    ended = []
    for r, i in enumerate(stack.live):
        experiment, outcome = experiments[i], outcomes[i]
        results = {split: scores[split][r] for split in splits}
        outcome.epochs_run = epoch + 1
        train, dev = results["train"], results["dev"]
        row = epoch_rows[i]
        row.update(train_loss=train["loss"], train_error=train["error"], dev_loss=dev["loss"],
                   dev_error=dev["error"], seconds=time.perf_counter() - started,
                   steps=outcome.steps)  # as loop.fit's rows: for a progress bar, not a column
        outcome.seconds = row["seconds"]
        row.update({column: results[split][name] for column, (split, name) in extra.items()})
        rows[i].append(row)
        stop_request = stop_checks[i](row) if stop_checks[i] else None
        try:
            if judge_epoch(outcome, epoch, row, dev, experiment.config.train.early_stopping,
                           stop_request, lambda: stack.net.state(r)):
                ended.append(r)
        except Diverged as error:
            outcome.status, outcome.divergence = "diverged", error.detail
            outcome.stop_reason = error.detail["message"]
            ended.append(r)
    return ended


def _scores(stack: _Stack, split: str) -> list[dict]:
    """What score_logits gives each live trial on `split`, its rows in stack order. A binary
    task is scored for all trials at once (the loss as the stacked cost, the metrics from
    counts); other tasks trial by trial."""
    X, y = stack.data[split]
    if not y.shape[1]:
        return [{"loss": float("nan"), "error": float("nan")}] * len(stack.live)
    logits = stack.net.forward(X, training=False)
    experiments = [stack.experiments[i] for i in stack.live]
    task = experiments[0].dataset.task
    if task != "binary" or experiments[0].network.output != "sigmoid":
        return [score_logits(e.network, logits[r], y[r], task)
                for r, e in enumerate(experiments)]
    losses = stack.net.cost_and_grad(logits, y, need_grad=False)[0].tolist()
    actual, predicted = y == 1, logits[..., 0] > 0
    counts = [np.count_nonzero(a, axis=1).tolist()
              for a in (actual ^ predicted, actual & predicted, predicted, actual)]
    examples = y.shape[1]
    return [{"loss": loss, **metrics.binary_from_counts(examples, *row)}
            for loss, *row in zip(losses, *counts)]
