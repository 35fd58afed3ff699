"""Surgery: whole filters and neurons physically removed, the model made smaller and dense.

Structured pruning masks whole filters; surgery cuts them out, so the dense layers that
remain really cost less, and the result computes exactly what the masked model computes.

>>> import numpy as np
>>> from nnprune import nn
>>> from nnprune.prune import attach_masks
>>> model = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.ReLU(), nn.Flatten(),
...                       nn.Linear(4 * 6 * 6, 2, rng=1))
>>> mask = np.ones((4, 1, 3, 3)); mask[[0, 2]] = 0
>>> attach_masks(model, {"0.weight": mask})
>>> mask_units(model)
{'0': array([0, 2])}
>>> small, report = shrink(model, (1, 8, 8))
>>> report.widths["0"], small[3].weight.shape
((4, 2), (2, 72))
"""
from nnprune.prune.surgery.cut import remove_filters, remove_neurons, shrink, shrink_groups
from nnprune.prune.surgery.dependency import (ChannelGroup, channel_groups, has_residual,
                                              prunable_groups)
from nnprune.prune.surgery.group_prune import GROUP_CRITERIA, group_scores_of, prune_groups
from nnprune.prune.surgery.report import SurgeryReport
from nnprune.prune.surgery.routes import Route, columns, find_route, layer_configs
from nnprune.prune.surgery.units import (dead_units, filter_keep, group_alive_of,
                                         group_keep_masks, mask_group_units, mask_units)

__all__ = [
    "Route", "find_route", "columns", "layer_configs",
    "ChannelGroup", "channel_groups", "prunable_groups", "has_residual",
    "filter_keep", "dead_units", "mask_units", "group_alive_of", "group_keep_masks",
    "mask_group_units", "GROUP_CRITERIA", "group_scores_of", "prune_groups",
    "remove_filters", "remove_neurons", "shrink", "shrink_groups", "SurgeryReport",
]
