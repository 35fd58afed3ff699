"""Masks from scores: keep the highest, prune exactly k = ⌊sparsity·n + ½⌋.

- ``threshold_mask``: keep scores > t (the classic ``|w| > t`` rule).
- ``percentile_mask``: t = np.percentile(scores, q); may prune *more* than q % when scores tie.
- ``topk_mask``: exactly k pruned, ties by flat index (the lower index is pruned first).

Every function takes the existing ``mask`` and multiplies it in: a new mask never revives a
pruned weight, and a target sparsity counts the zeros already there (already-pruned entries
are pruned first; if there are more than k of them, none is revived).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from nnprune.prune.report import PruneReport


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(sparsity).__name__}")
    if not 0.0 <= float(sparsity) <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {sparsity!r}")
    return float(sparsity)


def prune_count(n: int, sparsity: float) -> int:
    """The number pruned from n entries: k = ⌊sparsity·n + ½⌋ (round half up).

    >>> prune_count(10, 0.25), prune_count(10, 0.35), prune_count(3, 0.5)
    (3, 4, 2)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return int(np.floor(check_sparsity(sparsity) * n + 0.5))


def check_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores)
    if scores.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {scores.dtype}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return scores


def check_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """The existing mask as float (all ones if None), validated: same shape, only 0 and 1."""
    if mask is None:
        return np.ones(shape)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {mask.shape}")
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{name} must contain only 0 and 1")
    return mask.astype(np.float64)


def threshold_mask(scores: np.ndarray, threshold: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Keep entries with score > threshold: ``mask = (scores > t) · old``. Same shape, 0./1."""
    scores = check_scores(scores)
    if isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return (scores > threshold) * check_mask(mask, scores.shape)


def percentile_mask(scores: np.ndarray, q: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Keep entries above the q-th percentile (np.percentile semantics, q in [0, 100]).

    With ties at the threshold this prunes *more* than q % of the entries: all tied entries
    fall below ``scores > t``. Use ``topk_mask`` for an exact count.
    """
    scores = check_scores(scores)
    if isinstance(q, bool) or not isinstance(q, (int, float, np.number)) or not 0 <= q <= 100:
        raise ValueError(f"q must be a percentile in [0, 100], got {q!r}")
    if scores.size == 0:
        raise ValueError("scores is empty")
    return threshold_mask(scores, float(np.percentile(scores, q)), mask)


def _ranked_prune(scores: np.ndarray, alive: np.ndarray, k: int,
                  protected: np.ndarray | None = None) -> np.ndarray:
    """Boolean 'pruned' over the flat entries: dead first, then lowest scores, ties by index."""
    n = scores.size
    protect = np.zeros(n, bool) if protected is None else protected
    # lexsort: last key is primary: dead before alive, unprotected before protected, score, index
    order = np.lexsort((np.arange(n), scores, protect, alive))
    dead = int((~alive).sum())
    limit = n - int((protect & alive).sum())  # protected survivors sort last: stop before them
    pruned = np.zeros(n, bool)
    pruned[order[:min(max(k, dead), limit)]] = True
    return pruned


def topk_mask(scores: np.ndarray, sparsity: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Prune exactly k = ⌊sparsity·n + ½⌋ entries (the lowest scores, ties by flat index).

    Entries already 0 in ``mask`` count toward k; if there are more than k, all stay pruned.

    >>> topk_mask(np.array([3.0, 1.0, 2.0, 1.0]), 0.5)
    array([1., 0., 1., 0.])
    """
    scores = check_scores(scores)
    old = check_mask(mask, scores.shape)
    k = prune_count(scores.size, sparsity)
    pruned = _ranked_prune(scores.ravel().astype(np.float64), old.ravel() != 0, k)
    return (~pruned).reshape(scores.shape) * old
