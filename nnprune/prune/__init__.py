"""Pruning on arrays: scores, masks, granularity, scope, schedules, second order."""
from nnprune.prune.report import PruneReport
from nnprune.prune.masks import (check_sparsity, percentile_mask, prune_count, threshold_mask,
                                 topk_mask)
from nnprune.prune.groups import (expand_group_mask, granularity_mask, group_scores, nm_mask,
                                  parse_granularity)
from nnprune.prune.scope import global_threshold_masks, global_topk_masks, layerwise_topk_masks
from nnprune.prune.scores import (CRITERIA, compute_scores, gradient, magnitude, random_scores,
                                  snip, taylor)
from nnprune.prune.schedules import iterative_sparsities, lottery_sparsities, polynomial_sparsity
from nnprune.prune.hessian import obd_saliency, obs_prune, obs_saliency, obs_update

__all__ = [
    "PruneReport", "check_sparsity", "prune_count", "threshold_mask", "percentile_mask",
    "topk_mask", "group_scores", "expand_group_mask", "granularity_mask", "nm_mask",
    "parse_granularity", "global_topk_masks", "layerwise_topk_masks", "global_threshold_masks",
    "CRITERIA", "compute_scores", "magnitude", "random_scores", "gradient", "taylor", "snip",
    "polynomial_sparsity", "iterative_sparsities", "lottery_sparsities",
    "obd_saliency", "obs_saliency", "obs_update", "obs_prune",
]
