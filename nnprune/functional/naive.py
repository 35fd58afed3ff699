"""Naive twins of the fast kernels: plain loops, slow and obviously right.

The tests hold each fast kernel equal to its twin on random geometries.
"""
from __future__ import annotations

import numpy as np


def conv2d_naive_forward(x, w, b, stride=1, padding=0, dilation=1):
    """(N, C, H, W) ⋆ (F, C, kh, kw) -> (N, F, OH, OW), one output value at a time."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, w))
    for i in range(n):
        for o in range(f):
            for r in range(oh):
                for s in range(ow):
                    total = 0.0
                    for ch in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                total += xp[i, ch, r * sh + u * dh, s * sw + v * dw] * w[o, ch, u, v]
                    out[i, o, r, s] = total + (b[o] if b is not None else 0.0)
    return out, (x, w, b, (sh, sw), (ph, pw), (dh, dw))


def conv2d_naive_backward(dout, cache):
    """dx, dw, db by looping over every output position and kernel tap."""
    x, w, b, (sh, sw), (ph, pw), (dh, dwl) = cache
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(n):
        for o in range(f):
            for r in range(dout.shape[2]):
                for s in range(dout.shape[3]):
                    g = dout[i, o, r, s]
                    for ch in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                y, z = r * sh + u * dh, s * sw + v * dwl
                                dw[o, ch, u, v] += g * xp[i, ch, y, z]
                                dxp[i, ch, y, z] += g * w[o, ch, u, v]
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, db


def max_pool2d_naive_forward(x, kernel_size, stride=None, padding=0):
    """Max over each window; the first maximum (row-major) is remembered for backward."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    stride = (kh, kw) if stride is None else stride
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    arg = np.zeros((n, c, oh, ow, 2), dtype=int)
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for s in range(ow):
                    best, where = -np.inf, (r * sh, s * sw)
                    for u in range(kh):
                        for v in range(kw):
                            val = xp[i, ch, r * sh + u, s * sw + v]
                            if val > best:  # strictly greater: the first maximum wins
                                best, where = val, (r * sh + u, s * sw + v)
                    out[i, ch, r, s], arg[i, ch, r, s] = best, where
    return out, (x.shape, arg, (ph, pw))


def max_pool2d_naive_backward(dout, cache):
    x_shape, arg, (ph, pw) = cache
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for i, ch, r, s in np.ndindex(dout.shape):
        y, z = arg[i, ch, r, s]
        dxp[i, ch, y, z] += dout[i, ch, r, s]
    return dxp[:, :, ph:ph + h, pw:pw + w]


def avg_pool2d_naive_forward(x, kernel_size, stride=None, padding=0):
    """Mean over each window, zero padding counted."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    stride = (kh, kw) if stride is None else stride
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i, ch, r, s in np.ndindex(out.shape):
        out[i, ch, r, s] = xp[i, ch, r * sh:r * sh + kh, s * sw:s * sw + kw].mean()
    return out


def batch_norm_naive_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm, one channel at a time."""
    out = np.empty_like(x)
    for ch in range(x.shape[1]):
        v = x[:, ch]
        out[:, ch] = gamma[ch] * (v - v.mean()) / np.sqrt(v.var() + eps) + beta[ch]
    return out


def cross_entropy_naive(logits, target):
    """Mean of −log softmax, one row at a time, in float64."""
    total = 0.0
    for row, t in zip(np.asarray(logits, np.float64), target):
        m = row.max()
        total += -(row[t] - m - np.log(np.sum(np.exp(row - m))))
    return total / len(target)
