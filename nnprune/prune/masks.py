"""Masks from scores: which weights survive.

Pruning a weight tensor ``w`` multiplies it by a **mask** of its shape, 1 = keep, 0 =
pruned, chosen from **scores** of the same shape: higher = more important = kept. The
**sparsity** is the fraction of zeros, a float in [0, 1]. Three rules over one tensor:
``threshold_mask`` (keep ``scores > t``), ``percentile_mask`` (t a percentile of the scores)
and ``topk_mask``, which prunes **exactly** k = ⌊sparsity · n + ½⌋ entries (``prune_count``),
the lowest scores, ties by flat index (the lower pruned first).

Masks compose: every function multiplies in the ``mask`` already there, so a new mask
**never revives** a pruned weight (new ≤ old entrywise). The zeros already there are pruned
first and count toward k; more than k of them all stay, and the result is sparser than asked.
A mask is a float array of the scores' float dtype (float64 for integer scores).

>>> scores = np.array([0.3, 0.1, 0.4, 0.1, 0.5])
>>> topk_mask(scores, 0.4)               # k = ⌊0.4·5 + ½⌋ = 2: both 0.1s
array([1., 0., 1., 0., 1.])
>>> topk_mask(scores, 0.6, mask=np.array([1, 1, 1, 1, 0]))   # the 0.5 stays pruned
array([1., 0., 1., 0., 0.])
"""
from __future__ import annotations

import math

import numpy as np

from nnprune.checks import check_int, check_mask, check_real, check_scores, check_sparsity

__all__ = ["check_mask", "check_scores", "check_sparsity", "check_rounding", "ROUNDINGS",
           "prune_count", "count", "ranked_prune", "threshold_mask", "percentile_mask",
           "topk_mask", "topk"]

ROUNDINGS = ("half_up", "half_even")


def check_rounding(rounding: str) -> str:
    """``rounding`` if it is one of ``ROUNDINGS``, else a clear ValueError."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS} ('half_up': nnprune's "
                         f"floor(s*n + 0.5); 'half_even': PyTorch's round(s*n)), "
                         f"got {rounding!r}")
    return rounding


def prune_count(n: int, sparsity: float, rounding: str = "half_up") -> int:
    """The number of entries pruned from n: k = ⌊sparsity · n + ½⌋ (round half up).

    Every mask function uses this one rule, so "sparsity 0.35 of 10 weights" means 4
    everywhere. 0 ≤ k ≤ n. ``rounding="half_even"`` counts as ``torch.nn.utils.prune``
    does, k = round(sparsity · n) with Python's round half to even on the float product:
    0.25 of 10 gives 2 there and 3 here.

    >>> prune_count(10, 0.25), prune_count(10, 0.35), prune_count(3, 0.5), prune_count(7, 1.0)
    (3, 4, 2, 7)
    >>> prune_count(10, 0.25, rounding="half_even"), prune_count(5, 0.5, rounding="half_even")
    (2, 2)
    """
    return count(check_int(n, "n", 0), check_sparsity(sparsity), check_rounding(rounding))


def count(n: int, sparsity: float, rounding: str) -> int:
    """``prune_count`` of arguments already checked (by a spec or a public function)."""
    product = sparsity * n
    if rounding == "half_even":
        return int(round(product))
    return int(math.floor(product + 0.5))


def ranked_prune(scores: np.ndarray, alive: np.ndarray, k: int,
                  protected: np.ndarray | None = None) -> np.ndarray:
    """Which of n flat entries to prune (bool, (n,)): the dead ones (``alive`` False), then the
    lowest scores, ties by index, until max(k, dead) are pruned; ``protected`` alive entries are
    never pruned (so fewer than k may be pruned: the caller reports what was reached).

    (n,), (n,), int, (n,) -> (n,)
    """
    n = scores.size
    protected = np.zeros(n, bool) if protected is None else protected
    # task 2.1: exact top-k ranking (dead first, then lowest score, ties by index)
    # np.lexsort sorts by its LAST key first: dead before alive, unprotected before protected,
    # then by score, then by index (the sort is stable; the index key makes it explicit)
    order = np.lexsort((np.arange(n), scores, protected, alive))
    dead = n - int(np.count_nonzero(alive))
    limit = n - int(np.count_nonzero(protected & alive))  # protected survivors sort last
    pruned = np.zeros(n, bool)
    pruned[order[:min(max(k, dead), limit)]] = True
    return pruned
    # end task


def threshold_mask(scores: np.ndarray, threshold: float,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Keep the entries whose score is above ``threshold``: ``(scores > t) · mask``.

    any shape -> same shape, 0./1. of the scores' float dtype. With ``scores = |w|`` this is
    the magnitude rule ``|w| > t`` of Han et al. 2015. Entries equal to t are pruned.

    >>> threshold_mask(np.array([0.5, 0.1, 0.2]), 0.2)
    array([1., 0., 0.])
    """
    scores = check_scores(scores)
    t = check_real(threshold, "threshold")
    old = check_mask(mask, scores.shape, dtype=scores.dtype)
    # task 2.2: the percentile mask
    return (scores > t).astype(scores.dtype) * old
    # end task


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
    q = check_real(q, "q")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be a percentile in [0, 100], got {q!r}")
    if scores.size == 0:
        raise ValueError("scores is empty: an empty array has no percentile")
    # task 2.2: the percentile mask
    return threshold_mask(scores, float(np.percentile(scores, q)), mask)
    # end task


def topk_mask(scores: np.ndarray, sparsity: float, mask: np.ndarray | None = None, *,
              rounding: str = "half_up") -> np.ndarray:
    """Prune exactly k = ⌊sparsity · n + ½⌋ entries: the lowest scores, ties by flat index.

    any shape -> same shape, 0./1. of the scores' float dtype. The zeros of ``mask`` are
    pruned first and count toward k, and stay pruned. ``rounding="half_even"`` prunes
    PyTorch's count (``prune_count``): with distinct scores the mask then equals
    ``l1_unstructured``'s for ``scores = |w|``.

    >>> topk_mask(np.array([[3.0, 1.0], [2.0, 1.0]]), 0.5)   # two 1.0s: both pruned
    array([[1., 0.],
           [1., 0.]])
    >>> w = np.arange(1.0, 11.0)                               # 0.25 of 10 weights
    >>> topk_mask(w, 0.25)[:4], topk_mask(w, 0.25, rounding="half_even")[:4]
    (array([0., 0., 0., 1.]), array([0., 0., 1., 1.]))
    """
    scores = check_scores(scores)
    sparsity, rounding = check_sparsity(sparsity), check_rounding(rounding)
    return topk(scores, sparsity, check_mask(mask, scores.shape, dtype=scores.dtype), rounding)


def topk(scores: np.ndarray, sparsity: float, old: np.ndarray, rounding: str) -> np.ndarray:
    """``topk_mask`` of arguments already checked: float scores, a sparsity in [0, 1], the
    existing 0./1. mask ``old`` of the scores' shape and dtype, a rounding of ``ROUNDINGS``."""
    k = count(scores.size, sparsity, rounding)
    pruned = ranked_prune(scores.ravel(), old.ravel() != 0, k)
    keep = (~pruned).reshape(scores.shape).astype(scores.dtype)
    return keep * old  # keep ≤ old already; the product states "never revive"
