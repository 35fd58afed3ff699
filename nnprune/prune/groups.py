"""Granularity: which entries of a weight are pruned together.

Whole **groups** leave a smaller dense layer, where single zeros stay scattered (Li et al.
2017, "Pruning Filters for Efficient ConvNets"); **N:M** keeps N of every M consecutive
weights, a pattern sparse tensor cores run (NVIDIA Ampere 2:4; Mishra et al. 2021).

=========== =================================== ======================== ================
granularity  a group is                           conv (O, I, kh, kw)      linear (O, I)
=========== =================================== ======================== ================
weight       one entry                            (O, I, kh, kw) groups    (O, I) groups
kernel       the kh×kw kernel of one (o, i) pair  (O, I), reduce (kh, kw)  — (error)
filter       output channel o: all of w[o]        (O,), reduce (I, kh, kw) (O,), reduce I
neuron       output unit o: a row w[o]            same as filter           same as filter
channel      input channel i: all of w[:, i]      (I,), reduce (O, kh, kw) (I,), reduce O
N:M          M consecutive entries along I        at each (o, kh, kw)      at each o
=========== =================================== ======================== ================

A group's score is L1 (``reduce="l1"``, default) S_g = Σ_{j ∈ g} |s_j| (with ``s = |w|``,
Li et al.'s filter norm) or L2 S_g = √(Σ_{j ∈ g} s_j²), of the scores times the existing
mask; an all-zero group is dead and pruned first. A group sparsity counts groups
(``prune_count`` of the number of groups). N:M has no group score: each group of M keeps
its N highest scores, so its sparsity is fixed at 1 − N/M.

>>> w = np.arange(8.0).reshape(2, 4)        # linear (O=2, I=4)
>>> granularity_mask(np.abs(w), 0.5, "neuron")   # rows: L1 6 and 22 -> prune row 0
array([[0., 0., 0., 0.],
       [1., 1., 1., 1.]])
>>> nm_mask(np.array([[4.0, 1.0, 3.0, 2.0]]), 2, 4)
array([[1., 0., 1., 0.]])
"""
from __future__ import annotations

import numbers

import numpy as np

from nnprune.prune.granularity import GRANULARITIES, Granularity, as_granularity, nm_unfit
from nnprune.checks import check_choice
from nnprune.prune.masks import check_mask, check_rounding, check_scores, topk

REDUCTIONS = ("l1", "l2")


def parse_granularity(granularity: str) -> str | tuple[int, int]:
    """One of ``GRANULARITIES`` as given, or ``(n, m)`` for an ``"N:M"`` string (1 ≤ N ≤ M):
    the plain form of a ``Granularity`` (``granularity.py``), which the library passes on.

    >>> parse_granularity("filter"), parse_granularity("2:4")
    ('filter', (2, 4))
    """
    g = as_granularity(granularity)
    return g.nm if g.is_nm else g.kind


def reduced_axes(shape: tuple[int, ...], granularity: str) -> tuple[int, ...]:
    """The axes one group spans, i.e. those reduced to score it (() for "weight").

    >>> reduced_axes((8, 3, 5, 5), "kernel"), reduced_axes((10, 4), "channel")
    ((2, 3), (0,))
    """
    return as_granularity(granularity).axes(shape)


def group_scores(scores: np.ndarray, granularity: str, reduce: str = "l1") -> np.ndarray:
    """One score per group: S_g = Σ|s| ("l1") or √Σs² ("l2") over the group's axes.

    (O, I, kh, kw) -> (O, I) kernel, (O,) filter/neuron, (I,) channel; (O, I) -> (O,) or (I,);
    "weight": the scores themselves (a group of one needs no reduction).
    """
    scores = check_scores(scores)
    reduce = check_choice(reduce, "reduce", REDUCTIONS)
    axes = reduced_axes(scores.shape, granularity)
    if not axes:
        return scores.copy()
    # task 2.4: group scores, one L1 or L2 norm per filter, channel or kernel
    if reduce == "l1":
        return np.abs(scores).sum(axis=axes)
    return np.sqrt(np.square(scores).sum(axis=axes))
    # end task


def group_alive(mask: np.ndarray, granularity: str) -> np.ndarray:
    """Which groups still have a kept entry (bool, the group shape); all-zero groups are dead."""
    mask = np.asarray(mask)
    axes = reduced_axes(mask.shape, granularity)
    return (mask != 0).any(axis=axes) if axes else mask != 0


def expand_group_mask(group_mask: np.ndarray, shape: tuple[int, ...],
                      granularity: str) -> np.ndarray:
    """Broadcast a mask over groups back to the weight's shape (a new float64 array).

    (O,) filter -> (O, I, kh, kw): ``mask[o] = group_mask[o]`` everywhere in filter o.
    """
    shape = tuple(shape)
    axes = reduced_axes(shape, granularity)
    group_mask = np.asarray(group_mask)
    expected = tuple(side for axis, side in enumerate(shape) if axis not in axes)
    if group_mask.shape != expected:
        raise ValueError(f"group_mask for {granularity} groups of a {shape} weight must have "
                         f"shape {expected}, got {group_mask.shape}")
    return np.broadcast_to(np.expand_dims(group_mask, axes), shape).astype(np.float64)


def nm_mask(scores: np.ndarray, n: int, m: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Keep exactly n of every m consecutive entries along the input axis (axis 1).

    (O, I) or (O, I, kh, kw) -> same shape, 0./1. of the scores' float dtype; I % m == 0.
    Linear: groups w[o, j·m:(j+1)·m]; conv: along I at each (o, kh, kw), NVIDIA's 2:4 layout.
    Each group prunes its existing zeros, then its lowest scores (ties by index), m − n in
    all or more: a zero is never revived.
    """
    scores = check_scores(scores)
    for name, value in (("n", n), ("m", m)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if not 1 <= n <= m:
        raise ValueError(f"N:M needs 1 <= n <= m (n kept of every m), got n={n}, m={m}")
    if nm_unfit(scores.shape, m) is not None:
        raise ValueError(nm_unfit(scores.shape, m))
    old = check_mask(mask, scores.shape, dtype=scores.dtype)
    # (O, I, ...) -> (O, ..., I) -> (groups, m): one row per group of m consecutive inputs
    moved = np.moveaxis(scores, 1, -1)
    s = moved.reshape(-1, m)
    alive = np.moveaxis(old, 1, -1).reshape(-1, m) != 0
    position = np.broadcast_to(np.arange(m), s.shape)
    # per row: dead first, then lowest score, then lowest position (lexsort: last key first)
    order = np.lexsort((position, s, alive), axis=-1)
    rank = np.argsort(order, axis=-1)  # rank[g, j]: place of entry j in its row's order
    drop = np.maximum(m - n, m - alive.sum(axis=1, keepdims=True))
    keep = (rank >= drop).reshape(moved.shape)
    return np.moveaxis(keep, -1, 1).astype(scores.dtype) * old


def granularity_mask(scores: np.ndarray, sparsity: float | None, granularity: str,
                     mask: np.ndarray | None = None, reduce: str = "l1", *,
                     rounding: str = "half_up") -> np.ndarray:
    """One tensor's mask at any granularity: group scores -> top-k over groups -> expand.

    any shape (what the granularity needs) -> same shape, 0./1. of the scores' float dtype.

    "weight" is ``topk_mask``; groups: k = ⌊sparsity · G + ½⌋ of the G groups are pruned,
    dead groups first, then the lowest group scores (of ``scores · mask``), ties by index;
    "N:M" is ``nm_mask``, so ``sparsity`` must be None or N:M's own 1 − N/M.
    """
    g = as_granularity(granularity)
    scores = check_scores(scores)
    old = check_mask(mask, scores.shape, dtype=scores.dtype)
    reduce = check_choice(reduce, "reduce", REDUCTIONS)
    return group_topk(scores, g.target(sparsity), g, old, reduce, check_rounding(rounding))


def group_topk(scores: np.ndarray, sparsity: float, g: Granularity, old: np.ndarray,
               reduce: str, rounding: str) -> np.ndarray:
    """``granularity_mask`` of arguments already checked: float scores, the target sparsity
    (N:M's own for "N:M"), a parsed granularity that fits the scores' shape, the existing
    0./1. mask ``old`` of the scores' shape and dtype."""
    if g.is_nm:
        return nm_mask(scores, g.n, g.m, old)
    if g == "weight":
        return topk(scores, sparsity, old, rounding)
    keep_groups = topk(group_scores(scores * old, g, reduce), sparsity,
                       group_alive(old, g).astype(scores.dtype), rounding)
    return expand_group_mask(keep_groups, scores.shape, g).astype(scores.dtype) * old
