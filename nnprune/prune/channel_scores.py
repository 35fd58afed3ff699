"""Filter (channel) criteria: one score per output unit of a layer. Arrays in, arrays out.

Higher = more important = kept. For a layer with F filters, w is (F, C, kh, kw) (a conv) or
(F, C) (a linear layer, whose "filters" are neurons) and w_f its f-th row:

=============== ========================================== ================================
criterion        S_f                                        source
=============== ========================================== ================================
l1_norm          ‖w_f‖₁ = Σ |w_f|                           Li et al. 2017
l2_norm          ‖w_f‖₂ = √Σ w_f²                           He et al. 2018 (soft filter p.)
fpgm             Σ_j ‖w_f − w_j‖₂ (distance to the others)  He et al. 2019 (geometric median)
bn_gamma         |γ_f| of the BatchNorm after the layer     Liu et al. 2017 (slimming)
taylor_group     (1/B) Σ_b (Σ_{j∈f} w_j g_{b,j})²           Molchanov et al. 2019
apoz             1 − APoZ_f: the fraction of non-zero       Hu et al. 2016
                 activations of channel f on a batch
mean_activation  mean_{n,h,w} |a_{n,f,h,w}|                 Molchanov et al. 2017
=============== ========================================== ================================

**FPGM.** A filter near the geometric median of its layer is the one the others can best
stand in for; unlike the norms, distances are blind to an offset common to every filter.

**Layer normalisation.** Scores of different layers do not share a scale (‖w_f‖₁ grows
with the fan-in, Taylor scores with depth): in a global ranking the layer with the smallest
scale loses most of its filters. ``normalise_layer`` puts each layer on a common scale.

>>> w = np.array([[1.0, 1.0], [1.0, 1.1], [-3.0, 0.0]])
>>> fpgm_scores(w).round(2)        # the two close filters are the redundant ones
array([4.22, 4.25, 8.27])
>>> filter_norm_scores(w, "l1")
array([2. , 2.1, 3. ])
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nnprune.checks import check_batches, check_choice, check_scores
from nnprune.prune.granularity import Granularity
from nnprune.prune.groups import group_scores

LAYER_NORMS = ("none", "l2", "max")
# the criteria of prune_model that score whole units (channel_criteria.py runs them)
CHANNEL_CRITERIA = ("l1_norm", "l2_norm", "fpgm", "bn_gamma", "taylor_group", "apoz",
                    "mean_activation")
NEEDS_DATA = ("taylor_group", "apoz", "mean_activation")  # they run the model on data
ROWS = Granularity("neuron")  # a group is a row w_f, parsed once


def _rows(w: np.ndarray, name: str = "w") -> np.ndarray:
    """A (F, C, ...) weight as float64 (F, D) rows."""
    w = check_scores(w, name)
    if w.ndim < 2:
        raise ValueError(f"{name} must be a weight (F, C, ...) with >= 2 dims, got shape "
                         f"{w.shape}")
    return w.reshape(w.shape[0], -1).astype(np.float64)


def filter_norm_scores(w: np.ndarray, norm: str = "l1") -> np.ndarray:
    """‖w_f‖₁ ("l1", Li et al. 2017) or ‖w_f‖₂ ("l2") per filter. (F, C, ...) -> (F,)."""
    return group_scores(_rows(w), ROWS, check_choice(norm, "norm", ("l1", "l2")))


def fpgm_scores(w: np.ndarray) -> np.ndarray:
    """FPGM (He et al. 2019): S_f = Σ_j ‖w_f − w_j‖₂, the summed distance to the other
    filters. (F, C, ...) -> (F,) float64; the lowest lie nearest the geometric median.

    The differences are taken row by row (one (F, D) block per filter) rather than from the
    Gram matrix ‖a‖² + ‖b‖² − 2a·b, whose cancellation turns equal filters' distance 0 into
    √(rounding) ≈ 1e-8.
    """
    rows = _rows(w)
    return np.array([np.sqrt(np.square(rows - row).sum(axis=1)).sum() for row in rows])


def bn_gamma_scores(gamma: np.ndarray) -> np.ndarray:
    """|γ_f| of a BatchNorm's scale (Liu et al. 2017). (F,) -> (F,) float64."""
    gamma = check_scores(gamma, "gamma")
    if gamma.ndim != 1:
        raise ValueError(f"gamma must be 1-D (F,), got shape {gamma.shape}")
    return np.abs(gamma).astype(np.float64)


def gate_gradient(w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """∂L/∂c_f = Σ_{j∈f} w_j g_j for a gate c_f scaling filter f. (F, ...), (F, ...) -> (F,)."""
    rows, grad = _rows(w, "w"), _rows(g, "g")
    if rows.shape != grad.shape:
        raise ValueError(f"w and g must have the same shape, got {np.shape(w)} and {np.shape(g)}")
    return (rows * grad).sum(axis=1)


def taylor_group_scores(w: np.ndarray, grads_per_batch: Sequence[np.ndarray]) -> np.ndarray:
    """Molchanov et al. 2019: S_f = (1/B) Σ_b (Σ_{j∈f} w_j g_{b,j})², g_b = ∂L_b/∂w of batch b.

    (F, ...), B × (F, ...) -> (F,) float64: the squared gate gradient averaged over batches.
    """
    check_batches(grads_per_batch)
    return np.mean([np.square(gate_gradient(w, g)) for g in grads_per_batch], axis=0)


def _channels(a: np.ndarray) -> np.ndarray:
    """(N, F) or (N, F, H, W) activations as float64 (F, N·H·W)."""
    a = check_scores(a, "activations")
    if a.ndim not in (2, 4):
        raise ValueError(f"activations must be (N, F) or (N, F, H, W), got shape {a.shape}")
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1).astype(np.float64)


def apoz_scores(activations: np.ndarray) -> np.ndarray:
    """1 − APoZ_f (Hu et al. 2016): the fraction of channel f's activations that are not zero.

    (N, F) or (N, F, H, W) (after the ReLU) -> (F,) float64 in [0, 1]; a channel that is
    almost always 0 scores near 0 and is pruned first.
    """
    return (_channels(activations) != 0).mean(axis=1)


def mean_activation_scores(activations: np.ndarray) -> np.ndarray:
    """mean |a| of each channel over the batch and positions (Molchanov et al. 2017).
    (N, F) or (N, F, H, W) -> (F,) float64."""
    return np.abs(_channels(activations)).mean(axis=1)


def normalise_layer(scores: np.ndarray, how: str = "l2") -> np.ndarray:
    """One layer's filter scores on a common scale: s / ‖s‖₂ ("l2", Molchanov et al. 2017),
    s / max s ("max"), or s ("none"). (F,) -> (F,) float64; all-zero scores stay zero.

    The order within the layer is unchanged; what changes is how the layer's scores compare
    with other layers' in a global ranking (see the module docstring).
    """
    check_choice(how, "layer_norm", LAYER_NORMS)
    s = check_scores(scores, "scores").astype(np.float64)
    if how == "none":
        return s
    peak = np.abs(s).max(initial=0.0)
    if peak == 0:
        return s
    s = s / peak  # divide by the largest first, so squaring tiny scores cannot underflow
    return s if how == "max" else s / np.sqrt(np.square(s).sum())
