"""Optimizers. The base class owns the loop over parameters, the step count t and the state;
a subclass writes only `update`, the rule for one parameter array (changed in place)."""

from __future__ import annotations

import numpy as np

from .registry import check


def _check_beta(name: str, value: float) -> None:
    check(0 <= value < 1, f"Argument `{name}` must be in [0, 1). Received: {name}={value}")


def _check_epsilon(value: float) -> None:
    check(value > 0, f"Argument `epsilon` must be > 0. Received: epsilon={value}")


class Optimizer:
    name = ""

    def __init__(self):
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """Apply one update with learning rate lr to every parameter, in place."""
        self.t += 1
        for name, param in params.items():
            self.update(param, grads[name], lr, self.state.setdefault(name, {}))

    def update(self, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def slot(state: dict, key: str, like: np.ndarray) -> np.ndarray:
        """A zero-initialized moving average kept per parameter (V, S)."""
        if key not in state:
            state[key] = np.zeros_like(like)
        return state[key]


class GradientDescent(Optimizer):
    """θ ← θ − α·dθ."""

    name = "gd"

    def update(self, param, grad, lr, state):
        param -= lr * grad


class Momentum(Optimizer):
    """V ← βV + (1−β)dθ;  θ ← θ − α·V."""

    name = "momentum"

    def __init__(self, beta: float = 0.9):
        super().__init__()
        _check_beta("beta", beta)
        self.beta = beta

    def update(self, param, grad, lr, state):
        V = self.slot(state, "V", param)
        V *= self.beta
        V += (1 - self.beta) * grad
        param -= lr * V


class RMSprop(Optimizer):
    """S ← βS + (1−β)dθ²;  θ ← θ − α·dθ/(√S + ε)."""

    name = "rmsprop"

    def __init__(self, beta: float = 0.999, epsilon: float = 1e-8):
        super().__init__()
        _check_beta("beta", beta)
        _check_epsilon(epsilon)
        self.beta, self.epsilon = beta, epsilon

    def update(self, param, grad, lr, state):
        S = self.slot(state, "S", param)
        S *= self.beta
        S += (1 - self.beta) * grad * grad
        param -= lr * grad / (np.sqrt(S) + self.epsilon)


class Adam(Optimizer):
    """Momentum and RMSprop together, each corrected for its zero start:
    V ← β₁V + (1−β₁)dθ;  S ← β₂S + (1−β₂)dθ²;  θ ← θ − α·V̂/(√Ŝ + ε), V̂ = V/(1−β₁ᵗ), Ŝ = S/(1−β₂ᵗ)."""

    name = "adam"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        super().__init__()
        _check_beta("beta1", beta1)
        _check_beta("beta2", beta2)
        _check_epsilon(epsilon)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def update(self, param, grad, lr, state):
        V, S = self.slot(state, "V", param), self.slot(state, "S", param)
        V *= self.beta1
        V += (1 - self.beta1) * grad
        S *= self.beta2
        S += (1 - self.beta2) * grad * grad
        V_hat = V / (1 - self.beta1 ** self.t)
        S_hat = S / (1 - self.beta2 ** self.t)
        param -= lr * V_hat / (np.sqrt(S_hat) + self.epsilon)


OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Momentum, RMSprop, Adam)}
