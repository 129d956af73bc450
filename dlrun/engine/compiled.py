"""Kernels compiled with numba: each rule of optim.py as one pass over the flat buffer, and a
dense layer's bias with the (leaky) ReLU after it as one pass over Z, forward and backward.

The NumPy rules make about a dozen whole-buffer passes per step, each reading and writing arrays
of the parameters' size; here every element is read once, updated, and written once. The
arithmetic is NumPy's, operation for operation and in the same order and precision (the scalars
arrive already in the arrays' dtype, as NumPy casts a Python float), and no fastmath: no
reassociation, no fused multiply-add, NaN and infinity kept as NumPy keeps them. So the results
are the reference's bit for bit, in float32 and float64 alike (tests/test_fused.py holds them to
it). tanh and sigmoid stay with NumPy: its tanh and numba's may differ in the last bit.

Not `parallel=True`: the matrix products around a step already use every core through BLAS's
threads, and a second thread pool fights them. Importing this module imports numba (about
0.2 s): only fused.py does it, and only for networks large enough to gain (see fused.py).
"""

from __future__ import annotations

import numba
import numpy as np

CACHED = True  # False when no cache directory is writable: kernels compile once per process


def _compile(rule):
    """njit with the kernels kept on disk between processes where a cache directory is writable
    (numba's own search: NUMBA_CACHE_DIR, the package's __pycache__, the user's cache)."""
    global CACHED
    try:
        return numba.njit(error_model="numpy", cache=True)(rule)
    except RuntimeError:  # numba found no writable cache directory: compile in memory instead
        CACHED = False
        return numba.njit(error_model="numpy")(rule)


@_compile
def gradient_descent(param, grad, lr):
    """θ ← θ − α·dθ."""
    for i in range(param.size):
        param[i] -= grad[i] * lr


@_compile
def momentum(param, grad, V, beta, one_minus_beta, lr):
    """V ← βV + (1−β)dθ;  θ ← θ − α·V."""
    for i in range(param.size):
        v = V[i] * beta + grad[i] * one_minus_beta
        V[i] = v
        param[i] -= v * lr


@_compile
def rmsprop(param, grad, S, beta, one_minus_beta, epsilon, lr):
    """S ← βS + (1−β)dθ²;  θ ← θ − α·dθ/(√S + ε)."""
    for i in range(param.size):
        g = grad[i]
        s = S[i] * beta + g * one_minus_beta * g
        S[i] = s
        param[i] -= g / (np.sqrt(s) + epsilon) * lr


@_compile
def adam(param, grad, V, S, beta1, one_minus_beta1, beta2, one_minus_beta2, epsilon_hat, step):
    """V ← β₁V + (1−β₁)dθ;  S ← β₂S + (1−β₂)dθ²;  θ ← θ − step·V/(√S + ε̂), where the bias
    corrections are folded into the scalars step = α·√c₂/c₁ and ε̂ = ε·√c₂ (optim.Adam)."""
    for i in range(param.size):
        g = grad[i]
        v = V[i] * beta1 + g * one_minus_beta1
        s = S[i] * beta2 + g * one_minus_beta2 * g
        V[i] = v
        S[i] = s
        param[i] -= v / (np.sqrt(s) + epsilon_hat) * step


@_compile
def bias_relu(Z, b, A):
    """Z += bᵀ, then A = max(Z, 0) as np.maximum takes it (NaN stays NaN, −0 becomes +0)."""
    m, n = Z.shape
    zero = Z.dtype.type(0)
    for i in range(m):
        for j in range(n):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = z if z > zero or np.isnan(z) else zero


@_compile
def relu_backward(dA, Z, dZ):
    """dZ = dA·g'(Z) with g'(Z) = 1 for Z > 0, else 0 (a product, as NumPy's: NaN·0 stays NaN)."""
    m, n = Z.shape
    one, zero = Z.dtype.type(1), Z.dtype.type(0)
    for i in range(m):
        for j in range(n):
            dZ[i, j] = dA[i, j] * (one if Z[i, j] > zero else zero)


@_compile
def bias_leaky_relu(Z, b, A, slope):
    """Z += bᵀ, then A = Z where Z > 0, else slope·Z."""
    m, n = Z.shape
    zero = Z.dtype.type(0)
    for i in range(m):
        for j in range(n):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = z if z > zero else slope * z


@_compile
def leaky_relu_backward(dA, Z, dZ, slope):
    """dZ = dA·g'(Z) with g'(Z) = 1 for Z > 0, else slope."""
    m, n = Z.shape
    one, zero = Z.dtype.type(1), Z.dtype.type(0)
    for i in range(m):
        for j in range(n):
            dZ[i, j] = dA[i, j] * (one if Z[i, j] > zero else slope)
