"""Layers of a fully-connected network.

Every layer works on rows = examples: X has shape (m, n_in). `forward(X, training)` caches what
`backward(dY)` needs; `backward` fills `grads` (same keys as `params`) and returns dX. Parameter
names are the course's (W1, b1, gamma1, beta1), so a layer's dicts can be merged into the network's.

Gradients are written into the arrays already in `grads` when there are some:
a network hands its layers views of one flat buffer, and they must stay the same arrays.
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

    def grad_array(self, name: str) -> np.ndarray:
        """The array that receives d(name): the one in `grads`, or a new one like the parameter."""
        grad = self.grads.get(name)
        if grad is None:
            grad = self.grads[name] = np.empty_like(self.params[name])
        return grad


def _product(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A @ B written into out; np.dot costs less per call than matmul on small arrays."""
    if A.dtype == B.dtype == out.dtype:
        return np.dot(A, B, out=out)
    return np.matmul(A, B, out=out)


_ONES: dict[tuple, np.ndarray] = {}


def _column_sums(dZ: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Σ over the rows of dZ (m, n) into out (n,), as 1ᵀ dZ: one BLAS call instead of a reduction."""
    key = (dZ.shape[0], dZ.dtype.str)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = np.ones(dZ.shape[0], dtype=dZ.dtype)
    return _product(ones, dZ, out)


class Dense(Layer):
    """Z = X Wᵀ + bᵀ with W (n_out, n_in) and b (n_out, 1); no b when batch norm follows."""

    def __init__(self, index: int, W: np.ndarray, b: np.ndarray | None):
        super().__init__()
        self.index = index
        self.W_name, self.b_name = f"W{index}", f"b{index}"
        self.params[self.W_name] = W
        if b is not None:
            self.params[self.b_name] = b
        self.input_grad = True  # the network turns it off for its first layer: nobody needs dJ/dX

    @property
    def W(self) -> np.ndarray:
        return self.params[self.W_name]

    def forward(self, X, training):
        self.X = X
        params = self.params
        Z = np.dot(X, params[self.W_name].T)
        b = params.get(self.b_name)
        if b is not None:
            Z += b.T
        return Z

    def backward(self, dZ):
        _product(dZ.T, self.X, self.grad_array(self.W_name))
        if self.b_name in self.params:
            _column_sums(dZ, self.grad_array(self.b_name)[:, 0])
        return np.dot(dZ, self.params[self.W_name]) if self.input_grad else None


class Activation(Layer):
    """An elementwise nonlinearity A = g(Z). A subclass gives g (`function`), its slope
    (`derivative`, mapping (Z, A) to dA/dZ) and its traits: what the diagnosis, the advice and
    gradient checking know about it, so that none of them keeps a list of names.
    """

    name = ""
    title = ""  # how advice names it in a sentence, e.g. "leaky ReLU"
    kinks: tuple[float, ...] = ()  # values of Z where the slope jumps: there J has no derivative
    # The slope is 0 for every Z ≤ 0: a unit whose Z is never positive passes no gradient back
    # and never learns again (a dead unit).
    dies = False
    # The slope vanishes on both tails (|Z| large): a unit far out on one has stopped learning.
    saturates = False
    peak_slope = 1.0  # the largest g'(Z): a saturating unit's slope is judged against it
    # Var(W) = init_gain/n_in keeps Var(A) from layer to layer (He's 2 for the ReLU family,
    # Xavier's 1 for tanh): the initializer whose `fan_in_gain` is this one suits the activation.
    init_gain = 1.0

    @staticmethod
    def function(Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def derivative(Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, Z, training):
        self.Z = Z
        self.A = self.function(Z)
        return self.A

    def backward(self, dA):
        return dA * self.derivative(self.Z, self.A)


# A 0-d zero of the array's own dtype: a ufunc takes it without converting a Python scalar,
# which costs as much as the operation itself on the small arrays of the course's networks.
_ZEROS = {np.dtype(t): np.zeros((), dtype=t) for t in (np.float32, np.float64)}


class ReLU(Activation):
    """g(Z) = max(Z, 0);  g'(Z) = 1 for Z > 0, else 0."""

    name, title = "relu", "ReLU"
    kinks, dies, init_gain = (0.0,), True, 2.0

    @staticmethod
    def function(Z):
        return np.maximum(Z, _ZEROS.get(Z.dtype, 0))

    @staticmethod
    def derivative(Z, A):
        return np.greater(Z, _ZEROS.get(Z.dtype, 0))


class LeakyReLU(Activation):
    """g(Z) = Z for Z > 0, else a·Z with a = LEAKY_SLOPE;  g'(Z) = 1 or a: it always passes a
    gradient."""

    name, title = "leaky_relu", "leaky ReLU"
    kinks, init_gain = (0.0,), 2.0  # 2/(1 + a²) ≈ 2: He's variance

    @staticmethod
    def function(Z):
        return np.where(Z > 0, Z, LEAKY_SLOPE * Z)

    @staticmethod
    def derivative(Z, A):
        return np.where(Z > 0, 1.0, LEAKY_SLOPE).astype(Z.dtype)


class Tanh(Activation):
    """g(Z) = tanh Z;  g'(Z) = 1 − A², at most 1 (at Z = 0)."""

    name, title = "tanh", "tanh"
    saturates, peak_slope = True, 1.0

    @staticmethod
    def function(Z):
        return np.tanh(Z)

    @staticmethod
    def derivative(Z, A):
        return 1 - A * A


class Sigmoid(Activation):
    """g(Z) = σ(Z) = 1/(1 + e^−Z);  g'(Z) = A(1 − A), at most 1/4 (at Z = 0)."""

    name, title = "sigmoid", "sigmoid"
    saturates, peak_slope = True, 0.25

    @staticmethod
    def function(Z):
        return sigmoid(Z)

    @staticmethod
    def derivative(Z, A):
        return A * (1 - A)


ACTIVATIONS = {cls.name: cls for cls in (ReLU, LeakyReLU, Tanh, Sigmoid)}


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
        self.gamma_name, self.beta_name = f"gamma{index}", f"beta{index}"
        self.mean_name, self.var_name = f"running_mean{index}", f"running_var{index}"
        self.params[self.gamma_name] = np.ones((n, 1), dtype=dtype)
        self.params[self.beta_name] = np.zeros((n, 1), dtype=dtype)
        self.buffers[self.mean_name] = np.zeros((n, 1), dtype=dtype)
        self.buffers[self.var_name] = np.ones((n, 1), dtype=dtype)

    def forward(self, Z, training):
        gamma, beta = self.params[self.gamma_name].T, self.params[self.beta_name].T
        if training:
            mean, var = Z.mean(axis=0, keepdims=True), Z.var(axis=0, keepdims=True)
            running_mean, running_var = self.buffers[self.mean_name], self.buffers[self.var_name]
            running_mean *= self.MOMENTUM
            running_mean += (1 - self.MOMENTUM) * mean.T
            running_var *= self.MOMENTUM
            running_var += (1 - self.MOMENTUM) * var.T
        else:
            mean, var = self.buffers[self.mean_name].T, self.buffers[self.var_name].T
        self.inv_std = 1.0 / np.sqrt(var + self.EPSILON)
        self.Z_hat = (Z - mean) * self.inv_std
        return gamma * self.Z_hat + beta

    def backward(self, dY):
        m = dY.shape[0]
        np.add.reduce(dY * self.Z_hat, axis=0, keepdims=True, out=self.grad_array(self.gamma_name).T)
        np.add.reduce(dY, axis=0, keepdims=True, out=self.grad_array(self.beta_name).T)
        dZ_hat = dY * self.params[self.gamma_name].T
        # The mean and the variance both depend on every Z in the batch: their paths are the two
        # subtracted terms.
        return (self.inv_std / m) * (m * dZ_hat - dZ_hat.sum(axis=0, keepdims=True)
                                     - self.Z_hat * (dZ_hat * self.Z_hat).sum(axis=0, keepdims=True))
