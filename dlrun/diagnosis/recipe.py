"""What to try next: the course's basic recipe, applied to what a diagnosis found.

Optimization problems come first (a run that diverges or cannot learn makes its errors
meaningless); then the error gaps, the biggest first. Each action names the config key to change.
"""

from __future__ import annotations

from .training_checks import full_batch

PROBLEMS = {  # check: the problem it found, in the order they are worth fixing
    "divergence": "divergence", "cost_decrease": "cost not decreasing",
    "gradients": "{kind} gradients", "symmetry": "symmetry not broken",
    "dead_relu": "dead ReLU units", "saturation": "saturated units", "oscillation": "oscillation",
    "early_stopping": "trained past the dev minimum",
}


def _hidden(config) -> str:
    return str(config.model.hidden_layers)


def _optimization_actions(name: str, found: dict, config, summary: dict) -> list[str]:
    """Actions for one failed check, leaving out what the config already does."""
    model, train = config.model, config.train
    lr = f"train.learning_rate is {train.learning_rate:g}"
    init = model.init["name"]
    fan_in = "he" if model.activation in ("relu", "leaky_relu") else "xavier"
    scaled_init = (f"initialization scaled to each layer's fan-in (model.init: {fan_in}; it is "
                   f"{init})") if init not in ("he", "xavier", "glorot") else ""
    relu = ("ReLU units (model.activation: relu), whose slope does not shrink"
            if model.activation not in ("relu", "leaky_relu") else "")
    batch_norm = "" if model.batch_norm else "batch norm (model.batch_norm: true)"
    smaller_lr = f"a learning rate 3 to 10 times smaller ({lr})"
    scale = model.init.get("scale")
    smaller_scale = (f"a smaller initialization scale (model.init: {{name: {init}, scale: "
                     f"{scale / 10:g}}}; it is {scale:g})") if scale else ""
    if name == "gradients" and found.get("kind") == "zero":
        # zeros initialization gives zero gradients whatever the step; a huge step kills units
        actions = [scaled_init, "" if init == "zeros" else smaller_lr,
                   "see the dead-unit and symmetry checks"]
    elif name == "gradients" and found.get("kind") == "exploding":
        actions = [scaled_init, smaller_scale, batch_norm, smaller_lr]
    else:
        actions = {
            "divergence": [smaller_lr, scaled_init, batch_norm],
            "cost_decrease": [smaller_lr,
                              "check the gradients against numerical ones (gradient checking)"],
            "gradients": [scaled_init, relu, batch_norm,
                          f"a shallower network (model.hidden_layers is {_hidden(config)})"
                          if len(model.hidden_layers) > 1 else ""],
            "symmetry": [f"random initialization (model.init: {fan_in}; it is {init}): units that "
                         "start equal get equal gradients and stay copies of each other"],
            "dead_relu": [smaller_lr,
                          "leaky ReLU (model.activation: leaky_relu), which always passes a "
                          "gradient"
                          if model.activation == "relu" else "",
                          scaled_init],
            "saturation": [scaled_init or "a smaller initialization scale",
                           "" if config.data.normalize
                           else "normalized inputs (data.normalize: true)",
                           batch_norm, relu],
            "oscillation": [f"a smaller learning rate ({lr}) or a decay schedule (train.decay)",
                            "" if full_batch(config, summary)
                            else f"larger mini-batches (train.batch_size is {train.batch_size})",
                            "momentum or Adam to average the steps (train.optimizer)"
                            if train.optimizer["name"] == "gd" else ""],
            "early_stopping": ["early stopping (train.early_stopping: {patience: 10}), which "
                               "keeps the weights of the best dev epoch"],
        }[name]
    return [action for action in actions if action]


def _bias_actions(config, trend: str | None, summary: dict) -> list[str]:
    """`trend`: how the train loss moved over the last epochs (the plateau check)."""
    model, train, reg = config.model, config.train, config.regularization
    bigger = f"a bigger network: more units or layers (model.hidden_layers is {_hidden(config)})"
    # More epochs help only a run that used all it had while its loss was still falling.
    used_all = (summary.get("status") == "completed"
                and summary.get("epochs_run", train.epochs) >= train.epochs)
    if trend == "flat":
        actions = [f"{bigger}; the train loss has stopped falling, so more epochs alone will "
                   "not help"]
    elif trend == "falling" and used_all:
        actions = [f"train longer: the train loss was still falling (train.epochs is "
                   f"{train.epochs})", bigger]
    elif trend == "rising":
        actions = [f"a smaller learning rate (train.learning_rate is {train.learning_rate:g}) "
                   "or a decay schedule (train.decay): the train loss rose over the last "
                   "epochs", bigger]
    else:
        actions = [bigger]
    if train.optimizer["name"] != "adam":
        actions.append(f"Adam (train.optimizer: adam; it is {train.optimizer['name']})")
    else:
        actions.append(f"tune the learning rate on a log scale (train.learning_rate is "
                       f"{train.learning_rate:g})")
    penalties = [f"regularization.l2 is {reg.l2:g}" if reg.l2 else "",
                 f"regularization.l1 is {reg.l1:g}" if reg.l1 else "",
                 f"model.keep_prob is {model.keep_prob}" if min(model.keep_probs(), default=1) < 1
                 else ""]
    penalties = [p for p in penalties if p]
    if penalties:
        actions.append(f"less regularization ({', '.join(penalties)})")
    return actions


def _variance_actions(config, examples: int | None) -> list[str]:
    model, reg = config.model, config.regularization
    data = f" ({examples} training examples now)" if examples else ""
    l2 = (f"more L2 (regularization.l2 is {reg.l2:g})" if reg.l2
          else "L2 regularization (regularization.l2: 0.01 to 1, on a log scale)")
    dropout = (f"more dropout (model.keep_prob is {model.keep_prob})"
               if min(model.keep_probs(), default=1) < 1 else "dropout (model.keep_prob: 0.8)")
    return [f"more training data{data}", l2, dropout,
            "data augmentation: new training examples made from the ones you have"]


def recommend(analysis: dict, checks: dict[str, dict], config, summary: dict) -> list[dict]:
    """Ordered advice [{problem, evidence, gap, actions}] from the error analysis and the checks."""
    advice = []
    for name, problem in PROBLEMS.items():
        found = checks.get(name)
        if name == "dead_relu" and found and found.get("layer") in (
                (checks.get("symmetry") or {}).get("layers") or []):
            continue  # copies of one dead unit: breaking the symmetry is the advice
        if found and found["status"] == "problem":
            problem = problem.format(kind=found.get("kind"))
            advice.append({"problem": problem,
                           "evidence": found["message"].removeprefix(f"{problem}: "),
                           "gap": None,
                           "actions": _optimization_actions(name, found, config, summary)})

    if summary.get("status") == "diverged" and summary.get("epochs_run") == 0:
        return advice  # its errors are those of weights no epoch trained: no gap to act on
    trend = (checks.get("plateau") or {}).get("trend")
    examples = summary.get("examples") or {}
    gaps = analysis["gaps"]
    found = list(analysis["problems"])
    overfit = gaps.get("dev_overfitting")
    if overfit and overfit["significant"]:
        found.append("dev_overfitting")
    for name in sorted(found, key=lambda n: -gaps[n]["value"]):
        gap = gaps[name]
        if name == "avoidable_bias":
            problem, actions = "high bias", _bias_actions(config, trend, summary)
        elif name == "variance":
            problem, actions = "high variance", _variance_actions(config, examples.get("train"))
        elif name == "data_mismatch":
            problem, actions = "data mismatch", [
                "find by hand how dev examples differ from training ones (error analysis)",
                "make the training data more like the dev data: collect such examples, or "
                "synthesize them"]
        else:
            problem, actions = "dev overfitting", [
                f"a bigger dev set ({examples.get('dev', '?')} examples now): choices made on it "
                "no longer carry over to the test set"]
        advice.append({"problem": problem, "evidence": next(
            (r for r in analysis["reasons"] if r.startswith(name.replace("_", " "))), ""),
            "gap": gap["value"], "actions": actions})
    return advice
