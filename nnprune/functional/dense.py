"""Fully connected layer: out = x Wᵀ + b, with W (out_features, in_features) as in PyTorch."""
from __future__ import annotations

import numpy as np

from nnprune.functional.validation import check_dout, check_float, check_vector


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
                   ) -> tuple[np.ndarray, tuple]:
    """out = x Wᵀ + b:  (..., in) × (out, in) + (out,) -> (..., out).

    >>> out, _ = linear_forward(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]), np.array([0.5]))
    >>> out
    array([[11.5]])
    """
    check_float("x", x)
    check_float("weight", w)
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"x must end with in_features = {w.shape[1]} (weight shape {w.shape}),"
                         f" got shape {x.shape}")
    check_vector("bias", b, w.shape[0], "output feature")
    out = x @ w.T
    if b is not None:  # in place unless the bias promotes the dtype (float32 x, float64 b)
        out = np.add(out, b, out=out if out.dtype == np.result_type(out, b) else None)
    return out, (x, w, b is not None)


def linear_backward(dout: np.ndarray, cache: tuple
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dx (..., in), dW (out, in), db (out,) or None from dout (..., out); the leading axes
    are flattened into one batch axis M for the two GEMMs:

        dx = dout W          (M, out) @ (out, in)
        dW = doutᵀ x         (out, M) @ (M, in)
        db = Σ_M dout
    """
    x, w, has_bias = cache
    check_dout(dout, x.shape[:-1] + (w.shape[0],))
    d2 = dout.reshape(-1, w.shape[0])  # (M, out)
    dx = dout @ w
    dw = d2.T @ x.reshape(-1, w.shape[1])
    db = d2.sum(axis=0) if has_bias else None
    return dx, dw, db
