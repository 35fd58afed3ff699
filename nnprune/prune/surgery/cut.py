"""Cutting: whole filters and neurons removed, so the model really shrinks.

Removing output unit f of a **producer** (a Conv2d filter ``w[f]`` or a Linear neuron, row
``w[f]``) slices

- the producer's weight rows and bias: (F, C, kh, kw) -> (F', C, kh, kw), (F,) -> (F',);
- every BatchNorm on the way (γ, β, running mean and variance): (F,) -> (F',);
- the **consumer**'s input: a Conv2d's channels (O, F, kh, kw) -> (O, F', kh, kw), or through
  a Flatten a Linear's OH·OW columns per channel (``columns``): (O, F·OH·OW) -> (O, F'·OH·OW),

carrying any attached masks along, for one producer of a chain (its ``routes``) or a whole
channel group of a Residual model (``dependency``). Dense MACs fall by F'/F in the producer
and the consumer (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

The input model is never changed. The new one computes the original with the removed units'
weights zeroed (``fold=True``, eval mode: what they still send is folded into the consumer's
bias) or with the consumer's inputs from them zeroed (``fold=False``, any mode); after
``mask_units`` both equal the masked model.

>>> import numpy as np
>>> from nnprune import nn
>>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
>>> small = remove_neurons(model, 0, keep=[0, 2])
>>> small[0].weight.shape, small[2].weight.shape, small.config()["layers"][2]["in_features"]
((2, 4), (2, 2), 2)
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.checks import check_bool, check_known
from nnprune.nn import Sequential, from_config
from nnprune.prune.apply import model_masks, named_parameters
from nnprune.prune.surgery.dependency import ChannelGroup, has_residual, prunable_groups
from nnprune.prune.surgery.report import SurgeryReport
from nnprune.prune.surgery.routes import (Route, columns, find_route, fold_into_consumer,
                                          hidden_producers, layer_configs, width)
from nnprune.prune.surgery.units import dead_units, filter_keep, group_alive_of


# ---------------------------------------------------------------------- the model as arrays
def _index(configs: list[dict[str, Any]], layer: int | str) -> int:
    """The position of ``layer``, given as an index (negative counts from the end) or a name."""
    n = len(configs)
    if isinstance(layer, str) and layer.lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, numbers.Integral):
        raise TypeError(f"layer must be an index or a layer name like '2', got {layer!r}")
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} is out of range for a Sequential of {n} layers")
    return int(layer) % n


def _check_keep(keep: Any, n: int, index: int) -> np.ndarray:
    """``keep`` as a sorted, duplicate-free, non-empty int array within [0, n)."""
    arr = np.asarray(keep)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"keep must be a 1-D array of int indices, got {arr.dtype} of shape "
                         f"{arr.shape}")
    if arr.size == 0:
        raise ValueError(f"keep is empty: layer {index} must keep at least one of its {n} units")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"keep must hold indices in [0, {n - 1}] for layer {index}'s {n} "
                         f"units, got {arr.min()}..{arr.max()}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"keep must be sorted and without duplicates, got {arr.tolist()}")
    return arr.astype(np.intp)


def _slice(arrays: dict[str, np.ndarray], name: str, idx: np.ndarray, axis: int) -> None:
    if name in arrays:
        arrays[name] = np.take(arrays[name], idx, axis=axis)


def _config_at(config: dict, prefix: str) -> dict:
    """The config dict of the module at dotted ``prefix`` ("3", "1.body.0") in a model config."""
    node = config
    for part in prefix.split("."):
        node = node["layers"][int(part)] if node["type"] == "Sequential" else node[part]
    return node


def _cut(config: dict, state: dict, masks: dict, producers: Sequence[str],
         norms: Sequence[tuple[str, int]], consumers: Sequence[tuple[str, int]],
         keep: np.ndarray) -> None:
    """Keep only units ``keep`` of the ``producers`` in the model ``config`` and its arrays
    (``state`` and ``masks``, by dotted name), in place.

    ``norms``: (name, spatial) of each BatchNorm on the way, ``spatial`` features per unit
    (H'·W' for a BatchNorm1d after a Flatten, else 1); ``consumers``: (name, spatial) of each
    layer reading the units, ``spatial`` input columns per unit (H'·W' through a Flatten).
    """
    # task 4.2: one step of surgery, a layer's units cut out with everything that reads them
    for arrays in (state, masks):
        for p in producers:
            _slice(arrays, f"{p}.weight", keep, 0)
            _slice(arrays, f"{p}.bias", keep, 0)
        for n, spatial in norms:
            for name in ("weight", "bias", "running_mean", "running_var"):
                _slice(arrays, f"{n}.{name}", columns(keep, spatial), 0)
        for c, spatial in consumers:
            _slice(arrays, f"{c}.weight", columns(keep, spatial), 1)
    for p in producers:
        node = _config_at(config, p)
        node["out_channels" if node["type"] == "Conv2d" else "out_features"] = keep.size
    for n, spatial in norms:
        _config_at(config, n)["num_features"] = keep.size * spatial
    for c, spatial in consumers:
        node = _config_at(config, c)
        node["in_channels" if node["type"] == "Conv2d" else "in_features"] = keep.size * spatial
    # end task


def _cut_route(config: dict, state: dict, masks: dict, route: Route, keep: np.ndarray,
               fold: bool) -> None:
    """``_cut`` of a chain's producer along its ``route``, what it drops folded in first."""
    configs = config["layers"]
    drop = np.setdiff1d(np.arange(width(configs[route.producer])), keep)
    if fold and drop.size:
        fold_into_consumer(configs, state, masks, route, drop)
    consumers = [(str(route.consumer), route.spatial)]
    _cut(config, state, masks, [str(route.producer)], route.batch_norms, consumers, keep)


def _build(model: Any, config: dict, state: dict, masks: dict) -> Sequential:
    """A fresh Sequential from the edited spec, with the edited arrays and masks."""
    new = from_config(config)
    new.load_state_dict(state)
    params = dict(new.named_parameters())
    for name, mask in masks.items():
        params[name].set_mask(mask)
    return new.train(bool(model.training))


def _remove(model: Any, layer: int | str, keep: Any, fold: bool, kind: str) -> Sequential:
    fold = check_bool(fold, "fold")
    configs = layer_configs(model)
    index = _index(configs, layer)
    if configs[index]["type"] != kind:
        raise ValueError(f"layer {layer!r} is a {configs[index]['type']}, not a {kind}")
    route = find_route(configs, index)
    keep = _check_keep(keep, width(configs[index]), index)
    config = {"type": "Sequential", "layers": configs}
    state, masks = model.state_dict(), model_masks(model)
    _cut_route(config, state, masks, route, keep, fold)
    return _build(model, config, state, masks)


def remove_filters(model: Sequential, layer: int | str, keep: Any, *,
                   fold: bool = True) -> Sequential:
    """A new model whose Conv2d ``layer`` keeps only filters ``keep`` (sorted indices).

    (F, C, kh, kw) -> (F', C, kh, kw) with F' = len(keep); the following BatchNorm2d and the
    consumer's input (a Conv2d's channels or a Linear's OH·OW columns per channel) shrink
    with it. ``fold``: see the module docstring. The input model is not changed.
    """
    return _remove(model, layer, keep, fold, "Conv2d")


def remove_neurons(model: Sequential, layer: int | str, keep: Any, *,
                   fold: bool = True) -> Sequential:
    """A new model whose Linear ``layer`` keeps only neurons ``keep`` (sorted indices).

    (O, I) -> (O', I) with O' = len(keep); a BatchNorm1d on the way and the next Linear's
    columns (its (·, O) -> (·, O')) shrink with it. ``fold``: see the module docstring.
    """
    return _remove(model, layer, keep, fold, "Linear")


def _norm_drops(model: Any, configs: list, sparsity: Any, norm: str) -> dict[str, np.ndarray]:
    """{layer: the units ``filter_keep`` leaves out} of each weight ``sparsity`` names (or all,
    the output layer excepted)."""
    params = named_parameters(model)
    names = [f"{i}.weight" for i in hidden_producers(configs)]
    if isinstance(sparsity, Mapping):
        check_known(sparsity, names, "sparsity", "the weight of a Conv2d or Linear before the "
                    "output layer", "those weights")
    drops = {}
    for name in names:
        target = sparsity.get(name) if isinstance(sparsity, Mapping) else sparsity
        if target is not None:
            w = params[name].data
            drop = np.setdiff1d(np.arange(w.shape[0]), filter_keep(w, target, norm=norm))
            if drop.size:
                drops[name.split(".")[0]] = drop
    return drops


def shrink(model: Sequential, input_shape: tuple[int, ...],
           masks: Mapping[str, np.ndarray] | None = None, *,
           sparsity: float | Mapping[str, float] | None = None, norm: str = "l1",
           fold: bool = True) -> tuple[Sequential, SurgeryReport]:
    """Turn structured masks into a smaller dense model: remove every dead filter and neuron.

    {name: (F, ...) mask} -> a new Sequential and a ``SurgeryReport`` (params and dense MACs
    per image of ``input_shape`` (C, H, W) before and after, widths, the kept indices).

    The units removed are those of ``dead_units(model, masks)`` (``masks`` defaults to the
    attached ones) or, given ``sparsity`` (one fraction, or {weight name: fraction}), the
    lowest-norm ones of ``filter_keep``. Every layer keeps at least one unit; the output layer
    keeps all. ``fold``: see the module docstring; after ``mask_units`` there is nothing to
    fold and the result is exact. A model with Residual blocks is cut by channel group
    (``shrink_groups``, once ``mask_units`` silenced them).
    """
    if has_residual(model):
        if sparsity is not None:
            raise TypeError("a model with Residual blocks is shrunk from its masks: prune it "
                            "with prune_model(granularity='filter'), call mask_units, then "
                            "shrink without sparsity")
        return shrink_groups(model, input_shape, masks)
    configs, fold = layer_configs(model), check_bool(fold, "fold")
    if masks is not None and sparsity is not None:
        raise TypeError("give masks or sparsity, not both")
    drops = dead_units(model, masks) if sparsity is None else _norm_drops(model, configs,
                                                                          sparsity, norm)
    keeps = {}
    for layer, drop in drops.items():
        keep = np.setdiff1d(np.arange(width(configs[int(layer)])), drop)
        keeps[layer] = keep if keep.size else np.array([0])  # one unit stays
    config = {"type": "Sequential", "layers": configs}
    state, attached = model.state_dict(), model_masks(model)
    for layer, keep in keeps.items():
        _cut_route(config, state, attached, find_route(configs, int(layer)), keep, fold)
    small = _build(model, config, state, attached)
    return small, SurgeryReport.compare(model, small, input_shape, keeps)


# ---------------------------------------------------------------- channel groups (Residual)
def _silent(state: Mapping[str, np.ndarray], config: dict, g: ChannelGroup,
            drop: np.ndarray) -> bool:
    """Whether channels ``drop`` of ``g`` output exactly 0 (weights, biases, γ and β zero)."""
    names = [f"{p}.{k}" for p in g.producers for k in ("weight", "bias")]
    for n in g.norms:
        names += [f"{n}.{k}" for k in (("weight", "bias") if _config_at(config, n)["affine"]
                                       else ("running_mean",))]
    return not any(np.any(state[name][drop]) for name in names if name in state)


def shrink_groups(model: Any, input_shape: tuple[int, ...],
                  masks: Mapping[str, np.ndarray] | None = None
                  ) -> tuple[Any, SurgeryReport]:
    """A new model without the dead channels of every prunable group, and the SurgeryReport.

    A channel is dead when every producer's filter for it is masked (``masks``, default the
    attached ones); one channel of each group stays. Dead channels not yet silenced
    (``mask_units``) are a ValueError naming the group; silenced, the result equals the
    masked model in eval and train mode.
    """
    masks = model_masks(model) if masks is None else dict(masks)
    config, state, attached = model.config(), model.state_dict(), model_masks(model)
    keeps = {}
    for g in prunable_groups(model):
        alive = group_alive_of(model, g, masks)
        keep = np.flatnonzero(alive) if alive.any() else np.array([0])
        drop = np.setdiff1d(np.arange(g.width), keep)
        if not drop.size:
            continue
        if not _silent(state, config, g, drop):
            raise ValueError(f"channels {drop.tolist()} of the group of {', '.join(g.producers)} "
                             f"still output non-zero values (a bias or BatchNorm β): mask the "
                             f"whole units first (mask_units), then shrink")
        keeps[g.name] = keep
        _cut(config, state, attached, g.producers, [(n, 1) for n in g.norms], g.consumers, keep)
    small = _build(model, config, state, attached)
    return small, SurgeryReport.compare(model, small, input_shape, keeps)
