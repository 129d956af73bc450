"""How the optimization went, read from metrics.csv (one row per epoch) and summary.json.

Every check returns {"status": ok | warning | problem | skipped, "message": one line, figures...}.
`metrics` maps a column of metrics.csv to its values over the epochs, shape (epochs,).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from ..engine.optim import OPTIMIZERS

FIRST_STEP_EXAMPLES = 32  # a first step over fewer examples is too noisy to measure from
RISE = 0.01  # a train loss rising by more than 1% in an epoch is a real rise, not rounding
MIN_EPOCHS = 5  # fewer epochs say nothing about a trend
STEP_TOLERANCE = 100  # in units of the dtype's epsilon: the rounding noise of a mean cost


def check(status: str, message: str, **figures) -> dict:
    return {"status": status, "message": message, **figures}


def analyse(metrics: dict[str, np.ndarray], summary: dict, config,
            high_bias: bool) -> dict[str, dict]:
    """All training-dynamics checks, by name; `config` is the run's ExperimentConfig."""
    settings = config.diagnose
    # Ratios of huge or tiny losses overflow to inf, which every check reads as what it is.
    with np.errstate(over="ignore", under="ignore"):
        return {
            "divergence": divergence(metrics, summary, settings),
            "cost_decrease": cost_decrease(metrics, summary, config),
            "oscillation": oscillation(metrics, settings),
            "plateau": plateau(metrics, settings, high_bias),
            "gradients": gradients(metrics, settings, summary.get("first_step")),
            "early_stopping": early_stopping(metrics, summary, config),
        }


def divergence(metrics: dict, summary: dict, settings) -> dict:
    """NaN or inf (the run stopped itself), or a loss rising by orders of magnitude."""
    recorded = summary.get("divergence")
    if recorded:
        return check("problem", recorded.get("message") or "the run diverged",
                     **{key: recorded.get(key)
                        for key in ("step", "epoch", "learning_rate", "where")})
    for column in ("train_cost", "train_loss", "dev_loss"):
        values = metrics.get(column, np.array([]))
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            epoch = int(metrics["epoch"][bad[0]])
            return check("problem", f"{column.replace('_', ' ')} became {values[bad[0]]} in epoch "
                         f"{epoch}", epoch=epoch, where=column)
    loss = metrics.get("train_loss", np.array([]))
    if len(loss) < 2:
        return check("skipped", "fewer than two epochs recorded")
    factors = loss[1:] / np.maximum(np.minimum.accumulate(loss)[:-1], np.finfo(float).tiny)
    row = int(np.argmax(factors))
    factor = float(factors[row])
    epoch = int(metrics["epoch"][row + 1])
    if factor >= settings.blowup_factor:
        return check("problem", f"train loss rose {factor:.3g}-fold above its lowest value, to "
                     f"{loss[row + 1]:.4g} in epoch {epoch}: the optimization is diverging",
                     factor=factor, epoch=epoch)
    # A first epoch whose steps exploded before the network settled (on predicting one class,
    # say) leaves a calm loss curve; its mean cost over the steps, against the cost of its first
    # step (before any update, measured the same way), shows the blow-up. Later epochs are
    # judged by the loss above.
    cost, first = metrics.get("train_cost", np.array([])), summary.get("first_step") or {}
    start = first.get("cost") if isinstance(first, dict) else None
    if (isinstance(start, (int, float)) and math.isfinite(start) and start > 0 and len(cost)
            and int(metrics["epoch"][0]) == 1
            and (first.get("examples") or 0) >= FIRST_STEP_EXAMPLES):
        cost_factor = float(cost[0] / start)
        if cost_factor >= settings.blowup_factor:
            return check("problem", f"the mean train cost of epoch 1 was {cost[0]:.4g}, "
                         f"{cost_factor:.3g}x that of its first step ({start:.4g}, before any "
                         "update): the steps blew up (a too large learning rate)",
                         factor=cost_factor, epoch=1)
    rose = (f"rose at most {factor:.3g}x its lowest value" if factor > 1 + RISE
            else f"never rose more than {RISE:.0%} above its lowest value")
    return check("ok", f"no NaN or inf; the train loss {rose}", factor=factor)


def full_batch(config, summary: dict) -> bool:
    """Whether every step saw the whole training set."""
    m = (summary.get("examples") or {}).get("train")
    size = config.train.batch_size
    return size == "full" or (m is not None and size >= m)


def cost_decrease(metrics: dict, summary: dict, config) -> dict:
    """Full-batch gradient descent must lower the cost at every step; a rise is a bug or a too
    large learning rate. Other set-ups are noisy by design and are not judged on this."""
    train, model = config.train, config.model
    reason = None
    if not OPTIMIZERS[train.optimizer["name"]].steepest_descent:
        reason = (f"optimizer {train.optimizer['name']}: only plain gradient descent must "
                  "descend every step")
    elif not full_batch(config, summary):
        reason = f"mini-batches of {train.batch_size}: the cost is noisy by design"
    elif any(p < 1 for p in model.keep_probs()):
        reason = "dropout changes the cost from step to step"
    elif config.regularization.l1 > 0:
        reason = "the L1 penalty is not smooth at zero"
    if reason:
        return check("skipped", reason)
    cost = metrics.get("train_cost", np.array([]))
    cost = cost[np.isfinite(cost)]
    if len(cost) < 2:
        return check("skipped", "fewer than two steps recorded")
    tolerance = STEP_TOLERANCE * np.finfo(np.dtype(config.dtype)).eps
    change = np.diff(cost) / np.maximum(np.abs(cost[:-1]), np.finfo(float).tiny)
    rises = np.flatnonzero(change > tolerance)
    steps = len(change)
    if len(rises):
        largest = float(change.max())
        told = (f"the cost rose at {len(rises)} of {steps} full-batch gradient descent steps "
                f"(first at step {rises[0] + 2}, by up to {100 * largest:.3g}%)")
        figures = dict(rises=len(rises), steps=steps, first=int(rises[0] + 2),
                       largest_rise=largest)
        # Rises of a fraction of a percent come from a step size at the edge of stability, where
        # the ReLU kinks bend the cost; larger ones mean the step or the gradient is wrong.
        if largest <= RISE:
            return check("warning", f"{told}: the learning rate ({train.learning_rate:g}) is at "
                         "the edge of stability", **figures)
        return check("problem", f"{told}: the learning rate ({train.learning_rate:g}) is too "
                     "high, or the gradients are wrong", **figures)
    return check("ok", f"the cost fell at every one of {steps} full-batch gradient descent steps",
                 rises=0, steps=steps)


def oscillation(metrics: dict, settings) -> dict:
    """The train loss going up and down from epoch to epoch instead of down."""
    loss = metrics.get("train_loss", np.array([]))
    loss = loss[np.isfinite(loss)]
    if len(loss) < MIN_EPOCHS:
        return check("skipped", f"fewer than {MIN_EPOCHS} epochs recorded")
    change = np.diff(loss) / np.maximum(np.abs(loss[:-1]), np.finfo(float).tiny)
    rises = int(np.sum(change > RISE))
    share = rises / len(change)
    figures = dict(rises=rises, epochs=len(change), share=share)
    if share >= settings.oscillation_share:
        return check("problem", f"the train loss rose (by over {RISE:.0%}) in {rises} of "
                     f"{len(change)} epochs: it oscillates", **figures)
    return check("ok", f"the train loss rose (by over {RISE:.0%}) in {rises} of {len(change)} "
                 "epochs", **figures)


def plateau(metrics: dict, settings, high_bias: bool) -> dict:
    """Whether the train loss still moved over the last fifth of the run."""
    loss = metrics.get("train_loss", np.array([]))
    loss = loss[np.isfinite(loss)]
    window = max(MIN_EPOCHS, len(loss) // 5)
    if len(loss) <= window:
        return check("skipped", f"fewer than {window + 1} epochs recorded", flat=None)
    start, end = loss[-window - 1], loss[-1]
    change = (start - end) / max(abs(start), np.finfo(float).tiny)
    flat = bool(abs(change) < settings.plateau_change)
    trend = "flat" if flat else "falling" if change > 0 else "rising"
    figures = dict(flat=flat, trend=trend, change=float(change), window=window, loss=float(end))
    moved = (f"the train loss {'fell' if change > 0 else 'rose'} {100 * abs(change):.3g}% over "
             f"the last {window} epochs")
    if not figures["flat"]:
        return check("ok" if change > 0 else "warning",
                     f"{moved}: {'still learning' if change > 0 else 'not learning'}", **figures)
    if high_bias:
        return check("problem", f"{moved}: stuck on a plateau while the train error is high",
                     **figures)
    return check("ok", f"{moved}: converged", **figures)


def activation_growth(first_step) -> tuple[float, list[float]] | None:
    """RMS of the last hidden layer's activations over the first's at the first step, before any
    update (summary.json's first_step), with the RMS per layer; None when not recorded."""
    rms = first_step.get("activation_rms") if isinstance(first_step, dict) else None
    if (not isinstance(rms, list) or len(rms) < 2 or not isinstance(rms[0], (int, float))
            or not rms[0] > 0 or not all(v is None or isinstance(v, (int, float)) for v in rms)):
        return None
    if None in rms:  # overflowed on the way
        return math.inf, rms
    return rms[-1] / rms[0], rms


def gradients(metrics: dict, settings, first_step: dict | None = None) -> dict:
    """Vanishing or exploding gradients, two ways.

    Backward: the ratio ‖dW[1]‖ / ‖dW[L]‖ of gradient norms between the first and the last layer,
    its median over the first half of the epochs, where vanishing gradients hold a run back (once
    the first layers catch up the ratio rises, and a whole-run median would hide what stalled it).
    Forward: ReLU layers with too large weights multiply the activations by the same factor
    layer after layer, and dZ on the way back by it too, so ‖dW[l]‖ ∝ ‖dZ[l]‖·‖A[l−1]‖ is alike
    in every layer and the ratio sees nothing; the growth of the activations' RMS from the first
    hidden layer to the last at the first step (`first_step`, recorded before any update) does.
    """
    columns = sorted((c for c in metrics if c.startswith("grad_norm_")), key=lambda c: int(c[10:]))
    if len(columns) < 2:
        return check("skipped", "a single layer: no ratio between layers")
    grown = activation_growth(first_step)
    if grown and grown[0] >= settings.exploding_ratio:
        growth, rms = grown
        shown = " → ".join("overflow" if v is None else f"{v:.3g}" for v in rms)
        return check("problem", f"exploding gradients: before any update the activations grow "
                     f"{growth:.3g}-fold from hidden layer 1 to {len(rms)} (RMS {shown}), and "
                     "the gradients with them", kind="exploding", activation_growth=growth,
                     activation_rms=rms, layers=len(columns))
    first, last = metrics[columns[0]], metrics[columns[-1]]
    if len(first) == 0:
        return check("skipped", "no epoch recorded")
    if np.all(np.stack([metrics[c][-1:] for c in columns]) == 0):
        return check("problem", "every layer's gradient is zero in the last epoch: the network "
                     "has stopped learning", kind="zero")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = first / last
    usable = ratios[np.isfinite(ratios)]
    if len(usable) == 0:
        return check("skipped", "no epoch with a finite gradient ratio")
    early = usable[:max(1, (len(usable) + 1) // 2)]
    median = statistics.median(early.tolist())  # np.median's value, without its numpy.ma import
    first_ratio, last_ratio = float(usable[0]), float(usable[-1])
    trend = (float(np.log10(last_ratio / first_ratio))
             if len(usable) > 1 and first_ratio > 0 and last_ratio > 0 else None)
    figures = dict(ratio_first=first_ratio, ratio_last=last_ratio, ratio_median=median,
                   trend_decades=trend, layers=len(columns),
                   activation_growth=grown[0] if grown else None)
    name = f"‖dW1‖/‖dW{len(columns)}‖"
    moved = "" if trend is None else (f", {'rising' if trend > 0 else 'falling'} "
                                      f"{abs(trend):.2g} decades from the first to the last epoch")
    over = (f"median over the first {len(early)} of {len(usable)} epochs" if len(usable) > 1
            else "one epoch")
    told = f"{name} is {median:.3g} ({over}){moved}"
    if median <= settings.vanishing_ratio:
        return check("problem", f"vanishing gradients: {told}", kind="vanishing", **figures)
    if median >= settings.exploding_ratio:
        return check("problem", f"exploding gradients: {told}", kind="exploding", **figures)
    return check("ok", told, kind=None, **figures)


def early_stopping(metrics: dict, summary: dict, config) -> dict:
    """Where the dev-loss minimum fell relative to the end of the run."""
    dev = metrics.get("dev_loss", np.array([]))
    finite = np.isfinite(dev)
    if finite.sum() < 2:
        return check("skipped", "fewer than two epochs with a dev loss recorded")
    epochs = int(metrics["epoch"][-1])
    # The run's own record of its best epoch wins: it applied early stopping's min_delta.
    at = np.flatnonzero(metrics["epoch"] == summary.get("best_epoch"))
    row = int(at[0]) if len(at) else int(np.argmin(np.where(finite, dev, np.inf)))
    best, best_loss = int(metrics["epoch"][row]), float(dev[row])
    end_loss = float(dev[finite][-1])
    rise = (end_loss - best_loss) / max(abs(best_loss), np.finfo(float).tiny)
    figures = dict(best_epoch=best, epochs=epochs, best_dev_loss=best_loss,
                   last_dev_loss=end_loss, rise=rise)
    where = f"the dev loss was lowest at epoch {best} of {epochs}"
    stopped = str(summary.get("stop_reason", "")).startswith("early stopping")
    if summary.get("status") == "diverged":
        return check("ok", f"{where}; the run diverged and kept that epoch's weights", **figures)
    if stopped:
        return check("ok", f"{where}; early stopping ended the run and kept epoch {best}'s weights",
                     **figures)
    if best == epochs:
        return check("ok", f"{where}: it was still falling when the run ended", **figures)
    kept_best = config.train.early_stopping is not None or summary.get("status") == "diverged"
    # Overfitting is the dev loss rising while the train loss keeps falling; both rising is
    # instability, which the oscillation and divergence checks judge.
    train_loss = metrics["train_loss"]
    train_fell = bool(train_loss[-1] <= train_loss[row])
    figures["train_fell"] = train_fell
    if rise >= config.diagnose.dev_rise and not kept_best and train_fell:
        return check("problem", f"{where} and ended {100 * rise:.3g}% above it: the last "
                     f"{epochs - best} epochs overfit, and the run kept their weights", **figures)
    return check("ok", f"{where}; it ended {100 * rise:.3g}% above that"
                 + ("; the best weights were kept" if kept_best else ""), **figures)
