"""Which channels carry a signal, layer by layer: the dead units ``nnprune.count`` skips.

A channel (a feature map of a conv layer, a feature of a flat vector) is *dead* when it is
exactly 0 for every input image. The input's channels are all alive; then, per layer:

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

import numpy as np

from nnprune import nn
from nnprune.count.report import Shape

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
