"""The route of a layer's output channels to the next weight that reads them: what surgery cuts.

Surgery edits a flat model spec (``model.config()["layers"]``) and its arrays by name. Output
unit f of a **producer** (a Conv2d filter or a Linear neuron) travels to the **consumer**,
the next Conv2d or Linear, through layers that keep channels apart: a BatchNorm (γ_f, β_f,
μ_f, σ²_f belong to f), ReLU, Tanh, Dropout, pooling (conv producers only), a Flatten, after
which f owns the H'·W' consecutive columns f·H'W' … (f+1)·H'W' − 1 (channel-major, as
PyTorch). Any other layer (or a BatchNorm whose width does not match) is a ValueError.
What removed units still send along a route goes into the consumer's bias (``fold_into_consumer``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.foreign import reject_foreign
from nnprune.nn import Sequential

PRODUCERS = ("Conv2d", "Linear")
ELEMENTWISE = ("ReLU", "Tanh", "Dropout")
POOLS = ("MaxPool2d", "AvgPool2d")


@dataclass(frozen=True)
class Route:
    """Where producer ``producer``'s channels go, by layer index in the Sequential.

    - ``norms``: ``(index, per_column)`` of every BatchNorm on the way, ``per_column`` for a
      BatchNorm1d after a Flatten (its features are the consumer's columns);
    - ``through``: every layer strictly between producer and consumer, in order;
    - ``spatial``: consumer inputs per producer channel: H'·W' through a Flatten, else 1;
    - ``flatten``: the Flatten that turns a conv producer's maps into columns, or None.
    """

    producer: int
    consumer: int
    norms: tuple[tuple[int, bool], ...]
    through: tuple[int, ...]
    spatial: int
    flatten: int | None = None

    @property
    def batch_norms(self) -> list[tuple[str, int]]:
        """(name, features per unit) of each BatchNorm on the way: ``spatial`` per column."""
        return [(str(j), self.spatial if per_column else 1) for j, per_column in self.norms]


def columns(units: np.ndarray, spatial: int) -> np.ndarray:
    """The consumer columns that channels ``units`` own: f·spatial + p for p < spatial.

    (n,) -> (n·spatial,), sorted when ``units`` is.

    >>> columns(np.array([0, 2]), 3)
    array([0, 1, 2, 6, 7, 8])
    """
    units = np.asarray(units, dtype=np.intp)
    return (units[:, None] * spatial + np.arange(spatial)).ravel()


def layer_configs(model: Any) -> list[dict[str, Any]]:
    """The layer configs of a flat Sequential: the spec surgery edits (a deep copy)."""
    reject_foreign(model, "model", "model")
    if not isinstance(model, Sequential):
        raise TypeError(f"surgery needs an nnprune.nn.Sequential, got {type(model).__name__}")
    configs = []
    for i, layer in enumerate(model):
        if isinstance(layer, Sequential):
            raise ValueError(f"layer {i} is a nested Sequential; surgery needs a flat one")
        try:
            configs.append(copy.deepcopy(layer.config()))
        except NotImplementedError:
            raise ValueError(f"layer {i} is a {type(layer).__name__}, which has no config(): "
                             f"surgery rebuilds the model from built-in layers only") from None
    return configs


def width(config: Mapping[str, Any]) -> int:
    """Output channels of a Conv2d, output features of a Linear."""
    return config["out_channels"] if config["type"] == "Conv2d" else config["out_features"]


def hidden_producers(configs: Sequence[Mapping[str, Any]]) -> list[int]:
    """The Conv2d and Linear layers whose units surgery may remove, by index: all but the
    output layer (the last of them), whose units are the model's outputs."""
    return [i for i, config in enumerate(configs) if config["type"] in PRODUCERS][:-1]


def _refuse(i: int, config: Mapping[str, Any], producer: int, why: str) -> ValueError:
    return ValueError(f"cannot follow the outputs of layer {producer} to a consumer: layer {i} "
                      f"is a {config['type']}, {why}")


def find_route(configs: Sequence[Mapping[str, Any]], producer: int) -> Route:
    """The route from layer ``producer`` (a Conv2d or Linear) to its consumer (see module doc)."""
    first = configs[producer]
    if first["type"] not in PRODUCERS:
        raise ValueError(f"layer {producer} is a {first['type']}; surgery removes the outputs "
                         f"of a Conv2d (filters) or a Linear (neurons)")
    n = width(first)
    maps = first["type"] == "Conv2d"  # (N, F, H, W) until a Flatten, then (N, F·H'·W')
    flatten = None
    norms, through = [], []
    for i in range(producer + 1, len(configs)):
        config, kind = configs[i], configs[i]["type"]
        if kind == "Conv2d" and maps and flatten is None:
            if config["in_channels"] != n:
                raise _refuse(i, config, producer, f"reading {config['in_channels']} channels, "
                                                   f"not the {n} produced")
            return Route(producer, i, tuple(norms), tuple(through), 1)
        if kind == "Linear" and (flatten is not None or not maps):
            spatial, extra = divmod(config["in_features"], n)
            if extra or (not maps and spatial != 1) or spatial == 0:
                raise _refuse(i, config, producer, f"reading {config['in_features']} features, "
                                                   f"not a whole number of values per each of "
                                                   f"the {n} channels produced")
            for j, per_column in norms:
                if configs[j]["num_features"] != (config["in_features"] if per_column else n):
                    raise _refuse(j, configs[j], producer, f"with {configs[j]['num_features']} "
                                                           f"features, which do not match")
            return Route(producer, i, tuple(norms), tuple(through), spatial, flatten)
        if kind == "BatchNorm2d" and maps and flatten is None:
            if config["num_features"] != n:
                raise _refuse(i, config, producer, f"with {config['num_features']} features "
                                                   f"for {n} channels")
            norms.append((i, False))
        elif kind == "BatchNorm1d" and (flatten is not None or not maps):
            norms.append((i, flatten is not None))
        elif kind == "Flatten":
            flatten = i if maps and flatten is None else flatten
        elif kind in ELEMENTWISE or (kind in POOLS and maps and flatten is None):
            pass
        else:
            raise _refuse(i, config, producer, "which surgery does not know how to pass through "
                                               f"(it knows {ELEMENTWISE + POOLS}, BatchNorm and "
                                               f"Flatten on the way to a Conv2d or Linear)")
        through.append(i)
    raise ValueError(f"layer {producer} ({first['type']}) has no consumer after it: its outputs "
                     f"are the model's outputs, and removing them would change the output shape")


def consumer_reads(masks: Mapping[str, np.ndarray], route: Route, n: int) -> np.ndarray:
    """Which of the producer's n channels the consumer's mask still reads (bool, (n,))."""
    mask = masks.get(f"{route.consumer}.weight")
    if mask is None:
        return np.ones(n, dtype=bool)
    # (O, in[, kh, kw]) -> (in,): is any weight reading input channel / column j kept?
    read = (np.asarray(mask) != 0).any(axis=(0, *range(2, np.ndim(mask))))
    return read.reshape(n, route.spatial).any(axis=1)


# ---------------------------------------- folding: what removed units still send
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

    With ``fold=True`` (the default) surgery computes, in eval mode, the original model with
    the removed units' **weights** zeroed; their constant maps v (``dead_output``) go into the
    consumer's bias (``state[f"{c}.bias"]``):

        b'_o = b_o + Σ_{j ∈ cols(drop)} W_{o,j} v_j        (Linear consumer)
        b'_o = b_o + Σ_{f ∈ drop} Σ_{i,j} W_{o,f,i,j} v_f   (unpadded Conv2d consumer)

    A padded Conv2d consumer (or a padded AvgPool2d on the way) sees the constant only partly
    at the borders, so no bias can stand for it: that, a consumer without a bias or a masked
    bias entry is a ValueError unless v = 0 or the weights reading it are zero. After
    ``mask_units`` there is nothing to fold.
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
