"""Scope: one sparsity per tensor (layer-wise) or one ranking across all tensors (global).

Both take ``scores`` as a mapping name -> array and return ``(masks, report)``: a mask for
every name (all ones, or the existing mask, for an excluded name) and the PruneReport of the
sparsity reached. Global scope never empties a layer: the ``min_keep`` highest-scoring
entries (groups) of each layer are protected, and k is met from the rest when possible.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from nnprune.prune.groups import expand_group_mask, granularity_mask, group_scores, parse_granularity, reduced_axes
from nnprune.prune.masks import _ranked_prune, check_mask, check_scores, check_sparsity, prune_count
from nnprune.prune.report import PruneReport


def _prepare(scores, masks, exclude):
    if not isinstance(scores, Mapping) or not scores:
        raise TypeError("scores must be a non-empty mapping of name -> array")
    masks = {} if masks is None else dict(masks)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    for name in list(masks) + list(exclude):
        if name not in scores:
            raise ValueError(f"unknown layer name {name!r}; the layers are {sorted(scores)}")
    arrays = {k: check_scores(v, f"scores[{k!r}]") for k, v in scores.items()}
    olds = {k: check_mask(masks.get(k), arrays[k].shape, f"masks[{k!r}]") for k in arrays}
    return arrays, olds, exclude


def layerwise_topk_masks(scores: Mapping[str, np.ndarray], sparsity: float | Mapping[str, float],
                         masks: Mapping[str, np.ndarray] | None = None, exclude: Iterable[str] = (),
                         granularity: str = "weight", reduce: str = "l1"):
    """Each tensor pruned to its own sparsity (a float for all, or a dict name -> sparsity)."""
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    if isinstance(sparsity, Mapping):
        for name in sparsity:
            if name not in arrays:
                raise ValueError(f"unknown layer name {name!r} in sparsity; the layers are {sorted(arrays)}")
        targets = {k: sparsity.get(k) for k in arrays}
    else:
        targets = {k: sparsity for k in arrays}
    nm = isinstance(parse_granularity(granularity), tuple)
    out = {}
    for name, s in arrays.items():
        if name in exclude or (targets[name] is None and not nm):
            out[name] = olds[name]
            continue
        out[name] = granularity_mask(s, None if nm else check_sparsity(targets[name]),
                                     granularity, olds[name], reduce)
    return out, PruneReport.from_masks(out, exclude)


def global_topk_masks(scores: Mapping[str, np.ndarray], sparsity: float,
                      masks: Mapping[str, np.ndarray] | None = None, exclude: Iterable[str] = (),
                      min_keep: int = 1, granularity: str = "weight", reduce: str = "l1"):
    """One ranking across every non-excluded tensor: k = ⌊sparsity·N + ½⌋ of the N entries (or
    groups) with the lowest scores are pruned, ties by position in the concatenation (tensors
    in mapping order). Each tensor keeps at least ``min_keep`` entries (groups): its best ones.
    """
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    g = parse_granularity(granularity)
    if isinstance(g, tuple):  # N:M is per group of m: global and layer-wise coincide
        return layerwise_topk_masks(scores, 1 - g[0] / g[1], masks, exclude, granularity)
    check_sparsity(sparsity)
    if isinstance(min_keep, bool) or not isinstance(min_keep, int) or min_keep < 0:
        raise ValueError(f"min_keep must be a non-negative int, got {min_keep!r}")
    names = [k for k in arrays if k not in exclude]
    flat_scores, flat_alive, flat_protect, sizes = [], [], [], []
    for name in names:
        axes = reduced_axes(arrays[name].shape, g)
        gs = group_scores(arrays[name], g, reduce).ravel().astype(np.float64)
        alive = (olds[name].any(axis=axes) if axes else olds[name] != 0).ravel()
        protect = np.zeros(gs.size, bool)
        best = np.flatnonzero(alive)[np.argsort(-gs[alive], kind="stable")][:min_keep]
        protect[best] = True
        flat_scores.append(gs), flat_alive.append(alive), flat_protect.append(protect)
        sizes.append(gs.size)
    out = {k: olds[k] for k in arrays}
    if names:
        total = sum(sizes)
        pruned = _ranked_prune(np.concatenate(flat_scores), np.concatenate(flat_alive),
                               prune_count(total, sparsity), np.concatenate(flat_protect))
        start = 0
        for name, size in zip(names, sizes):
            keep = (~pruned[start:start + size]).astype(np.float64)
            start += size
            shape = arrays[name].shape
            keep = keep.reshape(np.delete(np.array(shape), reduced_axes(shape, g)).tolist()
                                if g != "weight" else shape)
            out[name] = (expand_group_mask(keep, shape, g) if g != "weight" else keep) * olds[name]
    return out, PruneReport.from_masks(out, exclude)


def global_threshold_masks(scores: Mapping[str, np.ndarray], threshold: float,
                           masks: Mapping[str, np.ndarray] | None = None, exclude: Iterable[str] = ()):
    """Keep every entry with score > threshold, in every non-excluded tensor."""
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    if isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    out = {k: olds[k] if k in exclude else (arrays[k] > threshold) * olds[k] for k in arrays}
    return out, PruneReport.from_masks(out, exclude)
