"""The engine's self-check (`dlrun gradcheck` without a config): every combination of its pieces
(activation, output and loss, initialization, penalty, batch norm, dropout) as a small random
network, its gradients checked at initialization and after a few Adam steps on fresh batches."""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..engine.init import INITIALIZERS
from ..engine.layers import ACTIVATIONS
from ..engine.network import Network
from ..engine.optim import Adam
from .check import (
    EPSILON,
    Check,
    Progress,
    Report,
    Stage,
    check_network,
    stage_label,
    train_steps,
    validate,
)

SWEEP_SIZES = [2, 3, 2]  # inputs and two hidden layers: a gradient crosses a hidden layer
SWEEP_OUTPUTS = {"sigmoid": 1, "softmax": 3, "linear": 2}
SWEEP_PENALTIES = {"none": (0.0, 0.0), "l2": (0.7, 0.0), "l1": (0.0, 0.3), "l2+l1": (0.7, 0.3)}
SWEEP_KEEP_PROBS = [0.8, 0.6]
SWEEP_LEARNING_RATE = 0.1  # Adam moves each parameter by about this much per step


@dataclass(frozen=True)
class Combination:
    """One small network of the engine sweep."""

    activation: str
    output: str
    init: str
    penalty: str
    batch_norm: bool
    dropout: bool


def combinations() -> list[Combination]:
    """Every activation × output/loss × initialization × penalty × batch norm × dropout."""
    return [Combination(*values) for values in itertools.product(
        ACTIVATIONS, SWEEP_OUTPUTS, INITIALIZERS, SWEEP_PENALTIES, (False, True), (False, True))]


def sweep_network(combination: Combination, batch: int,
                  rng: np.random.Generator) -> tuple[Network, np.ndarray, np.ndarray]:
    """A float64 network of the combination and a random batch (X (batch, n0), y) for it."""
    l2, l1 = SWEEP_PENALTIES[combination.penalty]
    n_outputs = SWEEP_OUTPUTS[combination.output]
    network = Network.build(
        [*SWEEP_SIZES, n_outputs], combination.activation, INITIALIZERS[combination.init](),
        combination.output, rng, rng, dtype=np.float64, batch_norm=combination.batch_norm,
        keep_probs=SWEEP_KEEP_PROBS if combination.dropout else None, l2=l2, l1=l1)
    # Biases at 0 and γ at 1 would hide a missing bias term or a missing factor γ.
    for name, array in network.params.items():
        if name.startswith("gamma"):
            array[...] = rng.uniform(0.5, 1.5, array.shape)
        elif name.startswith("b"):  # b1 and beta1 alike
            array[...] = rng.normal(0.0, 0.5, array.shape)
    return (network, *_sweep_batch(combination, batch, rng))


def _sweep_batch(combination: Combination, batch: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((batch, SWEEP_SIZES[0]))
    n_outputs = SWEEP_OUTPUTS[combination.output]
    if combination.output == "linear":
        return X, rng.standard_normal((batch, n_outputs))
    return X, rng.integers(0, max(n_outputs, 2), batch)


def check_engine(epsilon: float = EPSILON, batch: int = 32, samples: int | None = None,
                 after_steps: int = 5, seed: int = 0,
                 progress: Progress | None = None) -> Report:
    """Check every combination of the engine's pieces on small random networks."""
    validate(epsilon, batch, samples, after_steps)
    started = time.perf_counter()
    every = combinations()
    checks = []
    for n, combination in enumerate(every):
        rng = np.random.default_rng([seed, n])
        network, X, y = sweep_network(combination, batch, rng)
        check = Check(asdict(combination))
        check.stages.append(Stage(stage_label(0), 0, check_network(network, X, y, epsilon,
                                                                     samples, rng)))
        if after_steps:
            # Fresh batches: fitting the checked batch itself would shrink its gradient to noise.
            batches = (_sweep_batch(combination, batch, rng) + (SWEEP_LEARNING_RATE,)
                       for _ in range(after_steps))
            train_steps(network, Adam(), batches)
            check.stages.append(Stage(stage_label(after_steps), after_steps,
                                      check_network(network, X, y, epsilon, samples, rng)))
        checks.append(check)
        if progress:
            progress(n + 1, len(every))
    settings = {"epsilon": epsilon, "batch": batch, "samples": samples,
                "after_steps": after_steps, "dtype": "float64", "seed": seed,
                "hidden_layers": SWEEP_SIZES[1:], "n_features": SWEEP_SIZES[0]}
    return Report("engine", settings, checks, time.perf_counter() - started)
