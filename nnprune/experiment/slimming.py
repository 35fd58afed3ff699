"""The network-slimming schedule (Liu et al. 2017) as one workflow returning a result record.

train with λ Σ|γ| on every BatchNorm scale (``sparse_epochs``) → prune the fraction
``sparsity`` of all channels with the smallest |γ| (one global threshold, ``bn_gamma`` at
filter granularity) → ``mask_units`` (each pruned channel silenced whole) → fine-tune
(``finetune_epochs``, no penalty) — after which ``prune.shrink`` cuts the channels out
exactly (``nnprune prune --schedule slimming --shrink`` does). See ``prune.slimming``.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

from nnprune.experiment.runs import (Recipe, Regularizer, accuracy, check_int, check_options,
                                     fit_model, record)
from nnprune.prune.apply import prunable_parameters, prune_model
from nnprune.prune.slimming import bn_gammas, bn_l1_regularizer, without_gamma
from nnprune.prune.units import mask_units


def slimming(model: Any, data: Any, *, sparsity: float = 0.5, strength: float = 1e-4,
             sparse_epochs: int = 5, finetune_epochs: int = 2, lr: float = 0.02,
             optimizer: str = "sgd", batch_size: int = 64, seed: int = 0, quiet: bool = True,
             model_name: str = "model", min_keep: int = 1, exclude: Iterable[str] = (),
             regularizer: Regularizer | None = None, weight_decay: float = 0.0,
             lr_schedule: str | None = None, **_: Any) -> dict[str, Any]:
    """Network slimming on ``model`` in place (masks attached, units masked whole).

    ``strength``: λ of the L1 penalty on the γ's (Liu et al.: 10⁻⁴); ``sparsity``: the
    fraction of channels pruned, globally. The record (``runs.record``, criterion
    ``bn_gamma``, scope global, granularity filter, schedule ``slimming``) adds
    ``strength``, ``sparse_epochs``, ``accuracy_sparse_trained`` (after the sparse training,
    before pruning), ``small_gammas`` (fraction of |γ| < 10⁻² then) and ``dead_units``
    ({layer or channel group: channels silenced}). ``accuracy_dense``: ``model`` as given.
    ``regularizer``: a penalty for the fine-tuning only; ``weight_decay`` and
    ``lr_schedule`` (see ``runs.fit_model``) apply to both trainings. Options other workflows take and
    slimming fixes (criterion, scope, granularity) are ignored if passed. Layers whose
    channels meet no BatchNorm are left dense and recorded in ``exclude``.
    """
    start = time.perf_counter()
    penalty = bn_l1_regularizer(strength)
    exclude = check_options(model, data, "bn_gamma", sparsity, "global", "filter", exclude,
                            finetune_epochs, 0, lr, optimizer, batch_size, regularizer)
    check_int("sparse_epochs", sparse_epochs, 1)
    recipe = Recipe.of(weight_decay, lr_schedule)
    if not bn_gammas(model):
        raise ValueError("network slimming needs BatchNorm layers with a scale γ after the "
                         "convolutions; the model has none (e.g. use vgg16 or resnet20)")
    exclude += tuple(without_gamma(model, [n for n in prunable_parameters(model)
                                           if n not in exclude]))
    dense = accuracy(model, data)
    fit_model(model, data, epochs=sparse_epochs, lr=lr, optimizer=optimizer,
              batch_size=batch_size, seed=seed, quiet=quiet, desc="sparse γ",
              regularizer=penalty, **recipe.fit)
    sparse = accuracy(model, data)
    gammas = np.concatenate([np.abs(g.data).ravel() for g in bn_gammas(model).values()])
    prune_model(model, "bn_gamma", sparsity, "global", "filter", exclude, min_keep=min_keep)
    dead = {k: len(v) for k, v in mask_units(model).items()}
    before, after = accuracy(model, data), None
    if finetune_epochs:
        fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                  batch_size=batch_size, seed=seed, quiet=quiet, desc="fine-tune",
                  regularizer=regularizer, **recipe.fit)
        after = accuracy(model, data)
    return record(model, data, schedule="slimming", model_name=model_name,
                  criterion="bn_gamma", scope="global", granularity="filter",
                  sparsity=float(sparsity), exclude=exclude, finetune_epochs=finetune_epochs,
                  lr=lr, optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                  before=before, after=after, start=start, regularizer=regularizer,
                  strength=float(strength), sparse_epochs=int(sparse_epochs),
                  accuracy_sparse_trained=sparse,
                  small_gammas=float(np.mean(gammas < 1e-2)), dead_units=dead,
                  **recipe.record)
