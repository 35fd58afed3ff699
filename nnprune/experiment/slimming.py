"""Network slimming (Liu et al. 2017) as one workflow returning a result record: train with
λ Σ|γ| on every BatchNorm scale → prune the channels with the smallest |γ| (one global
threshold) → mask them whole → fine-tune; ``prune.shrink`` can then cut them out.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

from nnprune.checks import check_int
from nnprune.experiment.runs import accuracy, fit_model, record, specs
from nnprune.prune.apply import prunable_parameters, prune_model
from nnprune.prune.slimming import bn_gammas, bn_l1_regularizer, without_gamma
from nnprune.prune.units import mask_units
from nnprune.train import TrainSpec

SLIMMING = {"criterion": "bn_gamma", "scope": "global", "granularity": "filter"}


def slimming(model: Any, data: Any, *, sparsity: float = 0.5, strength: float = 1e-4,
             sparse_epochs: int = 5, min_keep: int = 1, exclude: Iterable[str] = (),
             train: TrainSpec | None = None, model_name: str = "model",
             **options: Any) -> dict[str, Any]:
    """Network slimming on ``model`` in place (masks attached, units masked whole).

    ``strength``: λ of the L1 penalty on the γ's (Liu et al.: 10⁻⁴); ``sparsity``: the
    fraction of channels pruned, globally. The record (``runs.record``, criterion
    ``bn_gamma``, scope global, granularity filter, schedule ``slimming``) adds
    ``strength``, ``sparse_epochs``, ``accuracy_sparse_trained`` (after the sparse training,
    before pruning), ``small_gammas`` (fraction of |γ| < 10⁻² then) and ``dead_units``
    ({layer or channel group: channels silenced}). ``accuracy_dense``: ``model`` as given.
    ``train`` (a ``TrainSpec``, or its keywords as for the workflows): the fine-tuning; its
    ``regularizer`` applies to the fine-tuning only, the rest to both trainings. Options
    other workflows take and slimming fixes (criterion, scope, granularity, layer_norm) are
    ignored if passed. Layers whose channels meet no BatchNorm are left dense and recorded in
    ``exclude``.
    """
    start = time.perf_counter()
    options.pop("layer_norm", None)  # fixed, as the criterion, scope and granularity are
    prune, train, exclude = specs(model, data, None, train, {
        **options, **SLIMMING, "sparsity": sparsity, "exclude": exclude, "min_keep": min_keep},
        "slimming")
    penalty = bn_l1_regularizer(strength)
    check_int(sparse_epochs, "sparse_epochs", 1)
    if not bn_gammas(model):
        raise ValueError("network slimming needs BatchNorm layers with a scale γ after the "
                         "convolutions; the model has none (e.g. use vgg16 or resnet20)")
    exclude += tuple(without_gamma(model, [n for n in prunable_parameters(model)
                                           if n not in exclude]))
    dense = accuracy(model, data)
    fit_model(model, data, train.replace(epochs=sparse_epochs, regularizer=penalty),
              desc="sparse γ")
    sparse = accuracy(model, data)
    gammas = np.concatenate([np.abs(g.data).ravel() for g in bn_gammas(model).values()])
    prune_model(model, prune.replace(exclude=exclude))
    dead = {k: len(v) for k, v in mask_units(model).items()}
    before, after = accuracy(model, data), None
    if train.epochs:
        fit_model(model, data, train, desc="fine-tune")
        after = accuracy(model, data)
    return record(model, data, prune, train, schedule="slimming", model_name=model_name,
                  exclude=exclude, dense=dense, before=before,
                  after=after, start=start, strength=float(strength),
                  sparse_epochs=int(sparse_epochs), accuracy_sparse_trained=sparse,
                  small_gammas=float(np.mean(gammas < 1e-2)), dead_units=dead)
