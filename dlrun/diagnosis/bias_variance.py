"""Error analysis after the course: avoidable bias, variance, data mismatch and dev overfitting.

Human-level error stands in for Bayes error. Each gap between neighbouring errors measures one
problem; the verdict names the gaps that limit the model:

    avoidable bias = train − human
    variance       = dev − train          (train-dev − train when a train-dev set exists)
    data mismatch  = dev − train-dev      (only with a train-dev set)
    dev overfitting = test − dev          (reported, never used to pick: the test set only reports)

A gap is *significant* when it reaches its threshold: `min_gap` for every gap, raised for the
avoidable bias to `human_margin` × human error, because a human-level estimate is itself rough (a
train error of 15% against humans at 14% is at human level). A significant gap *limits* the model
when it is at least `min_share` of the largest gap: with train/dev at 15%/16% and human error 0 the
1-point variance is dwarfed by the 15-point bias, so the verdict is high bias alone. With human
error 14% the bias margin is 1.4 points, the 1-point avoidable bias is not significant, and the
1-point variance is what is left: high variance.

With `human_error: auto` the proxy is an estimate of the Bayes error itself (`bayes`, from
dlrun.data.bayes): a value with its standard error for data from a built-in generator, whose
densities are known; for data from files only bounds [lower, upper] (Cover and Hart), so the
avoidable bias is only known to lie in [train − upper, train − lower]. It counts when its smallest
value, train − upper, reaches `min_gap`; a train error within the bounds cannot be told apart from
the Bayes error, and the verdict says so. Regression has no Bayes error rate to estimate: the
avoidable bias is then not measured, and the verdict says that too.
"""

from __future__ import annotations

import math

SLACK = 1e-9  # 0.15 − 0.14 is 0.00999…: floating-point noise must not decide a threshold

GAPS = {  # name: (problem it signals, the larger error, the smaller error)
    "avoidable_bias": ("high bias", "train", "human"),
    "variance": ("high variance", None, "train"),  # the larger error is train_dev or dev
    "data_mismatch": ("data mismatch", "dev", "train_dev"),
    "dev_overfitting": ("dev overfitting", "test", "dev"),
}
ERROR_LABELS = {"human": "human-level", "train": "train", "train_dev": "train-dev", "dev": "dev",
                "test": "test"}


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def format_error(value: float | None, task: str) -> str:
    """0.15 → '15.0%' for classification, a plain number for RMSE."""
    if value is None:
        return "-"
    return f"{value:.4g}" if task == "regression" else f"{100 * value:.1f}%"


def check_human_error(value: float | str, task: str) -> str | None:
    """Why `value` cannot be the human-level error of a `task`, or None if it can ("auto" always
    can). A classification error is a fraction of the examples, so 5 for 5% would make every gap
    negative."""
    if value == "auto" or task == "regression" or value < 1:
        return None
    return (f"{value:g} is not an error rate: a {task} error is the fraction of examples "
            f"misclassified, below 1 (for {value:g}% write {value / 100:g})")


def format_bayes(bayes: dict, task: str) -> str:
    """An estimate of the Bayes error as text: '2.88% ± 0.05%' (to the hundredth of a point its
    standard error allows), '1.2%–4.0%' or 'not estimated'."""
    if bayes.get("lower") is not None:
        return f"{format_error(bayes['lower'], task)}–{format_error(bayes['upper'], task)}"
    if bayes.get("value") is None:
        return "not estimated"
    return f"{100 * bayes['value']:.2f}% ± {100 * bayes.get('stderr', 0.0):.2f}%"


def proxy(human_error: float | str, bayes: dict | None) -> float | None:
    """The error the avoidable bias is measured from: the human error given, the computed Bayes
    error, or the upper bound (the least avoidable bias the bounds allow); None: not measured."""
    if human_error != "auto":
        return float(human_error)
    if not bayes:
        return None
    return bayes["upper"] if bayes.get("lower") is not None else bayes.get("value")


def analyse(errors: dict[str, float | None], settings, task: str = "binary",
            bayes: dict | None = None) -> dict:
    """Gaps, verdict and the reasons behind it from errors {human, train, train_dev, dev, test}.

    `settings` is a DiagnoseConfig. With `human_error: auto`, `bayes` is the estimate of the
    Bayes error: {value, stderr, method}, {lower, upper, ..., method}, or {reason} when there is
    none. errors['human'], the error the avoidable bias is measured from, is proxy() of them
    unless given. Returns verdict None when the train or dev error is missing.
    """
    errors = {"human": proxy(settings.human_error, bayes), **errors}
    errors = {name: _finite(errors.get(name)) for name in ERROR_LABELS}
    auto = settings.human_error == "auto"
    bounds = bool(auto and bayes and bayes.get("lower") is not None)
    labels = {**ERROR_LABELS, "human": "Bayes upper bound" if bounds else "Bayes"} if auto \
        else ERROR_LABELS

    def fmt(value):
        return format_error(value, task)

    has_train_dev = errors["train_dev"] is not None
    variance_from = "train_dev" if has_train_dev else "dev"
    gaps: dict[str, dict | None] = {}
    for name, (_, larger, smaller) in GAPS.items():
        larger = larger or variance_from
        if errors[larger] is None or errors[smaller] is None:
            gaps[name] = None
            continue
        threshold = settings.min_gap
        if name == "avoidable_bias" and not bounds:
            threshold = max(settings.min_gap, settings.human_margin * errors["human"])
        value = errors[larger] - errors[smaller]
        gaps[name] = {"value": value, "threshold": threshold, "from": [larger, smaller],
                      "significant": value >= threshold - SLACK, "limiting": False}
    caveat = None
    if auto and gaps["avoidable_bias"] is None and errors["train"] is not None:
        caveat = ("avoidable bias not measured: " + ((bayes or {}).get("reason")
                  or "no estimate of the Bayes error") + "; give diagnose.human_error to measure it")
    elif bounds and gaps["avoidable_bias"]:
        bias = gaps["avoidable_bias"]
        bias["range"] = [errors["train"] - bayes["upper"], errors["train"] - bayes["lower"]]
        if errors["train"] <= bayes["upper"] + SLACK:
            caveat = (f"avoidable bias cannot be told apart from 0: the train error "
                      f"{fmt(errors['train'])} is "
                      + ("within" if errors["train"] >= bayes["lower"] - SLACK else "below")
                      + f" the Bayes error bounds {format_bayes(bayes, task)}")
    result = {"errors": errors, "gaps": gaps, "verdict": None, "limiting": None, "problems": [],
              "reasons": [], "caveat": caveat}
    if errors["train"] is None or errors["dev"] is None:
        result["reasons"].append("no verdict: the run has no "
                                 f"{'train' if errors['train'] is None else 'dev'} error")
        return result

    judged = {name: gap for name, gap in gaps.items() if gap and name != "dev_overfitting"}
    significant = {name: gap for name, gap in judged.items() if gap["significant"]}
    largest = max((gap["value"] for gap in significant.values()), default=0.0)
    for name, gap in sorted(judged.items(), key=lambda item: -item[1]["value"]):
        larger, smaller = gap["from"]
        shown = (f"{100 * errors[smaller]:.2f}%" if smaller == "human" and auto and not bounds
                 and task != "regression" else fmt(errors[smaller]))  # as format_bayes shows it
        what = (f"{name.replace('_', ' ')} {fmt(gap['value'])} "
                f"({labels[larger]} {fmt(errors[larger])} − {labels[smaller]} {shown})")
        if name == "avoidable_bias" and bounds:
            low, high = gap["range"]
            what += f", between {fmt(low)} and {fmt(high)} (Bayes {format_bayes(bayes, task)}),"
        if not gap["significant"]:
            if name == "avoidable_bias" and gap["threshold"] > settings.min_gap + SLACK:
                which = "Bayes" if auto else "human-level"
                why = (f"is under the {which} margin {fmt(gap['threshold'])} "
                       f"({settings.human_margin:g} × {which} error): at {which} level")
            else:
                why = f"is under the threshold {fmt(gap['threshold'])}"
        elif gap["value"] < settings.min_share * largest - SLACK:
            why = (f"is significant but under {settings.min_share:g} of the largest gap "
                   f"({fmt(largest)}): not what limits the model")
        else:
            gap["limiting"] = True
            result["problems"].append(name)
            why = (f"reaches the threshold {fmt(gap['threshold'])}"
                   + (" and is the largest gap" if gap["value"] >= largest - SLACK else
                      f" and is at least {settings.min_share:g} of the largest gap"))
        result["reasons"].append(f"{what} {why}")

    problems = result["problems"]
    if not problems:
        result["verdict"] = "good fit"
    elif problems[0] == "data_mismatch":
        result["verdict"] = "data mismatch"
    elif "avoidable_bias" in problems and "variance" in problems:
        result["verdict"] = "high bias and high variance"
    else:
        result["verdict"] = GAPS[next(p for p in problems if p != "data_mismatch")][0]
    result["limiting"] = problems[0] if problems else None

    overfit = gaps["dev_overfitting"]
    if overfit:
        result["reasons"].append(
            f"dev overfitting {fmt(overfit['value'])} (test {fmt(errors['test'])} − dev "
            f"{fmt(errors['dev'])}) " + ("reaches" if overfit["significant"] else "is under")
            + f" the threshold {fmt(overfit['threshold'])} "
            "(reported only: the test set never chooses)")
    return result

