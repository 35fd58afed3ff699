"""Importance scores: how much each weight matters. Arrays in, arrays out.

Every weight w_j gets a score s_j ≥ 0 of the weight's shape, **higher = more important =
kept**. With g = ∂L/∂w the gradient of the loss:

============ ========================= =====================================================
criterion    s_j                       idea (source)
============ ========================= =====================================================
magnitude    |w_j|  (p=2: w_j²)        small weights matter little (Han et al. 2015)
random       U[0, 1), seeded           the baseline every criterion must beat
gradient     |g_j|                     the loss is sensitive to w_j (but ignores its size)
taylor       |w_j g_j|                 first-order Taylor estimate of the loss change when
                                       w_j is set to 0: L(w − w_j e_j) − L(w) ≈ −w_j g_j
                                       (Molchanov et al. 2017)
taylor2      (w_j g_j)²                its square (Molchanov et al. 2019)
snip         |w_j g_j| / Σ_k |w_k g_k| connection sensitivity at initialisation, normalised
                                       over all the tensors scored together (Lee et al. 2019)
obd          ½ h_jj w_j²               second-order loss rise of deleting w_j alone at a
                                       minimum, h = diag of the Hessian (LeCun et al. 1990)
============ ========================= =====================================================

``obs`` (layer-wise Optimal Brain Surgeon) is a criterion of ``prune_model`` but not a score:
it moves the surviving weights as it prunes (``layerwise.py``).

The gradient is the caller's, usually the mean over batches, in which per-batch terms of
opposite sign cancel; Molchanov et al. 2019 average per-batch scores (``accumulate_taylor``). A group (``groups.group_scores``) sums its entries' scores: with taylor2 a filter
scores Σ_j (w_j g_j)², Molchanov 2019's per-weight variant (their gate variant squares the sum).

>>> w, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, 0.1, -4.0])
>>> magnitude(w), taylor(w, g)
(array([1. , 2. , 0.5]), array([0.5, 0.2, 2. ]))
>>> float(snip(w, g).sum())
1.0
"""
from __future__ import annotations

import numbers
from typing import Mapping, Sequence

import numpy as np

from nnprune.foreign import reject_foreign
from nnprune.checks import check_batches, check_finite, check_mapping, check_scores
from nnprune.prune.hessian import obd_saliency

CRITERIA = ("magnitude", "random", "gradient", "taylor", "taylor2", "snip", "obd", "obs")
NEEDS_GRADS = ("gradient", "taylor", "taylor2", "snip")
NEEDS_HESSIAN = ("obd",)
NEEDS_CALIBRATION = ("obs",)


def magnitude(w: np.ndarray, p: int = 1) -> np.ndarray:
    """|w| (p = 1) or w² (p = 2) — the same ranking; p = 2 is the L2 energy of the weight.

    any shape -> same shape, w's float dtype.
    """
    w = check_scores(w, "w")
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 (|w|) or 2 (w²), got {p!r}")
    return np.abs(w) if p == 1 else np.square(w)


def random_scores(shape_or_array: np.ndarray | Sequence[int] | int,
                  seed: int | np.random.Generator) -> np.ndarray:
    """Uniform scores in [0, 1), float64, from ``seed`` (an int ≥ 0 or a Generator).

    ``shape_or_array``: a shape, or an array whose shape is used. The same int seed gives
    the same bits; random pruning is the control that a criterion must beat.
    """
    if isinstance(shape_or_array, np.ndarray):
        shape = shape_or_array.shape
    elif isinstance(shape_or_array, numbers.Integral) and not isinstance(shape_or_array, bool):
        shape = (int(shape_or_array),)
    elif isinstance(shape_or_array, (tuple, list)) and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0
            for d in shape_or_array):
        shape = tuple(int(d) for d in shape_or_array)
    else:
        raise TypeError(f"shape_or_array must be an array or a shape (tuple of ints >= 0), "
                        f"got {shape_or_array!r}")
    return _rng(seed).random(shape)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be an int >= 0 or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def gradient(g: np.ndarray) -> np.ndarray:
    """|g|, g = ∂L/∂w. any shape -> same shape."""
    return np.abs(check_scores(g, "g"))


def _pair(w, g, w_name="w", g_name="g"):
    w, g = check_scores(w, w_name), check_scores(g, g_name)
    if w.shape != g.shape:
        raise ValueError(f"{w_name} and {g_name} must have the same shape, got {w.shape} "
                         f"and {g.shape}")
    return w, g


def taylor(w: np.ndarray, g: np.ndarray, squared: bool = False) -> np.ndarray:
    """First-order Taylor score |w · g| (Molchanov et al. 2017), or (w · g)² if ``squared``
    (Molchanov et al. 2019). any shape, same shape -> same shape.

    Setting w_j to 0 moves the weights by δw = −w_j e_j, so L changes by ≈ gᵀδw = −w_j g_j.
    """
    w, g = _pair(w, g)
    product = w * g
    return np.square(product) if squared else np.abs(product)


def accumulate_taylor(w: np.ndarray, grads_per_batch: Sequence[np.ndarray],
                      squared: bool = True) -> np.ndarray:
    """Per-batch Taylor scores averaged over batches: (1/B) Σ_b (w · g_b)² (Molchanov et al.
    2019, the default) or (1/B) Σ_b |w · g_b| (``squared=False``).

    (shape), B × (shape) -> (shape). Never below ``taylor(w, mean_b g_b, squared)``.
    """
    check_batches(grads_per_batch)
    return sum(taylor(*_pair(w, g, "w", f"grads_per_batch[{b}]"), squared=squared)
               for b, g in enumerate(grads_per_batch)) / len(grads_per_batch)


def snip(w: np.ndarray | Mapping[str, np.ndarray],
         g: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
    """SNIP connection sensitivity s_j = |w_j g_j| / Σ_k |w_k g_k| (Lee et al. 2019).

    Arrays -> an array summing to 1. Mappings name -> array -> a dict normalised jointly:
    the sum over *all* the tensors is 1, so the scores compare across layers (SNIP prunes
    globally). |w_j g_j| = |∂L/∂c_j| for a multiplicative gate c_j = 1 on w_j.
    """
    if isinstance(w, Mapping) or isinstance(g, Mapping):
        if not (isinstance(w, Mapping) and isinstance(g, Mapping)):
            raise TypeError("snip takes two arrays or two mappings name -> array")
        missing = [name for name in w if name not in g]
        if missing:
            raise ValueError(f"grads is missing {missing[0]!r}: a gradient is needed for every "
                             f"weight scored")
        raw = {name: taylor(*_pair(w[name], g[name], f"w[{name!r}]", f"g[{name!r}]"))
               for name in w}
    else:
        raw = {"": taylor(w, g)}
    total = sum(float(s.sum(dtype=np.float64)) for s in raw.values())
    if not total > 0:
        raise ValueError("SNIP is undefined: every product w·g is 0 (all weights or all "
                         "gradients vanish), so Σ|w·g| = 0")
    scores = {name: s / s.dtype.type(total) for name, s in raw.items()}
    return scores if isinstance(w, Mapping) else scores[""]


def compute_scores(criterion: str, weights: Mapping[str, np.ndarray],
                   grads: Mapping[str, np.ndarray] | None = None,
                   seed: int | np.random.Generator | None = None,
                   hessian_diag: Mapping[str, np.ndarray] | None = None
                   ) -> dict[str, np.ndarray]:
    """Scores of every named weight by ``criterion`` (one of ``CRITERIA`` but ``obs``).

    {name: (shape)} -> {name: (shape)}. ``grads`` = {name: ∂L/∂w} is needed by gradient,
    taylor, taylor2 and snip (extra names in it are ignored); ``seed`` by random: with an int,
    each tensor's stream is derived from (seed, name), so a tensor's scores do not depend on
    which other tensors are scored; with a Generator, tensors are drawn in mapping order.
    snip is normalised over all the given tensors together. ``hessian_diag`` = {name:
    diag(H)} is needed by obd (``nnprune.curvature_diag.hessian_diagonals`` computes it).
    """
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    reject_foreign(weights, "weights", "array")
    if criterion in NEEDS_CALIBRATION:
        raise ValueError(f"criterion {criterion!r} is not a score: it moves the weights it "
                         f"keeps; use prune_model(model, {criterion!r}, ..., calibration=(x, y))")
    check_mapping(weights, "weights", "name -> array")
    for name, w in weights.items():
        reject_foreign(w, f"weights[{name!r}]", "array")
    if criterion in NEEDS_GRADS:
        if grads is None:
            raise ValueError(f"criterion {criterion!r} needs grads (∂L/∂w for every weight)")
        check_mapping(grads, "grads", "name -> array")
        missing = [name for name in weights if name not in grads]
        if missing:
            raise ValueError(f"grads is missing {missing}: criterion {criterion!r} needs a "
                             f"gradient for every weight")
    for name, w in weights.items():  # every criterion: a NaN weight is a broken model
        check_finite(w, f"weight {name!r}")
        if criterion in NEEDS_GRADS:
            check_finite(grads[name], f"the gradient of weight {name!r}")
    if criterion in NEEDS_HESSIAN:
        return _obd_scores(weights, hessian_diag)
    if criterion == "magnitude":
        return {name: magnitude(w) for name, w in weights.items()}
    if criterion == "random":
        if seed is None:
            raise ValueError("criterion 'random' needs a seed (an int or a numpy Generator)")
        if isinstance(seed, np.random.Generator):
            return {name: random_scores(np.asarray(w), seed) for name, w in weights.items()}
        _rng(seed)  # validates the seed
        return {name: random_scores(np.asarray(w), np.random.default_rng(np.random.SeedSequence(
            int(seed), spawn_key=tuple(name.encode("utf-8"))))) for name, w in weights.items()}
    if criterion == "gradient":
        return {name: gradient(_pair(w, grads[name], f"weights[{name!r}]",
                                     f"grads[{name!r}]")[1]) for name, w in weights.items()}
    if criterion in ("taylor", "taylor2"):
        return {name: taylor(*_pair(w, grads[name], f"weights[{name!r}]", f"grads[{name!r}]"),
                             squared=criterion == "taylor2") for name, w in weights.items()}
    return snip(weights, {name: grads[name] for name in weights})


def _obd_scores(weights: Mapping[str, np.ndarray],
                hessian_diag: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """OBD: ½ h_jj w_j² per weight (``hessian.obd_saliency``), {name: (shape)}."""
    if not isinstance(hessian_diag, Mapping):
        raise ValueError("criterion 'obd' needs hessian_diag = {name: diagonal of the Hessian} "
                         "for every weight (nnprune.curvature_diag.hessian_diagonals)")
    missing = [name for name in weights if name not in hessian_diag]
    if missing:
        raise ValueError(f"hessian_diag is missing {missing}: criterion 'obd' needs the Hessian "
                         f"diagonal of every weight")
    out = {}
    for name, w in weights.items():
        w = check_scores(w, f"weights[{name!r}]")
        h = check_scores(hessian_diag[name], f"hessian_diag[{name!r}]")
        if h.shape != w.shape:
            raise ValueError(f"hessian_diag[{name!r}] must have the weight's shape {w.shape}, "
                             f"got {h.shape}")
        out[name] = obd_saliency(w, np.maximum(h, 0)).astype(w.dtype)
    return out
