"""Inverted dropout (Srivastava et al. 2014, scaled at training time as in PyTorch).

Training: keep each entry with probability 1 − p and scale the kept ones by 1 / (1 − p),

    out = x · mask / (1 − p),   mask ~ Bernoulli(1 − p) elementwise,   dx = dout · mask / (1 − p)

so E[out] = x and evaluation is the identity. The mask comes from an explicit
np.random.Generator: the same seed gives the same mask.
"""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function
from nnprune.checks import check_bool, check_probability
from nnprune.functional.validation import check_float


def check_dropout_args(p: float, training: bool, rng: np.random.Generator | None) -> None:
    """Raise a clear error for a bad p, training flag or generator."""
    check_probability(p, "p", high_open=True)
    check_bool(training, "training")
    if training and p > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(f"dropout in training needs rng, a np.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")


def dropout_forward(x: np.ndarray, p: float, training: bool,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """out = x · mask / (1 − p) in training (p > 0), else x itself; shape of x.

    The cache is the scaled mask mask / (1 − p), or None for the identity.

    >>> out, _ = dropout_forward(np.ones(6), 0.5, True, np.random.default_rng(0))
    >>> sorted(set(out.tolist()))  # dropped entries are 0, kept ones doubled
    [0.0, 2.0]
    """
    check_float("x", x)
    check_dropout_args(p, training, rng)
    if not training or p == 0:
        return x, None
    scale = (rng.random(x.shape, dtype=x.dtype) >= p) * x.dtype.type(1.0 / (1.0 - p))
    return x * scale, scale


def dropout_backward(dout: np.ndarray, cache: np.ndarray | None) -> np.ndarray:
    """dx = dout · mask / (1 − p) (dout itself for the identity)."""
    return dout if cache is None else dout * cache


class Dropout(Function):
    """Inverted dropout; dx = dout · mask / (1 − p)."""

    def forward(self, x, p=0.5, training=True, rng=None):
        out, self.cache = dropout_forward(x, p, training, rng)
        return out

    def backward(self, dout):
        return (dropout_backward(dout, self.cache),)
