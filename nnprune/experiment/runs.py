"""What every pruning run is made of: copying a model (``clone_model``), training it
(``fit_model``), scoring it on the test split, and writing down one result record (``record``);
``specs`` gives a workflow its ``PruneSpec`` and ``TrainSpec``, built once from keywords if
need be."""
from __future__ import annotations

import copy
import time
from dataclasses import fields
from typing import Any, Callable, Mapping

import numpy as np

from nnprune import optim, train
from nnprune.checks import check_int
from nnprune.count import count
from nnprune.nn import Module, from_config
from nnprune.prune.channel_criteria import NEEDS_DATA
from nnprune.prune.apply import prunable_parameters, prune_model, sparsity_report
from nnprune.prune.finetune import rescale_dropout
from nnprune.prune.report import PruneReport
from nnprune.prune.scores import NEEDS_GRADS
from nnprune.prune.spec import PruneSpec, as_granularity
from nnprune.threads import blas_threads_for
from nnprune.train import TrainSpec


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


# keyword: TrainSpec field (a workflow's training run is its fine-tuning)
TRAIN_KEYWORDS = {"finetune_epochs": "epochs", **{f.name: f.name for f in fields(TrainSpec)}}


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
            check_int(options[name], name, 0)
    return TrainSpec(**{**defaults, **{TRAIN_KEYWORDS[k]: v for k, v in options.items()}})


def fit_model(model: Module, data: Any, spec: TrainSpec | None = None, *, desc: str = "train",
              step_callback: Callable[[int], None] | None = None,
              **options: Any) -> train.History:
    """Train (or fine-tune) ``model`` on the training split of ``data`` as ``spec`` (a
    ``TrainSpec``, or its keywords: see ``train_spec``) says, its masks in force throughout.

    The learning rate starts at ``lr`` and moves by ``lr_schedule``; the default cosine,
    lr_e = ½·lr·(1 + cos(π e / epochs)), decays towards 0 at the end, so the last epochs
    settle (Loshchilov & Hutter 2017). ``step_callback(step)`` runs after every step.
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


PRUNE_KEYWORDS = tuple(f.name for f in fields(PruneSpec) if f.name != "seed")  # seed: train's


def specs(model: Any, data: Any, prune: PruneSpec | None, train: TrainSpec | None,
          options: dict[str, Any], where: str, pruning: Mapping[str, Any] | None = None,
          second_order: Any = None, stepwise: bool = False, trains: bool = False,
          **training: Any) -> tuple[PruneSpec, TrainSpec, tuple[str, ...]]:
    """(PruneSpec, TrainSpec, the weights left dense) of a workflow ``where`` on ``model`` and
    ``data`` (a ``nnprune.data.Dataset``, checked): ``prune`` and ``train`` themselves, or
    each built once from the keyword form ``options`` over the workflow's defaults
    (``pruning``, by default a sparsity of 0.9, and ``training``). ``seed`` seeds both the
    random scores and the shuffling (a given ``train``'s seed, when the pruning comes as
    keywords); a ``SecondOrder``'s ``obs`` settings go into the PruneSpec. A ``stepwise``
    workflow raises the sparsity round by round, which an N:M granularity cannot follow; one
    that ``trains`` needs at least one epoch."""
    given = {k: options.pop(k) for k in PRUNE_KEYWORDS if k in options}
    granularity = as_granularity(prune.granularity if isinstance(prune, PruneSpec) else
                                 given.get("granularity", "weight"))
    if stepwise and granularity.is_nm:
        raise ValueError(f"{where} raises the sparsity step by step; granularity "
                         f"{str(granularity)!r} fixes it: use oneshot")
    if prune is None:
        given["granularity"] = granularity  # parsed once
    train = train_spec(train, options, where, **training)
    if prune is None:
        if second_order is not None:
            given.setdefault("obs", second_order.obs)
        prune = PruneSpec(**{"sparsity": 0.9, **(pruning or {}), **given, "seed": train.seed})
    elif not isinstance(prune, PruneSpec):
        raise TypeError(f"prune must be a PruneSpec or None, got {type(prune).__name__}")
    elif given:
        raise TypeError(f"{where}: give prune=PruneSpec(...) or its keywords "
                        f"({', '.join(given)}), not both")
    for field in ("x_train", "y_train", "x_test", "y_test", "input_shape"):
        if not hasattr(data, field):
            raise TypeError(f"data must be a nnprune.data Dataset (x_train, y_train, x_test, "
                            f"y_test, input_shape), got {type(data).__name__} without {field}")
    if trains and train.epochs < 1:
        raise ValueError(f"finetune_epochs must be an int >= 1: {where} trains while or "
                         f"after it prunes, got {train.epochs}")
    return prune, train, tuple(prune.exclusions(prunable_parameters(model)))


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


def prune_and_rescale(model: Any, spec: PruneSpec, grads: Mapping[str, np.ndarray] | None,
                      rescale: bool, data: Any = None, **second_order: Any
                      ) -> tuple[PruneReport, dict[str, float]]:
    """``prune_model`` as ``spec`` says (``second_order``: obd's hessian_diag, obs's
    calibration), then (with ``rescale``) every dropout rate set to D_r = D_o·√(C_r/C_o)
    from the densities before and after (``rescale_dropout``, Han et al. 2015). Returns the
    report and {dropout name: new rate}. ``data`` (a Dataset): its training split feeds the
    filter criteria that run the model (``NEEDS_DATA``)."""
    old = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
    if spec.criterion in NEEDS_DATA and data is not None:
        second_order["data"] = (data.x_train, data.y_train)
    second_order.pop("obs", None)  # the spec's
    report = prune_model(model, spec, grads=grads, **second_order)
    if not rescale:
        return report, {}
    new = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
    return report, {k: v[1] for k, v in rescale_dropout(model, old, new).items()}


def at_sparsity(spec: PruneSpec, sparsity: float) -> PruneSpec:
    """``spec`` with a target derived from its own checked one (a round's, which lies in
    [0, spec.sparsity]): a copy that is trusted, not checked again."""
    round_spec = copy.copy(spec)
    object.__setattr__(round_spec, "sparsity", float(sparsity))  # frozen: only the copy moves
    return round_spec


def record(model: Any, data: Any, prune: PruneSpec, train: TrainSpec, *, schedule: str,
           model_name: str, exclude: tuple[str, ...], dense: float, before: float,
           after: float | None, start: float, **extra: Any) -> dict[str, Any]:
    """The result record of a run that ended with ``model``, pruned as ``prune`` and trained
    as ``train`` say: the fields of ``report.RECORD_FIELDS`` (``accuracy_dense`` = ``dense``,
    just before the first pruning; ``accuracy_before_finetune`` = ``before``, right after the
    last; ``accuracy_after_finetune`` = ``after``, None without fine-tuning), ``exclude``,
    ``layer_sparsity``, the TrainSpec's ``record()``, ``extra`` and ``seconds``; ``start``:
    the run's ``time.perf_counter()`` at its beginning."""
    target = prune.sparsity  # N:M: its fixed 1 − N/M; per layer: the mean (see layer_targets)
    if prune.per_layer:
        target = float(np.mean(list(target.values()))) if target else 0.0
    reached = sparsity_report(model, exclude)  # measured on the values the model holds
    cost = count(model, tuple(data.input_shape))
    result = {
        "model": model_name, "dataset": getattr(data, "name", "data"),
        "criterion": prune.criterion, "scope": prune.scope,
        "granularity": str(prune.granularity), "schedule": schedule,
        "sparsity": float(target),
        "sparsity_reached": float(reached.sparsity),
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
