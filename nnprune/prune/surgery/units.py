"""Whole units: which filters or neurons go, and masking them so they output exactly 0.

A unit whose weight row ``w[f]`` is masked still emits a constant (its bias b_f, through a
BatchNorm y = γ (x − μ)/√(σ² + eps) + β), which surgery would have to fold into the
consumer's bias (``fold_into_consumer``). ``mask_units`` silences every **dead** unit f
whole instead: ``w[f]``, ``b_f`` and γ_f, β_f of each affine BatchNorm on the way (after a
Flatten: the H'·W' features of channel f), or μ_f = 0 for a BatchNorm without γ, β. Then
channel f is exactly 0 where the consumer reads it, in evaluation and in training:

- affine BatchNorm: y_f = 0 · x̂_f + 0 = 0 whatever the statistics;
- BatchNorm without γ, β: x_f = 0, so y_f = (0 − μ_f)/√(σ²_f + eps) = 0 with μ_f = 0;
  training normalises with the batch mean of zeros, 0, and the update
  μ_f ← (1 − m) μ_f + m · 0 keeps μ_f at 0;
- ReLU(0) = tanh(0) = 0; dropout and pooling (zero-padded or not) keep zeros zero.

So ``shrink`` drops terms that are exactly zero: its model equals the masked one up to
summation-order rounding, padded convolutions included. The optimizers re-apply the masks,
so fine-tuning cannot revive a unit. The output layer's units, the outputs, are left alone.

>>> import numpy as np
>>> from nnprune import nn
>>> from nnprune.prune.apply import attach_masks
>>> model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=0), nn.BatchNorm2d(3), nn.ReLU(),
...                       nn.Conv2d(3, 2, 3, padding=1, rng=1))
>>> mask = np.ones((3, 1, 3, 3)); mask[1] = 0
>>> attach_masks(model, {"0.weight": mask})
>>> mask_units(model)
{'0': array([1])}
>>> model[0].bias.mask.tolist(), model[1].weight.mask.tolist(), model[1].bias.mask.tolist()
([1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.checks import check_mapping
from nnprune.nn import Sequential
from nnprune.prune.apply import attach_masks, model_masks, named_parameters
from nnprune.prune.granularity import Granularity
from nnprune.prune.groups import group_alive, group_scores
from nnprune.prune.masks import check_mask, check_sparsity, prune_count, ranked_prune
from nnprune.prune.surgery.dependency import ChannelGroup, has_residual, prunable_groups
from nnprune.prune.surgery.routes import (columns, consumer_reads, find_route, hidden_producers,
                                          layer_configs, width)

FILTER = Granularity("filter")  # a unit of a producer: its weight row w[f], parsed once


def filter_keep(weight: np.ndarray, sparsity: float | None = None, *,
                n_remove: int | None = None, norm: str = "l1") -> np.ndarray:
    """The filters (neurons) to keep: all but the k of lowest norm, as a sorted index array.

    (F, C, kh, kw) or (F, C) -> (F − k,) int. Filter norm S_f = Σ|w_f| ("l1", Li et al. 2017)
    or √Σw_f² ("l2"); k = ⌊sparsity·F + ½⌋ or ``n_remove``, ranked as every granularity is
    (``ranked_prune``: lowest first, ties by index). At least one filter is kept: a sparsity
    that would remove all F removes F − 1, an ``n_remove`` ≥ F is an error.

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
    scores = group_scores(w.astype(np.float64), FILTER, norm)  # (F,)
    return np.flatnonzero(~ranked_prune(scores, np.ones(n, bool), k))


def dead_units(model: Sequential,
               masks: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The units ``shrink`` removes: {producer layer name: (d,) sorted dead indices}.

    Unit f of a Conv2d or Linear (not the output layer) is dead when its weight row ``mask[f]``
    is all zero, or when its consumer's mask reads none of its columns (``consumer_reads``).
    ``masks`` defaults to the attached ones. A dead unit whose outputs cannot be followed to a
    consumer (``find_route``) is a ValueError.
    """
    configs = layer_configs(model)
    masks = model_masks(model) if masks is None else masks
    check_mapping(masks, "masks", "name -> 0/1 array")
    params = named_parameters(model)
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks names {name!r}, which is not a parameter of the model")
        check_mask(mask, tuple(params[name].shape), f"masks[{name!r}]")
    dead = {}
    for i in hidden_producers(configs):
        name, n = f"{i}.weight", width(configs[i])
        alive = group_alive(masks[name], FILTER) if name in masks else np.ones(n, bool)
        try:
            route = find_route(configs, i)
        except ValueError:
            if alive.all():
                continue  # nothing dead here, so nothing to follow
            raise
        alive &= consumer_reads(masks, route, n)
        if not alive.all():
            dead[str(i)] = np.flatnonzero(~alive)
    return dead


def _off(shape: tuple[int, ...], idx: np.ndarray) -> np.ndarray:
    """A 0/1 mask of ``shape``, zero on the rows ``idx``."""
    mask = np.ones(shape)
    mask[idx] = 0
    return mask


def _silence(model: Any, producers: Sequence[str], norms: Sequence[tuple[str, int]],
             drop: np.ndarray) -> dict[str, np.ndarray]:
    """Masks zero on units ``drop`` of the ``producers`` (weight rows, bias entries) and on
    their features of the ``norms`` ((name, features per unit): γ, β); a BatchNorm without
    γ, β gets its running mean set to 0 there, in place (see the module docstring)."""
    modules, params = dict(model.named_modules()), named_parameters(model)
    masks = {}
    for p in producers:
        for name in (f"{p}.weight", f"{p}.bias"):
            if name in params:
                masks[name] = _off(tuple(params[name].shape), drop)
    for n, spatial in norms:
        idx = columns(drop, spatial)
        if modules[n].weight is None:  # no γ, β: a zero input must be normalised by a zero mean
            modules[n].running_mean[idx] = 0
        else:
            for name in (f"{n}.weight", f"{n}.bias"):
                masks[name] = _off(tuple(params[name].shape), idx)
    return masks


def mask_units(model: Sequential) -> dict[str, np.ndarray]:
    """Mask every dead unit whole: weight row, bias, BatchNorm γ and β (see the module doc).

    Returns {producer layer name: (d,) dead indices}. Once a consumer's dead rows are masked
    it may read nothing from a producer's channel, which is then dead too, so ``dead_units``
    is repeated until nothing changes. The new masks are composed with the attached ones.
    Running means are buffers, not masks: after ``lottery.rewind`` or ``load_state_dict``
    call it again (calling it again changes nothing). A model with Residual blocks is
    handled by channel group (``mask_group_units``, keyed by group name).
    """
    if has_residual(model):
        return mask_group_units(model)
    configs = layer_configs(model)
    masks, dead = model_masks(model), {}
    while True:  # each round can only add dead units: it ends within one round per layer
        found = dead_units(model, masks)
        if sum(map(len, found.values())) == sum(map(len, dead.values())):
            break  # none added
        dead = found
        for layer, drop in dead.items():
            route = find_route(configs, int(layer))
            for name, off in _silence(model, [layer], route.batch_norms, drop).items():
                masks[name] = masks.get(name, 1) * off
    attach_masks(model, masks)
    return dead


# ---------------------------------------------------------------- channel groups (Residual)
def group_alive_of(model: Any, group: ChannelGroup,
                   masks: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """(width,) bool: channel c is alive while any producer still keeps a weight of filter c."""
    masks = model_masks(model) if masks is None else masks
    alive = np.zeros(group.width, bool)
    for p in group.producers:
        mask = masks.get(f"{p}.weight")
        alive |= np.ones(group.width, bool) if mask is None else group_alive(mask, FILTER)
    return alive


def group_keep_masks(model: Any, group: ChannelGroup, keep: np.ndarray) -> dict[str, np.ndarray]:
    """{producer weight name: mask} zero on the filters ``keep`` (bool (width,)) drops."""
    params, drop = named_parameters(model), np.flatnonzero(~np.asarray(keep, bool))
    return {f"{p}.weight": _off(tuple(params[f"{p}.weight"].shape), drop)
            for p in group.producers}


def mask_group_units(model: Any) -> dict[str, np.ndarray]:
    """``mask_units`` by channel group: a channel whose every producer filter is masked is
    silenced whole (``_silence``: the producers' bias entries, the BatchNorms' γ_c, β_c), so
    it is exactly 0 wherever it is read. Returns {group name: (d,) dead channel indices}."""
    dead, silenced = {}, {}
    for g in prunable_groups(model):
        drop = np.flatnonzero(~group_alive_of(model, g))
        if drop.size:
            dead[g.name] = drop
            silenced.update(_silence(model, g.producers, [(n, 1) for n in g.norms], drop))
    attach_masks(model, silenced)
    return dead
