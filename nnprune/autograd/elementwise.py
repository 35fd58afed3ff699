"""Elementwise functions: exp, log, relu, tanh and sigmoid, applied entry by entry.

Each ``backward`` multiplies ``dout`` by the derivative at each entry: da = dout * f'(a).
"""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function


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
