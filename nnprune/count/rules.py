"""Per-layer arithmetic for ``nnprune.count`` (shapes per image, no batch axis: ``(C, H, W)``
or ``(D,)``). Each rule maps ``(name, layer, input shape)`` to ``(output shape,
weight_uses)``, ``weight_uses`` being how many multiply-accumulates each entry of the
layer's weight takes part in for one image: Conv2d ``OH·OW`` (padding taps included),
Linear ``1``, every other layer ``0``. So ``macs = weight_uses·|W|`` and the effective MACs
of a pruned layer are the exact integer ``weight_uses·nnz(W)``.
"""
from __future__ import annotations

from math import prod
from typing import Callable

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
