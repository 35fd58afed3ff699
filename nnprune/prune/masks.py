"""Masks from scores: which weights survive.

Pruning a weight tensor ``w`` means multiplying it by a **mask** of the same shape whose
entries are 1 (keep) or 0 (pruned). Which entries get a 0 is decided by **scores** of the
same shape: higher = more important = kept (``nnprune.prune.scores`` computes them, e.g.
``|w|``). The **sparsity** is the fraction of zeros, a float in [0, 1].

Three ways to turn scores into a mask, all over one tensor:

- ``threshold_mask(scores, t)``: keep ``scores > t``. The classic rule ``|w| > t`` (Han et
  al. 2015); the sparsity you get depends on the data.
- ``percentile_mask(scores, q)``: t = ``np.percentile(scores, q)``, then ``scores > t``. Aims
  at q % zeros, but every entry tied with t is pruned too, so it may prune *more*.
- ``topk_mask(scores, sparsity)``: prunes **exactly** k entries, the k lowest scores, with

      k = ⌊sparsity · n + ½⌋          (``prune_count``: round half up, the one rounding rule)

  Ties are broken by flat index: a stable sort puts equal scores in index order, so among
  equal scores the lower flat index is pruned first. Same scores, same mask, every time.

Masks compose. Every function takes the ``mask`` already there and multiplies it in, so a
new mask **never revives** a pruned weight (new ≤ old entrywise). A target sparsity counts the
zeros already there: the already-pruned entries come first in the pruning order and count
toward k; if there are more than k of them, none is revived and the result is sparser than
asked (the ``PruneReport`` says what was reached).

The same rules over a dict of tensors (``name -> scores``), in two scopes:

- **layer-wise** (``layerwise_topk_masks``): each tensor pruned to its own sparsity, k per
  tensor by the rounding rule;
- **global** (``global_topk_masks``): one ranking across all tensors, k of the total. Layers
  whose scores are small lose more; ``min_keep`` stops a layer from being emptied (an empty
  layer cuts the network in two). ``global_threshold_masks`` is the one-threshold form.

Both accept ``granularity=`` ("weight", "kernel", "filter", "channel", "neuron", "N:M"; see
``groups.py``) and return ``(masks, PruneReport)``. A mask is a float array of the scores'
float dtype (float64 for integer scores) holding exactly 0.0 and 1.0.

>>> scores = np.array([0.3, 0.1, 0.4, 0.1, 0.5])
>>> topk_mask(scores, 0.4)               # k = ⌊0.4·5 + ½⌋ = 2: both 0.1s
array([1., 0., 1., 0., 1.])
>>> topk_mask(scores, 0.6, mask=np.array([1, 1, 1, 1, 0]))   # the 0.5 stays pruned
array([1., 0., 1., 0., 0.])
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Mapping

import numpy as np

from nnprune.prune.report import PruneReport

# ------------------------------------------------------------------ validation


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """``sparsity`` as a float, or a clear error: a real number (not bool) in [0, 1]."""
    if isinstance(sparsity, (bool, np.bool_)) or not isinstance(sparsity, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1] (a fraction of zeros), "
                        f"got {sparsity!r} of type {type(sparsity).__name__}")
    if not 0.0 <= float(sparsity) <= 1.0:  # NaN fails both comparisons
        raise ValueError(f"{name} must be in [0, 1] (a fraction of zeros), got {sparsity!r}")
    return float(sparsity)


def check_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    """``scores`` as a float array (integers become float64), or a clear error: a real-valued
    numeric array (not bool) with no NaN or infinity."""
    scores = np.asarray(scores)
    if scores.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {scores.dtype}")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite (no NaN or infinity), got {scores[where]} "
                         f"at index {where}")
    return scores


def check_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str = "mask",
               dtype: np.dtype = np.float64) -> np.ndarray:
    """The existing mask as a 0./1. array of ``dtype`` (all ones when None), or a clear error:
    the same shape as the scores, bool or numeric, only 0 and 1."""
    if mask is None:
        return np.ones(shape, dtype)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have the scores' shape {tuple(shape)}, got {mask.shape}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a bool or numeric 0/1 array, got dtype {mask.dtype}")
    bad = (mask != 0) & (mask != 1)  # NaN is bad too
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must contain only 0 and 1, got {mask[where]} at index {where}")
    return mask.astype(dtype)


def _check_threshold(value: float, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type "
                        f"{type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)

# ------------------------------------------------------------------ one tensor


def prune_count(n: int, sparsity: float) -> int:
    """The number of entries pruned from n: k = ⌊sparsity · n + ½⌋ (round half up).

    Every mask function uses this one rule, so "sparsity 0.35 of 10 weights" means 4
    everywhere. 0 ≤ k ≤ n.

    >>> prune_count(10, 0.25), prune_count(10, 0.35), prune_count(3, 0.5), prune_count(7, 1.0)
    (3, 4, 2, 7)
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative int (a number of entries), got {n!r}")
    return int(math.floor(check_sparsity(sparsity) * int(n) + 0.5))


def _ranked_prune(scores: np.ndarray, alive: np.ndarray, k: int,
                  protected: np.ndarray | None = None) -> np.ndarray:
    """Which of n flat entries to prune (bool, (n,)): the dead ones (``alive`` False), then the
    lowest scores, ties by index, until max(k, dead) are pruned; ``protected`` alive entries are
    never pruned (so fewer than k may be pruned: the caller reports what was reached).

    (n,), (n,), int, (n,) -> (n,)
    """
    n = scores.size
    protected = np.zeros(n, bool) if protected is None else protected
    # np.lexsort sorts by its LAST key first: dead before alive, unprotected before protected,
    # then by score, then by index (the sort is stable; the index key makes it explicit)
    order = np.lexsort((np.arange(n), scores, protected, alive))
    dead = n - int(np.count_nonzero(alive))
    limit = n - int(np.count_nonzero(protected & alive))  # protected survivors sort last
    pruned = np.zeros(n, bool)
    pruned[order[:min(max(k, dead), limit)]] = True
    return pruned


def threshold_mask(scores: np.ndarray, threshold: float,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Keep the entries whose score is above ``threshold``: ``(scores > t) · mask``.

    any shape -> same shape, 0./1. of the scores' float dtype. With ``scores = |w|`` this is
    the magnitude rule ``|w| > t`` of Han et al. 2015. Entries equal to t are pruned.

    >>> threshold_mask(np.array([0.5, 0.1, 0.2]), 0.2)
    array([1., 0., 0.])
    """
    scores = check_scores(scores)
    t = _check_threshold(threshold, "threshold")
    old = check_mask(mask, scores.shape, dtype=scores.dtype)
    return (scores > t).astype(scores.dtype) * old


def percentile_mask(scores: np.ndarray, q: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Keep the entries above the q-th percentile: ``(scores > np.percentile(scores, q)) · mask``.

    any shape -> same shape, 0./1. of the scores' float dtype; q in [0, 100]. The percentile
    is NumPy's (linear interpolation) over *all* the scores, pruned entries included. Every
    entry tied with the threshold is pruned, so on ties this prunes **more** than q % (even
    q = 0 prunes the minimum and its ties). ``topk_mask`` prunes an exact count.

    >>> percentile_mask(np.array([1.0, 1.0, 1.0, 2.0]), 25)   # 3 of 4 pruned, not 1
    array([0., 0., 0., 1.])
    """
    scores = check_scores(scores)
    q = _check_threshold(q, "q")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be a percentile in [0, 100], got {q!r}")
    if scores.size == 0:
        raise ValueError("scores is empty: an empty array has no percentile")
    return threshold_mask(scores, float(np.percentile(scores, q)), mask)


def topk_mask(scores: np.ndarray, sparsity: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Prune exactly k = ⌊sparsity · n + ½⌋ entries: the lowest scores, ties by flat index.

    any shape -> same shape, 0./1. of the scores' float dtype. The zeros of ``mask`` are
    pruned first and count toward k; if there are more than k of them they all stay pruned
    (never revived) and the mask has more than k zeros.

    >>> topk_mask(np.array([[3.0, 1.0], [2.0, 1.0]]), 0.5)   # two 1.0s: both pruned
    array([[1., 0.],
           [1., 0.]])
    """
    scores = check_scores(scores)
    k = prune_count(scores.size, sparsity)
    old = check_mask(mask, scores.shape, dtype=scores.dtype)
    pruned = _ranked_prune(scores.ravel(), old.ravel() != 0, k)
    keep = (~pruned).reshape(scores.shape).astype(scores.dtype)
    return keep * old  # keep ≤ old already; the product states "never revive"

# ------------------------------------------------------------------ many tensors


def _prepare(scores, masks, exclude):
    """Validated (scores, existing masks, excluded names) for the dict-level functions."""
    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a mapping name -> array, got {type(scores).__name__}")
    if not scores:
        raise ValueError("scores is empty: give at least one tensor")
    for name in scores:
        if not isinstance(name, str):
            raise TypeError(f"scores must be keyed by str names, got {name!r}")
    if masks is not None and not isinstance(masks, Mapping):
        raise TypeError(f"masks must be None or a mapping name -> 0/1 array, got "
                        f"{type(masks).__name__}")
    masks = {} if masks is None else masks
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
                         exclude: Iterable[str] = (), granularity: str = "weight",
                         reduce: str = "l1") -> tuple[dict[str, np.ndarray], PruneReport]:
    """Prune every tensor to its own sparsity: k = ⌊s · n + ½⌋ per tensor (per group count).

    {name: (shape)} -> ({name: (shape) mask}, PruneReport).

    - ``sparsity``: one float for all, or {name: float}; a name absent from the dict (or in
      ``exclude``) is not pruned: it keeps its existing mask (all ones if none) and is
      reported as excluded. An unknown name in the dict is an error.
    - ``granularity``, ``reduce``: see ``groups.granularity_mask`` (group sparsity counts
      groups; an "N:M" granularity fixes the sparsity at 1 − N/M: pass None or that value).
    """
    from nnprune.prune.groups import granularity_mask, parse_granularity  # they use topk_mask

    arrays, olds, exclude = _prepare(scores, masks, exclude)
    g = parse_granularity(granularity)
    if isinstance(sparsity, Mapping):
        for name in sparsity:
            if name not in arrays:
                raise ValueError(f"unknown layer name {name!r} in sparsity; the layers are "
                                 f"{list(arrays)}")
            if name in exclude:
                raise ValueError(f"layer {name!r} is both excluded and given a sparsity")
        targets, target = dict(sparsity), None
    else:
        targets = {name: sparsity for name in arrays}
        target = None if sparsity is None else check_sparsity(sparsity)
        if target is None and isinstance(g, tuple):
            target = 1 - g[0] / g[1]  # N:M fixes it
    skipped = tuple(name for name in arrays if name in exclude or name not in targets)
    out = {}
    for name, s in arrays.items():
        out[name] = olds[name] if name in skipped else _for_layer(
            name, granularity_mask, s, targets[name], granularity, olds[name], reduce)
    return out, PruneReport.from_masks(out, skipped, target)


def global_topk_masks(scores: Mapping[str, np.ndarray], sparsity: float | None,
                      masks: Mapping[str, np.ndarray] | None = None,
                      exclude: Iterable[str] = (), min_keep: int = 1,
                      granularity: str = "weight",
                      reduce: str = "l1") -> tuple[dict[str, np.ndarray], PruneReport]:
    """One ranking across every non-excluded tensor: prune k = ⌊s · N + ½⌋ of all N entries.

    {name: (shape)} -> ({name: (shape) mask}, PruneReport).

    Equivalent to one scalar threshold on all tensors. The tensors are ranked as if
    concatenated flat in mapping order: dead entries (0 in ``masks``) first, then by score,
    ties by position in that concatenation.

    ``min_keep`` (default 1): before ranking, each tensor's ``min_keep`` best alive entries
    (its highest scores, the last ones a per-tensor top-k would prune) are taken out of the
    ranking and always kept; k is then met from the remaining entries when possible. If the
    protected entries make k unreachable, fewer are pruned; the report says what was reached.
    A tensor with fewer alive entries than ``min_keep`` keeps them all (dead ones stay dead).

    Excluded tensors keep their existing mask (all ones if none) and are outside N and k.
    The report gives both ``sparsity`` (over the pruned tensors, what ``sparsity`` aims at)
    and ``sparsity_all`` (over every tensor).

    ``granularity`` (see ``groups.py``): with groups, N counts groups, the ranking is over group
    scores (``reduce`` = "l1" or "l2") and ``min_keep`` counts groups. With "N:M" every group
    of M is its own ranking, so global and layer-wise coincide (``min_keep`` is not used).
    """
    from nnprune.prune.groups import (expand_group_mask, group_alive, group_scores,
                                      parse_granularity)

    arrays, olds, exclude = _prepare(scores, masks, exclude)
    if isinstance(min_keep, (bool, np.bool_)) or not isinstance(min_keep, numbers.Integral) \
            or min_keep < 0:
        raise ValueError(f"min_keep must be an int >= 0 (entries kept per layer), "
                         f"got {min_keep!r}")
    g = parse_granularity(granularity)
    if isinstance(g, tuple):
        return layerwise_topk_masks(scores, sparsity, masks, exclude, granularity, reduce)
    s = check_sparsity(sparsity)
    names = [name for name in arrays if name not in exclude]
    flat_scores, flat_alive, flat_protected, group_shapes = [], [], [], []
    for name in names:
        # one score per group (per entry for "weight"), pruned entries contributing nothing
        gs = _for_layer(name, group_scores, arrays[name] * olds[name], g, reduce)
        group_shapes.append(gs.shape)
        gs, alive = gs.ravel(), group_alive(olds[name], g).ravel()
        # this tensor's own ranking; its last min_keep alive entries are its best ones
        own = np.lexsort((np.arange(gs.size), gs, alive))
        best = own[gs.size - min(int(min_keep), int(alive.sum())):]
        protected = np.zeros(gs.size, bool)
        protected[best] = True
        flat_scores.append(gs)
        flat_alive.append(alive)
        flat_protected.append(protected)
    out = dict(olds)
    if names:
        all_scores = np.concatenate(flat_scores).astype(np.float64)
        pruned = _ranked_prune(all_scores, np.concatenate(flat_alive),
                               prune_count(all_scores.size, s), np.concatenate(flat_protected))
        start = 0
        for name, group_shape in zip(names, group_shapes):
            size = int(np.prod(group_shape))
            keep_groups = ~pruned[start:start + size].reshape(group_shape)
            start += size
            keep = expand_group_mask(keep_groups, arrays[name].shape, g)
            out[name] = keep.astype(olds[name].dtype) * olds[name]
    return out, PruneReport.from_masks(out, exclude, s)


def global_threshold_masks(scores: Mapping[str, np.ndarray], threshold: float,
                           masks: Mapping[str, np.ndarray] | None = None,
                           exclude: Iterable[str] = ()) -> tuple[dict[str, np.ndarray],
                                                                  PruneReport]:
    """``threshold_mask`` with one threshold on every non-excluded tensor.

    {name: (shape)} -> ({name: (shape) mask}, PruneReport). The sparsity reached depends on
    the scores; the report says what it is. Excluded tensors keep their existing mask.
    """
    arrays, olds, exclude = _prepare(scores, masks, exclude)
    t = _check_threshold(threshold, "threshold")
    out = {name: olds[name] if name in exclude else threshold_mask(s, t, olds[name])
           for name, s in arrays.items()}
    return out, PruneReport.from_masks(out, exclude)
