"""Bias/variance analysis of a run, after the course's basic recipe."""

from __future__ import annotations

GAP_THRESHOLD = 0.02  # a gap of more than 2 points of error is worth acting on


def bias_variance(train_error: float, dev_error: float, human_error: float = 0.0,
                  threshold: float = GAP_THRESHOLD) -> dict:
    """Avoidable bias (train − human) and variance (dev − train), and a verdict naming the larger
    problem. Errors are fractions (0.15 for 15%)."""
    avoidable_bias = train_error - human_error
    variance = dev_error - train_error
    high_bias, high_variance = avoidable_bias > threshold, variance > threshold
    if high_bias and high_variance:
        label = "high bias and high variance"
    elif high_bias:
        label = "high bias"
    elif high_variance:
        label = "high variance"
    else:
        label = "good fit"
    return {"verdict": label, "avoidable_bias": avoidable_bias, "variance": variance,
            "human_error": human_error, "threshold": threshold}
