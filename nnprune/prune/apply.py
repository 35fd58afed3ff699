"""Masks on a model: which weights are prunable, attaching masks, pruning a model in one call.

A model is reached only through the mask protocol (``protocol.PrunableModel``). The
prunable weights are the parameters named ``*.weight`` with ndim ≥ 2: conv (F, C, kh, kw)
and linear (out, in); biases and BatchNorm's γ, β (1-D) are not pruned.

>>> import numpy as np
>>> from nnprune import nn
>>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
>>> report = prune_model(model, "magnitude", 0.5, exclude=["2.weight"])
>>> report.layers["0.weight"], report.layers["2.weight"]
((12, 6), (6, 0))
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from nnprune.checks import (check_bool, check_finite, check_known, check_mapping,
                            check_names)
from nnprune.foreign import reject_foreign
from nnprune.prune.granularity import as_granularity
from nnprune.prune.groups import group_scores
from nnprune.prune.masks import check_mask
from nnprune.prune.protocol import PrunableModel
from nnprune.prune.report import PruneReport
from nnprune.prune.scope import global_topk, layer_topk
from nnprune.prune.scores import compute_scores
from nnprune.prune.spec import SCOPES, ObsSettings, PruneSpec

__all__ = ["SCOPES", "named_parameters", "exclude_io", "prunable_parameters",
           "prunable_weights", "model_masks", "attach_masks", "make_permanent",
           "sparsity_report", "sparsity_of", "prune_model"]


def named_parameters(model: Any) -> dict[str, Any]:
    """Every parameter of ``model`` by name, through the protocol (``named_parameters()``)."""
    reject_foreign(model, "model", "model")
    if not callable(getattr(model, "named_parameters", None)):
        raise TypeError(f"model must have a named_parameters() method yielding (name, parameter), "
                        f"got {type(model).__name__}")
    return dict(model.named_parameters())


def exclude_io(names: Iterable[str], granularity: str, exclude: Iterable[str] = (),
               prune_io: bool = False) -> tuple[str, ...]:
    """``exclude`` plus the weight a structured granularity must not prune, unless ``prune_io``.

    ``names``: the prunable weights in model order; the weight added is the one
    ``Granularity.spares`` (the classes, or the image's channels), once.

    >>> exclude_io(["0.weight", "3.weight", "9.weight"], "filter")
    ('9.weight',)
    """
    check_bool(prune_io, "prune_io")
    exclude = check_names(exclude, "exclude")
    if prune_io:
        return exclude
    spared = as_granularity(granularity).spares(names)
    return exclude + tuple(name for name in spared if name not in exclude)


def prunable_parameters(model: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The prunable parameters (conv and linear weights) by name, in model order, minus
    ``exclude``. An ``exclude`` name that is not a prunable weight is a ValueError."""
    params = {name: p for name, p in named_parameters(model).items()  # conv, linear weights
              if (name == "weight" or name.endswith(".weight")) and np.ndim(p.data) >= 2}
    exclude = _check_exclude(exclude, params)
    return {name: p for name, p in params.items() if name not in exclude}


def _check_exclude(exclude: Iterable[str], prunable: Iterable[str]) -> tuple[str, ...]:
    """``exclude`` as a tuple of names, each of which must be a prunable weight of the model."""
    exclude = check_names(exclude, "exclude")
    check_known(exclude, prunable, "exclude", "a prunable weight of the model",
                "the prunable weights")
    return exclude


def prunable_weights(model: Any, exclude: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """{name: weight array} of the prunable weights: conv (F, C, kh, kw), linear (out, in).

    The arrays are the parameters' own ``.data`` (not copies): read them, do not write them.
    """
    return {name: p.data for name, p in prunable_parameters(model, exclude).items()}


def model_masks(model: Any) -> dict[str, np.ndarray]:
    """Copies of the masks attached to the model's parameters (parameters without a mask are
    left out): {name: 0/1 array of the parameter's shape}."""
    return {name: p.mask.copy() for name, p in named_parameters(model).items()
            if p.mask is not None}


def attach_masks(model: Any, masks: Mapping[str, np.ndarray]) -> None:
    """Attach ``masks`` to the parameters of the same names, composed with the masks already
    there: new = old ⊙ mask, so a pruned weight is never revived.

    Every name must be a parameter of the model and every mask a 0/1 array of its shape.
    All masks are checked before any is attached.
    """
    check_mapping(masks, "masks", "name -> 0/1 array")
    params = named_parameters(model)
    composed = {}
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks names {name!r}, which is not a parameter of the model; "
                             f"the parameters are {list(params)}")
        p = params[name]
        new = check_mask(mask, np.shape(p.data), f"masks[{name!r}]")
        composed[name] = new if p.mask is None else new * check_mask(p.mask, new.shape)
    for name, mask in composed.items():
        params[name].set_mask(mask)


def make_permanent(model: Any) -> list[str]:
    """Drop every mask and keep the zeros (``p.remove_mask()``); returns the names that had
    a mask. Afterwards the pruned weights are ordinary zeros: training may move them again."""
    names = []
    for name, p in named_parameters(model).items():
        if p.mask is not None:
            p.remove_mask()
            names.append(name)
    return names


def sparsity_report(model: Any, exclude: Iterable[str] = ()) -> PruneReport:
    """The zeros the prunable weights actually hold, per weight and overall (measured on the
    values, so it counts every zero, masked or not); ``exclude`` names are marked excluded."""
    params = prunable_parameters(model)
    exclude = _check_exclude(exclude, params)
    return PruneReport.from_masks({name: p.data != 0 for name, p in params.items()}, exclude)


def sparsity_of(model: Any, exclude: Iterable[str] = ()) -> float:
    """Zeros over entries of the prunable weights not in ``exclude``: a float in [0, 1]."""
    return sparsity_report(model, exclude).sparsity


_DEFAULTS = (0.5, "layer", "weight", (), 1, False, "half_up", "l1", "none", 0, None)


def prune_model(model: PrunableModel, criterion: str | PruneSpec = "magnitude",
                sparsity: float | Mapping[str, float] | None = 0.5,
                scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
                grads: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                min_keep: int = 1, prune_io: bool = False, *,
                rounding: str = "half_up", reduce: str = "l1", layer_norm: str = "none",
                data: Any = None, hessian_diag: Mapping[str, np.ndarray] | None = None,
                calibration: tuple[np.ndarray, np.ndarray] | None = None,
                obs: ObsSettings | None = None) -> PruneReport:
    """Score the prunable weights, build masks and attach them; returns what was reached.

    {name: (shape)} weights -> {name: (shape)} 0/1 masks, attached to the model.

    How to prune is a ``PruneSpec``: pass one as ``criterion``, or its fields (criterion,
    sparsity, scope, granularity, exclude, seed, min_keep, prune_io, rounding, reduce,
    layer_norm, obs; see ``nnprune.prune.spec``) as arguments; they are checked once, here.
    Each pruned tensor (``scope="layer"``) or all of them together (``"global"``) end with
    k = ⌊sparsity·n + ½⌋ zeros, the zeros already masked counting toward k (pruned first,
    never revived). The weights ``spec.exclusions`` names stay dense.

    What the criteria read besides the weights: ``grads`` = {name: dL/dw} (gradient, taylor,
    taylor2, snip; ``nnprune.train.gradients``), ``data`` = (x, y) (taylor_group, apoz,
    mean_activation: a training sample, 8 batches of 64 used), ``hessian_diag`` =
    {name: diag(H)} (obd: ½ h_jj w_j², summed over a group), ``calibration`` = (x, y)
    (obs: layer-wise OBS, ``layerwise.obs_prune_model``, which moves the weights it keeps).
    """
    fields = (sparsity, scope, granularity, exclude, min_keep, prune_io, rounding, reduce,
              layer_norm, seed, obs)
    if isinstance(criterion, PruneSpec) and fields != _DEFAULTS:
        raise TypeError("prune_model takes a PruneSpec or the fields of one, not both: "
                        "change the spec with spec.replace(...)")
    spec = criterion if isinstance(criterion, PruneSpec) else PruneSpec(criterion, *fields)
    params = prunable_parameters(model)
    if not params:
        raise ValueError("the model has no prunable weights (parameters '*.weight' with ndim >= 2)")
    targets = spec.targets(params)
    if grads is not None:
        check_mapping(grads, "grads", "name -> dL/dw array")
    for name in targets:  # every criterion, obs included: NaN is a broken model
        check_finite(params[name].data, f"weight {name!r}")
    if spec.criterion == "obs":
        from nnprune.prune.layerwise import prune_obs

        if not (isinstance(calibration, tuple) and len(calibration) == 2):
            raise ValueError("criterion 'obs' needs calibration=(x, y): a few batches of "
                             "training inputs and their labels, run through the model layer "
                             "by layer")
        return prune_obs(model, spec, *calibration, targets)
    masks, report = _masks(model, params, spec, targets, grads, data, hessian_diag)
    attach_masks(model, masks)
    return report


def _masks(model, params, spec, targets, grads, data, hessian_diag):
    """({name: mask}, PruneReport) of ``prune_model``'s scoring criteria, arguments checked."""
    from nnprune.prune import channel_criteria as cc
    from nnprune.prune.surgery import has_residual, prune_groups

    g, weights = spec.granularity, {name: p.data for name, p in params.items()}
    old = {name: p.mask for name, p in params.items() if p.mask is not None}
    pruned = {name: weights[name] for name in targets}
    if g.units and has_residual(model):  # channels tied by skips
        return prune_groups(model, params, spec, data)  # all
    if spec.criterion in cc.CHANNEL_CRITERIA:
        group = cc.unit_scores(model, spec.criterion, list(pruned), data, seed=spec.seed) \
            if pruned else {}
        return _only(targets, *cc.ranked_group_masks(group, weights, old, spec, targets))
    scores = compute_scores(spec.criterion, pruned, grads, spec.seed, hessian_diag) \
        if pruned else {}
    if spec.layer_norm != "none":
        group = {name: group_scores(s * old[name] if name in old else s, g, spec.reduce)
                 for name, s in scores.items()}
        return _only(targets, *cc.ranked_group_masks(group, weights, old, spec, targets))
    # an excluded weight is never ranked: the core only needs a placeholder of its shape
    arrays = {name: scores[name] if name in scores else np.zeros(np.shape(w))
              for name, w in weights.items()}
    olds = {name: check_mask(old.get(name), np.shape(a), f"masks[{name!r}]", a.dtype)
            for name, a in arrays.items()}
    if spec.scope == "layer" or g.is_nm:  # N:M ranks within each group of m: no scope
        masks = layer_topk(arrays, olds, targets, g, spec.reduce, spec.rounding)
    else:
        masks = global_topk(arrays, olds, list(targets), spec.target, g, spec.reduce,
                            spec.rounding, spec.min_keep)
    skipped = [name for name in params if name not in targets]
    return _only(targets, masks, PruneReport.from_masks(masks, skipped, spec.target))


def _only(targets, masks, report):
    """The masks of the weights pruned (the others keep theirs), and the report."""
    return {name: masks[name] for name in targets}, report

