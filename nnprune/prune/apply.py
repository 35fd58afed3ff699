"""Masks on a model: which weights are prunable, attaching masks, pruning a model in one call.

A model is reached only through the mask protocol: ``model.named_parameters()`` yields
``(name, p)`` where ``p.data`` is the array, ``p.mask`` is None or a 0/1 array of its shape,
``p.set_mask(mask)`` attaches a mask and zeroes the pruned entries, and ``p.remove_mask()``
drops the mask and keeps the zeros. Scores and masks come from the array core
(``scores.py``, ``masks.py``); this module only moves arrays between it and the model.

The prunable weights are the parameters named ``*.weight`` with ndim ≥ 2: conv weights
(F, C, kh, kw) and linear weights (out, in). Biases and BatchNorm's γ, β (1-D) are not pruned.

>>> import numpy as np
>>> from nnprune import nn
>>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
>>> report = prune_model(model, "magnitude", 0.5, exclude=["2.weight"])
>>> report.layers["0.weight"], report.layers["2.weight"]
((12, 6), (6, 0))
>>> sparsity_of(model, exclude=["2.weight"])
0.5
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from nnprune.foreign import reject_foreign
from nnprune.prune.groups import parse_granularity
from nnprune.prune.masks import check_mask, check_rounding, check_sparsity
from nnprune.prune.scope import global_topk_masks, layerwise_topk_masks
from nnprune.prune.report import PruneReport
from nnprune.checks import check_finite
from nnprune.prune.scores import CRITERIA, compute_scores

SCOPES = ("layer", "global")


def named_parameters(model: Any) -> dict[str, Any]:
    """Every parameter of ``model`` by name, through the protocol (``named_parameters()``)."""
    reject_foreign(model, "model", "model")
    if not callable(getattr(model, "named_parameters", None)):
        raise TypeError(f"model must have a named_parameters() method yielding (name, parameter), "
                        f"got {type(model).__name__}")
    return dict(model.named_parameters())


def _is_prunable(name: str, p: Any) -> bool:
    """A conv or linear weight: named ``weight`` or ``*.weight``, with ndim ≥ 2."""
    return (name == "weight" or name.endswith(".weight")) and np.ndim(p.data) >= 2


def _check_exclude(exclude: Iterable[str], prunable: Iterable[str]) -> tuple[str, ...]:
    """``exclude`` as a tuple of names, each of which must be a prunable weight of the model."""
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    prunable = list(prunable)
    for name in exclude:
        if not isinstance(name, str):
            raise TypeError(f"exclude must hold parameter names (str), got {name!r}")
        if name not in prunable:
            raise ValueError(f"exclude names {name!r}, which is not a prunable weight of the "
                             f"model; the prunable weights are {prunable}")
    return exclude


def exclude_io(names: Iterable[str], granularity: str, exclude: Iterable[str] = (),
               prune_io: bool = False) -> tuple[str, ...]:
    """``exclude`` plus the weight a structured granularity must not prune, unless ``prune_io``.

    ``names``: the prunable weights in model order. Whole output units of the last are the
    classes (``filter``/``neuron``), whole input channels of the first are the image's
    (``channel``); either is added once. Other granularities add nothing.

    >>> exclude_io(["0.weight", "3.weight", "9.weight"], "filter")
    ('9.weight',)
    """
    if not isinstance(prune_io, bool):
        raise TypeError(f"prune_io must be a bool, got {type(prune_io).__name__}")
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    names = list(names)
    if prune_io or not names or granularity not in ("filter", "neuron", "channel"):
        return exclude
    end = names[0 if granularity == "channel" else -1]
    return exclude if end in exclude else (*exclude, end)


def prunable_parameters(model: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The prunable parameters (conv and linear weights) by name, in model order, minus
    ``exclude``. An ``exclude`` name that is not a prunable weight is a ValueError."""
    params = {name: p for name, p in named_parameters(model).items() if _is_prunable(name, p)}
    exclude = _check_exclude(exclude, params)
    return {name: p for name, p in params.items() if name not in exclude}


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
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a mapping name -> 0/1 array, got {type(masks).__name__}")
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


def prune_model(model: Any, criterion: str = "magnitude",
                sparsity: float | Mapping[str, float] | None = 0.5,
                scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
                grads: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                min_keep: int = 1, prune_io: bool = False, *,
                rounding: str = "half_up", reduce: str = "l1", layer_norm: str = "none",
                data: Any = None, hessian_diag: Mapping[str, np.ndarray] | None = None,
                calibration: tuple[np.ndarray, np.ndarray] | None = None,
                obs: Any = None) -> PruneReport:
    """Score the prunable weights, build masks and attach them; returns what was reached.

    {name: (shape)} weights -> {name: (shape)} 0/1 masks, attached to the model.

    - ``criterion``: one of ``CRITERIA`` (see ``nnprune.prune.scores``); ``gradient``,
      ``taylor``, ``taylor2`` and ``snip`` need ``grads`` = {name: dL/dw} for every weight
      pruned (``nnprune.train.gradients`` computes them); ``random`` draws from ``seed``.
    - ``sparsity``: the target fraction of zeros; each tensor (``scope="layer"``) or all the
      pruned tensors together (``scope="global"``) end with k = ⌊sparsity·n + ½⌋ zeros, the
      zeros already masked counting toward k (they are pruned first and never revived).
      With an ``"N:M"`` granularity the sparsity is fixed at 1 − N/M: pass None or that value.
      A dict {weight name: sparsity} gives each weight its own target (layer scope only); the
      prunable weights it does not name are left as they are, like ``exclude``.
    - ``granularity``: ``weight``, ``kernel``, ``filter``, ``channel``, ``neuron`` or ``"N:M"``.
    - ``exclude``: prunable weight names left dense (e.g. the last layer).
    - ``min_keep``: global scope keeps at least this many entries (groups) in every layer,
      so no layer is emptied; layer scope prunes each layer to exactly its target.
    - ``prune_io``: whole output units of the last prunable weight (in model order: the output
      layer of a ``Sequential``) are classes, and whole input channels of the first are the
      image's channels. So ``filter``/``neuron`` granularity leaves the last weight dense and
      ``channel`` granularity the first, and the report lists them as excluded, unless
      ``prune_io=True``.
    - ``rounding``: how a sparsity becomes a count. "half_up" (default): k = ⌊s·n + ½⌋;
      "half_even": PyTorch's k = round(s·n), as ``torch.nn.utils.prune`` counts (0.25 of 10
      weights: 3 against 2), for masks identical to PyTorch's (see ``masks.prune_count``).
    - ``reduce``: how a group's entry scores add up, "l1" (Σ|s|) or "l2" (√Σs²).
    - filter criteria (``channel_criteria.CHANNEL_CRITERIA``: l1_norm, l2_norm, fpgm,
      bn_gamma, taylor_group, apoz, mean_activation) score whole units and need
      ``granularity="filter"`` or ``"neuron"``; taylor_group, apoz and mean_activation need
      ``data`` = (x, y), a sample of training inputs and labels (8 batches of 64 are used).
    - ``layer_norm``: "none", "l2" or "max": each layer's group scores divided by their L2
      norm or maximum before ranking (``channel_scores.normalise_layer``), so a global
      ranking compares filters of layers whose scores have different scales.
    - ``obd`` scores ½ h_jj w_j² from ``hessian_diag`` = {name: diag(H)}
      (``nnprune.curvature_diag.hessian_diagonals``), at any scope and granularity (a
      group's saliency is the sum over the group).
    - ``obs`` is layer-wise OBS (``layerwise.obs_prune_model``): ``calibration`` = (x, y),
      training inputs and their labels; ``obs`` a ``layerwise.ObsSettings`` (method
      "exact" or "sparsegpt", damping). It moves the weights it keeps, granularity
      ``weight`` or N:M.
    """
    from nnprune.prune import channel_criteria as cc

    if not isinstance(criterion, str) or criterion not in CRITERIA + cc.CHANNEL_CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of "
                         f"{CRITERIA + cc.CHANNEL_CRITERIA}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    check_rounding(rounding)
    g = parse_granularity(granularity)
    per_layer = isinstance(sparsity, Mapping)
    if per_layer:
        if scope != "layer":
            raise ValueError(f"a per-layer sparsity dict needs scope='layer' (global scope "
                             f"ranks all weights against one target), got scope={scope!r}")
        if isinstance(g, tuple):
            raise ValueError(f"granularity {granularity!r} fixes the sparsity of every layer "
                             f"at 1 - N/M: a per-layer sparsity dict does not apply")
        for name, value in sparsity.items():
            check_sparsity(value, f"sparsity[{name!r}]")
    elif isinstance(g, tuple):
        fixed = 1 - g[0] / g[1]
        if sparsity is not None and abs(check_sparsity(sparsity) - fixed) > 1e-12:
            raise ValueError(f"granularity {granularity!r} fixes sparsity at {fixed}, "
                             f"got sparsity={sparsity!r}; pass None or {fixed}")
        sparsity = fixed
    elif sparsity is None:
        raise ValueError(f"sparsity is required for granularity {granularity!r}")
    if not per_layer:
        sparsity = check_sparsity(sparsity)
    if isinstance(min_keep, bool) or not isinstance(min_keep, (int, np.integer)) or min_keep < 0:
        raise ValueError(f"min_keep must be an int >= 0, got {min_keep!r}")
    params = prunable_parameters(model)
    if not params:
        raise ValueError("the model has no prunable weights (parameters '*.weight' with ndim >= 2)")
    exclude = _check_exclude(exclude, params)
    exclude = exclude_io(params, granularity, exclude, prune_io)
    if grads is not None and not isinstance(grads, Mapping):
        raise TypeError(f"grads must be a mapping name -> dL/dw array, got {type(grads).__name__}")
    if reduce not in ("l1", "l2"):
        raise ValueError(f"reduce must be 'l1' or 'l2', got {reduce!r}")
    if layer_norm not in cc.cs.LAYER_NORMS:
        raise ValueError(f"layer_norm must be one of {cc.cs.LAYER_NORMS}, got {layer_norm!r}")
    by_unit = criterion in cc.CHANNEL_CRITERIA
    if (by_unit or layer_norm != "none") and g not in ("filter", "neuron", "channel"):
        raise ValueError(f"criterion {criterion!r} with layer_norm={layer_norm!r} ranks whole "
                         f"units: it needs granularity 'filter' or 'neuron', got {granularity!r}")
    if by_unit and g == "channel":
        raise ValueError(f"criterion {criterion!r} scores output units: use granularity "
                         f"'filter' or 'neuron', not 'channel'")

    pruned = {name: p.data for name, p in params.items()
              if name not in exclude and (not per_layer or name in sparsity)}
    for name, w in pruned.items():  # every criterion, obs included: NaN is a broken model
        check_finite(w, f"weight {name!r}")
    if criterion == "obs":
        if layer_norm != "none" or rounding != "half_up":
            raise ValueError("criterion 'obs' counts k = ⌊s·n + ½⌋ and spreads a global target "
                             "by its loss traces: layer_norm and rounding do not apply")
        return _obs(model, calibration, obs, sparsity, scope, granularity, exclude,
                    int(min_keep))
    old = {name: p.mask for name, p in params.items() if p.mask is not None}
    from nnprune.prune.surgery import has_residual, prune_groups

    if g in ("filter", "neuron") and has_residual(model):  # channels tied by skips
        masks, report = prune_groups(model, params, criterion, sparsity, scope, exclude,
                                     int(min_keep), layer_norm, reduce, data, seed,
                                     rounding=rounding)
        attach_masks(model, masks)
        return report
    if by_unit or layer_norm != "none":
        if by_unit:
            group = cc.unit_scores(model, criterion, list(pruned), data, seed=seed) \
                if pruned else {}
        else:
            group = cc.entry_group_scores(compute_scores(criterion, pruned, grads, seed,
                                                         hessian_diag), old,
                                          g, reduce) if pruned else {}
        masks, report = cc.ranked_group_masks(
            group, {name: p.data for name, p in params.items()}, old, sparsity, scope, g,
            exclude, int(min_keep), layer_norm, rounding=rounding)
        attach_masks(model, {name: masks[name] for name in pruned})
        return report
    scores = compute_scores(criterion, pruned, grads, seed, hessian_diag) if pruned else {}
    # an excluded weight is never ranked: the core only needs a placeholder of its shape
    scores = {name: scores[name] if name in scores else np.zeros(np.shape(p.data))
              for name, p in params.items()}
    if scope == "layer":
        masks, report = layerwise_topk_masks(scores, sparsity, old, exclude, granularity,
                                             reduce, rounding=rounding)
    else:
        masks, report = global_topk_masks(scores, sparsity, old, exclude, int(min_keep),
                                          granularity, reduce, rounding=rounding)
    attach_masks(model, {name: masks[name] for name in pruned})
    return report


def _obs(model, calibration, settings, sparsity, scope, granularity, exclude, min_keep):
    """``prune_model``'s criterion "obs": calibration checked, then ``obs_prune_model``."""
    from nnprune.prune.layerwise import ObsSettings, obs_prune_model

    if not (isinstance(calibration, tuple) and len(calibration) == 2):
        raise ValueError("criterion 'obs' needs calibration=(x, y): a few batches of training "
                         "inputs and their labels, run through the model layer by layer")
    settings = ObsSettings() if settings is None else settings
    if not isinstance(settings, ObsSettings):
        raise TypeError(f"obs must be a layerwise.ObsSettings or None, got "
                        f"{type(settings).__name__}")
    x, y = calibration
    return obs_prune_model(model, x, sparsity, scope, granularity, exclude, settings, y,
                           min_keep)
