"""The Tensor-level functional API, with PyTorch's names: each call is one autograd op.

The NumPy kernels behind it live beside this file, cs231n style (``out, cache =
conv2d_forward(...)``, ``dx, dw, db = conv2d_backward(dout, cache)``), each with a plain-loop
twin in ``naive.py``. Float32 and float64 inputs may be mixed: NumPy promotes the output and
each gradient comes back in the dtype of its own input.

>>> from nnprune import Tensor
>>> from nnprune import functional as F
>>> x = Tensor(np.ones((2, 1, 4, 4)))
>>> w = Tensor(np.ones((3, 1, 3, 3)), requires_grad=True)
>>> F.conv2d(x, w, padding=1).shape
(2, 3, 4, 4)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.autograd.function import Kernel
from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.functional import dense, loss, norm, pool
from nnprune.functional.validation import pair
from nnprune.functional.conv_algorithms import Conv2d, conv_algorithm

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout", "relu",
           "tanh", "sigmoid", "log_softmax", "cross_entropy", "mse_loss"]

TensorLike = Any  # a Tensor, or anything np.asarray accepts (used as a constant)
IntPair = int | tuple[int, int]


def _with_bias(*inputs: TensorLike, bias: TensorLike | None) -> tuple:
    return inputs if bias is None else inputs + (bias,)


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """x Wᵀ + b:  (..., in) × (out, in) + (out,) -> (..., out)."""
    return Kernel(dense.linear_forward, dense.linear_backward)(*_with_bias(x, weight, bias=bias))


def conv2d(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None,
           stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
           algorithm: str = "auto") -> Tensor:
    """2-D cross-correlation:  (N, C, H, W) ⋆ (F, C, kh, kw) + (F,) -> (N, F, OH, OW),
    OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1 (likewise OW).

    ``algorithm``: "im2col", "winograd2" or "winograd4" (3×3 kernels, stride 1, dilation 1),
    or "auto" (``conv_algorithms.auto_winograd``'s rule).
    """
    x, weight = as_tensor(x), as_tensor(weight)
    chosen = conv_algorithm(algorithm, x.shape, weight.shape, pair("stride", stride, 1),
                            pair("dilation", dilation, 1), pair("padding", padding, 0))
    return Conv2d.apply(*_with_bias(x, weight, bias=bias), algorithm=chosen, stride=stride,
                        padding=padding, dilation=dilation)


def max_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    """Max over windows:  (N, C, H, W) -> (N, C, OH, OW); the stride defaults to the kernel.
    The first maximum of a window (row-major) receives its gradient."""
    return Kernel(pool.max_pool2d_forward, pool.max_pool2d_backward)(
        x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x: TensorLike, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    """Mean over windows (zero padding counted):  (N, C, H, W) -> (N, C, OH, OW)."""
    return Kernel(pool.avg_pool2d_forward, pool.avg_pool2d_backward)(
        x, kernel_size=kernel_size, stride=stride, padding=padding)


def batch_norm(x: TensorLike, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: TensorLike | None = None, bias: TensorLike | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """γ (x − μ) / √(σ² + eps) + β per channel:  (N, C) or (N, C, H, W) -> same shape.

    Training uses the batch statistics and updates the running_mean / running_var ndarrays
    in place (they may be None then); evaluation uses the running statistics.
    """
    for name, buf in (("running_mean", running_mean), ("running_var", running_var)):
        if buf is not None and not isinstance(buf, np.ndarray):
            raise TypeError(f"{name} must be an ndarray updated in place (or None), "
                            f"got {type(buf).__name__}")
    params = tuple(p for p in (weight, bias) if p is not None)
    return norm.BatchNorm.apply(x, *params, has_weight=weight is not None,
                                has_bias=bias is not None, running_mean=running_mean,
                                running_var=running_var, training=training,
                                momentum=momentum, eps=eps)


def dropout(x: TensorLike, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero entries with probability p, scale the rest by 1 / (1 − p).
    The identity (x itself) in evaluation or for p = 0; rng is required otherwise."""
    norm.check_dropout_args(p, training, rng)
    if not training or p == 0:
        return as_tensor(x)
    return Kernel(norm.dropout_forward, norm.dropout_backward)(x, p=p, training=training, rng=rng)


def relu(x: TensorLike) -> Tensor:
    """max(x, 0) elementwise."""
    return as_tensor(x).relu()


def tanh(x: TensorLike) -> Tensor:
    """tanh(x) elementwise."""
    return as_tensor(x).tanh()


def sigmoid(x: TensorLike) -> Tensor:
    """1 / (1 + e⁻ˣ) elementwise."""
    return as_tensor(x).sigmoid()


def log_softmax(x: TensorLike, axis: int = -1) -> Tensor:
    """x − log Σ exp(x) along ``axis``, computed with the max shift (stable)."""
    return Kernel(loss.log_softmax_forward, loss.log_softmax_backward)(x, axis=axis)


def cross_entropy(logits: TensorLike, target: np.ndarray, reduction: str = "mean") -> Tensor:
    """−log softmax(logits)[n, target[n]], reduced by "mean", "sum" or "none".

    logits (N, K); target (N,) integer class indices in [0, K), an ndarray (not a Tensor).
    """
    if isinstance(target, Tensor):
        raise TypeError("target must be an integer ndarray of class indices, not a Tensor "
                        "(a Tensor holds floats)")
    return Kernel(loss.cross_entropy_forward, loss.cross_entropy_backward)(
        logits, target=np.asarray(target), reduction=reduction)


def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """(input − target)², reduced by "mean", "sum" or "none"; both of one shape."""
    return Kernel(loss.mse_loss_forward, loss.mse_loss_backward)(input, target,
                                                                 reduction=reduction)
