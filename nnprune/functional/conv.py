"""2-D convolution as a matrix product: im2col on the way forward, col2im on the way back."""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function


def _pair(name, v, minimum):
    p = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(p) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < minimum
                          for a in p):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {v!r}")
    return int(p[0]), int(p[1])


def conv_output_size(h, w, kh, kw, stride, padding, dilation):
    """OH = ⌊(H + 2p − d(kh − 1) − 1) / s⌋ + 1, likewise OW."""
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def im2col(x, kh, kw, stride, padding, dilation):
    """(N, C, H, W) -> cols (N, OH, OW, C, kh, kw) as a strided view of the padded input."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    n, c, hp, wp = xp.shape
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    s = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw),
        writeable=False)


def conv2d_forward(x, w, b, stride=1, padding=0, dilation=1):
    """(N, C, H, W) ⋆ (F, C, kh, kw) -> (N, F, OH, OW); out = cols @ Wᵀ + b."""
    stride, padding, dilation = _pair("stride", stride, 1), _pair("padding", padding, 0), _pair("dilation", dilation, 1)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (F, C, kh, kw), got shape {w.shape}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (N = 0)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects {w.shape[1]}")
    f, c, kh, kw = w.shape
    oh, ow = conv_output_size(x.shape[2], x.shape[3], kh, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} (dilation {dilation}) is larger than the padded input "
                         f"{x.shape[2] + 2 * padding[0]}x{x.shape[3] + 2 * padding[1]}")
    n = x.shape[0]
    cols = im2col(x, kh, kw, stride, padding, dilation).reshape(n * oh * ow, c * kh * kw)
    out = cols @ w.reshape(f, -1).T  # now the conv is a GEMM: (N·OH·OW, F)
    if b is not None:
        out += b
    out = out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2)
    cache = (x.shape, cols, w, b is not None, stride, padding, dilation)
    return np.ascontiguousarray(out), cache


def conv2d_backward(dout, cache):
    """dx (N, C, H, W), dw (F, C, kh, kw), db (F,) or None from dout (N, F, OH, OW)."""
    x_shape, cols, w, has_bias, stride, padding, dilation = cache
    n, c, h, wd = x_shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    d = dout.transpose(0, 2, 3, 1).reshape(-1, f)  # (N·OH·OW, F)
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(axis=0) if has_bias else None
    dcols = (d @ w.reshape(f, -1)).reshape(n, oh, ow, c, kh, kw)
    (ph, pw), (sh, sw), (dh, dwl) = padding, stride, dilation
    dxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=dout.dtype)
    # col2im: one strided add per kernel offset
    for i in range(kh):
        for j in range(kw):
            hi, wj = i * dh, j * dwl
            dxp[:, :, hi:hi + sh * (oh - 1) + 1:sh, wj:wj + sw * (ow - 1) + 1:sw] += \
                dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    dx = dxp[:, :, ph:ph + h, pw:pw + wd]
    return np.ascontiguousarray(dx), dw, db


class Conv2d(Function):
    """out = x ⋆ w + b; backward by the transposed GEMMs and col2im."""

    def forward(self, x, w, *b, stride=1, padding=0, dilation=1):
        out, self.cache = conv2d_forward(x, w, b[0] if b else None, stride, padding, dilation)
        self.has_bias = bool(b)
        return out

    def backward(self, dout):
        dx, dw, db = conv2d_backward(dout, self.cache)
        return (dx, dw, db) if self.has_bias else (dx, dw)
