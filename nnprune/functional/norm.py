"""The layers whose training and evaluation passes differ: batch normalisation (Ioffe &
Szegedy 2015) of (N, C) or (N, C, H, W) inputs, per channel, and dropout.

Forward, with statistics over every axis but the channel axis 1 (m values per channel):

    x̂ = (x − μ) / √(σ² + eps),    out = γ x̂ + β

Training uses the batch's μ and biased σ² (divide by m) and updates the running buffers in
place with the unbiased σ² (divide by m − 1), as PyTorch does:

    running_mean ← (1 − momentum) running_mean + momentum μ
    running_var  ← (1 − momentum) running_var  + momentum σ² m / (m − 1)

Evaluation normalises with the running buffers instead. Backward in training, the compact
form (means over the m values of a channel):

    dx = γ / √(σ² + eps) · (dout − mean(dout) − x̂ · mean(dout · x̂))

and in evaluation, where μ and σ² are constants, dx = γ / √(σ² + eps) · dout. Always
dγ = Σ dout · x̂ and dβ = Σ dout.

Inverted dropout (Srivastava et al. 2014, scaled at training time as in PyTorch) keeps each
entry with probability 1 − p and scales it by 1 / (1 − p), so E[out] = x.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnprune.autograd.function import Function
from nnprune.checks import check_bool, check_number, check_probability
from nnprune.functional.validation import check_dout, check_float, check_vector


def channel_sums(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Σ over every axis but the channel axis 1 of a, or of a·b without making a·b:
    (N, C) or (N, C, H, W) -> (C,).

    For 4-D arrays np.einsum's loops, 2–4× faster than ``a.sum(axis=(0, 2, 3))`` (a
    reduction over non-adjacent axes, through NumPy's buffered iterator) on VGG's batch-norm
    inputs, to the same float32 rounding (a few 1e-7 of the sum, either way).

    >>> channel_sums(np.ones((2, 3, 4, 5)))
    array([40., 40., 40.])
    """
    if not isinstance(a, np.ndarray) or a.ndim not in (2, 4):
        raise ValueError(f"a must be an (N, C) or (N, C, H, W) ndarray, got "
                         f"{getattr(a, 'shape', type(a).__name__)}")
    if b is not None and getattr(b, "shape", None) != a.shape:
        raise ValueError(f"b must have a's shape {a.shape}, got "
                         f"{getattr(b, 'shape', type(b).__name__)}")
    if a.ndim == 2:
        return (a if b is None else a * b).sum(axis=0)
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    if b is None:
        return np.einsum("nch->c", a3)
    return np.einsum("nch,nch->c", a3, b.reshape(a3.shape))


class NormCache(NamedTuple):
    xhat: np.ndarray         # x̂, the shape of x
    inv_std: np.ndarray      # 1 / √(σ² + eps), (C,)
    gamma: np.ndarray | None
    has_beta: bool
    training: bool


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                       running_mean: np.ndarray | None, running_var: np.ndarray | None,
                       training: bool, momentum: float = 0.1, eps: float = 1e-5
                       ) -> tuple[np.ndarray, NormCache]:
    """out = γ (x − μ) / √(σ² + eps) + β per channel:  (N, C) or (N, C, H, W) -> same shape.

    gamma, beta (C,) or None (γ = 1, β = 0). running_mean, running_var (C,) are updated in
    place when training; they may be None when training (no running statistics kept).

    >>> x = np.array([[1.0], [3.0]])
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> out, _ = batch_norm_forward(x, None, None, rm, rv, training=True)
    >>> out.ravel().round(4), rm, rv
    (array([-1.,  1.]), array([0.2]), array([1.1]))
    """
    check_float("x", x)
    if x.ndim not in (2, 4):
        raise ValueError(f"x must be (N, C) or (N, C, H, W), got shape {x.shape}")
    c = x.shape[1]
    for name, buf in (("weight", gamma), ("bias", beta), ("running_mean", running_mean),
                      ("running_var", running_var)):
        check_vector(name, buf, c, "channel")
    check_bool(training, "training")
    check_number(momentum, "momentum", maximum=1.0)
    check_number(eps, "eps", strict=True)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    m = x.size // c  # values per channel
    if training:
        if m <= 1:
            raise ValueError(f"batch_norm in training needs more than 1 value per channel, "
                             f"got x of shape {x.shape}")
        # x.var's own steps (the mean, x − mean, the mean of its square), with x − mean kept
        # for x̂: two passes fewer than x.mean() and x.var()
        mean = channel_sums(x) / m
        centered = x - mean.reshape((1, c) + (1,) * (x.ndim - 2))
        var = channel_sums(centered, centered) / m
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (m / (m - 1))  # unbiased, as PyTorch
    else:
        if running_mean is None:
            raise ValueError("batch_norm in evaluation needs running_mean and running_var")
        mean, var = running_mean, running_var
    shape = (1, c) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector along axis 1
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    if not training:
        centered = x - mean.astype(x.dtype).reshape(shape)
    xhat = np.multiply(centered, inv_std.reshape(shape), out=centered)
    out = xhat if gamma is None else xhat * gamma.reshape(shape)
    if beta is not None and (out is xhat or np.result_type(out, beta) != out.dtype):
        out = out + beta.reshape(shape)
    elif beta is not None:  # out is γ x̂, a new array of the result's dtype: add in place
        out += beta.reshape(shape)
    return out, NormCache(xhat, inv_std, gamma, beta is not None, bool(training))


def batch_norm_backward(dout: np.ndarray, cache: NormCache
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """dx (shape of x), dgamma (C,) or None, dbeta (C,) or None from dout (shape of x)."""
    xhat, inv_std, gamma, has_beta, training = cache
    check_dout(dout, xhat.shape)
    shape = (1, -1) + (1,) * (xhat.ndim - 2)
    dbeta = channel_sums(dout)
    dgamma = channel_sums(dout, xhat)
    scale = inv_std if gamma is None else gamma * inv_std  # γ / √(σ² + eps), (C,)
    if training:
        m = xhat.size // xhat.shape[1]
        dx = dout - (dbeta / m).reshape(shape)
        dx -= xhat * (dgamma / m).reshape(shape)  # in place: the same values, one array fewer
        dx *= scale.reshape(shape)
    else:
        dx = dout * scale.reshape(shape)
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)


class BatchNorm(Function):
    """out = γ x̂ + β with batch (training) or running (evaluation) statistics."""

    def forward(self, x, *params, has_weight=False, has_bias=False, running_mean=None,
                running_var=None, training=False, momentum=0.1, eps=1e-5):
        # params: (weight, bias), (weight,), (bias,) or () as has_weight / has_bias say
        gamma = params[0] if has_weight else None
        beta = params[-1] if has_bias else None
        out, self.cache = batch_norm_forward(x, gamma, beta, running_mean, running_var,
                                             training, momentum, eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = batch_norm_backward(dout, self.cache)
        return (dx,) + tuple(g for g in (dgamma, dbeta) if g is not None)


def check_dropout_args(p: float, training: bool, rng: np.random.Generator | None) -> None:
    """Raise a clear error for a bad p, training flag or generator."""
    check_probability(p, "p", high_open=True)
    check_bool(training, "training")
    if training and p > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(f"dropout in training needs rng, a np.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")


def dropout_forward(x: np.ndarray, p: float, training: bool,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """out = x · mask / (1 − p), mask ~ Bernoulli(1 − p) elementwise, in training (p > 0),
    else x itself; shape of x.

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
