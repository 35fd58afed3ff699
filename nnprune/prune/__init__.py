"""Pruning: scores, masks, granularity and scope on arrays (nothing here needs
``nnprune.nn``), and on any model through the mask protocol (``protocol.py``)::

    scores = compute_scores("magnitude", weights)            # {name: |w|}
    masks, report = global_topk_masks(scores, 0.9)           # {name: 0/1}, what was reached
"""
from nnprune.prune.report import PruneReport
from nnprune.prune.masks import (ROUNDINGS, check_mask, check_rounding, check_scores,
                                 check_sparsity, percentile_mask, prune_count, threshold_mask,
                                 topk_mask)
from nnprune.prune.scope import global_threshold_masks, global_topk_masks, layerwise_topk_masks
from nnprune.prune.groups import (GRANULARITIES, REDUCTIONS, expand_group_mask, granularity_mask,
                                  group_alive, group_scores, nm_mask, parse_granularity,
                                  reduced_axes)
from nnprune.prune.scores import (CRITERIA, NEEDS_GRADS, accumulate_taylor, compute_scores,
                                  gradient, magnitude, random_scores, snip, taylor)
from nnprune.prune.schedules import (KINDS, Gradual, iterative_sparsities, lottery_rate,
                                     lottery_sparsities, polynomial_sparsity)
from nnprune.prune.hessian import obd_saliency, obs_prune, obs_saliency, obs_update
from nnprune.prune.apply import (attach_masks, exclude_io, make_permanent, model_masks,
                                 prunable_parameters, prunable_weights, prune_model, sparsity_of,
                                 sparsity_report)
from nnprune.prune.pruner import Pruner
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.finetune import l1_regularizer, l2_regularizer, rescale_dropout
from nnprune.prune.surgery import (SurgeryReport, dead_units, filter_keep, mask_units,
                                   remove_filters, remove_neurons, shrink)
from nnprune.prune.channel_scores import (LAYER_NORMS, apoz_scores, bn_gamma_scores,
                                          filter_norm_scores, fpgm_scores, gate_gradient,
                                          mean_activation_scores, normalise_layer,
                                          taylor_group_scores)
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA, NEEDS_DATA, unit_scores
from nnprune.prune.obc import obc_prune, obc_traces, refit_rows, select_counts
from nnprune.prune.sparsegpt import sparsegpt
from nnprune.prune.layerwise import ObsSettings, obs_prune_model
from nnprune.prune.granularity import Granularity
from nnprune.prune.spec import PruneSpec
from nnprune.prune.protocol import LayeredModel, PrunableModel, PrunableParameter

__all__ = [
    "PruneReport", "check_sparsity", "check_scores", "check_mask", "prune_count", "threshold_mask",
    "percentile_mask", "topk_mask", "layerwise_topk_masks", "global_topk_masks",
    "global_threshold_masks", "GRANULARITIES", "REDUCTIONS", "parse_granularity", "reduced_axes",
    "group_scores", "group_alive", "expand_group_mask", "nm_mask", "granularity_mask", "CRITERIA",
    "NEEDS_GRADS", "magnitude", "random_scores", "gradient", "taylor", "accumulate_taylor", "snip",
    "compute_scores", "KINDS", "polynomial_sparsity", "iterative_sparsities", "lottery_sparsities",
    "lottery_rate", "Gradual", "obd_saliency", "obs_saliency", "obs_update", "obs_prune",
    "prunable_weights", "prunable_parameters", "exclude_io", "attach_masks", "model_masks",
    "make_permanent", "prune_model", "sparsity_of", "sparsity_report", "Pruner", "snapshot",
    "rewind", "prune_round", "round_sparsity", "l1_regularizer", "l2_regularizer",
    "rescale_dropout", "filter_keep", "remove_filters", "remove_neurons", "shrink",
    "SurgeryReport", "dead_units", "mask_units", "ROUNDINGS", "check_rounding", "LAYER_NORMS",
    "filter_norm_scores", "fpgm_scores", "bn_gamma_scores", "gate_gradient", "taylor_group_scores",
    "apoz_scores", "mean_activation_scores", "normalise_layer", "CHANNEL_CRITERIA", "NEEDS_DATA",
    "unit_scores", "obc_prune", "obc_traces", "refit_rows", "select_counts", "sparsegpt",
    "ObsSettings", "obs_prune_model", "Granularity", "PruneSpec", "PrunableModel",
    "PrunableParameter", "LayeredModel",
]
