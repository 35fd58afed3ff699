"""What every pruning run is made of: copying a model, training it, scoring it on the test
split, and writing down one result record.

- ``clone_model``: an independent copy (architecture, weights, buffers, masks), so runs from
  one trained model never disturb each other;
- ``make_optimizer`` and ``fit_model``: SGD with momentum 0.9 or Adam, the learning rate
  cosine-decayed to 0 over the run, the masks in force throughout (pruned weights stay 0);
- ``check_options``, ``accuracy``, ``gradients_for``, ``prune_and_rescale``, ``record``: the
  shared steps of the workflows in ``workflows.py`` and of the sweep.

A record is a flat JSON-able dict with the fields of ``nnprune.experiment.report.RECORD_FIELDS``
(model, dataset, criterion, scope, granularity, schedule, the target ``sparsity`` and the
``sparsity_reached`` measured on the weights' values, the fine-tuning epochs, the accuracy
dense, right after pruning and after fine-tuning, params, nonzero params, MACs, effective MACs
and the seed), plus ``exclude``, ``layer_sparsity``, ``lr``, ``optimizer``, ``batch_size``,
``regularizer`` and ``seconds``.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nnprune import optim, train
from nnprune.count import count
from nnprune.nn import Module, from_config
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA, NEEDS_DATA
from nnprune.prune.apply import (SCOPES, exclude_io, prunable_parameters, prune_model,
                                 sparsity_report)
from nnprune.prune.finetune import rescale_dropout
from nnprune.prune.groups import parse_granularity
from nnprune.prune.masks import check_sparsity
from nnprune.prune.report import PruneReport
from nnprune.prune.scores import CRITERIA, NEEDS_GRADS
from nnprune.threads import blas_threads_for
from nnprune.train import TrainSpec

Regularizer = Callable[[Any], Any]  # model -> scalar Tensor penalty (``prune.finetune``)


def clone_model(model: Module) -> Module:
    """An independent copy of ``model``: same architecture, weights, buffers and masks."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    copy = from_config(model.config())
    copy.load_state_dict(model.state_dict())
    params = dict(copy.named_parameters())
    for name, p in model.named_parameters():
        if p.mask is not None:
            params[name].set_mask(p.mask.copy())
    return copy


def make_optimizer(name: str, model: Module, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> optim.Optimizer:
    """SGD with ``momentum`` (``"sgd"``) or Adam (``"adam"``) over the model's parameters."""
    spec = TrainSpec(lr=lr, optimizer=name, momentum=momentum, weight_decay=weight_decay)
    return spec.optimizer_for(model.parameters())


TRAIN_KEYWORDS = {"finetune_epochs": "epochs", "epochs": "epochs", "lr": "lr",
                  "optimizer": "optimizer", "momentum": "momentum", "batch_size": "batch_size",
                  "weight_decay": "weight_decay", "lr_schedule": "lr_schedule",
                  "regularizer": "regularizer", "seed": "seed", "quiet": "quiet"}


def train_spec(train: TrainSpec | None, options: dict[str, Any], where: str,
               **defaults: Any) -> TrainSpec:
    """The training settings of a run: ``train`` itself, or a ``TrainSpec`` built once from
    the keyword form ``options`` (``finetune_epochs`` is its ``epochs``; ``cosine=False``
    with no ``lr_schedule`` means a constant rate) over ``defaults``. ``where`` names the
    function in the errors."""
    unknown = sorted(set(options) - set(TRAIN_KEYWORDS) - {"cosine"})
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    if train is not None:
        if not isinstance(train, TrainSpec):
            raise TypeError(f"train must be a TrainSpec or None, got {type(train).__name__}")
        if options:
            raise TypeError(f"{where}: give train=TrainSpec(...) or its keywords "
                            f"({', '.join(options)}), not both")
        return train
    options = dict(options)
    cosine = options.pop("cosine", True)
    if options.get("lr_schedule") is None:
        options["lr_schedule"] = "cosine" if cosine else "constant"
    for name in ("finetune_epochs", "epochs"):  # named as the caller typed it
        if name in options:
            check_int(name, options[name], 0)
    return TrainSpec(**{**defaults, **{TRAIN_KEYWORDS[k]: v for k, v in options.items()}})


def fit_model(model: Module, data: Any, spec: TrainSpec | None = None, *, desc: str = "train",
              step_callback: Callable[[int], None] | None = None,
              **options: Any) -> train.History:
    """Train (or fine-tune) ``model`` on the training split of ``data`` as ``spec`` says
    (or the keyword form ``options`` of ``TrainSpec``: epochs, lr, optimizer, batch_size, seed,
    weight_decay, lr_schedule, regularizer, quiet; ``cosine``).

    The learning rate starts at ``lr`` and moves by ``lr_schedule`` ("constant", "step:S:G"
    or "cosine", see ``optim.LRSchedule``): lr_e = ½·lr·(1 + cos(π e / epochs)) decays
    towards 0 at the end, so the last epochs settle (Loshchilov & Hutter 2017).
    ``weight_decay`` λ is PyTorch's coupled form on every parameter, g ← g + λ·w before the
    momentum update. Masks attached to the model stay in force throughout.
    ``regularizer(model)`` is added to each batch's loss (e.g. ``prune.finetune``'s L1/L2
    penalty on the remaining weights); ``step_callback(step)`` runs after every step.
    """
    spec = train_spec(spec, options, "fit_model")
    opt = spec.optimizer_for(model.parameters())
    scheduler = spec.lr_schedule.scheduler(opt, spec.epochs)
    # one BLAS thread for a small model: a second one only spins (nnprune.threads)
    with blas_threads_for(model, data.input_shape, spec.batch_size):
        return train.fit(model, (data.x_train, data.y_train), opt, spec.epochs,
                         batch_size=spec.batch_size, seed=spec.seed, scheduler=scheduler,
                         regularizer=spec.regularizer, step_callback=step_callback,
                         quiet=spec.quiet, desc=desc)


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_options(model: Any, data: Any, criterion: str, sparsity: Any, scope: str,
                  granularity: str, exclude: Iterable[str]) -> tuple[str, ...]:
    """Every pruning option checked before any training starts; returns ``exclude`` as a
    tuple (the training options are a ``TrainSpec``, checked when it was made)."""
    for field in ("x_train", "y_train", "x_test", "y_test", "input_shape"):
        if not hasattr(data, field):
            raise TypeError(f"data must be a nnprune.data Dataset (x_train, y_train, x_test, "
                            f"y_test, input_shape), got {type(data).__name__} without {field}")
    if criterion not in CRITERIA + CHANNEL_CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of "
                         f"{CRITERIA + CHANNEL_CRITERIA}")
    if criterion in CHANNEL_CRITERIA and granularity not in ("filter", "neuron"):
        raise ValueError(f"criterion {criterion!r} scores whole units: it needs granularity "
                         f"'filter' or 'neuron', got {granularity!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    parse_granularity(granularity)
    if isinstance(sparsity, Mapping):  # per layer (oneshot, layer scope): each value a fraction
        for name, value in sparsity.items():
            check_sparsity(value, f"sparsity[{name!r}]")
    elif sparsity is not None:
        check_sparsity(sparsity)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    prunable_parameters(model, exclude)  # every name must be a prunable weight
    # the output layer under filter/neuron, the first under channel: what prune_model leaves
    return exclude_io(prunable_parameters(model), granularity, exclude)


def accuracy(model: Any, data: Any) -> float:
    """Test accuracy, a fraction in [0, 1]."""
    return float(train.evaluate(model, (data.x_test, data.y_test))["accuracy"])


def gradients_for(criterion: str, model: Any, data: Any, batch_size: int, seed: int,
                  num_batches: int | None = None) -> dict[str, np.ndarray] | None:
    """dL/dw on the training split, for the criteria that need it (None otherwise)."""
    if criterion not in NEEDS_GRADS:
        return None
    return train.gradients(model, (data.x_train, data.y_train), batch_size=batch_size,
                           num_batches=num_batches, seed=seed)


def prune_and_rescale(model: Any, criterion: str, sparsity: float | None, scope: str,
                      granularity: str, exclude: tuple[str, ...],
                      grads: Mapping[str, np.ndarray] | None, seed: int, min_keep: int,
                      rescale: bool, layer_norm: str = "none",
                      data: Any = None, **second_order: Any
                      ) -> tuple[PruneReport, dict[str, float]]:
    """``prune_model`` (``second_order``: obd's hessian_diag, obs's calibration and obs
    settings), then (with ``rescale``) every dropout rate set to
    D_r = D_o·√(C_r/C_o) from the densities before and after (``rescale_dropout``, Han et
    al. 2015). Returns the report and {dropout name: new rate}. ``data`` (a Dataset): its
    training split feeds the filter criteria that run the model (``NEEDS_DATA``)."""
    old = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
    sample = (data.x_train, data.y_train) if criterion in NEEDS_DATA and data is not None \
        else None
    report = prune_model(model, criterion, sparsity, scope, granularity, exclude, grads, seed,
                         min_keep, layer_norm=layer_norm, data=sample, **second_order)
    if not rescale:
        return report, {}
    new = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
    return report, {k: v[1] for k, v in rescale_dropout(model, old, new).items()}


def target_of(sparsity: float | Mapping[str, float] | None, granularity: str) -> float:
    """The target for the record: an N:M granularity fixes it at 1 − N/M; a per-layer dict
    gives the mean of its targets (the dict itself is recorded as ``layer_targets``)."""
    if isinstance(sparsity, Mapping):
        return float(np.mean(list(sparsity.values()))) if sparsity else 0.0
    g = parse_granularity(granularity)
    return 1 - g[0] / g[1] if isinstance(g, tuple) else float(sparsity)


def record(model: Any, data: Any, train: TrainSpec, *, schedule: str, model_name: str,
           criterion: str, scope: str, granularity: str, sparsity: float,
           exclude: tuple[str, ...], dense: float, before: float, after: float | None,
           start: float, **extra: Any) -> dict[str, Any]:
    """The result record of a run that ended with ``model`` and trained as ``train`` says
    (see the module docstring); ``start`` is the run's ``time.perf_counter()`` at its
    beginning."""
    reached = sparsity_report(model, exclude)  # measured on the values the model holds
    cost = count(model, tuple(data.input_shape))
    result = {
        "model": model_name, "dataset": getattr(data, "name", "data"), "criterion": criterion,
        "scope": scope, "granularity": granularity, "schedule": schedule,
        "sparsity": float(sparsity), "sparsity_reached": float(reached.sparsity),
        "finetune_epochs": train.epochs, "accuracy_dense": float(dense),
        "accuracy_before_finetune": float(before),
        "accuracy_after_finetune": None if after is None else float(after),
        "params": int(cost.params), "nonzero_params": int(cost.nonzero_params),
        "macs": int(cost.macs), "effective_macs": int(cost.effective_macs),
        "seed": train.seed, "exclude": list(exclude), "layer_sparsity": reached.per_layer,
        **train.record(),
    }
    result.update(extra)
    result["seconds"] = time.perf_counter() - start
    return result
