"""What to try next: the course's basic recipe, applied to what a diagnosis found.

Optimization problems come first (a run that diverges or cannot learn makes its errors
meaningless); then the error gaps, the biggest first. Each action names the config key to change.
"""

from __future__ import annotations

from ..engine.init import INITIALIZERS
from ..engine.layers import ACTIVATIONS
from ..engine.optim import OPTIMIZERS
from .training_checks import full_batch

PROBLEMS = {  # check: the problem it found, in the order they are worth fixing
    "divergence": "divergence", "cost_decrease": "cost not decreasing",
    "gradients": "{kind} gradients", "symmetry": "symmetry not broken",
    "dead_relu": "dead ReLU units", "saturation": "saturated units", "oscillation": "oscillation",
    "early_stopping": "trained past the dev minimum",
}


def _hidden(config) -> str:
    return str(config.model.hidden_layers)


def _first(registry: dict[str, type], test) -> str | None:
    """The name of the first registered entry whose class passes `test`: advice suggests entries
    by their traits, so a new one is suggested where it fits without a list of names here."""
    return next((name for name, cls in registry.items() if test(cls)), None)


def _init_for(activation: type) -> str | None:
    """The initializer made for the activation: Var(W) = g/n_in with the activation's gain g (He
    for the ReLU family, Xavier for tanh), else any scaled to the layer's fan."""
    return (_first(INITIALIZERS, lambda cls: cls.fan_in_gain == activation.init_gain)
            or _first(INITIALIZERS, lambda cls: cls.fan_scaled))


def _titled(registry: dict[str, type], names) -> str:
    return " or ".join(registry[name].title for name in names if name is not None)


def _other_entries(config) -> dict[str, str]:
    """Other registered entries the config's own lack the traits of, as actions; "" where the
    config's entry has the trait already or no registered entry offers it."""
    model, train = config.model, config.train
    activation, optimizer = ACTIVATIONS[model.activation], OPTIMIZERS[train.optimizer["name"]]
    init, fan_in = model.init["name"], _init_for(activation)
    steady = _first(ACTIVATIONS, lambda cls: not cls.saturates)  # ReLU
    alive = _first(ACTIVATIONS, lambda cls: not (cls.dies or cls.saturates))  # leaky ReLU
    averaging = _titled(OPTIMIZERS, [  # momentum, Adam
        _first(OPTIMIZERS, lambda cls: cls.momentum and not cls.adaptive),
        _first(OPTIMIZERS, lambda cls: cls.momentum and cls.adaptive)])
    return {
        "random": f"random initialization (model.init: {fan_in}; it is {init}): units that start "
                  "equal get equal gradients and stay copies of each other" if fan_in else "",
        "scaled_init": f"initialization scaled to each layer's fan-in (model.init: {fan_in}; it "
                       f"is {init})" if fan_in and not INITIALIZERS[init].fan_scaled else "",
        "steady": f"{_titled(ACTIVATIONS, [steady])} units (model.activation: {steady}), whose "
                  "slope does not shrink" if steady and activation.saturates else "",
        "alive": f"{_titled(ACTIVATIONS, [alive])} (model.activation: {alive}), which always "
                 "passes a gradient" if alive and activation.dies else "",
        "averaging": f"{averaging} to average the steps (train.optimizer)"
                     if averaging and not (optimizer.momentum or optimizer.adaptive) else "",
    }


def _optimization_actions(name: str, found: dict, config, summary: dict) -> list[str]:
    """Actions for one failed check, leaving out what the config already does."""
    model, train = config.model, config.train
    lr = f"train.learning_rate is {train.learning_rate:g}"
    other = _other_entries(config)
    scaled_init, relu = other["scaled_init"], other["steady"]
    batch_norm = "" if model.batch_norm else "batch norm (model.batch_norm: true)"
    smaller_lr = f"a learning rate 3 to 10 times smaller ({lr})"
    init, scale = model.init["name"], model.init.get("scale")
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
            "symmetry": [other["random"]],
            "dead_relu": [smaller_lr, other["alive"], scaled_init],
            "saturation": [scaled_init or "a smaller initialization scale",
                           "" if config.data.normalize
                           else "normalized inputs (data.normalize: true)",
                           batch_norm, relu],
            "oscillation": [f"a smaller learning rate ({lr}) or a decay schedule (train.decay)",
                            "" if full_batch(config, summary)
                            else f"larger mini-batches (train.batch_size is {train.batch_size})",
                            other["averaging"]],
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
    optimizer = OPTIMIZERS[train.optimizer["name"]]
    both = _first(OPTIMIZERS, lambda cls: cls.momentum and cls.adaptive)  # Adam
    if both and not (optimizer.momentum and optimizer.adaptive):
        actions.append(f"{OPTIMIZERS[both].title} (train.optimizer: {both}; it is "
                       f"{train.optimizer['name']})")
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
