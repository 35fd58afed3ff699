"""Losses: log-softmax, cross-entropy (softmax and NLL fused) and mean squared error.

Stability: log softmax(x) = (x − max x) − log Σ exp(x − max x). After the shift the largest
exponent is e⁰ = 1, so nothing overflows and the log never sees 0, even for logits of ±1e4.
"""
from __future__ import annotations

import numpy as np

from nnprune.checks import check_choice
from nnprune.functional.validation import check_dout, check_float

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return losses
    total = losses.mean() if reduction == "mean" else losses.sum()
    return np.asarray(total, dtype=losses.dtype)


def log_softmax_forward(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """out = x − max − log Σ exp(x − max) along ``axis``; same shape as x.

    Backward: dx = dout − softmax(x) · Σ_axis dout.

    >>> out, _ = log_softmax_forward(np.array([[0.0, 1e4]]))
    >>> out
    array([[-10000.,      0.]])
    """
    check_float("x", x)
    if x.ndim == 0:
        raise ValueError("log_softmax needs at least one axis, got a 0-d array")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    if x.shape[axis] == 0:
        raise ValueError(f"log_softmax over an empty axis {axis} of shape {x.shape}")
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def log_softmax_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx (shape of x) = dout − softmax · Σ_axis dout."""
    out, axis = cache
    dout = check_dout(dout, out.shape)
    return dout - np.exp(out) * dout.sum(axis=axis, keepdims=True)


def cross_entropy_forward(logits: np.ndarray, target: np.ndarray, reduction: str = "mean"
                          ) -> tuple[np.ndarray, tuple]:
    """−log softmax(logits)[n, target[n]], reduced:  (N, K), (N,) int -> () or (N,).

    >>> loss, _ = cross_entropy_forward(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6)  # log 2
    0.693147
    """
    check_float("logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(f"cross_entropy needs at least one sample and one class, got logits "
                         f"of shape {logits.shape}")
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},) for logits {logits.shape}, "
                         f"got {target.shape}")
    if target.min() < 0 or target.max() >= k:
        raise ValueError(f"target labels must be in [0, {k}), got labels in "
                         f"[{target.min()}, {target.max()}]")
    check_choice(reduction, "reduction", REDUCTIONS)
    logp, _ = log_softmax_forward(logits, axis=1)
    losses = -logp[np.arange(n), target]
    return _reduce(losses, reduction), (logp, target, reduction)


def cross_entropy_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dlogits (N, K) = (softmax − onehot(target)) · dout (/ N for "mean")."""
    logp, target, reduction = cache
    n = logp.shape[0]
    grad = np.exp(logp)  # softmax
    grad[np.arange(n), target] -= 1
    dout = check_dout(dout, (n,) if reduction == "none" else ()).astype(grad.dtype, copy=False)
    if reduction == "none":
        return grad * dout[:, None]
    return grad * (dout / n if reduction == "mean" else dout)


def mse_loss_forward(a: np.ndarray, b: np.ndarray, reduction: str = "mean"
                     ) -> tuple[np.ndarray, tuple]:
    """(a − b)² reduced: a, b of one shape -> () or that shape.

    >>> loss, _ = mse_loss_forward(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    >>> float(loss)
    5.0
    """
    check_float("input", a)
    check_float("target", b)
    if a.shape != b.shape:
        raise ValueError(f"input and target must have the same shape, got {a.shape} and "
                         f"{b.shape}")
    if a.size == 0:
        raise ValueError(f"mse_loss of empty arrays (shape {a.shape})")
    check_choice(reduction, "reduction", REDUCTIONS)
    diff = a - b
    return _reduce(diff * diff, reduction), (diff, reduction)


def mse_loss_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(da, db) with da = 2 (a − b) · dout (/ n for "mean") and db = −da."""
    diff, reduction = cache
    dout = check_dout(dout, diff.shape if reduction == "none" else ())
    scale = 2.0 / diff.size if reduction == "mean" else 2.0
    da = diff * (dout.astype(diff.dtype, copy=False) * diff.dtype.type(scale))
    return da, -da
