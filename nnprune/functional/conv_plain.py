"""The reference convolution: im2col and one GEMM, forward and backward, to read and to write.

The tuned kernel (``conv.py``) runs the same algorithm; this one holds nothing else.
x (N, C, H, W) ⋆ w (F, C, kh, kw) + b (F,) -> out (N, F, OH, OW), a cross-correlation as
PyTorch's Conv2d. Write K = C·kh·kw and P = OH·OW.

Forward: copy every receptive field into a column, then the conv is a matrix product

    cols[n][(c, i, j), (y, z)] = x_pad[n, c, y·sh + i·dh, z·sw + j·dw]     (N, K, P)
    out[n] = W cols[n] + b             (F, K) @ (K, P) -> (F, P),   W = w.reshape(F, K)

Backward: the transposed products, and col2im, which adds each column back where it was
copied from (a pixel read by several windows gets the sum of their gradients):

    dW = Σ_n dout[n] cols[n]ᵀ          (F, P) @ (P, K) -> (F, K), then reshaped to w's shape
    db = Σ_{n,y,z} dout[n, :, y, z]
    dcols[n] = Wᵀ dout[n]              (K, F) @ (F, P) -> (K, P)
    dx_pad[n, c, y·sh + i·dh, z·sw + j·dw] += dcols[n][(c, i, j), (y, z)]
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnprune.functional.validation import Pair, check_float, check_vector, pair


def conv_output_size(h: int, w: int, kernel: Pair, stride: Pair, padding: Pair,
                     dilation: Pair) -> Pair:
    """(OH, OW) with OH = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1 (PyTorch's Conv2d docs).

    >>> conv_output_size(28, 28, (5, 5), (1, 1), (0, 0), (1, 1))
    (24, 24)
    """
    oh = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    return oh, ow


class PlainCache(NamedTuple):
    """What conv2d_plain_backward needs."""
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    cols: np.ndarray                    # (N, K, P)
    w: np.ndarray                       # (F, C, kh, kw)
    has_bias: bool
    geometry: tuple[Pair, Pair, Pair]   # stride, padding, dilation


def conv2d_plain_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                         stride: int | Pair = 1, padding: int | Pair = 0,
                         dilation: int | Pair = 1) -> tuple[np.ndarray, PlainCache]:
    """out = x ⋆ w + b by im2col and one GEMM: (N, C, H, W) ⋆ (F, C, kh, kw) + (F,)
    -> (N, F, OH, OW), out[n, f, y, z] = b[f] + Σ_{c,i,j} x_pad[n, c, y·sh + i·dh,
    z·sw + j·dw] · w[f, c, i, j].

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, cache = conv2d_plain_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]), stride=2)
    >>> out[0, 0]
    array([[10.5, 18.5],
           [42.5, 50.5]])
    """
    x, w = np.asarray(x), np.asarray(w)
    geometry = pair("stride", stride, 1), pair("padding", padding, 0), pair("dilation", dilation, 1)
    check_conv_inputs(x, w, b, *geometry)
    (sh, sw), (ph, pw), (dh, dw) = geometry
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = conv_output_size(h, wd, (kh, kw), *geometry)
    # task 1.2: the im2col convolution forward
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.result_type(x, w))
    for i in range(kh):  # one strided slice per kernel offset fills those rows of every column
        for j in range(kw):
            top, left = i * dh, j * dw
            cols[:, :, i, j] = x_pad[:, :, top:top + sh * (oh - 1) + 1:sh,
                                     left:left + sw * (ow - 1) + 1:sw]
    cols = cols.reshape(n, c * kh * kw, oh * ow)            # (N, K, P)
    out = w.reshape(f, c * kh * kw) @ cols                  # now the conv is a GEMM: (N, F, P)
    if b is not None:
        out = out + b[:, None]                              # (F, 1): one bias per filter row
    cache = PlainCache(x.shape, cols, w, b is not None, geometry)
    return out.reshape(n, f, oh, ow), cache
    # end task


def conv2d_plain_backward(dout: np.ndarray, cache: PlainCache
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dx (N, C, H, W), dw (F, C, kh, kw), db (F,) or None from dout (N, F, OH, OW):
    dW = Σ_n dout[n] cols[n]ᵀ, db = Σ dout, dx = col2im(Wᵀ dout) (module docstring)."""
    (n, c, h, wd), cols, w, has_bias, ((sh, sw), (ph, pw), (dh, dwl)) = cache
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    d = dout.reshape(n, f, oh * ow)                          # (N, F, P)
    dw = np.einsum("nfp,nkp->fk", d, cols).reshape(w.shape)  # Σ_n (F, P) @ (P, K)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    dcols = (w.reshape(f, -1).T @ d).reshape(n, c, kh, kw, oh, ow)  # (N, K, P), unfolded
    # col2im: each kernel offset's block goes back where its slice was copied from
    dx_pad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dwl
            dx_pad[:, :, top:top + sh * (oh - 1) + 1:sh,
                   left:left + sw * (ow - 1) + 1:sw] += dcols[:, :, i, j]
    return dx_pad[:, :, ph:ph + h, pw:pw + wd], dw, db


def check_conv_inputs(x: Any, w: Any, b: Any, stride: Pair, padding: Pair,
                      dilation: Pair) -> None:
    """Raise TypeError / ValueError, naming the argument, unless x (N, C, H, W) and w
    (F, C, kh, kw) are float arrays of one C, b is None or (F,), and the output is at
    least 1×1."""
    check_float("x", x)
    check_float("weight", w)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (F, C, kh, kw), got shape {w.shape}")
    if 0 in x.shape or 0 in w.shape:
        raise ValueError(f"x {x.shape} and weight {w.shape} must have no empty axis")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects {w.shape[1]} "
                         f"(weight shape {w.shape} is (F, C, kh, kw))")
    check_vector("bias", b, w.shape[0], "filter")
    oh, ow = conv_output_size(*x.shape[2:], w.shape[2:], stride, padding, dilation)
    if oh < 1 or ow < 1:
        span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:]))
        padded = tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
        raise ValueError(f"kernel {w.shape[2:]} with dilation {dilation} spans {span}, larger "
                         f"than the padded input {padded}")


def patches(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The columns above for every image, by a strided view, for second-order code:
    ``w.reshape(F, -1) @ cols[n]`` is the conv of image n.  (N, C, H, W) -> (N, K, P).

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> patches(x, 2)[0]
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    kh, kw = pair("kernel_size", kernel_size, 1)
    sh, sw = pair("stride", stride, 1)
    ph, pw = pair("padding", padding, 0)
    dh, dw = pair("dilation", dilation, 1)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if xp.shape[2] < span_h or xp.shape[3] < span_w:
        raise ValueError(f"a {kh}×{kw} kernel (dilation {dh}, {dw}) does not fit the padded "
                         f"input {xp.shape[2]}×{xp.shape[3]}")
    windows = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]             # (N, C, OH, OW, kh, kw)
    n, c, oh, ow = windows.shape[:4]
    return np.ascontiguousarray(windows.transpose(0, 1, 4, 5, 2, 3)).reshape(
        n, c * kh * kw, oh * ow)
