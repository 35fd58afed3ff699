"""Scope: the mask rules of ``masks.py`` over a dict of named tensors, layer-wise (each to
its own k) or global (one ranking, ``min_keep`` per layer so none is emptied); each returns
``(masks, PruneReport)``.

>>> scores = {"fc1": np.array([0.1, 0.2, 0.3, 0.4]), "fc2": np.array([5.0, 6.0])}
>>> masks, report = global_topk_masks(scores, 0.5)       # k = 3 of 6: all from fc1
>>> masks["fc1"], masks["fc2"], report.per_layer
(array([0., 0., 0., 1.]), array([1., 1.]), {'fc1': 0.75, 'fc2': 0.0})
>>> masks, _ = global_topk_masks(scores, 1.0)            # min_keep=1: each keeps its best
>>> masks["fc1"], masks["fc2"]
(array([0., 0., 0., 1.]), array([0., 1.]))
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from nnprune.checks import check_choice, check_int, check_mapping
from nnprune.prune.granularity import WEIGHT, Granularity, as_granularity
from nnprune.prune.groups import (REDUCTIONS, expand_group_mask, group_alive, group_scores,
                                  group_topk)
from nnprune.prune.masks import (check_mask, check_real, check_rounding, check_scores,
                                 check_sparsity, count, ranked_prune, threshold_mask)
from nnprune.prune.report import PruneReport


def _prepare(scores, masks, exclude):
    """Validated (scores, existing masks, excluded names) for the dict-level functions."""
    check_mapping(scores, "scores", "name -> array")
    if not scores:
        raise ValueError("scores is empty: give at least one tensor")
    for name in scores:
        if not isinstance(name, str):
            raise TypeError(f"scores must be keyed by str names, got {name!r}")
    masks = {} if masks is None else check_mapping(masks, "masks", "name -> 0/1 array")
    exclude = () if exclude is None else (exclude,) if isinstance(exclude, str) else tuple(exclude)
    for what, names in (("masks", list(masks)), ("exclude", list(exclude))):
        for name in names:
            if name not in scores:
                raise ValueError(f"unknown layer name {name!r} in {what}; the layers are "
                                 f"{list(scores)}")
    arrays = {name: check_scores(s, f"scores[{name!r}]") for name, s in scores.items()}
    olds = {name: check_mask(masks.get(name), s.shape, f"masks[{name!r}]", s.dtype)
            for name, s in arrays.items()}
    return arrays, olds, exclude


def _for_layer(name, function, *args):
    """``function(*args)``, its error message prefixed with the layer's name."""
    try:
        return function(*args)
    except (TypeError, ValueError) as err:
        raise type(err)(f"layer {name!r}: {err}") from None


def layerwise_topk_masks(scores: Mapping[str, np.ndarray],
                         sparsity: float | Mapping[str, float] | None,
                         masks: Mapping[str, np.ndarray] | None = None,
                         exclude: Iterable[str] = (), granularity: str = WEIGHT,
                         reduce: str = "l1", *,
                         rounding: str = "half_up") -> tuple[dict[str, np.ndarray], PruneReport]:
    """Prune every tensor to its own sparsity: k = ⌊s · n + ½⌋ per tensor (per group count).

    {name: (shape)} -> ({name: (shape) mask}, PruneReport).

    ``sparsity``: one float for all, or {name: float}; a name absent from the dict (or in
    ``exclude``) keeps its existing mask and is reported as excluded. ``granularity`` and
    ``reduce`` as in ``groups.granularity_mask``.
    """
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    g = as_granularity(granularity)
    if isinstance(sparsity, Mapping):
        for name in sparsity:
            if name not in arrays:
                raise ValueError(f"unknown layer name {name!r} in sparsity; the layers are "
                                 f"{list(arrays)}")
            if name in exclude:
                raise ValueError(f"layer {name!r} is both excluded and given a sparsity")
        targets = {name: _for_layer(name, check_sparsity, s) for name, s in sparsity.items()}
        target = None
    else:
        target = g.target(sparsity)
        targets = {name: target for name in arrays if name not in exclude}
    out = layer_topk(arrays, olds, targets, g, check_choice(reduce, "reduce", REDUCTIONS),
                     check_rounding(rounding))
    return out, PruneReport.from_masks(out, [n for n in arrays if n not in targets], target)


def layer_topk(arrays: Mapping[str, np.ndarray], olds: Mapping[str, np.ndarray],
               targets: Mapping[str, float], g: Granularity, reduce: str,
               rounding: str) -> dict[str, np.ndarray]:
    """``layerwise_topk_masks`` of arguments already checked: {name: float scores},
    {name: existing 0./1. mask}, {name: sparsity} of the tensors pruned (the others keep
    their mask), a parsed granularity. Errors of one tensor name it."""
    return {name: olds[name] if name not in targets else _for_layer(
        name, group_topk, s, targets[name], g, olds[name], reduce, rounding)
        for name, s in arrays.items()}


def global_topk_masks(scores: Mapping[str, np.ndarray], sparsity: float | None,
                      masks: Mapping[str, np.ndarray] | None = None,
                      exclude: Iterable[str] = (), min_keep: int = 1,
                      granularity: str = WEIGHT,
                      reduce: str = "l1", *,
                      rounding: str = "half_up") -> tuple[dict[str, np.ndarray], PruneReport]:
    """One ranking across every non-excluded tensor: prune k = ⌊s · N + ½⌋ of all N entries.

    {name: (shape)} -> ({name: (shape) mask}, PruneReport).

    The tensors are ranked as if concatenated flat in mapping order: dead entries (0 in
    ``masks``) first, then by score, ties by position. Each tensor's ``min_keep`` best alive
    entries are kept out of the ranking, so fewer than k may be pruned (the report says so).

    Excluded tensors keep their existing mask (all ones if none) and are outside N and k.
    With groups (``groups.py``) N, k and ``min_keep`` count groups; with "N:M" every group of
    M is its own ranking, so global and layer-wise coincide (``min_keep`` is not used).
    """
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    min_keep = check_int(min_keep, "min_keep (entries kept per layer)", 0)
    g = as_granularity(granularity)
    s = g.target(sparsity)
    reduce, rounding = check_choice(reduce, "reduce", REDUCTIONS), check_rounding(rounding)
    names = [name for name in arrays if name not in exclude]
    if g.is_nm:
        out = layer_topk(arrays, olds, {name: s for name in names}, g, reduce, rounding)
    else:
        out = global_topk(arrays, olds, names, s, g, reduce, rounding, min_keep)
    return out, PruneReport.from_masks(out, exclude, s)


def _ranked_groups(scores: np.ndarray, old: np.ndarray, g: Granularity, reduce: str,
                   min_keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tensor's flat (group scores, alive, protected): pruned entries contribute nothing
    to a group's score, and its ``min_keep`` best alive groups are protected."""
    gs = group_scores(scores * old, g, reduce).ravel()
    alive = group_alive(old, g).ravel()
    # this tensor's own ranking; its last min_keep alive entries are its best ones
    own = np.lexsort((np.arange(gs.size), gs, alive))
    protected = np.zeros(gs.size, bool)
    protected[own[gs.size - min(min_keep, int(alive.sum())):]] = True
    return gs, alive, protected


def global_topk(arrays: Mapping[str, np.ndarray], olds: Mapping[str, np.ndarray],
                names: list[str], sparsity: float, g: Granularity, reduce: str, rounding: str,
                min_keep: int) -> dict[str, np.ndarray]:
    """``global_topk_masks`` of arguments already checked (``layer_topk``'s, with ``names``
    the tensors ranked together and a granularity that is not N:M)."""
    # task 2.3: one top-k ranking across layers, min_keep per layer (needs 2.1)
    ranked = {name: _for_layer(name, _ranked_groups, arrays[name], olds[name], g, reduce,
                               min_keep) for name in names}
    out = dict(olds)
    if names:
        all_scores = np.concatenate([ranked[n][0] for n in names]).astype(np.float64)
        pruned = ranked_prune(all_scores, np.concatenate([ranked[n][1] for n in names]),
                              count(all_scores.size, sparsity, rounding),
                              np.concatenate([ranked[n][2] for n in names]))
        start = 0
        for name in names:
            shape = np.shape(group_alive(olds[name], g))
            size = int(np.prod(shape))
            keep_groups = ~pruned[start:start + size].reshape(shape)
            start += size
            keep = expand_group_mask(keep_groups, arrays[name].shape, g)
            out[name] = keep.astype(olds[name].dtype) * olds[name]
    # end task
    return out


def global_threshold_masks(scores: Mapping[str, np.ndarray], threshold: float,
                           masks: Mapping[str, np.ndarray] | None = None,
                           exclude: Iterable[str] = ()) -> tuple[dict[str, np.ndarray],
                                                                  PruneReport]:
    """``threshold_mask`` with one threshold on every non-excluded tensor.

    {name: (shape)} -> ({name: (shape) mask}, PruneReport). The sparsity reached depends on
    the scores; the report says what it is. Excluded tensors keep their existing mask.
    """
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    t = check_real(threshold, "threshold")
    out = {name: olds[name] if name in exclude else threshold_mask(s, t, olds[name])
           for name, s in arrays.items()}
    return out, PruneReport.from_masks(out, exclude)
