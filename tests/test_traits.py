"""Every registered entry's traits agree with what the entry computes, so that the advice, the
unit checks and gradient checking, which read only the traits, are told the truth."""

import numpy as np
import pytest

from dlrun.diagnosis.hidden_units import FLAT
from dlrun.engine.init import INITIALIZERS
from dlrun.engine.layers import ACTIVATIONS
from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.schedules import SCHEDULES

Z = np.linspace(-30, 30, 600_001)  # a step of 1e-4, with 0 and ±1 on the grid


def slopes(cls, Z=Z):
    return np.asarray(cls.derivative(Z, cls.function(Z)), dtype=float)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_an_initializers_fan_traits_match_its_variance(name):
    cls = INITIALIZERS[name]
    draw = lambda n_out, n_in: cls()(np.random.default_rng(0), n_out, n_in, np.float64)  # noqa: E731
    spread = {shape: float(np.std(draw(*shape))) for shape in [(400, 100), (400, 400), (100, 400)]}
    scales_with_fan = not np.allclose(list(spread.values()), spread[(400, 100)], rtol=0.2)
    assert cls.fan_scaled == scales_with_fan
    if cls.fan_in_gain is not None:
        for (n_out, n_in), std in spread.items():
            assert std ** 2 * n_in == pytest.approx(cls.fan_in_gain, rel=0.05)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_an_activations_slope_traits_match_its_derivative(name):
    cls = ACTIVATIONS[name]
    slope = slopes(cls)
    assert slope.max() == pytest.approx(cls.peak_slope, rel=1e-6)
    far = np.abs(Z) > 20
    assert cls.saturates == bool(np.all(slope[far] < FLAT * cls.peak_slope))
    assert cls.dies == bool(np.all(slope[Z <= 0] == 0))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_an_activations_kinks_are_where_its_slope_jumps(name):
    cls = ACTIVATIONS[name]
    jumps = np.abs(np.diff(slopes(cls))) > 1e-2  # a smooth slope moves by ~1e-4 per grid step
    at = Z[1:][jumps]
    assert len(at) == len(cls.kinks)
    assert at == pytest.approx(list(cls.kinks), abs=2e-4)


def first_steps(cls, gradients, lr=0.1):
    """The parameter's moves over successive steps with the given gradients."""
    optimizer, param, moves = cls(), np.zeros(3), []
    for grad in gradients:
        before = param.copy()
        optimizer.step({"W1": param}, {"W1": np.asarray(grad, dtype=float)}, lr)
        moves.append(param - before)
    return moves


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_an_optimizers_traits_match_its_steps(name):
    cls = OPTIMIZERS[name]
    grad = np.array([1e-2, -3.0, 50.0])
    (small,), (large,) = first_steps(cls, [grad]), first_steps(cls, [100 * grad])
    # adaptive: each step is divided by the gradient's own size, so scaling dθ leaves it alone
    assert cls.adaptive == bool(np.allclose(small, large, rtol=1e-3))
    # momentum: a zero gradient after a nonzero one still moves the parameter
    assert cls.momentum == bool(np.any(first_steps(cls, [grad, np.zeros(3)])[1] != 0))
    assert cls.steepest_descent == bool(np.allclose(small, -0.1 * grad, rtol=1e-12))


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_moves_within_an_epoch_only_if_it_says_so(name):
    schedule = SCHEDULES[name]().bind(total_epochs=6, steps_per_epoch=7)
    within = [len({schedule.lr(0.1, epoch, epoch * 7 + step) for step in range(7)}) > 1
              for epoch in range(6)]
    assert any(within) == schedule.per_step
