"""Arithmetic ops (+ − × ÷, negation, powers, matrix products) and elementwise functions
(exp, log, relu, tanh, sigmoid), one small class each. Binary ops broadcast like NumPy, so
their gradients are summed back to the input's shape (``unbroadcast``).
"""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function, unbroadcast


def _broadcast(name: str, op: np.ufunc, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """op(a, b), or a ValueError naming the op when the shapes do not broadcast."""
    try:
        return op(a, b)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast together ("
                         f"NumPy's rule: aligned from the right, each pair equal or one is 1)"
                         ) from None


class Add(Function):
    """out = a + b;  da = dout, db = dout (summed over broadcast axes)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return _broadcast("add", np.add, a, b)

    def backward(self, dout):
        sa, sb = self.shapes
        return unbroadcast(dout, sa), unbroadcast(dout, sb)


class Sub(Function):
    """out = a - b;  da = dout, db = -dout."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return _broadcast("sub", np.subtract, a, b)

    def backward(self, dout):
        sa, sb = self.shapes
        return unbroadcast(dout, sa), unbroadcast(-dout, sb)


class Mul(Function):
    """out = a * b;  da = dout * b, db = dout * a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return _broadcast("mul", np.multiply, a, b)

    def backward(self, dout):
        # task 1.1: the backward of Tensor multiplication
        return (unbroadcast(dout * self.b, self.a.shape),
                unbroadcast(dout * self.a, self.b.shape))
        # end task


class Div(Function):
    """out = a / b;  da = dout / b, db = -dout * a / b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return _broadcast("div", np.divide, a, b)

    def backward(self, dout):
        da = dout / self.b
        db = -dout * self.a / (self.b * self.b)
        return unbroadcast(da, self.a.shape), unbroadcast(db, self.b.shape)


class Neg(Function):
    """out = -a;  da = -dout."""

    def forward(self, a):
        return -a

    def backward(self, dout):
        return (-dout,)


class Pow(Function):
    """out = a ** p for a constant real p;  da = dout * p * a^(p-1)."""

    def forward(self, a, exponent):
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.number)):
            raise TypeError(f"exponent must be a real number, got {type(exponent).__name__}")
        self.a, self.p = a, exponent
        return a ** exponent

    def backward(self, dout):
        return (dout * self.p * self.a ** (self.p - 1),)


class MatMul(Function):
    """out = a @ b for 2-D (or batched) operands;  da = dout @ bᵀ, db = aᵀ @ dout.

    (n, k) @ (k, m) -> (n, m). A 1-D operand is treated as a row (left) or column (right)
    vector, as ``np.matmul`` does.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension, got a scalar")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul shapes do not match: {a.shape} @ {b.shape}")
        self.a, self.b = a, b
        return a @ b

    def backward(self, dout):
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.b.ndim == 1:  # restore the dropped column axis first, then the row axis
            dout = dout[..., None]
        if self.a.ndim == 1:
            dout = dout[..., None, :]
        da = dout @ np.swapaxes(b, -1, -2)
        db = np.swapaxes(a, -1, -2) @ dout
        da = unbroadcast(da, a.shape).reshape(self.a.shape)
        db = unbroadcast(db, b.shape).reshape(self.b.shape)
        return da, db


class Exp(Function):
    """out = eᵃ;  da = dout * out."""

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, dout):
        return (dout * self.out,)


class Log(Function):
    """out = ln a;  da = dout / a."""

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, dout):
        return (dout / self.a,)


class ReLU(Function):
    """out = max(a, 0);  da = dout where a > 0 (the subgradient 0 at a = 0).

    NaN stays NaN and passes its gradient, as in PyTorch (``a <= 0`` is false for NaN): a
    diverging network shows NaN, never a finite loss computed from zeros.
    """

    def forward(self, a):
        self.positive = ~(a <= 0)  # True for a > 0 and for NaN
        # maximum keeps NaN, and adding 0 turns a -0.0 it may return (IEEE leaves the sign
        # open) into +0.0: what np.where(positive, a, 0) gives, at a tenth of its time
        # (where branches on every value, and a layer's activations are half negative)
        out = np.maximum(a, 0)
        out += 0
        return out

    def backward(self, dout):
        return (dout * self.positive,)


class Tanh(Function):
    """out = tanh a;  da = dout * (1 - out²)."""

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, dout):
        return (dout * (1 - self.out * self.out),)


class Sigmoid(Function):
    """out = 1 / (1 + e⁻ᵃ), computed without overflow;  da = dout * out * (1 - out)."""

    def forward(self, a):
        # e^{-|a|} never overflows; pick the algebraically equal form by sign
        z = np.exp(-np.abs(a))
        self.out = np.where(a >= 0, 1 / (1 + z), z / (1 + z)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, dout):
        return (dout * self.out * (1 - self.out),)
