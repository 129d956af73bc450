"""Each optimizer's update on known gradients, computed by hand."""

import numpy as np
import pytest

from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.registry import build

LR = 0.1


def two_steps(name, **options):
    optimizer = build(OPTIMIZERS, "optimizer", {"name": name, **options})
    params = {"W1": np.array([[1.0, -2.0]])}
    optimizer.step(params, {"W1": np.array([[0.5, -1.0]])}, LR)
    first = params["W1"].copy()
    optimizer.step(params, {"W1": np.array([[0.25, 2.0]])}, LR)
    return first, params["W1"]


def test_gradient_descent_moves_against_the_gradient():
    first, second = two_steps("gd")
    assert np.allclose(first, [[0.95, -1.9]])
    assert np.allclose(second, [[0.925, -2.1]])


def test_momentum_averages_gradients_with_one_minus_beta():
    first, second = two_steps("momentum", beta=0.9)
    # V1 = 0.1·g1 = [0.05, -0.1]; V2 = 0.9·V1 + 0.1·g2 = [0.07, 0.11]
    assert np.allclose(first, [[1 - 0.005, -2 + 0.01]])
    assert np.allclose(second, [[0.995 - 0.007, -1.99 - 0.011]])


def test_rmsprop_divides_by_root_of_squared_average():
    first, second = two_steps("rmsprop", beta=0.9, epsilon=1e-8)
    S1 = 0.1 * np.array([0.25, 1.0])
    expected1 = np.array([1.0, -2.0]) - LR * np.array([0.5, -1.0]) / (np.sqrt(S1) + 1e-8)
    S2 = 0.9 * S1 + 0.1 * np.array([0.0625, 4.0])
    expected2 = expected1 - LR * np.array([0.25, 2.0]) / (np.sqrt(S2) + 1e-8)
    assert np.allclose(first[0], expected1)
    assert np.allclose(second[0], expected2)


def test_adam_first_step_is_lr_times_sign_after_bias_correction():
    first, second = two_steps("adam", beta1=0.9, beta2=0.999, epsilon=1e-8)
    # After correction V̂1 = g1 and Ŝ1 = g1², so the step is lr·g/|g|.
    assert np.allclose(first, [[0.9, -1.9]])
    V2 = 0.9 * 0.1 * np.array([0.5, -1.0]) + 0.1 * np.array([0.25, 2.0])
    S2 = 0.999 * 0.001 * np.array([0.25, 1.0]) + 0.001 * np.array([0.0625, 4.0])
    V_hat, S_hat = V2 / (1 - 0.9**2), S2 / (1 - 0.999**2)
    assert np.allclose(second[0], first[0] - LR * V_hat / (np.sqrt(S_hat) + 1e-8))


def test_optimizer_state_is_kept_per_parameter():
    optimizer = build(OPTIMIZERS, "optimizer", "momentum")
    params = {"W1": np.zeros(2), "b1": np.zeros(2)}
    optimizer.step(params, {"W1": np.ones(2), "b1": -np.ones(2)}, 1.0)
    assert np.allclose(optimizer.state["W1"]["V"], 0.1)
    assert np.allclose(optimizer.state["b1"]["V"], -0.1)
    assert optimizer.t == 1


@pytest.mark.parametrize("spec, message", [
    ({"name": "adam", "beta1": 1.0}, "beta1"),
    ({"name": "rmsprop", "epsilon": 0}, "epsilon"),
    ({"name": "momentum", "beta1": 0.9}, "unknown option 'beta1' for optimizer 'momentum'; allowed: beta"),
    ({"name": "adam", "beta1": "high"}, "must be a number"),
])
def test_bad_optimizer_options_are_named(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build(OPTIMIZERS, "optimizer", spec)


def test_an_unknown_optimizer_lists_every_registered_one(unregistered):
    name = unregistered(OPTIMIZERS)
    with pytest.raises(ValueError) as error:
        build(OPTIMIZERS, "optimizer", name)
    assert str(error.value) == f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}"
