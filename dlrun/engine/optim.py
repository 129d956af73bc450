"""Optimizers. The base class owns the loop over parameters, the step count t and the state;
a subclass writes only `update`, the rule for one parameter array (changed in place).

When the parameters and gradients are views into one flat buffer each (a Network's are), the
rule runs once on the whole buffer instead of once per array: the same arithmetic in a dozen
vectorized calls, whatever the number of layers. `state` still shows every slot per parameter
name, as views of the flat slots.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .flat import flat_pair
from .registry import check


def _check_beta(name: str, value: float) -> None:
    check(0 <= value < 1, f"Argument `{name}` must be in [0, 1). Received: {name}={value}")


def _check_epsilon(value: float) -> None:
    check(value > 0, f"Argument `epsilon` must be > 0. Received: epsilon={value}")


class FlatSlots(dict):
    """The slots (V, S) of all parameters as flat arrays; setting one also publishes a view of it
    per parameter in the optimizer's `state`, so both always hold the same numbers."""

    def __init__(self, layout: tuple, per_name: dict[str, dict[str, np.ndarray]]):
        super().__init__()
        self.layout, self.per_name = layout, per_name
        self.names = [name for name, _, _ in layout]
        self.name_slots = [per_name.setdefault(name, {}) for name in self.names]
        self.published: tuple[list, list, list] = ([], [], [])  # (slot dicts, keys, views)

    def __setitem__(self, key: str, flat: np.ndarray) -> None:
        super().__setitem__(key, flat)
        for slots, (_, start, shape) in zip(self.name_slots, self.layout):
            slots[key] = flat[start:start + math.prod(shape)].reshape(shape)
            for column, value in zip(self.published, (slots, key, slots[key])):
                column.append(value)

    def adopt(self, dtype) -> None:
        """Take over slots the per-name state already has (from array-by-array steps)."""
        keys = {key for slots in self.name_slots for key in slots}
        for key in sorted(keys):
            parts = [np.asarray(slots.get(key, np.zeros(shape)), dtype=dtype).reshape(-1)
                     for slots, (_, _, shape) in zip(self.name_slots, self.layout)]
            self[key] = np.concatenate(parts).astype(dtype, copy=False)

    def current(self, per_name: dict) -> bool:
        """True while the optimizer's state still holds exactly the views published here."""
        slot_dicts, keys, views = self.published
        return (per_name is self.per_name
                and all(map(operator.is_, map(per_name.get, self.names), self.name_slots))
                and all(map(operator.is_, map(dict.get, slot_dicts, keys), views)))


class Optimizer:
    """The update rule's traits, which the diagnosis and its advice read:

    `momentum`: steps along V, an exponentially weighted average of the gradients, which damps
    oscillation across a ravine; `adaptive`: divides each parameter's step by √S, a running RMS
    of its own gradients, so that steep and flat directions move alike; `steepest_descent`:
    steps along −dθ alone, so on the full batch and with a small enough α the cost must fall at
    every step.
    """

    name = ""
    title = ""  # how advice names it in a sentence, e.g. "Adam"
    momentum = False
    adaptive = False
    steepest_descent = False

    def __init__(self):
        self.t = 0
        self._flat_slots: FlatSlots | None = None
        self._scratch: dict[tuple, np.ndarray] = {}
        self._state: dict[str, dict[str, np.ndarray]] = {}
        self._state_seen = False

    @property
    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Slots per parameter name: {"W1": {"V": ..., "S": ...}, ...}."""
        self._state_seen = True  # someone may change it from now on: check it before each flat step
        return self._state

    @state.setter
    def state(self, value: dict[str, dict[str, np.ndarray]]) -> None:
        self._state, self._state_seen = value, True

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """Apply one update with learning rate lr to every parameter, in place."""
        self.t += 1
        pair = flat_pair(params, grads)
        if pair is not None:
            flat_params, flat_grads, layout = pair
            self.update(flat_params, flat_grads, lr, self._slots_for(layout, flat_params.dtype))
            return
        for name, param in params.items():
            self.update(param, grads[name], lr, self._state.setdefault(name, {}))

    def _slots_for(self, layout: tuple, dtype) -> FlatSlots:
        slots = self._flat_slots
        if (slots is None or slots.layout is not layout
                or (self._state_seen and not slots.current(self._state))):
            slots = self._flat_slots = FlatSlots(layout, self._state)
            slots.adopt(dtype)
        return slots

    def update(self, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def slot(state: dict, key: str, like: np.ndarray) -> np.ndarray:
        """A zero-initialized moving average kept per parameter (V, S)."""
        if key not in state:
            state[key] = np.zeros_like(like)
        return state[key]

    def scratch(self, like: np.ndarray) -> np.ndarray:
        """A work array shaped like `like`, reused across steps (its contents are garbage)."""
        key = (like.shape, like.dtype.str)
        work = self._scratch.get(key)
        if work is None:
            work = self._scratch[key] = np.empty_like(like)
        return work


class GradientDescent(Optimizer):
    """θ ← θ − α·dθ."""

    name, title = "gd", "gradient descent"
    steepest_descent = True

    def update(self, param, grad, lr, state):
        step = np.multiply(grad, lr, out=self.scratch(param))
        param -= step


class Momentum(Optimizer):
    """V ← βV + (1−β)dθ;  θ ← θ − α·V."""

    name, title = "momentum", "momentum"
    momentum = True

    def __init__(self, beta: float = 0.9):
        super().__init__()
        _check_beta("beta", beta)
        self.beta = beta

    def update(self, param, grad, lr, state):
        V, work = self.slot(state, "V", param), self.scratch(param)
        V *= self.beta
        V += np.multiply(grad, 1 - self.beta, out=work)
        param -= np.multiply(V, lr, out=work)


class RMSprop(Optimizer):
    """S ← βS + (1−β)dθ²;  θ ← θ − α·dθ/(√S + ε)."""

    name, title = "rmsprop", "RMSprop"
    adaptive = True

    def __init__(self, beta: float = 0.999, epsilon: float = 1e-8):
        super().__init__()
        _check_beta("beta", beta)
        _check_epsilon(epsilon)
        self.beta, self.epsilon = beta, epsilon

    def update(self, param, grad, lr, state):
        S, work = self.slot(state, "S", param), self.scratch(param)
        S *= self.beta
        np.multiply(grad, 1 - self.beta, out=work)
        work *= grad
        S += work
        np.sqrt(S, out=work)
        work += self.epsilon
        np.divide(grad, work, out=work)
        work *= lr
        param -= work


class Adam(Optimizer):
    """Momentum and RMSprop together, each corrected for its zero start:
    V ← β₁V + (1−β₁)dθ;  S ← β₂S + (1−β₂)dθ²;  θ ← θ − α·V̂/(√Ŝ + ε), V̂ = V/(1−β₁ᵗ), Ŝ = S/(1−β₂ᵗ)."""

    name, title = "adam", "Adam"
    momentum = adaptive = True

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        super().__init__()
        _check_beta("beta1", beta1)
        _check_beta("beta2", beta2)
        _check_epsilon(epsilon)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def update(self, param, grad, lr, state):
        V, S, work = self.slot(state, "V", param), self.slot(state, "S", param), self.scratch(param)
        V *= self.beta1
        V += np.multiply(grad, 1 - self.beta1, out=work)
        S *= self.beta2
        np.multiply(grad, 1 - self.beta2, out=work)
        work *= grad
        S += work
        # V̂/(√Ŝ + ε) = V·√c₂/c₁ / (√S + ε·√c₂) with c = 1 − βᵗ: the corrections become two
        # scalars instead of two passes over the arrays.
        root_c2 = math.sqrt(1 - self.beta2 ** self.t)
        np.sqrt(S, out=work)
        work += self.epsilon * root_c2
        np.divide(V, work, out=work)
        work *= lr * root_c2 / (1 - self.beta1 ** self.t)
        param -= work


OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Momentum, RMSprop, Adam)}
