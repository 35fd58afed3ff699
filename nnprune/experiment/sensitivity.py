"""Sensitivity analysis (Li et al. 2017, Fig. 2): how much each layer tolerates alone.

Each prunable layer (with filter granularity in a Residual model: each channel group) is
pruned **alone**, without fine-tuning, at every ratio of a grid, one accuracy curve per layer.
Each layer may then be pruned by the largest ratio r of the grid such that every ratio up to
r keeps the accuracy within ``tolerance`` of the dense model's,

    r_ℓ = max { r : acc_ℓ(r') ≥ acc_dense − tolerance for every grid ratio r' ≤ r }.

Pruning all layers at once at their r_ℓ costs more than any one of them (the losses add up
roughly), which fine-tuning then recovers. A sensitivity file (``write_sensitivity``, format
"nnprune.sensitivity") holds the curves and the ``ratios`` {layer: r_ℓ} that ``nnprune prune
--sparsity FILE`` reads.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune import train
from nnprune.checks import check_known, check_sparsity
from nnprune.experiment.report import write_json
from nnprune.experiment.runs import clone_model
from nnprune.prune.apply import exclude_io, prunable_parameters, prune_model
from nnprune.prune.surgery import has_residual, prunable_groups

FORMAT = "nnprune.sensitivity"
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def sensitivity_layers(model: Any, granularity: str = "filter") -> list[str]:
    """The names the analysis prunes one at a time (see the module doc)."""
    if granularity in ("filter", "neuron") and has_residual(model):
        return [f"{g.name}.weight" for g in prunable_groups(model)]
    names = list(prunable_parameters(model))
    excluded = exclude_io(names, granularity)
    return [n for n in names if n not in excluded]


def layer_sensitivity(model: Any, data: tuple[np.ndarray, np.ndarray], *,
                      ratios: Sequence[float] = RATIOS, criterion: str = "l1_norm",
                      granularity: str = "filter", layers: Sequence[str] | None = None,
                      train_data: tuple[np.ndarray, np.ndarray] | None = None,
                      seed: int = 0) -> dict[str, Any]:
    """Accuracy on ``data`` = (x, y) with each layer alone pruned at each ratio, no fine-tuning.

    {layer: (shape)} -> {"accuracy_dense": float, "curves": {layer: [[ratio, accuracy], ...]}}
    with the ratios sorted and 0 first. ``model`` is not changed (each run prunes a copy).
    ``train_data`` feeds the criteria that run the model (taylor_group, apoz, ...).
    """
    if not isinstance(ratios, Sequence) or isinstance(ratios, str) or not ratios:
        raise ValueError(f"ratios must be a non-empty list of fractions, got {ratios!r}")
    grid = sorted({0.0, *(check_sparsity(r, "ratios") for r in ratios)})
    known = sensitivity_layers(model, granularity)
    names = known if layers is None else list(layers)
    check_known(names, known, "layers", "a layer to analyse", "the layers to analyse")
    dense = float(train.evaluate(model, data)["accuracy"])
    curves = {}
    for name in names:
        curve = []
        for r in grid:
            if r == 0.0:
                curve.append([0.0, dense])  # nothing pruned: the dense model itself
                continue
            pruned = clone_model(model)
            prune_model(pruned, criterion, {name: r}, "layer", granularity, seed=seed,
                        data=train_data)
            curve.append([r, float(train.evaluate(pruned, data)["accuracy"])])
        curves[name] = curve
    return {"criterion": criterion, "granularity": granularity, "accuracy_dense": dense,
            "curves": curves}


def tolerated_ratios(curves: Mapping[str, Sequence[Sequence[float]]], accuracy_dense: float,
                     tolerance: float) -> dict[str, float]:
    """r_ℓ per layer: the largest grid ratio up to which the accuracy stays ≥ dense − tolerance
    (see the module doc); 0.0 when even the smallest ratio costs more."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
            or not 0 <= tolerance <= 1 or math.isnan(tolerance):
        raise ValueError(f"tolerance must be an accuracy drop in [0, 1] (0.01 = 1 point), "
                         f"got {tolerance!r}")
    out = {}
    for name, curve in curves.items():
        best = 0.0
        for ratio, acc in sorted(curve):
            if acc < accuracy_dense - tolerance - 1e-12:
                break
            best = float(ratio)
        out[name] = best
    return out


def write_sensitivity(path: str | os.PathLike, result: Mapping[str, Any],
                      tolerance: float) -> Path:
    """The sensitivity file: ``result`` of ``layer_sensitivity`` plus the tolerated ratios."""
    ratios = tolerated_ratios(result["curves"], result["accuracy_dense"], tolerance)
    return write_json(path, {"format": FORMAT, **result, "tolerance": tolerance,
                             "ratios": ratios})


def read_ratios(path: str | os.PathLike) -> dict[str, float]:
    """{layer: ratio} from a sensitivity file (its ``ratios``), checked."""
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable sensitivity file: {err}") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT \
            or not isinstance(content.get("ratios"), dict):
        raise ValueError(f"{path}: not a sensitivity file written by 'nnprune sensitivity' "
                         f"(no format {FORMAT!r} with ratios)")
    return {str(k): check_sparsity(v, f"ratios[{k!r}]") for k, v in content["ratios"].items()}
