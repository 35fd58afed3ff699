"""The Tensor-level functional API with PyTorch's names: each call is one autograd op."""
from __future__ import annotations

import numpy as np

from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.functional import conv, layers



def linear(x, weight, bias=None):
    """(N, in) × (out, in) -> (N, out): x Wᵀ + b."""
    args = (x, weight) + ((bias,) if bias is not None else ())
    return layers.Linear.apply(*args)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, C, H, W) ⋆ (F, C, kh, kw) -> (N, F, OH, OW)."""
    args = (x, weight) + ((bias,) if bias is not None else ())
    return conv.Conv2d.apply(*args, stride=stride, padding=padding, dilation=dilation)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return layers.MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return layers.AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    c = running_mean.shape[0]
    dt = as_tensor(x).dtype
    weight = Tensor(np.ones(c, dt)) if weight is None else weight
    bias = Tensor(np.zeros(c, dt)) if bias is None else bias
    return layers.BatchNorm.apply(x, weight, bias, running_mean=running_mean,
                                  running_var=running_var, training=training,
                                  momentum=momentum, eps=eps)


def dropout(x, p=0.5, training=True, rng=None):
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return as_tensor(x)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("dropout in training needs rng, a np.random.Generator")
    return layers.Dropout.apply(x, p=p, rng=rng)


def relu(x):
    return as_tensor(x).relu()


def tanh(x):
    return as_tensor(x).tanh()


def sigmoid(x):
    return as_tensor(x).sigmoid()


def log_softmax(x, axis=-1):
    return layers.LogSoftmax.apply(x, axis=axis)


def cross_entropy(logits, target, reduction="mean"):
    """Mean of −log softmax(logits)[target]; target is an int array of class indices."""
    logits = as_tensor(logits)
    target = np.asarray(target)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"target must have shape ({logits.shape[0]},), got {target.shape}")
    if logits.shape[0] == 0:
        raise ValueError("cross_entropy of an empty batch")
    if target.min() < 0 or target.max() >= logits.shape[1]:
        raise ValueError(f"target labels must be in [0, {logits.shape[1]}), got range "
                         f"[{target.min()}, {target.max()}]")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return layers.CrossEntropy.apply(logits, target=target, reduction=reduction)


def mse_loss(input, target, reduction="mean"):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return layers.MSELoss.apply(input, target, reduction=reduction)
