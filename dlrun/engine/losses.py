"""Losses computed from the output layer's logits, stable for any logit size.

`value_and_grad(Z, y)` returns the mean cost over the m examples and dJ/dZ (already divided by m);
`predict(Z)` turns logits into what a user sees: probabilities or values.
"""

from __future__ import annotations

import numpy as np

from .layers import sigmoid


class Loss:
    name = ""
    output = ""

    def value(self, Z: np.ndarray, y: np.ndarray) -> float:
        return self.value_and_grad(Z, y, need_grad=False)[0]

    def value_and_grad(self, Z, y, need_grad=True):
        raise NotImplementedError

    def predict(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class BinaryCrossEntropy(Loss):
    """−y log σ(z) − (1−y) log(1−σ(z)) = log(1 + e^z) − z·y; Z is (m, 1).

    np.logaddexp(0, z) evaluates log(1 + e^z) as max(z, 0) + log(1 + e^−|z|), finite for any z.
    """

    name, output = "binary_cross_entropy", "sigmoid"

    def value_and_grad(self, Z, y, need_grad=True):
        z = Z[:, 0]
        m = z.shape[0]
        target = y.astype(z.dtype, copy=False)  # labels in the logits' dtype: no float64 detour
        losses = np.logaddexp(0, z)
        losses -= z * target
        cost = float(np.add.reduce(losses) / m)
        if not need_grad:
            return cost, None
        grad = np.multiply(z, 0.5)  # σ(z) = ½(1 + tanh(z/2)), in place: one array, no overflow
        np.tanh(grad, out=grad)
        grad += 1
        grad *= 0.5
        grad -= target
        grad /= m
        return cost, grad[:, None]

    def predict(self, Z):
        return sigmoid(Z[:, 0])


class SoftmaxCrossEntropy(Loss):
    """−log softmax(z)[y] = logsumexp(z) − z[y]; Z is (m, K), y holds class indices (no one-hot)."""

    name, output = "softmax_cross_entropy", "softmax"

    def value_and_grad(self, Z, y, need_grad=True):
        m = Z.shape[0]
        rows = np.arange(m)
        shifted = Z - np.maximum.reduce(Z, axis=1, keepdims=True)
        exps = np.exp(shifted)
        log_norm = np.log(np.add.reduce(exps, axis=1))
        cost = float(np.add.reduce(log_norm - shifted[rows, y]) / m)
        if not need_grad:
            return cost, None
        shifted -= log_norm[:, None]
        grad = np.exp(shifted, out=exps)
        grad[rows, y] -= 1
        grad /= m
        return cost, grad

    def predict(self, Z):
        shifted = np.exp(Z - Z.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


class MeanSquaredError(Loss):
    """The mean over examples and outputs of (z − y)²; y is (m,) or (m, k)."""

    name, output = "mean_squared_error", "linear"

    def value_and_grad(self, Z, y, need_grad=True):
        target = y.reshape(Z.shape).astype(Z.dtype, copy=False)
        diff = Z - target
        cost = float(np.mean(diff * diff))
        return cost, (2.0 / diff.size) * diff if need_grad else None

    def predict(self, Z):
        return Z[:, 0] if Z.shape[1] == 1 else Z


LOSS_FOR_OUTPUT = {cls.output: cls for cls in (BinaryCrossEntropy, SoftmaxCrossEntropy, MeanSquaredError)}
