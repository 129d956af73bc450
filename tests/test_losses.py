"""Losses against naive formulas, at safe and at extreme logits."""

import numpy as np
import pytest

from dlrun.engine.losses import (
    BinaryCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)


def test_binary_cross_entropy_matches_the_textbook_formula():
    Z = np.array([[-2.0], [0.3], [1.5], [4.0]])
    y = np.array([0, 1, 0, 1])
    p = 1 / (1 + np.exp(-Z[:, 0]))
    naive = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    cost, grad = BinaryCrossEntropy().value_and_grad(Z, y)
    assert cost == pytest.approx(naive)
    assert np.allclose(grad[:, 0], (p - y) / 4)


def test_binary_cross_entropy_is_finite_for_huge_logits():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        cost, grad = BinaryCrossEntropy().value_and_grad(np.array([[1000.0], [-1000.0]]),
                                                         np.array([0, 1]))
    assert cost == pytest.approx(1000.0)
    assert np.allclose(grad[:, 0], [0.5, -0.5])


def test_softmax_cross_entropy_matches_naive_and_sums_probabilities():
    Z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 0])
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    cost, grad = SoftmaxCrossEntropy().value_and_grad(Z, y)
    assert cost == pytest.approx(-np.mean(np.log(P[[0, 1], y])))
    one_hot = np.eye(3)[y]
    assert np.allclose(grad, (P - one_hot) / 2)
    assert np.allclose(SoftmaxCrossEntropy().predict(Z).sum(axis=1), 1)


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    with np.errstate(over="raise"):
        cost, _ = SoftmaxCrossEntropy().value_and_grad(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert cost == pytest.approx(2000.0)


def test_mean_squared_error_and_gradient():
    Z = np.array([[1.0], [3.0]])
    cost, grad = MeanSquaredError().value_and_grad(Z, np.array([0.0, 1.0]))
    assert cost == pytest.approx((1 + 4) / 2)
    assert np.allclose(grad, [[1.0], [2.0]])
