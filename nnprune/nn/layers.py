"""Layers with PyTorch's names, arguments and weight shapes.

Every layer's ``config()`` lists its constructor arguments, so a model of built-in layers
can be saved as a JSON spec and rebuilt by ``nn.from_config``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune import functional as F
from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.checks import check_choice, check_int, check_number, check_probability
from nnprune.functional.conv_algorithms import ALGORITHMS
from nnprune.functional.validation import pair
from nnprune.nn.init import (as_generator, check_init, fans, float_dtype, init_bias, init_weight,
                             resolve_bias_init)
from nnprune.nn.module import Module, Parameter


def _draw(layer: Module, shape: tuple[int, ...], bias: bool, init: str, bias_init: str | None,
          rng: int | np.random.Generator | None, dtype: Any) -> None:
    """Give ``layer`` its weight of ``shape``, then its bias (None when ``bias`` is False),
    drawn in that order from one generator, as PyTorch's ``reset_parameters`` does."""
    layer.init, layer.bias_init = check_init(init), resolve_bias_init(init, bias_init)
    dt, gen = float_dtype(dtype), as_generator(rng)
    layer.weight = Parameter(init_weight(shape, init, gen, dt))
    fan_in, _ = fans(shape)
    layer.bias = Parameter(init_bias(shape[0], fan_in, layer.bias_init, gen, dt)) if bias else None


class Linear(Module):
    """y = x Wᵀ + b.  (N, in_features) -> (N, out_features); W is (out_features, in_features).

    W is drawn by ``init`` from ``rng`` (a seed or a Generator), then b by ``bias_init``
    (see ``nn.init``). The default is PyTorch's: W and b ~ U(−1/√in_features, 1/√in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 init: str = "torch", bias_init: str | None = None,
                 rng: int | np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        _draw(self, (self.out_features, self.in_features), bias, init, bias_init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"

    def config(self) -> dict[str, Any]:
        return {"type": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "dtype": str(self.weight.dtype), "init": self.init, "bias_init": self.bias_init}


class Conv2d(Module):
    """2-D convolution (cross-correlation, as PyTorch).

    (N, C, H, W) ⋆ (F, C, kh, kw) -> (N, F, OH, OW),
    OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1 (likewise OW).
    The weight and the bias are drawn by ``init`` and ``bias_init`` from ``rng`` as in
    ``Linear``; by default both ~ U(−1/√fan_in, 1/√fan_in), fan_in = in_channels·kh·kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True, *,
                 init: str = "torch", bias_init: str | None = None,
                 rng: int | np.random.Generator | None = None, dtype: Any = np.float32,
                 algorithm: str = "auto") -> None:
        super().__init__()
        self.algorithm = check_choice(algorithm, "algorithm", ALGORITHMS)  # F.conv2d's
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)
        self.dilation = pair("dilation", dilation, 1)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        _draw(self, shape, bias, init, bias_init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        algorithm=self.algorithm)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")

    def config(self) -> dict[str, Any]:
        return {"type": "Conv2d", "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding),
                "dilation": list(self.dilation), "bias": self.bias is not None,
                "dtype": str(self.weight.dtype), "init": self.init, "bias_init": self.bias_init,
                **({} if self.algorithm == "auto" else {"algorithm": self.algorithm})}


class _Pool2d(Module):
    """What max- and average-pooling share: the window geometry; ``stride`` defaults to the
    kernel size.  (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H + 2·padding − kh) / stride⌋ + 1."""

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding)}


class MaxPool2d(_Pool2d):
    """Max over kh×kw windows (padding counts as −∞); ties send the gradient to the first max."""

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over kh×kw windows; padded zeros count in the mean (PyTorch's count_include_pad)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class _BatchNorm(Module):
    """y = γ (x − μ) / √(σ² + eps) + β per channel; batch statistics in training, running in eval."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, *, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "num_features", 1)
        self.momentum = check_number(momentum, "momentum", maximum=1.0)
        self.eps = check_number(eps, "eps", strict=True)
        dt = float_dtype(dtype)
        self.weight = Parameter(np.ones(num_features, dt)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dt)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dt))
        self.register_buffer("running_var", np.ones(num_features, dt))

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)  # an array or a list is taken as a constant input, as by Linear
        if x.ndim != self.expected_ndim:
            raise ValueError(f"{type(self).__name__} expects {self.expected_ndim}-D input, "
                             f"got shape {x.shape}")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "num_features": self.num_features,
                "eps": self.eps, "momentum": self.momentum, "affine": self.weight is not None,
                "dtype": str(self.running_mean.dtype)}


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features."""

    expected_ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) feature maps, statistics over N, H, W."""

    expected_ndim = 4


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def config(self) -> dict[str, Any]:
        return {"type": "ReLU"}


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)

    def config(self) -> dict[str, Any]:
        return {"type": "Tanh"}


class Dropout(Module):
    """Inverted dropout: zero each entry with probability p, scale the rest by 1/(1 − p).

    The generator is the layer's own, seeded from ``rng``: the same seed gives the same masks.
    """

    def __init__(self, p: float = 0.5, *, rng: int | np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p, "p", high_open=True)
        self.rng = as_generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def config(self) -> dict[str, Any]:
        return {"type": "Dropout", "p": self.p}


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1·d2·...)."""

    def forward(self, x: Tensor) -> Tensor:
        return as_tensor(x).flatten(1)

    def config(self) -> dict[str, Any]:
        return {"type": "Flatten"}
