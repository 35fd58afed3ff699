"""A pruning run by schedule name (``SCHEDULES``), as ``nnprune prune`` runs it: the options
checked against the schedule, the workflow chosen, dead units masked whole and cut out.

With ``shrink`` every dead unit is masked whole right after each pruning step
(``prune.mask_units``), so it outputs exactly 0 while the model fine-tunes; ``shrink_pruned``
then cuts the dead units out (``prune.shrink``): the smaller dense model computes what the
masked one computes, up to float32 summation order.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.experiment import workflows
from nnprune.experiment.runs import accuracy
from nnprune.experiment.second_order import SECOND_ORDER, SecondOrder
from nnprune.experiment.workflows import SLIMMING  # noqa: F401  (the CLI's)
from nnprune.prune import mask_units, shrink
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA
from nnprune.prune.granularity import NM_TOLERANCE, Granularity, as_granularity
from nnprune.prune.spec import PruneSpec
from nnprune.train import TrainSpec

SCHEDULES = ("oneshot", "iterative", "gradual", "init", "lottery", "slimming")
SHRINK_GRANULARITIES = ("filter", "neuron", "channel")
SHRINK_SCHEDULES = ("oneshot", "iterative")
UNIT_SCHEDULES = ("oneshot", "iterative", "slimming")  # the filter criteria and layer_norm


class OptionError(ValueError):
    """Options each valid alone that do not go together; ``option`` names the one refused."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def check_schedule(schedule: str, *, criterion: str, granularity: Granularity | str,
                   sparsity: Any, scope: str, layer_norm: str, epochs: int,
                   shrink: bool = False) -> None:
    """Refuse, before any work, options that ``schedule`` (one of ``SCHEDULES``) cannot
    honour: an ``OptionError`` naming the option."""
    granularity = as_granularity(granularity)
    if shrink and granularity not in SHRINK_GRANULARITIES:
        what = ({"weight": "single weights", "kernel": "single kh×kw kernels"}.get(
            granularity.kind) or f"{granularity.m - granularity.n} of every "
                                 f"{granularity.m} consecutive weights")
        raise OptionError("shrink", f"{granularity} granularity prunes {what}, and "
                          f"unstructured zeros cannot be cut out of a layer; use "
                          f"--granularity filter, neuron or channel")
    if shrink and schedule not in SHRINK_SCHEDULES + ("slimming",):
        raise OptionError("shrink", f"works with the oneshot and iterative schedules, which "
                          f"mask dead units whole between pruning and fine-tuning, not with "
                          f"{schedule} (gradual prunes during training; init and lottery "
                          f"train again from the initial weights)")
    if criterion in CHANNEL_CRITERIA and granularity not in ("filter", "neuron"):
        raise OptionError("criterion", f"{criterion} scores whole filters or neurons; use "
                          f"--granularity filter or neuron, not {granularity}")
    if layer_norm != "none" and granularity not in SHRINK_GRANULARITIES:
        raise OptionError("layer_norm", f"normalises the scores of whole units; use "
                          f"--granularity filter, neuron or channel, not {granularity}")
    if (criterion in CHANNEL_CRITERIA or layer_norm != "none") and \
            schedule not in UNIT_SCHEDULES:
        raise OptionError("", f"the filter criteria and --layer-norm work with the oneshot and "
                          f"iterative schedules, not with {schedule}")
    if isinstance(sparsity, dict) and (schedule != "oneshot" or scope != "layer"):
        raise OptionError("sparsity", f"a per-layer sparsity works with the oneshot schedule "
                          f"and layer scope, not {schedule} / {scope}")
    if epochs < 1 and schedule in ("gradual", "init", "lottery"):
        raise OptionError("finetune_epochs", f"the {schedule} schedule trains while or after "
                          f"it prunes: give 1 or more, got {epochs}")
    fixed = granularity.fixed_sparsity
    if fixed is not None and sparsity is not None and \
            abs(sparsity - fixed) > NM_TOLERANCE:
        raise OptionError("sparsity", f"{granularity} granularity keeps {granularity.n} of "
                          f"every {granularity.m} weights, which fixes the sparsity at "
                          f"{fixed:g}: leave --sparsity out, got {sparsity:g}")
    if criterion in SECOND_ORDER and schedule not in SHRINK_SCHEDULES:
        raise OptionError("criterion", f"{criterion} runs with the oneshot and iterative "
                          f"schedules, not {schedule}")


def run_schedule(model: Any, data: Any, schedule: str, prune: PruneSpec, train: TrainSpec, *,
                 rounds: int = 3, kind: str = "geometric", shrink: bool = False,
                 strength: float = 1e-4, sparse_epochs: int = 5,
                 second_order: SecondOrder | None = None,
                 model_name: str = "model") -> dict[str, Any]:
    """Run the workflow of ``schedule`` (see the module docstring) on ``model`` in place;
    its record. ``rounds`` and ``kind``: iterative and lottery; ``strength`` and
    ``sparse_epochs``: slimming; ``shrink``: dead units masked whole after each pruning step
    (``dead_units`` {layer: count} in the record, or in each of its ``rounds``)."""
    common = {"model_name": model_name}
    if schedule == "slimming":  # mask_units is part of the schedule
        return workflows.slimming(model, data, sparsity=prune.sparsity, strength=strength,
                                  sparse_epochs=sparse_epochs, min_keep=prune.min_keep,
                                  exclude=prune.exclude, train=train, **common)
    if prune.criterion in SECOND_ORDER:
        common["second_order"] = second_order
    if shrink:
        common["after_prune"] = mask_units
    own = {"iterative": {"rounds": rounds, "kind": kind}, "lottery": {"rounds": rounds}}
    run = {"oneshot": workflows.oneshot, "iterative": workflows.iterative,
           "gradual": workflows.gradual, "init": workflows.at_init,
           "lottery": workflows.lottery}[schedule]
    result = run(model, data, prune, train, **common, **own.get(schedule, {}))
    if shrink:
        for step in result.get("rounds", [result]):  # {layer: dead indices} -> {layer: count}
            step["dead_units"] = {k: len(v) for k, v in step.pop("after_prune").items()}
    return result


def shrink_pruned(model: Any, data: Any, result: dict[str, Any]) -> tuple[Any, Any, int]:
    """Cut the dead units out of the unit-masked ``model`` (``prune.shrink``) and add
    ``shrunk_params``, ``shrunk_macs`` (dense, per image), ``accuracy_shrunk``, ``widths``
    ({layer: [before, after]}) and ``kept_units`` ({layer: kept indices}) to ``result``.
    Returns (the new model with its all-ones masks dropped, the SurgeryReport, the weights
    still masked: those reading channels pruned only in part)."""
    small, report = shrink(model, tuple(data.input_shape))
    left = 0
    for p in small.parameters():  # a mask that keeps all its entries goes
        if p.mask is not None and np.all(p.mask != 0):
            p.remove_mask()
        elif p.mask is not None:
            left += int(np.count_nonzero(p.mask == 0))
    surgery = report.to_dict()
    result.update(shrunk_params=report.params[1], shrunk_macs=report.macs[1],
                  accuracy_shrunk=accuracy(small, data), widths=surgery["widths"],
                  kept_units=surgery["keep"])
    return small, report, left
