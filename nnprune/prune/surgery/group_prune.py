"""``prune_model``'s filter granularity on models with Residual blocks: each channel group
(``dependency``) is scored per channel and ranked by the same top-k as every granularity; a
pruned channel loses the filter of **every** producer in its group. A group is named, and a
per-layer sparsity keyed, by its first producer's weight (``"0.weight"`` for a ResNet's stem,
whose group also holds every first-stage block's last convolution).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nnprune.checks import check_known
from nnprune.prune import channel_scores as cs
from nnprune.prune.granularity import WEIGHT
from nnprune.prune.groups import group_scores
from nnprune.prune.report import PruneReport
from nnprune.prune.scope import global_topk, layer_topk
from nnprune.prune.spec import PruneSpec
from nnprune.prune.surgery.dependency import ChannelGroup, prunable_groups
from nnprune.prune.surgery.units import FILTER, group_alive_of, group_keep_masks

GROUP_CRITERIA = ("l1_norm", "l2_norm", "fpgm", "bn_gamma", "taylor_group", "magnitude",
                  "random")


def group_scores_of(model: Any, groups: list[ChannelGroup], criterion: str, *,
                    data: Any = None, seed: int = 0, reduce: str = "l1",
                    num_batches: int = 8) -> dict[str, np.ndarray]:
    """{group name: (width,) float64}: one score per channel of each group, the producers'
    filter scores added up (L1: Σ_p ‖w_p[c]‖₁; L2: √Σ_p ‖w_p[c]‖₂²; FPGM, BatchNorm |γ|:
    summed over the producers / norms; group Taylor: a gate on channel c scales every
    producer's filter c, so ∂L/∂gate = Σ_p Σ w_p[c]·g_p[c] is squared per batch and averaged).
    """
    if criterion not in GROUP_CRITERIA:
        raise ValueError(f"criterion {criterion!r} cannot score channel groups tied by a "
                         f"residual connection; choose one of {GROUP_CRITERIA}")
    modules = dict(model.named_modules())
    w = {p: modules[p].weight.data for g in groups for p in g.producers}
    if criterion == "random":
        rng = np.random.default_rng(seed)
        return {g.name: rng.random(g.width) for g in groups}
    if criterion == "bn_gamma":
        for g in groups:
            if not g.norms or any(modules[n].weight is None for n in g.norms):
                raise ValueError(f"criterion 'bn_gamma' needs an affine BatchNorm on the "
                                 f"channels of {g.name!r}")
        return {g.name: sum(cs.bn_gamma_scores(modules[n].weight.data) for n in g.norms)
                for g in groups}
    if criterion == "taylor_group":
        from nnprune.prune.channel_criteria import sample_batches, check_sample
        from nnprune.train import gradients

        batches = sample_batches(check_sample(data, criterion), 64, num_batches, seed)
        grads = [gradients(model, b, batch_size=len(b[1])) for b in batches]
        return {g.name: np.mean([np.square(sum(cs.gate_gradient(w[p], gb[f"{p}.weight"])
                                               for p in g.producers)) for gb in grads], axis=0)
                for g in groups}
    if criterion == "fpgm":
        return {g.name: sum(cs.fpgm_scores(w[p]) for p in g.producers) for g in groups}
    norm = {"l1_norm": "l1", "l2_norm": "l2"}.get(criterion, reduce)
    if norm == "l1":
        return {g.name: sum(group_scores(np.abs(w[p]), FILTER, "l1") for p in g.producers)
                for g in groups}
    return {g.name: np.sqrt(sum(np.square(group_scores(w[p], FILTER, "l2"))
                                for p in g.producers)) for g in groups}


def prune_groups(model: Any, params: Mapping[str, Any], spec: PruneSpec,
                 data: Any = None) -> tuple[dict[str, np.ndarray], PruneReport]:
    """({weight name: mask} of every producer pruned, PruneReport over the prunable weights).

    ``params``: the model's prunable parameters by name; ``spec``: how to prune, checked
    where it was made (its sparsity and granularity are trusted here).
    """
    groups = prunable_groups(model, tuple(spec.exclusions(params)))
    sparsity = spec.sparsity
    if spec.per_layer:
        check_known(sparsity, [f"{g.name}.weight" for g in groups], "sparsity",
                    "the first weight of a prunable channel group", "those weights")
        groups = [g for g in groups if f"{g.name}.weight" in sparsity]
    scores = group_scores_of(model, groups, spec.criterion, data=data, seed=spec.seed,
                             reduce=spec.reduce)
    alive = {g.name: group_alive_of(model, g).astype(np.float64) for g in groups}
    scores = {n: cs.normalise_layer(s * alive[n], spec.layer_norm) for n, s in scores.items()}
    targets = {g.name: sparsity[f"{g.name}.weight"] if spec.per_layer else sparsity
               for g in groups}
    # one score per channel: the groups' channels are ranked as single weights
    if spec.scope == "layer":
        keep = layer_topk(scores, alive, targets, WEIGHT, "l1", spec.rounding)
    else:
        keep = global_topk(scores, alive, list(targets), sparsity, WEIGHT, "l1",
                           spec.rounding, spec.min_keep)
    masks: dict[str, np.ndarray] = {}
    for g in groups:
        for name, mask in group_keep_masks(model, g, keep[g.name] > 0).items():
            old = params[name].mask
            masks[name] = mask if old is None else mask * old
    full = {name: masks.get(name, p.mask if p.mask is not None else np.ones(p.shape))
            for name, p in params.items()}
    skipped = tuple(name for name in params if name not in masks)
    return masks, PruneReport.from_masks(full, skipped, spec.target)
