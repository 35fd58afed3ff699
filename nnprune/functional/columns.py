"""Receptive fields as columns, by reference: the readable im2col that second-order code reads.

The tuned im2col (``im2col.py``) writes chunks into scratch buffers for the GEMMs of the
forward pass. Layer-wise OBS and the per-sample curvature of a conv need every image's
columns as one array, in the weight's own order (c, i, j), so that ``w.reshape(F, -1) @
cols[n]`` is the convolution of image n. A strided view of the padded input gives them.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnprune.functional.validation import pair


def patches(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """cols[n, (c, i, j), (y, z)] = x_pad[n, c, y·sh + i·dh, z·sw + j·dw].

    (N, C, H, W) -> (N, C·kh·kw, OH·OW), a new array in x's dtype.

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
