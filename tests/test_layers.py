"""Layers: dropout scaling, batch norm in both modes, dense and activation derivatives."""

import numpy as np
import pytest

from dlrun.engine.layers import ACTIVATIONS, BatchNorm, Dense, Dropout


def numeric_input_gradient(layer, X, dY, eps=1e-6):
    grad = np.zeros_like(X)
    for index in np.ndindex(X.shape):
        old = X[index]
        X[index] = old + eps
        plus = np.sum(layer.forward(X, training=True) * dY)
        X[index] = old - eps
        minus = np.sum(layer.forward(X, training=True) * dY)
        X[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def test_inverted_dropout_keeps_the_expected_activation():
    layer = Dropout(0.8, np.random.default_rng(0))
    A = np.ones((2000, 50))
    out = layer.forward(A, training=True)
    assert set(np.unique(out)) == {0.0, 1.25}
    assert np.mean(out == 0) == pytest.approx(0.2, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.02)
    assert np.array_equal(layer.backward(np.ones_like(A)), out)


def test_dropout_is_off_at_inference():
    layer = Dropout(0.5, np.random.default_rng(0))
    A = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(layer.forward(A, training=False), A)


def test_frozen_dropout_reuses_its_mask():
    layer = Dropout(0.5, np.random.default_rng(0))
    layer.frozen = True
    A = np.ones((10, 10))
    assert np.array_equal(layer.forward(A, True), layer.forward(A, True))


def test_batch_norm_training_normalizes_with_batch_statistics():
    layer = BatchNorm(1, 3, np.float64)
    Z = np.random.default_rng(0).normal(5, 3, (64, 3))
    out = layer.forward(Z, training=True)
    assert np.allclose(out.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(out.var(axis=0), 1, atol=1e-3)
    expected_mean = 0.1 * Z.mean(axis=0)  # one step of the weighted average from 0
    assert np.allclose(layer.buffers["running_mean1"][:, 0], expected_mean)


def test_batch_norm_inference_uses_running_statistics_and_gamma_beta():
    layer = BatchNorm(2, 2, np.float64)
    layer.buffers["running_mean2"][:] = [[1.0], [2.0]]
    layer.buffers["running_var2"][:] = [[4.0], [9.0]]
    layer.params["gamma2"][:] = [[2.0], [1.0]]
    layer.params["beta2"][:] = [[0.5], [-1.0]]
    out = layer.forward(np.array([[3.0, 5.0]]), training=False)
    eps = BatchNorm.EPSILON
    assert np.allclose(out, [[2 * 2 / np.sqrt(4 + eps) + 0.5, 3 / np.sqrt(9 + eps) - 1.0]])


def test_batch_norm_backward_matches_numeric_gradient():
    layer = BatchNorm(1, 3, np.float64)
    layer.params["gamma1"][:] = [[1.5], [0.5], [2.0]]
    rng = np.random.default_rng(1)
    X, dY = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    layer.forward(X, training=True)
    analytic = layer.backward(dY)
    assert np.allclose(analytic, numeric_input_gradient(layer, X, dY), atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_numeric(name):
    layer = ACTIVATIONS[name]()
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 4))
    for kink in layer.kinks:  # stay off the kinks, where there is no derivative
        X[np.abs(X - kink) < 1e-3] = kink + 0.5
    dY = rng.normal(size=X.shape)
    layer.forward(X, training=True)
    assert np.allclose(layer.backward(dY), numeric_input_gradient(layer, X, dY), atol=1e-6)


def test_sigmoid_does_not_overflow_on_large_inputs():
    with np.errstate(over="raise", invalid="raise"):
        out = ACTIVATIONS["sigmoid"]().forward(np.array([[-1000.0, 0.0, 1000.0]]), training=False)
    assert np.allclose(out, [[0.0, 0.5, 1.0]])


def test_dense_gradients_use_course_shapes():
    W, b = np.arange(6.0).reshape(3, 2), np.array([[1.0], [0.0], [-1.0]])
    layer = Dense(1, W, b)
    X = np.array([[1.0, 2.0], [0.0, -1.0]])
    assert np.allclose(layer.forward(X, True), X @ W.T + b.T)
    dZ = np.ones((2, 3))
    dX = layer.backward(dZ)
    assert layer.grads["W1"].shape == (3, 2) and layer.grads["b1"].shape == (3, 1)
    assert np.allclose(layer.grads["W1"], dZ.T @ X)
    assert np.allclose(layer.grads["b1"], [[2.0], [2.0], [2.0]])
    assert np.allclose(dX, dZ @ W)
