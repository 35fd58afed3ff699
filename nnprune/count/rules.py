"""Per-layer arithmetic for ``nnprune.count``, per image (``(C, H, W)`` or ``(D,)``).

Each rule maps ``(name, layer, input shape)`` to ``(output shape, weight_uses)``: how many
MACs each weight entry takes part in, Conv2d ``OH·OW`` (padding taps included), Linear 1,
any other layer 0. So ``macs = weight_uses·|W|`` and effective MACs ``weight_uses·nnz(W)``.

**Alive channels** (``alive_after``): a channel (a feature map, or a feature of a flat
vector) is *dead* when it is exactly 0 for every input image. The input's channels are all
alive; then, per layer:

- Conv2d / Linear: output unit f is alive iff it reads an alive input through a non-zero
  weight, or its bias is non-zero (a constant is a signal): alive_f = ∃c alive_c ∧ W[f, c] ≠ 0,
  or b_f ≠ 0;
- BatchNorm: y = γ(x − μ)/√(σ² + ε) + β is 0 for a dead x iff β = 0 and (γ = 0 or μ = 0),
  and 0 for any x iff γ = β = 0 (no γ, β: γ = 1, β = 0);
- ReLU, Tanh, Dropout, MaxPool2d, AvgPool2d: 0 stays 0, so dead stays dead (zero padding too);
- Flatten: channel c of (C, H, W) becomes the H·W features c·H·W … (c + 1)·H·W − 1;
- any other layer: every output channel is counted alive.
"""
from __future__ import annotations

from math import prod
from typing import Callable

import numpy as np

from nnprune import nn
from nnprune.count.report import Shape

Rule = Callable[[str, nn.Module, Shape], tuple[Shape, int]]


def _misfit(name: str, layer: nn.Module, shape: Shape, why: str) -> ValueError:
    """The error for an input shape that does not fit ``layer``: names the layer and the shape."""
    return ValueError(f"layer {name!r} ({type(layer).__name__}) {why}; "
                      f"got an input of shape {shape} (per image, no batch axis)")


def _feature_map(name: str, layer: nn.Module, shape: Shape) -> None:
    if len(shape) != 3:
        raise _misfit(name, layer, shape, "expects a feature map (C, H, W)")


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """OH = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1 (PyTorch's Conv2d formula).

    >>> conv_output_size(28, 5, 1, 0, 1), conv_output_size(32, 3, 1, 1, 1)
    (24, 32)
    """
    # task 4.1: MAC counting (output sizes and dense MACs)
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    # end task


def conv2d_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(C, H, W) ⋆ (F, C, kh, kw) -> (F, OH, OW); each weight is used OH·OW times."""
    _feature_map(name, layer, shape)
    c, h, w = shape
    if c != layer.in_channels:
        raise _misfit(name, layer, shape, f"expects {layer.in_channels} input channels")
    oh, ow = (conv_output_size(size, k, s, p, d) for size, k, s, p, d in zip(
        (h, w), layer.kernel_size, layer.stride, layer.padding, layer.dilation))
    if oh < 1 or ow < 1:
        raise _misfit(name, layer, shape,
                      f"with kernel {layer.kernel_size}, stride {layer.stride}, padding "
                      f"{layer.padding} and dilation {layer.dilation} needs a larger input "
                      f"(the output would be {oh}×{ow})")
    return (layer.out_channels, oh, ow), oh * ow


def linear_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(in_features,) -> (out_features,); each weight is used once."""
    if shape != (layer.in_features,):
        raise _misfit(name, layer, shape, f"expects flat features ({layer.in_features},) "
                                          "(a Flatten before it if the input is a feature map)")
    return (layer.out_features,), 1


def pool2d_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(C, H, W) -> (C, OH, OW), OH = ⌊(H + 2·padding − kh) / stride⌋ + 1; no MACs."""
    _feature_map(name, layer, shape)
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    if 2 * ph > kh or 2 * pw > kw:
        raise _misfit(name, layer, shape, f"has padding {layer.padding} larger than half "
                                          f"its kernel {layer.kernel_size}")
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise _misfit(name, layer, shape, f"with kernel {layer.kernel_size} and padding "
                                          f"{layer.padding} needs a larger input")
    return (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1), 0


def batch_norm1d_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(num_features,) -> (num_features,); no MACs by convention."""
    if shape != (layer.num_features,):
        raise _misfit(name, layer, shape, f"expects flat features ({layer.num_features},)")
    return shape, 0


def batch_norm2d_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(C, H, W) -> (C, H, W) with C = num_features; no MACs by convention."""
    _feature_map(name, layer, shape)
    if shape[0] != layer.num_features:
        raise _misfit(name, layer, shape, f"expects {layer.num_features} channels")
    return shape, 0


def flatten_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """(d1, d2, ...) -> (d1·d2·...,); no MACs."""
    return (prod(shape),), 0


def elementwise_rule(name: str, layer: nn.Module, shape: Shape) -> tuple[Shape, int]:
    """Shape-preserving layers (ReLU, Tanh, Dropout); no MACs."""
    return shape, 0


# Both pooling layers share one rule; lookups walk the MRO, so subclasses of a layer use its rule
RULES: dict[type, Rule] = {
    nn.Conv2d: conv2d_rule,
    nn.Linear: linear_rule,
    nn.MaxPool2d: pool2d_rule,
    nn.AvgPool2d: pool2d_rule,
    nn.BatchNorm1d: batch_norm1d_rule,
    nn.BatchNorm2d: batch_norm2d_rule,
    nn.Flatten: flatten_rule,
    nn.ReLU: elementwise_rule,
    nn.Tanh: elementwise_rule,
    nn.Dropout: elementwise_rule,
}


def rule_for(name: str, layer: nn.Module) -> Rule:
    """The shape rule of ``layer``'s type (or its nearest known base class)."""
    for cls in type(layer).__mro__:
        if cls in RULES:
            return RULES[cls]
    known = ", ".join(sorted(cls.__name__ for cls in RULES))
    raise TypeError(f"layer {name!r} is a {type(layer).__name__}, which count() does not "
                    f"know how to cost; known layer types: {known}")


# ---------------------------------------------------------------- alive channels
PASS_THROUGH = (nn.ReLU, nn.Tanh, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


def live_weight(layer: nn.Module, alive: np.ndarray) -> np.ndarray | None:
    """The weight of a Conv2d/Linear with the columns of dead inputs zeroed; None for other
    layers (or an ``alive`` that does not match the weight's inputs).

    (F, C, kh, kw) or (F, C) weight, (C,) bool -> same shape as the weight.
    """
    if not isinstance(layer, (nn.Conv2d, nn.Linear)) or alive.shape != (layer.weight.shape[1],):
        return None
    shape = (1, -1) + (1,) * (layer.weight.ndim - 2)
    return layer.weight.data * alive.reshape(shape)


def alive_after(layer: nn.Module, alive: np.ndarray, out_shape: Shape) -> np.ndarray:
    """The alive channels of ``layer``'s output from those of its input (module docstring).

    (C_in,) bool -> (C_out,) bool, C_out = out_shape[0].
    """
    channels = out_shape[0]
    weight = live_weight(layer, alive)
    if weight is not None:
        reads = np.any(weight != 0, axis=tuple(range(1, weight.ndim)))
        if layer.bias is not None:
            reads |= layer.bias.data != 0
        return reads
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and alive.shape == (channels,):
        gamma = np.ones(channels) if layer.weight is None else layer.weight.data
        beta = np.zeros(channels) if layer.bias is None else layer.bias.data
        silent = (beta == 0) & ((gamma == 0) | (layer.running_mean == 0))
        return ~((gamma == 0) & (beta == 0)) & (alive | ~silent)
    if isinstance(layer, PASS_THROUGH) and alive.shape == (channels,):
        return alive
    if isinstance(layer, nn.Flatten) and alive.size and channels % alive.size == 0:
        return np.repeat(alive, channels // alive.size)
    return np.ones(channels, dtype=bool)


def input_alive(shape: Shape) -> np.ndarray:
    """Every channel of the input is alive: (C,) True for a (C, H, W) image, (D,) for (D,)."""
    return np.ones(shape[0] if len(shape) else prod(shape), dtype=bool)
