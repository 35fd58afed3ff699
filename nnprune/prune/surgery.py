"""Surgery: remove whole filters and neurons, so the model really shrinks.

A filter-pruned layer still multiplies its zero filters, and the next layer still reads the
channels they leave. Surgery cuts them out of a ``Sequential``: removing output unit f of a
**producer** (a Conv2d filter ``w[f]`` or a Linear neuron, row ``w[f]``) slices

- the producer's weight rows and bias: (F, C, kh, kw) -> (F', C, kh, kw), (F,) -> (F',);
- every BatchNorm on the way (γ, β, running mean and variance): (F,) -> (F',);
- the **consumer**'s input: a Conv2d's channels (O, F, kh, kw) -> (O, F', kh, kw), or, through
  a Flatten, a Linear's columns: channel f owns the OH·OW consecutive columns
  f·OH·OW … (f+1)·OH·OW − 1, so (O, F·OH·OW) -> (O, F'·OH·OW),

carrying any attached masks along (``channel_routes`` says which layers a channel may pass).
Dense MACs fall with it: conv OH·OW·F·C·kh·kw becomes OH·OW·F'·C·kh·kw, and the consumer's
share by F'/F. Li et al. 2017, "Pruning Filters for Efficient ConvNets".

**Exactly what it computes.** The new model is never the input model mutated, and its
outputs equal those of the original with the removed units zeroed, in one of two ways:

- ``fold=True`` (default), in eval mode: the original with the removed units' **weights**
  zeroed. Such a unit still outputs a constant map v (its bias, through BatchNorm with its
  running statistics and the activations), whose contribution goes into the consumer's bias,

      b'_o = b_o + Σ_{j ∈ cols(drop)} W_{o,j} v_j        (Linear consumer)
      b'_o = b_o + Σ_{f ∈ drop} Σ_{i,j} W_{o,f,i,j} v_f   (unpadded Conv2d consumer)

  A padded Conv2d consumer (or a padded AvgPool2d on the way) sees the constant only partly
  at the borders, so no bias can stand for it: that, or a consumer without a bias, is a
  ValueError — unless v = 0 or the consumer's weights that read it are zero.
- ``fold=False``, in any mode: the original with the **consumer's inputs** from the removed
  units zeroed. With affine BatchNorms this is also the original with the removed units'
  weights, biases and BatchNorm γ, β zeroed (their channels are then exactly zero).

When the removed units' biases and γ, β are zero already, the two agree. ``mask_units``
(``units.py``) makes them so and keeps them so: it masks a dead unit's bias and BatchNorm
γ, β with its weights, the unit then outputs exactly 0, nothing is left to fold (padded
consumers included), and the shrunk model equals the masked one in eval and train mode.

>>> import numpy as np
>>> from nnprune import nn
>>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
>>> small = remove_neurons(model, 0, keep=[0, 2])
>>> small[0].weight.shape, small[2].weight.shape, small.config()["layers"][2]["in_features"]
((2, 4), (2, 2), 2)
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping

import numpy as np

from nnprune.nn import Sequential, from_config
from nnprune.prune.apply import model_masks, named_parameters
from nnprune.prune.channel_routes import (Route, columns, dead_output, find_route, layer_configs,
                                          width)
from nnprune.prune.dependency import has_residual
from nnprune.prune.groups import group_scores
from nnprune.prune.masks import check_sparsity, prune_count
from nnprune.prune.surgery_report import SurgeryReport
from nnprune.prune.units import dead_units


def filter_keep(weight: np.ndarray, sparsity: float | None = None, *,
                n_remove: int | None = None, norm: str = "l1") -> np.ndarray:
    """The filters (neurons) to keep: all but the k of lowest norm, as a sorted index array.

    (F, C, kh, kw) or (F, C) -> (F − k,) int. Filter norm S_f = Σ|w_f| ("l1", Li et al. 2017)
    or √Σw_f² ("l2"); k = ⌊sparsity·F + ½⌋ (``prune_count``) or ``n_remove``; ties by index,
    the lower removed first. At least one filter is kept: a sparsity that would remove all F
    removes F − 1, an ``n_remove`` ≥ F is an error.

    >>> filter_keep(np.array([[3.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.5]]), 0.5)
    array([0, 2])
    """
    w = np.asarray(weight)
    if w.ndim < 2 or w.dtype.kind not in "iuf":
        raise ValueError(f"weight must be a numeric (F, C, kh, kw) or (F, C) array, got "
                         f"{w.dtype} of shape {w.shape}")
    n = w.shape[0]
    if (sparsity is None) == (n_remove is None):
        raise TypeError(f"give exactly one of sparsity (a fraction) and n_remove (a count), "
                        f"got sparsity={sparsity!r}, n_remove={n_remove!r}")
    if sparsity is not None:
        k = min(prune_count(n, check_sparsity(sparsity)), n - 1)
    else:
        if isinstance(n_remove, (bool, np.bool_)) or not isinstance(n_remove, numbers.Integral):
            raise TypeError(f"n_remove must be an int, got {n_remove!r}")
        if not 0 <= n_remove < n:
            raise ValueError(f"n_remove must be in [0, {n - 1}] for {n} filters (one stays), "
                             f"got {n_remove}")
        k = int(n_remove)
    scores = group_scores(w.astype(np.float64), "filter", norm)  # (F,)
    drop = np.argsort(scores, kind="stable")[:k]  # lowest first, ties by index
    return np.setdiff1d(np.arange(n), drop)


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


def _fold(configs: list, state: dict, masks: dict, route: Route, drop: np.ndarray) -> None:
    """Add to the consumer's bias what channels ``drop`` (weights zeroed) would send it."""
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


def _cut(configs: list, state: dict, masks: dict, route: Route, keep: np.ndarray,
         fold: bool) -> None:
    """Remove the producer's units not in ``keep`` from the spec and arrays, in place."""
    p, c = route.producer, route.consumer
    drop = np.setdiff1d(np.arange(width(configs[p])), keep)
    if fold and drop.size:
        _fold(configs, state, masks, route, drop)
    # task 4.2: one step of surgery, a layer's units cut out with everything that reads them
    for arrays in (state, masks):
        _slice(arrays, f"{p}.weight", keep, 0)
        _slice(arrays, f"{p}.bias", keep, 0)
        for j, per_column in route.norms:
            idx = columns(keep, route.spatial) if per_column else keep
            for name in ("weight", "bias", "running_mean", "running_var"):
                _slice(arrays, f"{j}.{name}", idx, 0)
        inputs = keep if configs[c]["type"] == "Conv2d" else columns(keep, route.spatial)
        _slice(arrays, f"{c}.weight", inputs, 1)
    configs[p]["out_channels" if configs[p]["type"] == "Conv2d" else "out_features"] = keep.size
    for j, per_column in route.norms:
        configs[j]["num_features"] = keep.size * (route.spatial if per_column else 1)
    if configs[c]["type"] == "Conv2d":
        configs[c]["in_channels"] = keep.size
    else:
        configs[c]["in_features"] = keep.size * route.spatial
    # end task


def _build(model: Any, configs: list, state: dict, masks: dict) -> Sequential:
    """A fresh Sequential from the edited spec, with the edited arrays and masks."""
    new = from_config({"type": "Sequential", "layers": configs})
    new.load_state_dict(state)
    params = dict(new.named_parameters())
    for name, mask in masks.items():
        params[name].set_mask(mask)
    return new.train(bool(model.training))


def _check_fold(fold: Any) -> bool:
    if not isinstance(fold, (bool, np.bool_)):
        raise TypeError(f"fold must be a bool, got {fold!r}")
    return bool(fold)


def _remove(model: Any, layer: int | str, keep: Any, fold: bool, kind: str) -> Sequential:
    fold = _check_fold(fold)
    configs = layer_configs(model)
    index = _index(configs, layer)
    if configs[index]["type"] != kind:
        raise ValueError(f"layer {layer!r} is a {configs[index]['type']}, not a {kind}")
    route = find_route(configs, index)
    keep = _check_keep(keep, width(configs[index]), index)
    state, masks = model.state_dict(), model_masks(model)
    _cut(configs, state, masks, route, keep, fold)
    return _build(model, configs, state, masks)


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
    producers = [i for i, c in enumerate(configs) if c["type"] in ("Conv2d", "Linear")]
    names = [f"{i}.weight" for i in producers[:-1]]  # the output layer keeps all its units
    if isinstance(sparsity, Mapping):
        for name in sparsity:
            if name not in names:
                raise ValueError(f"sparsity names {name!r}, which is not the weight of a Conv2d "
                                 f"or Linear before the output layer")
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

    A producer's unit f goes when its mask group ``mask[f]`` is all zero, or when the
    consumer's mask reads nothing from it (every column of channel f zero, e.g. after channel
    pruning): the units of ``dead_units``. ``masks`` defaults to the masks attached to the
    model; only which groups are all zero is read from them. Alternatively ``sparsity`` (one
    fraction, or {weight name: fraction}) removes by ``filter_keep``'s norm instead. Every
    layer keeps at least one unit; the output layer keeps all. ``fold``: see the module
    docstring; after ``mask_units`` there is nothing to fold and the result is exact.

    A model with Residual blocks is cut by channel group (``group_surgery.shrink_groups``:
    channels tied by a skip connection go together, only once ``mask_units`` silenced them).
    """
    if has_residual(model):
        if sparsity is not None:
            raise TypeError("a model with Residual blocks is shrunk from its masks: prune it "
                            "with prune_model(granularity='filter'), call mask_units, then "
                            "shrink without sparsity")
        from nnprune.prune.group_surgery import shrink_groups

        return shrink_groups(model, input_shape, masks)
    configs, fold = layer_configs(model), _check_fold(fold)
    if masks is not None and sparsity is not None:
        raise TypeError("give masks or sparsity, not both")
    drops = dead_units(model, masks) if sparsity is None else _norm_drops(model, configs,
                                                                          sparsity, norm)
    keeps = {}
    for layer, drop in drops.items():
        i = int(layer)
        keep = np.setdiff1d(np.arange(width(configs[i])), drop)
        keeps[i] = (find_route(configs, i), keep if keep.size else np.array([0]))  # one stays
    state, attached = model.state_dict(), model_masks(model)
    for i, (route, keep) in keeps.items():
        _cut(configs, state, attached, route, keep, fold)
    small = _build(model, configs, state, attached)
    report = SurgeryReport.compare(model, small, input_shape,
                                   {str(i): keep for i, (_, keep) in keeps.items()})
    return small, report
