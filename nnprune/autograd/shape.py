"""Shape ops: reshape, transpose and indexing move entries without changing them.

Their backward moves ``dout`` back to where each entry came from (indexing adds up the
gradients of an entry picked twice).
"""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function


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
