"""Naive twins of the fast kernels: plain loops over every index, slow and obviously right.

Same arguments and (out, cache) / backward(dout, cache) convention as the fast kernels; the
tests hold the two equal on random geometries. Use them on tiny inputs only.
"""
from __future__ import annotations

import numpy as np

from nnprune.functional.conv_plain import conv_output_size
from nnprune.functional.validation import pair


def conv2d_naive_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                         stride=1, padding=0, dilation=1) -> tuple[np.ndarray, tuple]:
    """(N, C, H, W) ⋆ (F, C, kh, kw) + (F,) -> (N, F, OH, OW), seven nested loops:
    out[n, f, y, z] = b[f] + Σ_{c,i,j} x_pad[n, c, y·sh + i·dh, z·sw + j·dw] · w[f, c, i, j]."""
    (sh, sw), (ph, pw), (dh, dw) = (pair("stride", stride, 1), pair("padding", padding, 0),
                                    pair("dilation", dilation, 1))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = conv_output_size(h, wd, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, w))
    for i_n in range(n):
        for i_f in range(f):
            for y in range(oh):
                for z in range(ow):
                    total = 0.0 if b is None else b[i_f]
                    for i_c in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                total += (xp[i_n, i_c, y * sh + i * dh, z * sw + j * dw]
                                          * w[i_f, i_c, i, j])
                    out[i_n, i_f, y, z] = total
    return out, (x, w, b is not None, (sh, sw), (ph, pw), (dh, dw))


def conv2d_naive_backward(dout: np.ndarray, cache: tuple):
    """dx (N, C, H, W), dw (F, C, kh, kw), db (F,) or None: every output value sends
    dout · w back to the input entry it read and dout · x to the weight it used."""
    x, w, has_bias, (sh, sw), (ph, pw), (dh, dwl) = cache
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = np.zeros(f, dtype=dout.dtype) if has_bias else None
    for i_n, i_f, y, z in np.ndindex(dout.shape):
        g = dout[i_n, i_f, y, z]
        if has_bias:
            db[i_f] += g
        for i_c in range(c):
            for i in range(kh):
                for j in range(kw):
                    r, s = y * sh + i * dh, z * sw + j * dwl
                    dw[i_f, i_c, i, j] += g * xp[i_n, i_c, r, s]
                    dxp[i_n, i_c, r, s] += g * w[i_f, i_c, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + wd], dw, db


def _pool_args(kernel_size, stride, padding):
    kernel = pair("kernel_size", kernel_size, 1)
    return kernel, kernel if stride is None else pair("stride", stride, 1), pair("padding", padding, 0)


def max_pool2d_naive_forward(x: np.ndarray, kernel_size, stride=None, padding=0):
    """(N, C, H, W) -> (N, C, OH, OW): scan each window in row-major order and keep the
    first maximum (a later equal value does not replace it) and where it was."""
    (kh, kw), (sh, sw), (ph, pw) = _pool_args(kernel_size, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    where = np.zeros((n, c, oh, ow, 2), dtype=np.int64)
    for i_n, i_c, y, z in np.ndindex(out.shape):
        best, at = -np.inf, (y * sh, z * sw)
        for i in range(kh):
            for j in range(kw):
                value = xp[i_n, i_c, y * sh + i, z * sw + j]
                if value > best:
                    best, at = value, (y * sh + i, z * sw + j)
        out[i_n, i_c, y, z], where[i_n, i_c, y, z] = best, at
    return out, (x.shape, where, (ph, pw))


def max_pool2d_naive_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx (N, C, H, W): each dout value goes to the first maximum of its window."""
    x_shape, where, (ph, pw) = cache
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for i_n, i_c, y, z in np.ndindex(dout.shape):
        r, s = where[i_n, i_c, y, z]
        dxp[i_n, i_c, r, s] += dout[i_n, i_c, y, z]
    return dxp[:, :, ph:ph + h, pw:pw + w]


def avg_pool2d_naive_forward(x: np.ndarray, kernel_size, stride=None, padding=0):
    """(N, C, H, W) -> (N, C, OH, OW): the sum of each zero-padded window over kh·kw."""
    (kh, kw), (sh, sw), (ph, pw) = _pool_args(kernel_size, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i_n, i_c, y, z in np.ndindex(out.shape):
        total = 0.0
        for i in range(kh):
            for j in range(kw):
                total += xp[i_n, i_c, y * sh + i, z * sw + j]
        out[i_n, i_c, y, z] = total / (kh * kw)
    return out, (x.shape, (kh, kw), (sh, sw), (ph, pw))


def avg_pool2d_naive_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx (N, C, H, W): each dout value is shared equally by the kh·kw entries of its window."""
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = cache
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for i_n, i_c, y, z in np.ndindex(dout.shape):
        for i in range(kh):
            for j in range(kw):
                dxp[i_n, i_c, y * sh + i, z * sw + j] += dout[i_n, i_c, y, z] / (kh * kw)
    return dxp[:, :, ph:ph + h, pw:pw + w]


def batch_norm_naive_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                             running_mean: np.ndarray, running_var: np.ndarray,
                             training: bool, momentum: float = 0.1, eps: float = 1e-5):
    """(N, C) or (N, C, H, W) -> same shape, one channel at a time; updates the running
    buffers in place when training (unbiased variance, as the fast kernel)."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c].ravel()
        m = values.size
        if training:
            mean = sum(values) / m
            var = sum((v - mean) ** 2 for v in values) / m
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            running_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            mean, var = running_mean[c], running_var[c]
        out[:, c] = gamma[c] * (x[:, c] - mean) / np.sqrt(var + eps) + beta[c]
    return out


def cross_entropy_naive(logits: np.ndarray, target: np.ndarray, reduction: str = "mean"):
    """−log softmax(logits)[n, target[n]] row by row, with the max shift, then reduced."""
    losses = []
    for row, label in zip(logits, target):
        top = max(row)
        log_total = np.log(sum(np.exp(v - top) for v in row))
        losses.append(-(row[label] - top - log_total))
    losses = np.array(losses, dtype=logits.dtype)
    if reduction == "none":
        return losses
    return losses.mean() if reduction == "mean" else losses.sum()
