"""Folding: what removed units still send, moved into the consumer's bias.

With ``fold=True`` (the default) surgery computes, in eval mode, the original model with the
removed units' **weights** zeroed. Such a unit still outputs a constant map v
(``dead_output``), whose contribution goes into the consumer's bias:

    b'_o = b_o + Σ_{j ∈ cols(drop)} W_{o,j} v_j        (Linear consumer)
    b'_o = b_o + Σ_{f ∈ drop} Σ_{i,j} W_{o,f,i,j} v_f   (unpadded Conv2d consumer)

A padded Conv2d consumer (or a padded AvgPool2d on the way) sees the constant only partly at
the borders, so no bias can stand for it: that, or a consumer without a bias, is a ValueError
unless v = 0 or the weights reading it are zero. After ``mask_units`` there is nothing to fold.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.prune.surgery.routes import Route, columns


def dead_output(configs: Sequence[Mapping[str, Any]], state: Mapping[str, np.ndarray],
                route: Route, drop: np.ndarray) -> np.ndarray | None:
    """What the consumer reads from channels ``drop`` once their weights are zero (eval mode).

    (n_drop,) -> (n_drop·spatial,) float64, one value per consumer column of ``drop``. From
    v = b_f, BatchNorm (running statistics) maps v ↦ γ (v − μ)/√(σ² + eps) + β, ReLU and Tanh
    apply, Dropout and pooling keep a constant map constant — except a padded AvgPool2d,
    whose border windows average padding in: then None (not a constant) unless v = 0.
    """
    bias = state.get(f"{route.producer}.bias")
    v = np.zeros(len(drop)) if bias is None else bias[drop].astype(np.float64)
    norms = dict(route.norms)
    for i in route.through:
        config, kind = configs[i], configs[i]["type"]
        if i in norms:
            idx = columns(drop, route.spatial) if norms[i] else drop
            gamma, beta = state.get(f"{i}.weight"), state.get(f"{i}.bias")
            v = (v - state[f"{i}.running_mean"][idx]) / np.sqrt(
                state[f"{i}.running_var"][idx].astype(np.float64) + config["eps"])
            v = v * (1.0 if gamma is None else gamma[idx])
            v = v + (0.0 if beta is None else beta[idx])
        elif kind == "ReLU":
            v = np.maximum(v, 0.0)
        elif kind == "Tanh":
            v = np.tanh(v)
        elif kind == "AvgPool2d" and any(config["padding"]) and np.any(v != 0):
            return None
        elif i == route.flatten:
            v = np.repeat(v, route.spatial)  # each channel's constant over its H'·W' columns
    return v


def fold_into_consumer(configs: list, state: dict, masks: dict, route: Route,
                       drop: np.ndarray) -> None:
    """Add to the consumer's bias what channels ``drop`` (weights zeroed) would send it, in place.

    ``state``: the model's arrays by name, the consumer's ``{c}.bias`` updated; ``masks``: the
    attached masks (a masked bias entry cannot hold a constant). See the module doc.
    """
    v = dead_output(configs, state, route, drop)
    c, consumer = route.consumer, configs[route.consumer]
    w = state[f"{c}.weight"]
    if v is None:
        raise ValueError(f"cannot fold the removed channels of layer {route.producer}: a padded "
                         f"AvgPool2d on the way makes their constant maps uneven; "
                         f"mask the whole units first (mask_units), or pass fold=False")
    if consumer["type"] == "Linear":
        extra = w[:, columns(drop, route.spatial)].astype(np.float64) @ v
    else:  # (O, F, kh, kw): a constant channel meets every tap of an unpadded kernel
        taps = w[:, drop].astype(np.float64)
        extra = taps.sum(axis=(2, 3)) @ v
        if any(consumer["padding"]) and np.any((taps != 0).any(axis=(0, 2, 3)) & (v != 0)):
            raise ValueError(f"cannot fold the removed channels {drop[v != 0].tolist()} of "
                             f"layer {route.producer} into the padded Conv2d {c}: they output "
                             f"non-zero constants, which its border windows read only in part, "
                             f"so no bias can stand for them; mask the whole units first "
                             f"(mask_units: biases and BatchNorm γ, β too), or pass fold=False")
    if not np.any(extra):
        return
    bias = state.get(f"{c}.bias")
    held = masks.get(f"{c}.bias")
    if bias is None or (held is not None and np.any((held == 0) & (extra != 0))):
        raise ValueError(f"cannot fold the removed channels of layer {route.producer}: consumer "
                         f"{c} has no (unmasked) bias to hold their constant; mask the whole "
                         f"units first (mask_units), or pass fold=False")
    state[f"{c}.bias"] = (bias + extra).astype(bias.dtype)
