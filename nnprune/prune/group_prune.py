"""``prune_model`` on models with Residual blocks: whole channel groups ranked and masked.

With filter (neuron) granularity a model holding ``nn.Residual`` blocks is pruned by channel
group (``dependency.channel_groups``): each group's channels are scored
(``group_surgery.group_scores_of``), k = ⌊s·G + ½⌋ of a group's G channels are pruned
(``scope="layer"``: per group) or of all prunable groups' channels together (``"global"``,
``min_keep`` channels kept per group, scores optionally normalised per group), and a pruned
channel loses the filter of **every** producer in its group at once. Then ``mask_units``
and ``shrink`` remove it. A group is named by its first producer; a per-layer sparsity dict
is keyed by that producer's weight name (``"0.weight"`` for the stem of a ResNet, whose
group also holds every block's last convolution of the first stage).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nnprune.prune import channel_scores as cs
from nnprune.prune.group_surgery import group_alive_of, group_keep_masks, group_scores_of, \
    prunable_groups
from nnprune.prune.report import PruneReport
from nnprune.prune.scope import global_topk_masks, layerwise_topk_masks


def prune_groups(model: Any, params: Mapping[str, Any], criterion: str, sparsity: Any,
                 scope: str, exclude: tuple[str, ...], min_keep: int, layer_norm: str,
                 reduce: str, data: Any, seed: int, *,
                 rounding: str = "half_up") -> tuple[dict[str, np.ndarray], PruneReport]:
    """({weight name: mask} of every producer pruned, PruneReport over the prunable weights).

    ``params``: the model's prunable parameters by name; the options are ``prune_model``'s,
    already checked.
    """
    groups = prunable_groups(model, exclude)
    if isinstance(sparsity, Mapping):
        names = {f"{g.name}.weight": g for g in groups}
        for name in sparsity:
            if name not in names:
                raise ValueError(f"sparsity names {name!r}, which does not start a prunable "
                                 f"channel group; the groups start at {list(names)}")
        groups = [g for g in groups if f"{g.name}.weight" in sparsity]
        sparsity = {g.name: sparsity[f"{g.name}.weight"] for g in groups}
    scores = group_scores_of(model, groups, criterion, data=data, seed=seed, reduce=reduce)
    alive = {g.name: group_alive_of(model, g).astype(np.float64) for g in groups}
    scores = {n: cs.normalise_layer(s * alive[n], layer_norm) for n, s in scores.items()}
    masks: dict[str, np.ndarray] = {}
    if groups:
        if scope == "layer":
            keep, _ = layerwise_topk_masks(scores, sparsity, alive, rounding=rounding)
        else:
            keep, _ = global_topk_masks(scores, sparsity, alive, (), min_keep,
                                        rounding=rounding)
        for g in groups:
            for name, mask in group_keep_masks(model, g, keep[g.name] > 0).items():
                old = params[name].mask
                masks[name] = mask if old is None else mask * old
    full = {name: masks.get(name, p.mask if p.mask is not None else np.ones(p.shape))
            for name, p in params.items()}
    skipped = tuple(name for name in params if name not in masks)
    return masks, PruneReport.from_masks(full, skipped,
                                         None if isinstance(sparsity, Mapping) else sparsity)
