"""Second-order backpropagation through a chain: the tape of the forward pass (``record``),
the columns that start the walk at the output (``output_columns``) and the backward walk
that sums their squares into each weight (``backward_squares``; the math is in
``curvature_diag``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune import nn
from nnprune.functional.conv_plain import patches
from nnprune.functional.conv import conv2d_backward, conv2d_forward
from nnprune.functional.pool import (avg_pool2d_backward, avg_pool2d_forward,
                                     max_pool2d_backward, max_pool2d_forward)

SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten,
             nn.Dropout)


def chain(model: Any) -> list[tuple[str, Any]]:
    """(prefix, layer) of a ``Sequential`` whose layers the walk supports, else a ValueError."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential of layers, got {type(model).__name__}")
    layers = []
    for i, layer in enumerate(model):
        if not isinstance(layer, SUPPORTED):
            raise ValueError(f"layer {i} is {type(layer).__name__}, which the second-order "
                             f"backpropagation does not handle (it handles "
                             f"{', '.join(t.__name__ for t in SUPPORTED)}); use hessian="
                             f"'hutchinson' or 'exact' for this model")
        layers.append((str(i), layer))
    return layers


def record(layers: list[tuple[str, Any]], x: np.ndarray) -> tuple[np.ndarray, list]:
    """Run the chain in x's dtype (the model's), keeping what each layer's backward needs."""
    tape = []
    for name, layer in layers:
        if isinstance(layer, nn.Linear):
            w = layer.weight.data
            out = x @ w.T + (0 if layer.bias is None else layer.bias.data)
            tape.append((name, layer, x, w))
        elif isinstance(layer, nn.Conv2d):
            w = layer.weight.data
            b = None if layer.bias is None else layer.bias.data
            out, cache = conv2d_forward(x, w, b, layer.stride, layer.padding, layer.dilation)
            tape.append((name, layer, x, (w, cache)))
        elif isinstance(layer, nn.ReLU):
            out = np.maximum(x, 0.0)
            tape.append((name, layer, None, (x > 0).astype(x.dtype)))
        elif isinstance(layer, nn.Tanh):
            out = np.tanh(x)
            tape.append((name, layer, None, 1.0 - out * out))
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            forward = max_pool2d_forward if isinstance(layer, nn.MaxPool2d) else \
                avg_pool2d_forward
            out, cache = forward(x, layer.kernel_size, layer.stride, layer.padding)
            tape.append((name, layer, None, cache))
        elif isinstance(layer, nn.Flatten):
            out = x.reshape(len(x), -1)
            tape.append((name, layer, None, x.shape))
        else:  # Dropout: the identity outside training
            out = x
            tape.append((name, layer, None, None))
        x = out
    return x, tape


def output_columns(z: np.ndarray, y: np.ndarray, loss: str, kind: str) -> np.ndarray:
    """Columns at the output, (N, c, K): S of H_ℓ = S Sᵀ (exact), √diag H_ℓ (lecun, as
    (N, 1, K) squared later) or ∇_z ℓ_n (fisher)."""
    n, k = z.shape
    if loss == "cross_entropy":
        y = np.asarray(y)
        if y.shape != (n,) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= k:
            raise ValueError(f"y must be {n} class indices in [0, {k}), got shape {y.shape}")
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if kind == "fisher":
            g = p.copy()
            g[np.arange(n), y] -= 1
            return g[:, None, :]
        if kind == "lecun":
            return np.sqrt(p - p * p)[:, None, :]
        root = np.sqrt(p)
        s = root[:, :, None] * np.eye(k, dtype=z.dtype) - p[:, :, None] * root[:, None, :]
        return s.transpose(0, 2, 1)  # (N, column, K): column c is S[:, c]
    t = np.asarray(y, dtype=z.dtype)
    if t.shape != z.shape:
        raise ValueError(f"y (MSE targets) must have the output's shape {z.shape}, got {t.shape}")
    if kind == "fisher":
        return (2.0 / k * (z - t))[:, None, :]
    scale = np.sqrt(2.0 / k)
    if kind == "lecun":
        return np.full((n, 1, k), scale, z.dtype)
    return np.broadcast_to(scale * np.eye(k, dtype=z.dtype), (n, k, k)).copy()


def _conv_weight_squares(b, x, layer):
    """Σ_n Σ_c (B[n, c] colsᵀ)²: (F, C·kh·kw) from B (N, c, F, P) and the layer input x."""
    cols = patches(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    n, c, f, p = b.shape
    total = np.zeros((f, cols.shape[1]), b.dtype)
    step = max(1, (1 << 21) // max(1, c * f * cols.shape[1]))
    for s in range(0, n, step):
        g = np.matmul(b[s:s + step].reshape(-1, c * f, p), cols[s:s + step].transpose(0, 2, 1))
        total += np.square(g).reshape(-1, c, f, cols.shape[1]).sum(axis=(0, 1))
    return total


def _conv_squares(layer: Any, x: np.ndarray, saved: tuple, b: np.ndarray, squared_only: bool,
                  below: bool) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
    """One Conv2d on the way down: ({leaf: Σ_n squares}, the mean curvature of each of its
    F output channels (F,), and the columns (or LeCun's carrier) below it)."""
    w, cache = saved
    sums = {}
    if squared_only:  # d below = conv backward of d through w², dw from x²
        unit = b.mean(axis=(0, 2, 3))
        _, cache2 = conv2d_forward(np.square(x), np.square(w), None, layer.stride,
                                   layer.padding, layer.dilation)
        dx, sums["weight"], _ = conv2d_backward(b, cache2, need_dx=below)
        if layer.bias is not None:
            sums["bias"] = b.sum(axis=(0, 2, 3))
        return sums, unit, dx
    n, c = b.shape[:2]
    flat = b.reshape(n, c, w.shape[0], -1)  # (N, c, F, OH·OW)
    unit = np.square(flat).sum(axis=1).mean(axis=(0, 2))
    sums["weight"] = _conv_weight_squares(flat, x, layer).reshape(w.shape)
    if layer.bias is not None:
        sums["bias"] = np.square(flat.sum(axis=3)).sum(axis=(0, 1))
    if below:
        b = np.stack([conv2d_backward(np.ascontiguousarray(b[:, j]), cache)[0]
                      for j in range(c)], axis=1)
    return sums, unit, b


def backward_squares(tape: list, b: np.ndarray, squared_only: bool,
                     units: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Walk the tape backwards with the columns b (N, c, …) — or, ``squared_only``, with the
    diagonal carrier d (N, …) = Σ_c b² of LeCun's recursion. Returns {param: Σ_n squares}."""
    out = {}
    first = next(i for i, entry in enumerate(tape) if isinstance(entry[1], (nn.Linear,
                                                                            nn.Conv2d)))
    for i in range(len(tape) - 1, first - 1, -1):  # nothing below the first weight needs b
        name, layer, x, saved = tape[i]
        below = i > first
        if isinstance(layer, nn.Linear):
            w = saved
            s2 = b if squared_only else np.square(b).sum(axis=1)          # (N, out)
            units[name] = s2.mean(axis=0)
            out[f"{name}.weight"] = s2.T @ np.square(x)
            if layer.bias is not None:
                out[f"{name}.bias"] = s2.sum(axis=0)
            # (N, c, out) as one (N·c, out) GEMM: matmul would loop over N small products
            if below:
                b = b @ np.square(w) if squared_only else \
                    (b.reshape(-1, w.shape[0]) @ w).reshape(*b.shape[:2], w.shape[1])
        elif isinstance(layer, nn.Conv2d):
            sums, units[name], b = _conv_squares(layer, x, saved, b, squared_only, below)
            out.update({f"{name}.{leaf}": value for leaf, value in sums.items()})
        elif isinstance(layer, (nn.ReLU, nn.Tanh)):
            factor = saved * saved if squared_only and isinstance(layer, nn.Tanh) else saved
            b = b * (factor if squared_only else factor[:, None])
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            back = max_pool2d_backward if isinstance(layer, nn.MaxPool2d) else \
                avg_pool2d_backward
            if squared_only:  # Σ_i A_ij² d_i: A is 0/1 (max) or 1/(kh·kw) (average)
                b = back(b, saved)
                if isinstance(layer, nn.AvgPool2d):
                    b = b / (layer.kernel_size[0] * layer.kernel_size[1])
            else:
                b = np.stack([back(np.ascontiguousarray(b[:, j]), saved)
                              for j in range(b.shape[1])], axis=1)
        elif isinstance(layer, nn.Flatten):
            b = b.reshape(saved) if squared_only else b.reshape(len(b), -1, *saved[1:])
    return out
