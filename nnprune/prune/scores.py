"""Importance scores: arrays in, arrays out, higher = more important = kept.

============ ============================== ==========================================
criterion    score                           source
============ ============================== ==========================================
magnitude    |w|  (p=2: w²)                  Han et al. 2015
random       U(0, 1), seeded                 the baseline every paper should beat
gradient     |g|                             —
taylor       |w · g|                         Molchanov et al. 2017, first-order Taylor
taylor2      (w · g)²                        Molchanov et al. 2019
snip         |w · g| / Σ |w · g|             Lee et al. 2019, at initialisation
============ ============================== ==========================================

g is dL/dw. Over several batches the caller passes the *mean* gradient (what
``nnprune.train.gradients`` returns): the Taylor score is then |w · mean_b g_b|, the
first-order estimate of the loss change on the whole sample when w is removed; the SNIP
normaliser is taken over every tensor given.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from nnprune.prune.masks import check_scores

CRITERIA = ("magnitude", "random", "gradient", "taylor", "taylor2", "snip")


def magnitude(w: np.ndarray, p: int = 1) -> np.ndarray:
    """|w| (p = 1) or w² (p = 2)."""
    w = check_scores(w, "w")
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    return np.abs(w) if p == 1 else w * w


def random_scores(shape_or_array, seed: int) -> np.ndarray:
    """Uniform scores from ``seed``: the same seed gives the same scores."""
    shape = np.shape(shape_or_array) if isinstance(shape_or_array, np.ndarray) else tuple(shape_or_array)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(seed).random(shape)


def gradient(g: np.ndarray) -> np.ndarray:
    """|g|."""
    return np.abs(check_scores(g, "g"))


def _pair(w, g):
    w, g = check_scores(w, "w"), check_scores(g, "g")
    if w.shape != g.shape:
        raise ValueError(f"w and g must have the same shape, got {w.shape} and {g.shape}")
    return w, g


def taylor(w: np.ndarray, g: np.ndarray, squared: bool = False) -> np.ndarray:
    """|w · g| (first-order Taylor), or (w · g)² with ``squared=True``."""
    w, g = _pair(w, g)
    return (w * g) ** 2 if squared else np.abs(w * g)


def snip(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Connection sensitivity |w · g| / Σ|w · g| (one tensor; the dict form normalises jointly)."""
    s = taylor(w, g)
    total = s.sum()
    return s / total if total > 0 else s


def compute_scores(criterion: str, weights: Mapping[str, np.ndarray],
                   grads: Mapping[str, np.ndarray] | None = None, seed: int | None = None) -> dict[str, np.ndarray]:
    """Scores for every named weight by ``criterion`` (one of CRITERIA)."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    if criterion in ("gradient", "taylor", "taylor2", "snip"):
        if grads is None:
            raise ValueError(f"criterion {criterion!r} needs grads (dL/dw for every weight)")
        missing = [k for k in weights if k not in grads]
        if missing:
            raise ValueError(f"grads is missing {missing}")
    if criterion == "magnitude":
        return {k: magnitude(w) for k, w in weights.items()}
    if criterion == "random":
        base = 0 if seed is None else seed
        return {k: random_scores(np.asarray(w), base + i) for i, (k, w) in enumerate(weights.items())}
    if criterion == "gradient":
        return {k: gradient(grads[k]) for k in weights}
    if criterion in ("taylor", "taylor2"):
        return {k: taylor(w, grads[k], squared=criterion == "taylor2") for k, w in weights.items()}
    raw = {k: taylor(w, grads[k]) for k, w in weights.items()}
    total = sum(float(s.sum()) for s in raw.values())
    return {k: s / total if total > 0 else s for k, s in raw.items()}
