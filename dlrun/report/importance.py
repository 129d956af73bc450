"""Which hyperparameters matter: a first-order (main-effect) variance decomposition of the dev
metric over a sweep's trials, as fANOVA reports for its main effects.

For a parameter x and the metric y over n trials, the trials are put into k groups by x (each
choice its own group; a range cut into equal-count bins on the sweep's own scale, log for a
loguniform), and

    S = Var(E[y | group]) / Var(y) = SS_between / SS_total          (the correlation ratio η²)

is the share of y's variance explained by x alone. With few trials per group S is biased upward
(noise alone gives about (k − 1)/(n − 1)), so what is reported is the adjusted share

    ε² = 1 − (SS_within / (n − k)) / (SS_total / (n − 1)),   clipped to [0, 1].

Random search draws every parameter independently, so these main effects do not borrow from one
another; interactions between parameters are not counted in any one of them.
"""

from __future__ import annotations

import math

import numpy as np

from ..sweep.space import Choice, Scaled, encode

METHOD = ("first-order variance decomposition (fANOVA main effects): the share of the dev "
          "metric's variance explained by each hyperparameter alone, ε²-adjusted for the number "
          "of groups")


def bins_for(trials: int) -> int:
    """Groups a range is cut into: about √(n/2), at least 2 and at most 10, so that each
    holds a handful of trials."""
    return int(min(10, max(2, round(math.sqrt(trials / 2)))))


def groups(values: list, distribution, trials: int) -> np.ndarray:
    """A group number per trial: its choice, or its equal-count bin on the unit scale."""
    if isinstance(distribution, Choice) or not isinstance(distribution, Scaled):
        names = {key: i for i, key in enumerate(dict.fromkeys(encode(v) for v in values))}
        return np.array([names[encode(v)] for v in values])
    unit = np.array([distribution.to_unit(v) for v in values], dtype=float)
    order = np.argsort(unit, kind="stable")
    found = np.empty(len(unit), dtype=int)
    found[order] = np.arange(len(unit)) * bins_for(trials) // len(unit)
    return found


def explained(group: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(η², adjusted ε²) of y grouped by `group`."""
    n = len(y)
    total = float(np.sum((y - y.mean()) ** 2))
    labels, index = np.unique(group, return_inverse=True)
    k = len(labels)
    if total == 0 or k < 2 or n <= k:
        return 0.0, 0.0
    means = np.bincount(index, weights=y) / np.bincount(index)
    within = float(np.sum((y - means[index]) ** 2))
    eta = 1 - within / total
    adjusted = 1 - (within / (n - k)) / (total / (n - 1))
    return eta, float(min(max(adjusted, 0.0), 1.0))


def rank(values: dict[str, list], distributions: dict, metric: list[float]) -> list[dict]:
    """Each parameter's share, the largest first: [{key, share, eta2, groups}], from the trials
    with a finite metric (`values[key][i]` and `metric[i]` are trial i's)."""
    y = np.asarray(metric, dtype=float)
    keep = np.flatnonzero(np.isfinite(y))
    ranked = []
    for key, column in values.items():
        kept = [column[i] for i in keep]
        group = groups(kept, distributions.get(key), len(kept))
        eta, share = explained(group, y[keep])
        ranked.append({"key": key, "share": share, "eta2": eta,
                       "groups": int(len(np.unique(group))), "trials": int(len(keep))})
    return sorted(ranked, key=lambda r: (-r["share"], r["key"]))
