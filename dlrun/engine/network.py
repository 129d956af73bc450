"""The network: a stack of layers, a loss on its logits, and L2/L1 penalties on its weights.

Parameters and gradients live in one flat buffer each (`FlatArrays`): `params` and `grads` still
map the course's names to arrays of the course's shapes, but those arrays are views, so layers
write gradients in place and an optimizer updates everything in a few whole-buffer calls.

`use_kernels(compiled)` runs it on compiled kernels (fused.py says when they pay): each dense
layer's bias and the ReLU after it in one pass, forward and backward, with the same numbers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import numpy as np

from .flat import FlatArrays
from .init import Initializer
from .layers import ACTIVATIONS, Activation, BatchNorm, Dense, Dropout, Layer
from .losses import LOSS_FOR_OUTPUT

EVAL_CHUNK = 8192  # rows per forward pass when evaluating, so memory stays flat on big splits


class Network:
    def __init__(self, layers: list[Layer], output: str, l2: float = 0.0, l1: float = 0.0):
        self.layers = layers
        self.output = output
        self.loss = LOSS_FOR_OUTPUT[output]()
        self.l2, self.l1 = l2, l1
        params: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        for layer in layers:
            params.update(layer.params)
            self.buffers.update(layer.buffers)
        dtypes = {array.dtype for array in params.values()}
        if len(dtypes) == 1:
            self.params = FlatArrays(params, dtypes.pop())
            self.grads = self.params.zeros_like()
            for layer in layers:
                layer.params.update({name: self.params[name] for name in layer.params})
                layer.grads.update({name: self.grads[name] for name in layer.params})
            links = [(layer.grads, name, self.grads[name]) for layer in layers for name in layer.params]
            self._grad_links = tuple(map(list, zip(*links))) if links else ([], [], [])
        else:  # mixed dtypes cannot share a buffer: plain dicts, array-by-array updates
            self.params, self.grads = params, {}
        self.dense = [layer for layer in layers if isinstance(layer, Dense)]
        if layers and isinstance(layers[0], Dense):
            layers[0].input_grad = False  # dJ/dX of the data is never used: skip its matmul
        self._reversed = layers[::-1]
        self._grad_rows = [self.grads[d.W_name].reshape(-1) for d in self.dense] if self.grads else []
        self.kernels = None
        self._forward_layers = layers  # without the activations a dense layer applies itself

    def __getstate__(self) -> dict:
        # As its layers: a copy runs on NumPy alone.
        return {**self.__dict__, "kernels": None, "_forward_layers": self.layers}

    def use_kernels(self, kernels) -> None:
        """Run on the compiled kernels (None: back to NumPy alone). A dense layer with a bias
        hands its Z to the fusable activation right after it, which adds the bias itself."""
        self.kernels = kernels
        for layer in self.layers:
            if isinstance(layer, Activation) and layer.fusable:
                layer.kernels = kernels
        for before, layer in zip(self.layers, self.layers[1:]):
            if isinstance(before, Dense):
                fuse = (kernels is not None and before.b_name in before.params
                        and isinstance(layer, Activation) and layer.fusable)
                before.activation = layer if fuse else None
        applied = {id(d.activation) for d in self.dense if d.activation is not None}
        self._forward_layers = [layer for layer in self.layers if id(layer) not in applied]

    @classmethod
    def build(cls, sizes: list[int], activation: str, init: Initializer, output: str,
              rng: np.random.Generator, dropout_rng: np.random.Generator, dtype=np.float32,
              batch_norm: bool = False, keep_probs: list[float] | None = None,
              l2: float = 0.0, l1: float = 0.0) -> Network:
        """sizes = [n0, n1, ..., nL]: inputs, hidden units per layer, outputs."""
        n_layers = len(sizes) - 1
        keep_probs = keep_probs or [1.0] * (n_layers - 1)
        layers: list[Layer] = []
        for l in range(1, n_layers + 1):
            hidden = l < n_layers
            normalized = hidden and batch_norm
            W = init(rng, sizes[l], sizes[l - 1], dtype)
            # Batch norm's β takes over the bias: b would be subtracted away with the mean.
            b = None if normalized else np.zeros((sizes[l], 1), dtype=dtype)
            layers.append(Dense(l, W, b))
            if hidden:
                if normalized:
                    layers.append(BatchNorm(l, sizes[l], dtype))
                layers.append(ACTIVATIONS[activation]())
                if keep_probs[l - 1] < 1.0:
                    layers.append(Dropout(keep_probs[l - 1], dropout_rng))
        return cls(layers, output, l2=l2, l1=l1)

    @property
    def dtype(self):
        return self.dense[0].W.dtype

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        """Logits Z[L] of shape (m, n_L)."""
        for layer in self._forward_layers:
            X = layer.forward(X, training)
        return X

    def backward(self, dZ: np.ndarray) -> None:
        """Fill self.grads from dJ/dZ[L] (already divided by m), penalty terms included."""
        for layer in self._reversed:
            dZ = layer.backward(dZ)
        if isinstance(self.grads, FlatArrays):
            self._adopt_rebound_grads()
        else:
            for layer in self.layers:
                self.grads.update(layer.grads)
        if not (self.l2 or self.l1):
            return
        m = self.dense[0].X.shape[0]
        for layer in self.dense:
            grad = self.grads[layer.W_name]
            if self.l2:
                grad += (self.l2 / m) * layer.W
            if self.l1:
                grad += (self.l1 / (2 * m)) * np.sign(layer.W)

    def _adopt_rebound_grads(self) -> None:
        """Copy in any gradient a layer stored as a new array instead of writing it in place."""
        dicts, names, views = self._grad_links
        if all(map(operator.is_, map(dict.get, dicts, names), views)):
            return
        for grads, name, view in zip(dicts, names, views):
            value = grads.get(name)
            if value is not view and value is not None:
                view[...] = value
                grads[name] = view

    def penalty(self, m: int) -> float:
        """λ₂/(2m)·Σ‖W‖² + λ₁/(2m)·Σ|W|, over weights only (never biases or γ, β)."""
        total = 0.0
        # np.add.reduce over every axis is np.sum without its wrapper: the same pairwise sums,
        # a few microseconds less on each of a course network's thousands of steps.
        if self.l2:
            total += self.l2 / (2 * m) * sum(float(np.add.reduce(d.W * d.W, axis=None))
                                             for d in self.dense)
        if self.l1:
            total += self.l1 / (2 * m) * sum(float(np.add.reduce(np.abs(d.W), axis=None))
                                             for d in self.dense)
        return total

    def train_step_gradients(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Forward and backward on one mini-batch; returns (data cost, penalty)."""
        Z = self.forward(X, training=True)
        cost, dZ = self.loss.value_and_grad(Z, y)
        self.backward(dZ)
        return cost, self.penalty(X.shape[0])

    def chunks(self, X: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, X.shape[0], EVAL_CHUNK):
            yield self.forward(np.asarray(X[start:start + EVAL_CHUNK], dtype=self.dtype), training=False)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Inference-mode logits, computed in chunks."""
        if X.shape[0] <= EVAL_CHUNK:
            return self.forward(np.asarray(X, dtype=self.dtype), training=False)
        return np.concatenate(list(self.chunks(X)), axis=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (sigmoid: P(y=1) per row; softmax: a row per class) or values."""
        return self.loss.predict(self.logits(X))

    def grad_norms(self) -> list[float]:
        """‖dW[l]‖ for l = 1..L, from the last backward pass."""
        rows = self._grad_rows
        if not (isinstance(self.grads, FlatArrays) and self.grads.whole() is not None):
            rows = [np.asarray(self.grads[d.W_name]).reshape(-1) for d in self.dense]
        # √(g·g), as np.linalg.norm computes it; the root is taken in float64.
        return [math.sqrt(np.vdot(row, row)) for row in rows]

    def state(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (batch-norm running statistics), by their course names."""
        return {**self.params, **self.buffers}

    def load_state(self, arrays: dict[str, np.ndarray], source: str = "parameters") -> None:
        """Copy arrays into this network in place; names and shapes must match exactly."""
        expected = self.state()
        missing = [name for name in expected if name not in arrays]
        if missing:
            raise ValueError(f"{source} has no {missing[0]!r} (this network needs "
                             f"{', '.join(expected)})")
        for name, target in expected.items():
            value = np.asarray(arrays[name])
            if value.shape != target.shape:
                raise ValueError(f"{source}: {name} has shape {value.shape}, this network needs "
                                 f"{target.shape}")
            target[...] = value
