"""K networks of one architecture trained as one computation, each with its own numbers.

Row k of every array belongs to trial k: W[l] has shape (K, n_l, n_{l-1}), b[l] (K, n_l, 1), a
mini-batch (K, B, n_0). One batched product (np.matmul) does the work of K small ones, so the
fixed cost of each NumPy call is paid once per step instead of once per trial. Per-trial
hyperparameters are (K, 1) columns that broadcast over a trial's flat parameters: learning rate,
β's, ε, λ₂, λ₁; keep_prob draws each trial's dropout mask from that trial's own generator.

Every formula is the reference engine's (network.py, layers.py, losses.py, optim.py), in the same
order of operations, applied row by row; the tests hold the two to each other. Parameters and
gradients live in one (K, P) buffer each, laid out as a Network's flat buffer is, so an optimizer
step is a dozen whole-buffer calls. `keep(rows)` drops finished trials: a stopped trial's slot no
longer costs anything, and nothing else changes for the others.
"""

from __future__ import annotations

import math

import numpy as np

from .layers import Activation, Dense, Dropout
from .losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from .network import Network
from .optim import Adam, GradientDescent, Momentum, RMSprop

OPTIMIZER_SLOTS = {GradientDescent: (), Momentum: ("V",), RMSprop: ("S",), Adam: ("V", "S")}
LOSSES = (BinaryCrossEntropy, SoftmaxCrossEntropy, MeanSquaredError)


def stackable(network: Network) -> str | None:
    """Why this network cannot join a stack (None if it can): only dense layers, activations
    and dropout, one dtype, one of the three losses."""
    for layer in network.layers:
        if not isinstance(layer, (Dense, Activation, Dropout)):
            return f"{type(layer).__name__} layers are not stacked"
    if not isinstance(network.loss, LOSSES):
        return f"loss {network.loss.name} is not stacked"
    if any(layer.params.get(layer.b_name) is None for layer in network.dense):
        return "a dense layer without bias is not stacked"
    return None


def signature(network: Network) -> tuple:
    """What networks of one stack share: layer sizes, activations, output, dtype."""
    activations = tuple(layer.name for layer in network.layers if isinstance(layer, Activation))
    sizes = tuple(d.W.shape for d in network.dense)
    return sizes, activations, network.output, network.dtype.str


class StackedNetwork:
    """The networks' parameters stacked; forward, backward, penalty and loss for all at once."""

    def __init__(self, networks: list[Network]):
        first = networks[0]
        self.dtype = first.dtype
        self.names = list(first.params)  # W1, b1, W2, b2, ...: the reference flat layout
        self.shapes = [first.params[name].shape for name in self.names]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.starts = np.cumsum([0, *self.sizes])
        self.n_layers = len(first.dense)
        self.activation = next(layer for layer in first.layers if isinstance(layer, Activation))
        self.loss = first.loss
        self.params = np.stack([np.concatenate([net.params[name].reshape(-1)
                                                for name in self.names]) for net in networks])
        self.grads = np.zeros_like(self.params)
        self.l2 = np.array([net.l2 for net in networks], dtype=float)[:, None, None]
        self.l1 = np.array([net.l1 for net in networks], dtype=float)[:, None, None]
        # keep_prob per hidden layer and trial, with each trial's generator (1.0: no dropout).
        self.keep = np.ones((len(networks), self.n_layers - 1))
        self.rngs: list = [None] * len(networks)
        for k, net in enumerate(networks):
            hidden = 0
            for layer in net.layers:
                if isinstance(layer, Dense):
                    hidden = layer.index
                elif isinstance(layer, Dropout):
                    self.keep[k, hidden - 1] = layer.keep_prob
                    self.rngs[k] = layer.rng
        self._bind()

    def _bind(self) -> None:
        """Views W[l] (K, n_out, n_in), b[l] (K, n_out, 1) into the flat buffers."""
        K = len(self.params)

        def views(flat):
            return [flat[:, s:s + n].reshape(K, *shape)
                    for s, n, shape in zip(self.starts, self.sizes, self.shapes)]

        params, grads = views(self.params), views(self.grads)
        self.W, self.b = params[0::2], params[1::2]
        self.dW, self.db = grads[0::2], grads[1::2]
        self.W_rows = [self.grads[:, s:s + n] for s, n in zip(self.starts[0::2], self.sizes[0::2])]

    def __len__(self) -> int:
        return len(self.params)

    def keep_rows(self, rows: np.ndarray) -> None:
        """Keep only the trials at `rows` (in that order)."""
        self.params, self.grads = self.params[rows], self.grads[rows]
        self.l2, self.l1, self.keep = self.l2[rows], self.l1[rows], self.keep[rows]
        self.rngs = [self.rngs[k] for k in rows]
        self._bind()

    def state(self, k: int) -> dict[str, np.ndarray]:
        """Trial k's parameters by their course names and shapes (copies)."""
        return {name: self.params[k, s:s + n].reshape(shape).copy()
                for name, s, n, shape in zip(self.names, self.starts, self.sizes, self.shapes)}

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        """Logits (K, m, n_L) of X (K, m, n_0), as Network.forward computes them row by row."""
        self.cache = []
        A = X
        for l in range(self.n_layers):
            Z = np.matmul(A, self.W[l].transpose(0, 2, 1))
            Z += self.b[l].transpose(0, 2, 1)
            if l == self.n_layers - 1:
                self.cache.append((A, None, None, None))
                return Z
            activated = self.activation.function(Z)
            mask = self._mask(l, activated) if training else None
            self.cache.append((A, Z, activated, mask))
            A = activated if mask is None else activated * mask
        return A

    def _mask(self, l: int, A: np.ndarray) -> np.ndarray | None:
        """Inverted-dropout masks, each trial's uniforms drawn as Dropout.forward draws them from
        its own generator (a trial without dropout draws nothing and keeps every unit)."""
        keep = self.keep[:, l]
        dropping = np.flatnonzero(keep < 1.0)
        if not len(dropping):
            return None
        uniforms = np.zeros(A.shape, dtype=np.float64)
        for k in dropping.tolist():
            self.rngs[k].random(out=uniforms[k])
        kept = uniforms < keep[:, None, None]
        return kept.astype(A.dtype) / keep.astype(A.dtype)[:, None, None]

    def backward(self, dZ: np.ndarray) -> None:
        """Fill the gradients from dJ/dZ[L] (K, B, n_L), penalty terms included."""
        for l in reversed(range(self.n_layers)):
            A_prev = self.cache[l][0]
            self.dW[l][...] = np.matmul(dZ.transpose(0, 2, 1), A_prev)
            self.db[l][..., 0] = np.matmul(np.ones(dZ.shape[1], dtype=dZ.dtype), dZ)
            if l == 0:
                break
            dA = np.matmul(dZ, self.W[l])
            _, Z, A, mask = self.cache[l - 1]
            if mask is not None:
                dA = dA * mask
            dZ = dA * self.activation.derivative(Z, A)
        m = dZ.shape[1]
        l2, l1 = (self.l2 / m).astype(self.dtype), (self.l1 / (2 * m)).astype(self.dtype)
        for l in range(self.n_layers):
            if self.l2.any():
                self.dW[l] += l2 * self.W[l]
            if self.l1.any():
                self.dW[l] += l1 * np.sign(self.W[l])

    def penalty(self, m: int) -> np.ndarray:
        """λ₂/(2m)·Σ‖W‖² + λ₁/(2m)·Σ|W| per trial, shape (K,)."""
        total = np.zeros(len(self))
        l2, l1 = self.l2[:, 0, 0], self.l1[:, 0, 0]
        if l2.any():
            total += l2 / (2 * m) * sum(np.sum(W * W, axis=(1, 2)).astype(float) for W in self.W)
        if l1.any():
            total += l1 / (2 * m) * sum(np.sum(np.abs(W), axis=(1, 2)).astype(float)
                                        for W in self.W)
        return total

    def cost_and_grad(self, Z: np.ndarray, y: np.ndarray, need_grad: bool = True
                      ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean data cost per trial (K,) and dJ/dZ (already divided by m), as the losses do."""
        m = Z.shape[1]
        if isinstance(self.loss, BinaryCrossEntropy):
            z = Z[..., 0]
            target = y.astype(z.dtype, copy=False)
            losses = np.logaddexp(0, z)
            losses -= z * target
            cost = np.add.reduce(losses, axis=1) / m
            if not need_grad:
                return cost, None
            grad = np.multiply(z, 0.5)
            np.tanh(grad, out=grad)
            grad += 1
            grad *= 0.5
            grad -= target
            grad /= m
            return cost, grad[..., None]
        if isinstance(self.loss, SoftmaxCrossEntropy):
            trials, rows = np.arange(len(Z))[:, None], np.arange(m)[None, :]
            shifted = Z - np.maximum.reduce(Z, axis=2, keepdims=True)
            exps = np.exp(shifted)
            log_norm = np.log(np.add.reduce(exps, axis=2))
            cost = np.add.reduce(log_norm - shifted[trials, rows, y], axis=1) / m
            if not need_grad:
                return cost, None
            shifted -= log_norm[..., None]
            grad = np.exp(shifted, out=exps)
            grad[trials, rows, y] -= 1
            grad /= m
            return cost, grad
        target = y.reshape(Z.shape).astype(Z.dtype, copy=False)
        diff = Z - target
        cost = np.mean((diff * diff).reshape(len(Z), -1), axis=1)
        return cost, (2.0 / diff[0].size) * diff

    def grad_norms(self) -> np.ndarray:
        """‖dW[l]‖ per trial and layer, shape (K, L)."""
        squares = np.stack([np.einsum("ij,ij->i", row, row) for row in self.W_rows], axis=1)
        return np.sqrt(squares.astype(float))  # the root in float64, as Network.grad_norms


class StackedOptimizer:
    """One optimizer rule over the (K, P) buffer, with each trial's hyperparameters as columns."""

    def __init__(self, optimizers: list, shape: tuple, dtype):
        kind = type(optimizers[0])
        self.kind = kind
        self.t = optimizers[0].t
        self.slots = {key: np.zeros(shape, dtype=dtype) for key in OPTIMIZER_SLOTS[kind]}

        def column(name):
            return np.array([getattr(o, name) for o in optimizers], dtype=float)[:, None]

        names = {Momentum: ("beta",), RMSprop: ("beta", "epsilon"),
                 Adam: ("beta1", "beta2", "epsilon")}.get(kind, ())
        self.hyper = {name: column(name) for name in names}

    def keep_rows(self, rows: np.ndarray) -> None:
        self.slots = {key: value[rows] for key, value in self.slots.items()}
        self.hyper = {key: value[rows] for key, value in self.hyper.items()}

    def state(self, k: int, names: list[str], starts, sizes, shapes) -> dict:
        """Trial k's slots per parameter name, as Optimizer.state holds them (copies)."""
        return {name: {key: flat[k, s:s + n].reshape(shape).copy()
                       for key, flat in self.slots.items()}
                for name, s, n, shape in zip(names, starts, sizes, shapes)}

    def step(self, params: np.ndarray, grads: np.ndarray, lr: np.ndarray) -> None:
        """One update of every trial's parameters; lr is a (K, 1) column.

        Coefficients are computed in float64 and then cast to the parameters' dtype, as a Python
        float is when the reference multiplies a float32 array by it."""
        self.t += 1
        h = self.hyper

        def c(column):
            return column.astype(params.dtype, copy=False)

        if self.kind is GradientDescent:
            params -= grads * c(lr)
        elif self.kind is Momentum:
            V = self.slots["V"]
            V *= c(h["beta"])
            V += grads * c(1 - h["beta"])
            params -= V * c(lr)
        elif self.kind is RMSprop:
            S = self.slots["S"]
            S *= c(h["beta"])
            work = grads * c(1 - h["beta"])
            work *= grads
            S += work
            np.sqrt(S, out=work)
            work += c(h["epsilon"])
            np.divide(grads, work, out=work)
            work *= c(lr)
            params -= work
        else:
            V, S = self.slots["V"], self.slots["S"]
            V *= c(h["beta1"])
            V += grads * c(1 - h["beta1"])
            S *= c(h["beta2"])
            work = grads * c(1 - h["beta2"])
            work *= grads
            S += work
            # Python's float power and root per trial, exactly as Adam.update takes them (NumPy's
            # vectorized power may round differently in the last bit).
            t = self.t
            beta1, beta2 = h["beta1"][:, 0].tolist(), h["beta2"][:, 0].tolist()
            root_c2 = np.array([math.sqrt(1 - b2 ** t) for b2 in beta2])[:, None]
            bias1 = np.array([1 - b1 ** t for b1 in beta1])[:, None]
            np.sqrt(S, out=work)
            work += c(h["epsilon"] * root_c2)
            np.divide(V, work, out=work)
            work *= c(lr * root_c2 / bias1)
            params -= work
