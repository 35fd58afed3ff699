"""2-D max and average pooling over kh×kw windows.

Both kernels loop over the kh·kw offsets of a window, never over pixels: for offset (i, j)
the strided view ``xp[:, :, i::sh, j::sw]`` (cut to OH×OW) holds that window entry of every
output position at once, so

    max:  out = max_{i,j} view_ij                 (kh·kw calls of np.maximum)
    avg:  out = (1 / (kh·kw)) Σ_{i,j} view_ij     (zero padding counted, PyTorch's default)

and backward adds dout back through the same views.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nnprune.functional.validation import Pair, check_dout, check_float, pair


class PoolGeometry(NamedTuple):
    kernel: Pair
    stride: Pair
    padding: Pair
    x_shape: tuple[int, ...]  # (N, C, H, W)
    out_hw: Pair              # (OH, OW)


def pool_geometry(x: np.ndarray, kernel_size: Any, stride: Any = None,
                  padding: Any = 0) -> PoolGeometry:
    """Check a pooling call and return its geometry (stride None means the kernel size).

    PyTorch's rule that padding is at most half the kernel keeps every window non-empty.
    """
    check_float("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"x must have no empty axis, got shape {x.shape}")
    kernel = pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair("stride", stride, 1)
    padding = pair("padding", padding, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel size {kernel}")
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"kernel_size {kernel} is larger than the padded input {padded}")
    out_hw = ((padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1)
    return PoolGeometry(kernel, stride, padding, x.shape, out_hw)


def _pad(x: np.ndarray, padding: Pair, fill: float) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2ph, W + 2pw) filled with ``fill`` around (x if no padding)."""
    ph, pw = padding
    if not ph and not pw:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


def _offsets(g: PoolGeometry):
    """(i·kw + j, index) for every window offset in row-major order; ``index`` cuts the
    (N, C, OH, OW) view of that offset out of the padded input."""
    (kh, kw), (sh, sw), (oh, ow) = g.kernel, g.stride, g.out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (slice(None), slice(None), slice(i, i + sh * (oh - 1) + 1, sh),
                               slice(j, j + sw * (ow - 1) + 1, sw))


def _unpad(dxp: np.ndarray, g: PoolGeometry) -> np.ndarray:
    (ph, pw), (h, w) = g.padding, g.x_shape[2:]
    return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w]) if ph or pw else dxp


def max_pool2d_forward(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair | None = None,
                       padding: int | Pair = 0) -> tuple[np.ndarray, tuple]:
    """out[n, c, y, z] = max over the window at (y·sh, z·sw) of the −inf-padded input.

    (N, C, H, W) -> (N, C, OH, OW). The cache keeps, per output, the window offset of its
    FIRST maximum (row-major): ties send the whole gradient to the earliest entry. A window
    holding NaN outputs NaN and sends the gradient to its LAST NaN, as PyTorch does.

    >>> x = np.array([[[[1., 3.], [3., 2.]]]])
    >>> out, cache = max_pool2d_forward(x, 2)
    >>> out.ravel(), max_pool2d_backward(np.ones((1, 1, 1, 1)), cache).ravel()
    (array([3.]), array([0., 1., 0., 0.]))
    """
    g = pool_geometry(x, kernel_size, stride, padding)
    xp = _pad(x, g.padding, -np.inf)
    offsets = _offsets(g)
    _, first = next(offsets)
    out = xp[first].copy()
    offsets_dtype = np.uint8 if g.kernel[0] * g.kernel[1] <= 256 else np.int32
    arg = np.zeros(out.shape, offsets_dtype)  # window offset i·kw + j of the first maximum
    for k, index in offsets:
        view = xp[index]
        better = view > out  # strictly greater: an equal later entry does not take over
        # arg = k where better: offsets come in increasing order, so k exceeds every offset
        # stored so far and a maximum does it without branches
        np.maximum(arg, better.astype(offsets_dtype) * offsets_dtype(k), out=arg)
        np.maximum(out, view, out=out)
    if np.isnan(out).any():  # a NaN wins its window, as in PyTorch: the last NaN gets dout
        for k, index in _offsets(g):
            np.copyto(arg, offsets_dtype(k), where=np.isnan(xp[index]))
    return out, (g, arg)


def max_pool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx (N, C, H, W): dout (N, C, OH, OW) added at each window's first maximum."""
    g, arg = cache
    check_dout(dout, g.x_shape[:2] + g.out_hw)
    dxp = _padded_grad(dout, g)
    for k, index in _offsets(g):
        if _overlapping(g):
            dxp[index] += np.where(arg == k, dout, 0)
        else:  # each entry is in one window at most: write, do not add
            np.multiply(dout, arg == k, out=dxp[index])
    return _unpad(dxp, g)


def avg_pool2d_forward(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair | None = None,
                       padding: int | Pair = 0) -> tuple[np.ndarray, PoolGeometry]:
    """out[n, c, y, z] = mean of the window at (y·sh, z·sw) of the zero-padded input
    (padded zeros counted: the divisor is always kh·kw).  (N, C, H, W) -> (N, C, OH, OW).

    >>> out, _ = avg_pool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    >>> out[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    g = pool_geometry(x, kernel_size, stride, padding)
    xp = _pad(x, g.padding, 0.0)
    out = np.zeros(x.shape[:2] + g.out_hw, x.dtype)
    for _, index in _offsets(g):
        out += xp[index]
    out *= x.dtype.type(1.0 / (g.kernel[0] * g.kernel[1]))
    return out, g


def avg_pool2d_backward(dout: np.ndarray, cache: PoolGeometry) -> np.ndarray:
    """dx (N, C, H, W): every window entry receives dout / (kh·kw)."""
    g = cache
    check_dout(dout, g.x_shape[:2] + g.out_hw)
    share = dout * dout.dtype.type(1.0 / (g.kernel[0] * g.kernel[1]))
    dxp = _padded_grad(dout, g)
    for _, index in _offsets(g):
        if _overlapping(g):
            dxp[index] += share
        else:
            dxp[index] = share
    return _unpad(dxp, g)


def _overlapping(g: PoolGeometry) -> bool:
    """Do windows share entries (stride smaller than the kernel)?"""
    return g.stride[0] < g.kernel[0] or g.stride[1] < g.kernel[1]


def _padded_grad(dout: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The gradient of the padded input, to be filled window by window: zeros, unless the
    windows tile it exactly and every entry will be written (then left uninitialised)."""
    n, c, h, w = g.x_shape
    shape = (n, c, h + 2 * g.padding[0], w + 2 * g.padding[1])
    tiled = (g.stride == g.kernel and shape[2] == g.out_hw[0] * g.kernel[0]
             and shape[3] == g.out_hw[1] * g.kernel[1])
    return (np.empty if tiled else np.zeros)(shape, dout.dtype)
