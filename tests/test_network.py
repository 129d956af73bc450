"""The network: penalties and their gradients, symmetry, state round trips."""

import numpy as np
import pytest

from dlrun.engine.init import INITIALIZERS, Random
from dlrun.engine.network import Network
from dlrun.engine.registry import build


def small_network(l2=0.0, l1=0.0, init=None, batch_norm=False):
    return Network.build([3, 4, 1], "tanh", init or Random(0.5), "sigmoid",
                         np.random.default_rng(0), np.random.default_rng(1), dtype=np.float64,
                         batch_norm=batch_norm, l2=l2, l1=l1)


def test_l2_cost_and_gradient_follow_the_formula():
    X, y = np.random.default_rng(2).normal(size=(10, 3)), np.array([0, 1] * 5)
    plain, regularized = small_network(), small_network(l2=0.7)
    cost, penalty = regularized.train_step_gradients(X, y)
    plain.train_step_gradients(X, y)
    W1, W2 = regularized.params["W1"], regularized.params["W2"]
    assert penalty == pytest.approx(0.7 / (2 * 10) * (np.sum(W1**2) + np.sum(W2**2)))
    assert np.allclose(regularized.grads["W1"], plain.grads["W1"] + 0.7 / 10 * W1)
    assert np.allclose(regularized.grads["b1"], plain.grads["b1"])  # biases are not penalized


def test_l1_gradient_is_the_sign_of_the_weights():
    X, y = np.random.default_rng(2).normal(size=(10, 3)), np.array([0, 1] * 5)
    plain, regularized = small_network(), small_network(l1=0.4)
    plain.train_step_gradients(X, y)
    _, penalty = regularized.train_step_gradients(X, y)
    W2 = regularized.params["W2"]
    assert np.allclose(regularized.grads["W2"], plain.grads["W2"] + 0.4 / 20 * np.sign(W2))
    assert penalty == pytest.approx(0.4 / 20 * sum(np.abs(regularized.params[k]).sum() for k in ("W1", "W2")))


def test_zero_init_leaves_every_hidden_unit_identical_after_training():
    network = small_network(init=build(INITIALIZERS, "init", "zeros"))
    X, y = np.random.default_rng(3).normal(size=(20, 3)), np.array([0, 1] * 10)
    for _ in range(20):
        network.train_step_gradients(X, y)
        for name, grad in network.grads.items():
            network.params[name] -= 0.5 * grad
    W1 = network.params["W1"]
    assert np.allclose(W1, W1[0])  # symmetry never broken


@pytest.mark.parametrize("name, expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)),
                                               ("glorot", np.sqrt(2 / 600)), ("random", 0.01)])
def test_initializers_have_their_variance(name, expected_std):
    W = build(INITIALIZERS, "init", name)(np.random.default_rng(0), 200, 400, np.float64)
    assert W.shape == (200, 400)
    assert W.std() == pytest.approx(expected_std, rel=0.03)


def test_batch_norm_network_has_no_hidden_bias_and_course_names():
    network = small_network(batch_norm=True)
    assert list(network.params) == ["W1", "gamma1", "beta1", "W2", "b2"]
    assert network.params["gamma1"].shape == (4, 1)
    assert set(network.buffers) == {"running_mean1", "running_var1"}


def test_load_state_checks_names_and_shapes():
    network = small_network()
    state = {k: v + 1 for k, v in network.state().items()}
    network.load_state(state)
    assert np.allclose(network.params["W1"], state["W1"])
    with pytest.raises(ValueError, match="has no 'b2'"):
        network.load_state({k: v for k, v in state.items() if k != "b2"})
    with pytest.raises(ValueError, match=r"W1 has shape \(2, 2\), this network needs \(4, 3\)"):
        network.load_state({**state, "W1": np.zeros((2, 2))})
