"""Ops that change the shape: reductions (sum, mean, max over some axes), reshape, transpose
and indexing. Each ``backward`` moves ``dout`` back to where each entry came from.
"""
from __future__ import annotations

import math

import numpy as np

from nnprune.autograd.function import Function


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


class Mean(Sum):
    """out = (1/n) Σ a over ``axis``;  da = dout / n broadcast back (Sum's backward)."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes = a.shape, _normalize_axis(axis, a.ndim)
        self.n = math.prod(a.shape[ax] for ax in self.axes) if a.ndim else 1
        if self.n == 0:
            raise ValueError(f"mean over an empty axis of a tensor of shape {a.shape}")
        return np.mean(a, axis=self.axes, keepdims=keepdims)

    def backward(self, dout):
        return super().backward(dout / self.n)


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
