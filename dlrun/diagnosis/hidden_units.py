"""The health of a trained network's hidden units, measured over data.

Three conditions the training curves cannot show: symmetry never broken (every unit of a layer
computes the same function, the mark of zeros initialization), dead ReLU units (never positive,
so they never learn again) and saturated sigmoid/tanh units (on a flat tail, where the derivative
and with it the gradient vanish).
"""

from __future__ import annotations

import numpy as np

from ..engine.layers import ACTIVATIONS, Activation, Dense
from .training_checks import check

SAMPLE = 4096  # examples measured: enough to see every unit fire, cheap on any data set
FLAT = 0.01  # on a flat tail: the derivative is under 1% of its peak (|tanh| > 0.995)
SAME = 1e-5  # units whose outputs differ by less than this (relative) are the same function


def distinct_columns(A: np.ndarray) -> int:
    """How many different columns A (m, n) has, up to rounding."""
    if A.shape[1] == 0:
        return 0
    scale = max(1.0, float(np.max(np.abs(A)))) if A.size else 1.0
    # Identical columns have identical means: sorted by mean they sit side by side.
    order = np.argsort(A.mean(axis=0), kind="stable")
    columns = A[:, order]
    differ = np.max(np.abs(np.diff(columns, axis=1)), axis=0, initial=0.0) > SAME * scale
    return 1 + int(np.sum(differ))


def layer_health(index: int, activation: Activation, dense: Dense | None = None) -> dict:
    """Distinct, dead and saturated units of one hidden layer after a forward pass; dead ones are
    counted where the activation can die, saturated ones where it saturates; with the layer's
    `dense`, also how many units have distinct incoming weights and bias."""
    Z, A = activation.Z.astype(np.float64), activation.A.astype(np.float64)
    health = {"layer": index, "activation": activation.name, "units": int(A.shape[1]),
              "distinct": distinct_columns(A), "dead": None, "saturated_share": None}
    if dense is not None:
        weights = [dense.W] + ([dense.params[dense.b_name]] if dense.b_name in dense.params else [])
        health["distinct_weights"] = distinct_columns(np.hstack(weights).astype(np.float64).T)
    if activation.dies:
        health["dead"] = int(np.sum(np.all(Z <= 0, axis=0)))
    if activation.saturates:
        slope = activation.derivative(Z, A) / activation.peak_slope
        health["saturated_share"] = float(np.mean(slope < FLAT))
    return health


def measure(network, X: np.ndarray, settings, split: str = "dev") -> dict:
    """Forward X (m, n0) through the network in inference mode and judge every hidden layer.

    `settings` is a DiagnoseConfig; returns the per-layer figures and three checks.
    """
    X = np.asarray(X[:SAMPLE], dtype=network.dtype)
    network.forward(X, training=False)
    layers, dense = [], None
    for layer in network.layers:
        if isinstance(layer, Dense):
            dense = layer
        elif isinstance(layer, Activation):
            layers.append(layer_health(dense.index if dense else 0, layer, dense))
    return {"examples": int(len(X)), **judge(layers, settings, split)}


def judge(layers: list[dict], settings, split: str) -> dict:
    """The three checks on per-layer figures (measured now, or recorded earlier)."""
    checks = {"symmetry": symmetry(layers), "dead_relu": dead_relu(layers, settings, split),
              "saturation": saturation(layers, settings, split)}
    return {"split": split, "layers": layers, "checks": checks}


def symmetry(layers: list[dict]) -> dict:
    """A layer of several units that all compute one function has never broken symmetry."""
    wide = [h for h in layers if h["units"] > 1]
    if not wide:
        return check("skipped", "no hidden layer with more than one unit")
    # A layer of dead ReLUs is all zeros, and so all alike: that alone is the dead-unit check's
    # finding. Units whose incoming weights are all equal too (zeros initialization) never broke
    # symmetry, dead or not: they got equal updates from the start.
    stuck = [h for h in wide if h["distinct"] == 1
             and (h["dead"] != h["units"] or h.get("distinct_weights") == 1)]
    if stuck:
        listed = ", ".join(f"layer {h['layer']} ({h['units']} units)" for h in stuck)
        same = [h for h in stuck if h.get("distinct_weights") == 1]
        dead = [h for h in same if h["dead"] == h["units"]]
        why = (("; their incoming weights are all equal, so every update was equal too"
                + ("; all of them are dead as well" if dead else "")) if same else "")
        return check("problem", f"symmetry not broken: every unit computes the same function in "
                      f"{listed}{why}", layers=[h["layer"] for h in stuck])
    counts = ", ".join(f"{h['distinct']}/{h['units']}" for h in wide)
    return check("ok", f"distinct units per hidden layer: {counts}", layers=[])


def dead_relu(layers: list[dict], settings, split: str) -> dict:
    relu = [h for h in layers if h["dead"] is not None]
    if not relu:
        return check("skipped", "no ReLU layer")
    worst = max(relu, key=lambda h: h["dead"] / h["units"])
    share = worst["dead"] / worst["units"]
    told = (f"{worst['dead']} of {worst['units']} ReLU units of layer {worst['layer']} never fire "
            f"on the {split} data")
    figures = dict(layer=worst["layer"], share=share, dead=[h["dead"] for h in relu])
    if share >= settings.dead_share:
        return check("problem", f"dead ReLU units: {told}", **figures)
    return check("ok", f"at most {told}", **figures)


def saturation(layers: list[dict], settings, split: str) -> dict:
    squashing = [h for h in layers if h["saturated_share"] is not None]
    if not squashing:
        saturating = sorted(name for name, cls in ACTIVATIONS.items() if cls.saturates)
        return check("skipped", f"no {' or '.join(saturating)} layer")
    worst = max(squashing, key=lambda h: h["saturated_share"])
    share = worst["saturated_share"]
    told = (f"{100 * share:.3g}% of layer {worst['layer']}'s {worst['activation']} outputs on the "
            f"{split} data sit on a flat tail (derivative under {FLAT:.0%} of its peak)")
    figures = dict(layer=worst["layer"], share=share)
    if share >= settings.saturated_share:
        return check("problem", f"saturated units: {told}", **figures)
    return check("ok", told, **figures)
