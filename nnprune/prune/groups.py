"""Granularity: which entries are pruned together.

=========== ============================== ===========================================
granularity  a group is                      for a weight of shape
=========== ============================== ===========================================
weight       one entry                       any
kernel       one kh×kw kernel (o, i)         conv (O, I, kh, kw)
filter       one output channel: w[o]        conv or linear (then the same as neuron)
neuron       one output unit: w[o]           linear (O, I) (or conv: same as filter)
channel      one input channel: w[:, i]      conv or linear
N:M          N kept of every M consecutive   linear along I; conv along I at each (o, kh, kw)
             entries along the input axis
=========== ============================== ===========================================

A group's score is the L1 norm of its entries' scores (``reduce="l1"``, default) or the L2
norm (``"l2"``). Group sparsity applies the rounding rule to the number of groups; the
resulting weight mask is the group mask broadcast over each group.
"""
from __future__ import annotations

import re

import numpy as np

from nnprune.prune.masks import check_mask, check_scores, prune_count, topk_mask

GROUPS = ("weight", "kernel", "filter", "channel", "neuron")


def parse_granularity(granularity: str) -> str | tuple[int, int]:
    """``"weight"``, ``"kernel"``, ... as given, or ``(n, m)`` for an ``"N:M"`` string."""
    if not isinstance(granularity, str):
        raise TypeError(f"granularity must be a string, got {type(granularity).__name__}")
    if granularity in GROUPS:
        return granularity
    match = re.fullmatch(r"(\d+):(\d+)", granularity)
    if not match:
        raise ValueError(f"granularity must be one of {GROUPS} or 'N:M' like '2:4', got {granularity!r}")
    n, m = int(match[1]), int(match[2])
    if not 1 <= n <= m:
        raise ValueError(f"N:M granularity needs 1 <= N <= M, got {granularity!r}")
    return n, m


def reduced_axes(shape: tuple[int, ...], granularity: str) -> tuple[int, ...]:
    """The axes a group spans (summed over to score it)."""
    if granularity == "weight":
        return ()
    if granularity == "kernel":
        if len(shape) != 4:
            raise ValueError(f"kernel granularity needs a 4-D conv weight, got shape {shape}")
        return (2, 3)
    if len(shape) < 2:
        raise ValueError(f"{granularity} granularity needs a weight with >= 2 dims, got shape {shape}")
    if granularity in ("filter", "neuron"):
        return tuple(range(1, len(shape)))
    if granularity == "channel":
        return (0,) + tuple(range(2, len(shape)))
    raise ValueError(f"unknown granularity {granularity!r}")


def group_scores(scores: np.ndarray, granularity: str, reduce: str = "l1") -> np.ndarray:
    """One score per group: Σ|s| (l1) or √Σs² (l2) over the group's axes."""
    scores = check_scores(scores)
    axes = reduced_axes(scores.shape, granularity)
    if reduce == "l1":
        return np.abs(scores).sum(axis=axes) if axes else np.abs(scores)
    if reduce == "l2":
        return np.sqrt((scores.astype(np.float64) ** 2).sum(axis=axes)) if axes else np.abs(scores)
    raise ValueError(f"reduce must be 'l1' or 'l2', got {reduce!r}")


def expand_group_mask(group_mask: np.ndarray, shape: tuple[int, ...], granularity: str) -> np.ndarray:
    """Broadcast a mask over groups back to the weight's shape."""
    axes = reduced_axes(tuple(shape), granularity)
    return np.broadcast_to(np.expand_dims(group_mask, axes) if axes else group_mask, shape).astype(np.float64)


def nm_mask(scores: np.ndarray, n: int, m: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Keep exactly n of every m consecutive entries along the input axis (highest scores).

    Linear (O, I): groups along I. Conv (O, I, kh, kw): groups along I at each (o, kh, kw),
    as 2:4 sparse tensor cores expect. Existing zeros are pruned first; a group that already
    has more than m − n zeros keeps them (never revived). Ties by index.
    """
    scores = check_scores(scores)
    old = check_mask(mask, scores.shape)
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= n <= m):
        raise ValueError(f"N:M needs ints 1 <= n <= m, got {n}:{m}")
    if scores.ndim not in (2, 4):
        raise ValueError(f"N:M needs a linear (O, I) or conv (O, I, kh, kw) weight, got {scores.shape}")
    if scores.shape[1] % m:
        raise ValueError(f"the input dimension {scores.shape[1]} is not a multiple of m={m}")
    # move the input axis last: (..., I) -> (..., I/m, m)
    perm = (0, 2, 3, 1) if scores.ndim == 4 else (0, 1)
    s = np.transpose(scores, perm).astype(np.float64)
    alive = np.transpose(old, perm) != 0
    g = s.reshape(-1, m)
    a = alive.reshape(-1, m)
    idx = np.broadcast_to(np.arange(m), g.shape)
    order = np.lexsort((idx, g, a), axis=-1)  # dead first, then low scores, ties by index
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(m)[None, :].repeat(len(g), 0), axis=-1)
    drop = np.maximum(m - n, (~a).sum(axis=1, keepdims=True))
    keep = (rank >= drop).reshape(s.shape)
    return np.transpose(keep, np.argsort(perm)) * old


def granularity_mask(scores: np.ndarray, sparsity: float | None, granularity: str,
                     mask: np.ndarray | None = None, reduce: str = "l1") -> np.ndarray:
    """One tensor's mask at any granularity. For ``"N:M"`` the sparsity is fixed at 1 − N/M and
    ``sparsity`` must be None or equal to it."""
    g = parse_granularity(granularity)
    scores = check_scores(scores)
    old = check_mask(mask, scores.shape)
    if isinstance(g, tuple):
        n, m = g
        if sparsity is not None and abs(sparsity - (1 - n / m)) > 1e-12:
            raise ValueError(f"granularity {granularity} fixes sparsity at {1 - n / m}, got {sparsity}")
        return nm_mask(scores, n, m, old)
    if g == "weight":
        return topk_mask(scores, sparsity, old)
    axes = reduced_axes(scores.shape, g)
    alive_groups = old.any(axis=axes).astype(np.float64)  # an all-zero group is already pruned
    keep_groups = topk_mask(group_scores(scores, g, reduce), sparsity, alive_groups)
    return expand_group_mask(keep_groups, scores.shape, g) * old
