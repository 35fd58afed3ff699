"""The plain im2col convolution: conv.py's idea without its tuning, to read and to write.

Between ``naive.py``'s seven loops and ``conv.py``'s tuned kernels (chunks, layouts, reused
workspaces): copy every receptive field into a column, then one matrix product. Write
K = C·kh·kw and P = OH·OW:

    cols[n][(c, i, j), (y, z)] = x_pad[n, c, y·sh + i·dh, z·sw + j·dw]     (N, K, P)
    out[n] = W cols[n] + b                       (F, K) @ (K, P) -> (F, P), W = w.reshape(F, K)

The copy loops over the kh·kw kernel offsets, not over pixels: for each offset (i, j) one
strided slice of the padded input fills the rows (c, i, j) of every column at once.
"""
from __future__ import annotations

import numpy as np

from nnprune.functional.validation import pair


def conv_plain_output_size(size: int, kernel: int, stride: int, padding: int,
                           dilation: int) -> int:
    """OH = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1 (PyTorch's Conv2d)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_plain_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                         stride=1, padding=0, dilation=1) -> np.ndarray:
    """out = x ⋆ w + b by im2col and one GEMM: (N, C, H, W) ⋆ (F, C, kh, kw) + (F,)
    -> (N, F, OH, OW), out[n, f, y, z] = b[f] + Σ_{c,i,j} x_pad[n, c, y·sh + i·dh,
    z·sw + j·dw] · w[f, c, i, j] (a cross-correlation, as PyTorch's Conv2d).

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> conv2d_plain_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]), stride=2)[0, 0]
    array([[10.5, 18.5],
           [42.5, 50.5]])
    """
    (sh, sw), (ph, pw), (dh, dw) = (pair("stride", stride, 1), pair("padding", padding, 0),
                                    pair("dilation", dilation, 1))
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (N, C, H, W) and w (F, C, kh, kw) with the same C, got "
                         f"x {x.shape} and w {w.shape}")
    if b is not None and np.shape(b) != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},), got {np.shape(b)}")
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = conv_plain_output_size(h, kh, sh, ph, dh)
    ow = conv_plain_output_size(wd, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(f"the input {h}×{wd} is too small for kernel {kh}×{kw} with padding "
                         f"({ph}, {pw}) and dilation ({dh}, {dw}): the output would be {oh}×{ow}")
    # task 1.2: the im2col convolution forward
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.result_type(x, w))
    for i in range(kh):  # one strided slice per kernel offset fills those rows of every column
        for j in range(kw):
            rows, cols_ = i * dh, j * dw
            cols[:, :, i, j] = x_pad[:, :, rows:rows + sh * (oh - 1) + 1:sh,
                                     cols_:cols_ + sw * (ow - 1) + 1:sw]
    cols = cols.reshape(n, c * kh * kw, oh * ow)            # (N, K, P)
    out = w.reshape(f, c * kh * kw) @ cols                  # now the conv is a GEMM: (N, F, P)
    if b is not None:
        out += np.asarray(b)[:, None]
    return out.reshape(n, f, oh, ow)
    # end task
