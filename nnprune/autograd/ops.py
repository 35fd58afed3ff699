"""Elementwise, reduction and shape ops: one small class each, forward and backward.

Notation: ``dout`` is dL/d(out); each ``backward`` returns dL/d(input) for every input.
Binary ops broadcast like NumPy, so their gradients are summed back to the input's shape
(``unbroadcast``).
"""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function, unbroadcast


def _mismatch(op: str, a: np.ndarray, b: np.ndarray) -> ValueError:
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast together "
                      f"(NumPy's rule: aligned from the right, each pair equal or one of them 1)")


class Add(Function):
    """out = a + b;  da = dout, db = dout (summed over broadcast axes)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        try:
            return a + b
        except ValueError:
            raise _mismatch("add", a, b) from None

    def backward(self, dout):
        sa, sb = self.shapes
        return unbroadcast(dout, sa), unbroadcast(dout, sb)


class Sub(Function):
    """out = a - b;  da = dout, db = -dout."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        try:
            return a - b
        except ValueError:
            raise _mismatch("sub", a, b) from None

    def backward(self, dout):
        sa, sb = self.shapes
        return unbroadcast(dout, sa), unbroadcast(-dout, sb)


class Mul(Function):
    """out = a * b;  da = dout * b, db = dout * a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a * b
        except ValueError:
            raise _mismatch("mul", a, b) from None

    def backward(self, dout):
        # task 1.1: the backward of Tensor multiplication
        return (unbroadcast(dout * self.b, self.a.shape),
                unbroadcast(dout * self.a, self.b.shape))
        # end task


class Div(Function):
    """out = a / b;  da = dout / b, db = -dout * a / b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a / b
        except ValueError:
            raise _mismatch("div", a, b) from None

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


def _normalize_axis(axis, ndim):
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of distinct axes >= 0."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if (not isinstance(axes, (tuple, list))
            or any(isinstance(ax, bool) or not isinstance(ax, (int, np.integer)) for ax in axes)):
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"axis {ax} is out of range for a tensor with {ndim} dimensions")
    normalized = tuple(sorted(int(ax) % ndim for ax in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"axis {axis!r} names the same axis twice")
    return normalized


class Sum(Function):
    """out = Σ a over ``axis``;  da = dout broadcast back over the summed axes."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes = a.shape, _normalize_axis(axis, a.ndim)
        return np.sum(a, axis=self.axes, keepdims=keepdims)

    def backward(self, dout):
        dout = np.expand_dims(dout, self.axes) if dout.ndim < len(self.shape) else dout
        return (np.broadcast_to(dout, self.shape).copy(),)


class Mean(Function):
    """out = (1/n) Σ a over ``axis``;  da = dout / n broadcast back."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes = a.shape, _normalize_axis(axis, a.ndim)
        self.n = int(np.prod([a.shape[ax] for ax in self.axes])) if a.ndim else 1
        if self.n == 0:
            raise ValueError(f"mean over an empty axis of a tensor of shape {a.shape}")
        return np.mean(a, axis=self.axes, keepdims=keepdims)

    def backward(self, dout):
        dout = np.expand_dims(dout, self.axes) if dout.ndim < len(self.shape) else dout
        return (np.broadcast_to(dout / self.n, self.shape).copy(),)


class Max(Function):
    """out = max of a over ``axis`` (None, an int or a tuple);  da = dout at the first maximum.

    Ties: only the first maximum — the lowest flat index within each reduced block, in C
    order — receives the gradient, the rule max-pooling uses too.
    """

    def forward(self, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"max of an empty tensor of shape {a.shape}")
        self.shape, self.axes = a.shape, _normalize_axis(axis, a.ndim)
        # move the reduced axes last and merge them: (kept..., block)
        self.kept = tuple(i for i in range(a.ndim) if i not in self.axes)
        self.perm = self.kept + self.axes
        block = np.transpose(a, self.perm).reshape([a.shape[i] for i in self.kept] + [-1])
        self.argmax = np.argmax(block, axis=-1)  # (kept...): flat index of the first max
        return np.max(a, axis=self.axes, keepdims=keepdims)

    def backward(self, dout):
        kept_shape = self.argmax.shape
        reduced_shape = tuple(self.shape[i] for i in self.axes)
        da = np.zeros(kept_shape + (int(np.prod(reduced_shape)),), dtype=dout.dtype)
        np.put_along_axis(da, self.argmax[..., None], dout.reshape(kept_shape + (1,)), axis=-1)
        # undo the merge and the move: (kept..., block) -> (kept..., reduced...) -> a's order
        da = da.reshape(kept_shape + reduced_shape)
        return (np.transpose(da, np.argsort(self.perm)),)


class Reshape(Function):
    """out = a viewed with a new shape;  da = dout reshaped back."""

    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except (ValueError, TypeError):
            raise ValueError(f"cannot reshape a tensor of shape {a.shape} into {shape}") from None

    def backward(self, dout):
        return (dout.reshape(self.shape),)


class Transpose(Function):
    """out = a with axes permuted;  da = dout with the inverse permutation."""

    def forward(self, a, axes=None):
        self.axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        if sorted(self.axes) != list(range(a.ndim)):
            raise ValueError(f"axes must be a permutation of 0..{a.ndim - 1}, got {axes}")
        return np.transpose(a, self.axes)

    def backward(self, dout):
        return (np.transpose(dout, np.argsort(self.axes)),)


class GetItem(Function):
    """out = a[index];  da = dout scattered back (repeated indices add up)."""

    def forward(self, a, index):
        self.shape, self.index = a.shape, index
        return a[index]

    def backward(self, dout):
        da = np.zeros(self.shape, dtype=dout.dtype)
        np.add.at(da, self.index, dout)
        return (da,)


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
        return np.where(self.positive, a, 0).astype(a.dtype, copy=False)

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
