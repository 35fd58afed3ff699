"""Pooling, batch normalisation, dropout, linear and losses: kernels and their autograd ops."""
from __future__ import annotations

import numpy as np

from nnprune.autograd.function import Function
from nnprune.functional.conv import _pair, im2col


def _windows(x, kernel, stride, padding, fill):
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill) if ph or pw else x
    # (N, OH, OW, C, kh, kw) -> (N, C, OH, OW, kh·kw)
    v = im2col(xp, kernel[0], kernel[1], stride, (0, 0), (1, 1))
    n, oh, ow, c, kh, kw = v.shape
    return v.transpose(0, 3, 1, 2, 4, 5).reshape(n, c, oh, ow, kh * kw)


def _check_pool(x, kernel, stride, padding):
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    kernel = _pair("kernel_size", kernel, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"padding {padding} must be at most half the kernel {kernel}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(f"kernel {kernel} is larger than the padded input {x.shape[2:]}")
    return kernel, stride, padding


def _scatter(dwin, x_shape, kernel, stride, padding):
    """col2im for pooling: dwin (N, C, OH, OW, kh·kw) -> dx (N, C, H, W)."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = dwin.shape[2:4]
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += dwin[..., i * kw + j]
    return dxp[:, :, ph:ph + h, pw:pw + w]


class MaxPool2d(Function):
    """out = max over each window; the FIRST maximum (row-major in the window) gets dout."""

    def forward(self, x, kernel_size, stride=None, padding=0):
        self.geom = _check_pool(x, kernel_size, stride, padding)
        win = _windows(x, *self.geom, fill=-np.inf)
        self.arg = win.argmax(axis=-1)  # first maximum on ties
        self.x_shape, self.k = x.shape, win.shape[-1]
        return np.take_along_axis(win, self.arg[..., None], -1)[..., 0]

    def backward(self, dout):
        dwin = (np.arange(self.k) == self.arg[..., None]) * dout[..., None]
        return (_scatter(dwin.astype(dout.dtype), self.x_shape, *self.geom),)


class AvgPool2d(Function):
    """out = mean over each window (zero padding counted, as PyTorch's default)."""

    def forward(self, x, kernel_size, stride=None, padding=0):
        self.geom = _check_pool(x, kernel_size, stride, padding)
        win = _windows(x, *self.geom, fill=0.0)
        self.x_shape, self.k = x.shape, win.shape[-1]
        return win.mean(axis=-1)

    def backward(self, dout):
        dwin = np.broadcast_to((dout / self.k)[..., None], dout.shape + (self.k,))
        return (_scatter(np.ascontiguousarray(dwin), self.x_shape, *self.geom),)


class Linear(Function):
    """out = x Wᵀ + b: (N, in) × (out, in) -> (N, out); dx = dout W, dW = doutᵀ x, db = Σ dout."""

    def forward(self, x, w, *b):
        if x.ndim != 2 or x.shape[1] != w.shape[1]:
            raise ValueError(f"x must be (N, {w.shape[1]}) for a weight of shape {w.shape}, got {x.shape}")
        self.x, self.w, self.has_bias = x, w, bool(b)
        out = x @ w.T
        return out + b[0] if b else out

    def backward(self, dout):
        grads = (dout @ self.w, dout.T @ self.x)
        return grads + (dout.sum(axis=0),) if self.has_bias else grads


class BatchNorm(Function):
    """y = γ x̂ + β, x̂ = (x − μ) / √(σ² + eps) per channel (axis 1), statistics over the rest.

    Backward (training): dx = (γ / √(σ²+eps)) · (dx̂' − mean(dx̂') − x̂ · mean(dx̂' · x̂)), with
    dx̂' = dout, means over the reduced axes. In eval mode μ, σ² are constants.
    """

    def forward(self, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        if x.ndim not in (2, 4):
            raise ValueError(f"batch_norm needs (N, C) or (N, C, H, W) input, got shape {x.shape}")
        if x.shape[1] != running_mean.shape[0]:
            raise ValueError(f"x has {x.shape[1]} channels, the running stats {running_mean.shape[0]}")
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m = x.size // x.shape[1]
        if training:
            if m <= 1:
                raise ValueError(f"batch_norm in training needs more than 1 value per channel, got shape {x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * m / (m - 1)  # unbiased, as PyTorch
        else:
            mean, var = running_mean, running_var
        self.inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        self.xhat = (x - mean.reshape(shape)) * self.inv.reshape(shape)
        self.gamma, self.axes, self.shape, self.training = gamma, axes, shape, training
        return self.xhat * gamma.reshape(shape) + beta.reshape(shape)

    def backward(self, dout):
        dgamma = (dout * self.xhat).sum(axis=self.axes)
        dbeta = dout.sum(axis=self.axes)
        g = (self.gamma * self.inv).reshape(self.shape)
        if self.training:
            dx = g * (dout - dout.mean(axis=self.axes, keepdims=True)
                      - self.xhat * (dout * self.xhat).mean(axis=self.axes, keepdims=True))
        else:
            dx = g * dout
        return dx, dgamma, dbeta


class Dropout(Function):
    """Inverted dropout: out = x · m / (1 − p), m ~ Bernoulli(1 − p); dx = dout · m / (1 − p)."""

    def forward(self, x, p, rng):
        self.scale = (rng.random(x.shape) >= p) / (1.0 - p)
        self.scale = self.scale.astype(x.dtype)
        return x * self.scale

    def backward(self, dout):
        return (dout * self.scale,)


def log_softmax_array(x, axis=-1):
    """log softmax, stable: x − max − log Σ exp(x − max)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """out = log softmax(x); dx = dout − softmax · Σ dout."""

    def forward(self, x, axis=-1):
        self.out, self.axis = log_softmax_array(x, axis), axis
        return self.out

    def backward(self, dout):
        return (dout - np.exp(self.out) * dout.sum(axis=self.axis, keepdims=True),)


class CrossEntropy(Function):
    """L = −(1/N) Σ log softmax(z)[y]; dz = (softmax(z) − onehot(y)) / N (for reduction mean)."""

    def forward(self, logits, target, reduction="mean"):
        n = logits.shape[0]
        logp = log_softmax_array(logits, axis=1)
        losses = -logp[np.arange(n), target]
        self.p, self.target, self.reduction = np.exp(logp), target, reduction
        if reduction == "none":
            return losses
        return np.asarray(losses.mean() if reduction == "mean" else losses.sum(), dtype=logits.dtype)

    def backward(self, dout):
        n = self.p.shape[0]
        grad = self.p.copy()
        grad[np.arange(n), self.target] -= 1
        if self.reduction == "none":
            return (grad * dout[:, None],)
        return (grad * (dout / n if self.reduction == "mean" else dout),)


class MSELoss(Function):
    """L = mean((a − b)²); da = 2 (a − b) / n, db = −da."""

    def forward(self, a, b, reduction="mean"):
        if a.shape != b.shape:
            raise ValueError(f"input and target shapes differ: {a.shape} vs {b.shape}")
        self.diff, self.reduction = a - b, reduction
        sq = self.diff ** 2
        if reduction == "none":
            return sq
        return np.asarray(sq.mean() if reduction == "mean" else sq.sum(), dtype=a.dtype)

    def backward(self, dout):
        scale = 2 / self.diff.size if self.reduction == "mean" else 2
        g = (dout if self.reduction == "none" else dout * scale) * self.diff * (2 if self.reduction == "none" else 1)
        return g, -g
