"""Layers of a fully-connected network.

Every layer works on rows = examples: X has shape (m, n_in). `forward(X, training)` caches what
`backward(dY)` needs; `backward` fills `grads` (same keys as `params`) and returns dX. Parameter
names are the course's (W1, b1, gamma1, beta1), so a layer's dicts can be merged into the network's.
"""

from __future__ import annotations

import numpy as np

LEAKY_SLOPE = 0.01  # the usual leaky-ReLU slope for Z < 0


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-Z), written through tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * Z))


class Layer:
    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # state saved with the model but not trained

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dY: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Dense(Layer):
    """Z = X Wᵀ + bᵀ with W (n_out, n_in) and b (n_out, 1); no b when batch norm follows."""

    def __init__(self, index: int, W: np.ndarray, b: np.ndarray | None):
        super().__init__()
        self.index = index
        self.params[f"W{index}"] = W
        if b is not None:
            self.params[f"b{index}"] = b

    @property
    def W(self) -> np.ndarray:
        return self.params[f"W{self.index}"]

    def forward(self, X, training):
        self.X = X
        Z = X @ self.W.T
        b = self.params.get(f"b{self.index}")
        if b is not None:
            Z += b.T
        return Z

    def backward(self, dZ):
        self.grads[f"W{self.index}"] = dZ.T @ self.X
        if f"b{self.index}" in self.params:
            self.grads[f"b{self.index}"] = dZ.sum(axis=0, keepdims=True).T
        return dZ @ self.W


class Activation(Layer):
    """An elementwise nonlinearity; `derivative` maps (Z, A) to dA/dZ."""

    FUNCTIONS = {
        "relu": (lambda Z: np.maximum(Z, 0), lambda Z, A: Z > 0),
        "leaky_relu": (lambda Z: np.where(Z > 0, Z, LEAKY_SLOPE * Z),
                       lambda Z, A: np.where(Z > 0, 1.0, LEAKY_SLOPE).astype(Z.dtype)),
        "tanh": (np.tanh, lambda Z, A: 1 - A * A),
        "sigmoid": (sigmoid, lambda Z, A: A * (1 - A)),
    }

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.function, self.derivative = self.FUNCTIONS[name]

    def forward(self, Z, training):
        self.Z = Z
        self.A = self.function(Z)
        return self.A

    def backward(self, dA):
        return dA * self.derivative(self.Z, self.A)


ACTIVATIONS = tuple(Activation.FUNCTIONS)


class Dropout(Layer):
    """Inverted dropout: keep each unit with probability keep_prob and scale by 1/keep_prob,
    so the expected activation is unchanged and nothing needs rescaling at test time."""

    def __init__(self, keep_prob: float, rng: np.random.Generator):
        super().__init__()
        self.keep_prob = keep_prob
        self.rng = rng
        self.frozen = False  # reuse the last mask (gradient checking needs a fixed J)
        self.mask = None

    def forward(self, A, training):
        if not training or self.keep_prob >= 1.0:
            self.mask = None
            return A
        if not (self.frozen and self.mask is not None and self.mask.shape == A.shape):
            keep = self.rng.random(A.shape, dtype=np.float64) < self.keep_prob
            self.mask = keep.astype(A.dtype) / A.dtype.type(self.keep_prob)
        return A * self.mask

    def backward(self, dA):
        return dA if self.mask is None else dA * self.mask


class BatchNorm(Layer):
    """Z̃ = γ·(Z − μ)/√(σ² + ε) + β with μ, σ² of the mini-batch in training and exponentially
    weighted running averages of them at inference. γ, β have shape (n, 1) as in the course."""

    EPSILON = 1e-5
    MOMENTUM = 0.9  # weight of the old running average: about the last 10 batches count

    def __init__(self, index: int, n: int, dtype):
        super().__init__()
        self.index = index
        self.params[f"gamma{index}"] = np.ones((n, 1), dtype=dtype)
        self.params[f"beta{index}"] = np.zeros((n, 1), dtype=dtype)
        self.buffers[f"running_mean{index}"] = np.zeros((n, 1), dtype=dtype)
        self.buffers[f"running_var{index}"] = np.ones((n, 1), dtype=dtype)

    def forward(self, Z, training):
        i = self.index
        gamma, beta = self.params[f"gamma{i}"].T, self.params[f"beta{i}"].T
        if training:
            mean, var = Z.mean(axis=0, keepdims=True), Z.var(axis=0, keepdims=True)
            running_mean, running_var = self.buffers[f"running_mean{i}"], self.buffers[f"running_var{i}"]
            running_mean *= self.MOMENTUM
            running_mean += (1 - self.MOMENTUM) * mean.T
            running_var *= self.MOMENTUM
            running_var += (1 - self.MOMENTUM) * var.T
        else:
            mean, var = self.buffers[f"running_mean{i}"].T, self.buffers[f"running_var{i}"].T
        self.inv_std = 1.0 / np.sqrt(var + self.EPSILON)
        self.Z_hat = (Z - mean) * self.inv_std
        return gamma * self.Z_hat + beta

    def backward(self, dY):
        i = self.index
        m = dY.shape[0]
        self.grads[f"gamma{i}"] = (dY * self.Z_hat).sum(axis=0, keepdims=True).T
        self.grads[f"beta{i}"] = dY.sum(axis=0, keepdims=True).T
        dZ_hat = dY * self.params[f"gamma{i}"].T
        # The mean and the variance both depend on every Z in the batch: their paths are the two
        # subtracted terms.
        return (self.inv_std / m) * (m * dZ_hat - dZ_hat.sum(axis=0, keepdims=True)
                                     - self.Z_hat * (dZ_hat * self.Z_hat).sum(axis=0, keepdims=True))
