"""Pruning workflows on a model and a dataset, each returning one JSON-able result record.

=========== ======================================================= =========================
workflow     what it does                                            source
=========== ======================================================= =========================
oneshot      prune once, fine-tune                                   Han et al. 2015 (1 round)
iterative    R rounds of prune → fine-tune, the target rising        Han et al. 2015
gradual      prune while training, s_t rising as a cubic             Zhu & Gupta 2017
at_init      prune at initialisation (SNIP, random, magnitude),      Lee et al. 2019
             then train
lottery      train → prune p of what remains → rewind, R times,      Frankle & Carbin 2019
             then train the ticket
slimming     train with λ Σ|γ| on the BatchNorm scales → prune the   Liu et al. 2017
             channels of smallest |γ| → mask them whole → fine-tune
=========== ======================================================= =========================

Each prunes ``model`` in place (its masks stay attached) as a ``PruneSpec`` says and trains
as a ``TrainSpec`` says (the ``epochs`` of each training run), or takes their keywords
(``finetune_epochs`` is the TrainSpec's ``epochs``), built into the two specs once on entry
(``runs.specs``). Each returns the record of ``runs.record``.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from nnprune.checks import check_choice, check_int
from nnprune.experiment.runs import (accuracy, at_sparsity, fit_model, gradients_for,
                                     prune_and_rescale, record, specs)
from nnprune.experiment.second_order import (SecondOrder, check_first_order, describe,
                                             second_order_inputs)
from nnprune.experiment.tickets import lottery  # noqa: F401  (one of the workflows)
from nnprune.prune.apply import prunable_parameters, prune_model
from nnprune.prune.pruner import Pruner
from nnprune.prune.schedules import KINDS, Gradual, iterative_targets
from nnprune.prune.slimming import bn_gammas, bn_l1_regularizer, without_gamma
from nnprune.prune.spec import PruneSpec
from nnprune.prune.units import mask_units
from nnprune.train import TrainSpec

AT_INIT_CRITERIA = ("snip", "random", "magnitude")
SLIMMING = {"criterion": "bn_gamma", "scope": "global", "granularity": "filter"}


def _check_hook(after_prune: Any) -> None:
    if after_prune is not None and not callable(after_prune):
        raise TypeError(f"after_prune must be a function of the model or None, got "
                        f"{type(after_prune).__name__}")


# ---------------------------------------------------------------------- workflows
def _finetuned(model: Any, data: Any, train: TrainSpec) -> tuple[float, float | None]:
    """Test accuracy before fine-tuning and after ``train`` (None when it has no epochs)."""
    before = accuracy(model, data)
    if not train.epochs:
        return before, None
    fit_model(model, data, train, desc="fine-tune")
    return before, accuracy(model, data)


def oneshot(model: Any, data: Any, prune: PruneSpec | None = None,
            train: TrainSpec | None = None, *, model_name: str = "model", rescale: bool = True,
            grads: dict | None = None, accuracy_dense: float | None = None,
            after_prune: Callable[[Any], Any] | None = None,
            second_order: SecondOrder | None = None, pruning_inputs: dict | None = None,
            **options: Any) -> dict[str, Any]:
    """Prune ``model`` once to ``prune.sparsity`` (default 0.9), then fine-tune
    ``train.epochs`` epochs (0: not).

    The gradient criteria use dL/dw on the whole training split, or ``grads`` (a sweep
    computes them once for all its runs); ``accuracy_dense``, when given, is taken as the
    accuracy before pruning. With ``rescale`` every dropout rate becomes D_r = D_o·√(C_r/C_o)
    (Han et al. 2015). ``after_prune(model)`` runs right after pruning, before the accuracy is
    measured and fine-tuning starts (e.g. ``prune.mask_units``); what it returns is recorded
    as ``after_prune``. ``obd`` and ``obs`` take their settings from ``second_order`` (default
    ones when None), their Hessian diagonal or calibration samples from the training split
    or ``pruning_inputs``; the record gives the seconds pruning took as ``prune_seconds``.
    """
    start = time.perf_counter()
    prune, train, exclude = specs(model, data, prune, train, options, "oneshot",
                                  second_order=second_order)
    criterion = prune.criterion
    _check_hook(after_prune)
    dense = accuracy(model, data) if accuracy_dense is None else float(accuracy_dense)
    began = time.perf_counter()
    if grads is None:
        grads = gradients_for(criterion, model, data, train.batch_size, prune.seed)
    inputs = pruning_inputs if pruning_inputs is not None else \
        second_order_inputs(criterion, model, data, second_order, train.batch_size, prune.seed)
    _, dropout = prune_and_rescale(model, prune, grads, rescale, data, **inputs)
    extra = {"dropout": dropout} if dropout else {}
    if prune.layer_norm != "none":
        extra["layer_norm"] = prune.layer_norm
    if prune.per_layer:
        extra["layer_targets"] = dict(prune.sparsity)
    extra["prune_seconds"] = time.perf_counter() - began
    extra.update(describe(criterion, second_order))
    if after_prune is not None:
        extra["after_prune"] = after_prune(model)
    before, after = _finetuned(model, data, train)
    return record(model, data, prune, train, schedule="oneshot", model_name=model_name,
                  exclude=exclude, dense=dense, before=before, after=after, start=start,
                  **extra)


def iterative(model: Any, data: Any, prune: PruneSpec | None = None,
              train: TrainSpec | None = None, *, rounds: int = 3, kind: str = "geometric",
              model_name: str = "model", rescale: bool = True,
              after_prune: Callable[[Any], Any] | None = None,
              second_order: SecondOrder | None = None, **options: Any) -> dict[str, Any]:
    """Han et al. 2015: ``rounds`` rounds of prune → fine-tune (``train.epochs`` each), the
    target rising as ``iterative_sparsities(sparsity, rounds, kind)`` to exactly
    ``prune.sparsity`` (default 0.9).

    With ``rescale`` every dropout layer is rescaled after each pruning step,
    D_r = D_o·√(C_r/C_o) (``rescale_dropout``). The record's ``rounds`` lists each round's
    target, reached sparsity and accuracies; ``dropout`` the final rates. ``after_prune(model)``
    runs after each pruning step, before that round's accuracy and fine-tuning; what it returns
    is in the round's ``after_prune``. ``obd``/``obs`` recompute their Hessian diagonal or
    calibrate again each round, with ``second_order``'s settings.
    """
    start = time.perf_counter()
    prune, train, exclude = specs(model, data, prune, train, options, "iterative",
                                  second_order=second_order, stepwise=True)
    criterion = prune.criterion
    _check_hook(after_prune)
    targets = iterative_targets(prune.sparsity, check_int(rounds, "rounds", 1),
                                check_choice(kind, "kind", KINDS))
    dense, log, dropout = accuracy(model, data), [], {}
    before = after = None
    batch_size, seed = train.batch_size, prune.seed
    for r, target in enumerate(targets, 1):
        report, rates = prune_and_rescale(
            model, at_sparsity(prune, target),
            gradients_for(criterion, model, data, batch_size, seed), rescale, data,
            **second_order_inputs(criterion, model, data, second_order, batch_size, seed))
        dropout.update(rates)
        hook = {} if after_prune is None else {"after_prune": after_prune(model)}
        before = accuracy(model, data)
        if train.epochs:
            fit_model(model, data, train, desc=f"round {r}/{rounds}")
            after = accuracy(model, data)
        log.append({"round": r, "target": target, "sparsity": report.sparsity,
                    "accuracy_pruned": before, "accuracy_finetuned": after, **hook})
    return record(model, data, prune, train, schedule="iterative", model_name=model_name,
                  exclude=exclude, dense=dense, before=before, after=after, start=start,
                  kind=kind, rounds=log, dropout=dropout)


def gradual_schedule(steps_per_epoch: int, epochs: int, initial_sparsity: float,
                     sparsity: float, begin_step: int, end_step: int | None,
                     frequency: int | None) -> Gradual:
    """The ``Gradual`` schedule of a run of ``epochs`` epochs, the defaults of ``gradual``
    filled in (Δt a quarter epoch, the end within the first three quarters of the run) and
    its end checked against the run's length."""
    total = epochs * steps_per_epoch
    frequency = max(1, steps_per_epoch // 4) if frequency is None else frequency
    check_int(frequency, "frequency", 1), check_int(begin_step, "begin_step", 0)
    if end_step is None:
        end_step = begin_step + max(1, (int(0.75 * total) - begin_step) // frequency) * frequency
    schedule = Gradual.ending_at(initial_sparsity, sparsity, begin_step, end_step, frequency)
    if end_step > total:
        raise ValueError(f"end_step {end_step} is after the last of the {total} training steps "
                         f"({epochs} epochs of {steps_per_epoch})")
    return schedule


def gradual(model: Any, data: Any, prune: PruneSpec | None = None,
            train: TrainSpec | None = None, *, begin_step: int = 0,
            end_step: int | None = None, frequency: int | None = None,
            initial_sparsity: float = 0.0, grads_batches: int = 4, model_name: str = "model",
            **options: Any) -> dict[str, Any]:
    """Zhu & Gupta 2017: train ``train.epochs`` epochs (default 4), pruning at the optimizer
    steps t0 = ``begin_step``, t0 + Δt, ..., ``end_step`` (Δt = ``frequency``) to
    s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, exactly s_f = ``prune.sparsity`` (default
    0.9) at ``end_step``.

    Defaults: Δt = a quarter epoch of steps; ``end_step`` the last update step within the
    first three quarters of the run, so the last quarter trains at the final sparsity.
    ``accuracy_before_finetune`` is measured at ``end_step``. The gradient criteria use
    ``grads_batches`` batches at each update.
    """
    start = time.perf_counter()
    prune, train, exclude = specs(model, data, prune, train, options, "gradual",
                                  stepwise=True, trains=True, epochs=4)
    criterion = prune.criterion
    check_first_order(criterion, "gradual")
    steps_per_epoch = math.ceil(len(data.x_train) / train.batch_size)
    schedule = gradual_schedule(steps_per_epoch, train.epochs, initial_sparsity,
                                prune.sparsity, begin_step, end_step, frequency)
    pruner = Pruner(model, criterion, prune.scope, prune.granularity, exclude, schedule,
                    min_keep=prune.min_keep, seed=prune.seed,
                    grads_fn=lambda: gradients_for(criterion, model, data, train.batch_size,
                                                   prune.seed, grads_batches))
    dense, at_end = accuracy(model, data), {}

    def step_callback(step: int) -> None:
        pruner.on_step(step)
        if step == schedule.end_step:
            at_end["accuracy"] = accuracy(model, data)

    if begin_step == 0:  # fit counts steps from 1: the update at t0 = 0 happens now
        pruner.on_step(0)
    fit_model(model, data, train, desc="gradual", step_callback=step_callback)
    return record(model, data, prune, train, schedule="gradual", model_name=model_name,
                  exclude=exclude, dense=dense, before=at_end["accuracy"],
                  after=accuracy(model, data), start=start, begin_step=begin_step,
                  end_step=schedule.end_step, frequency=schedule.frequency,
                  total_steps=train.epochs * steps_per_epoch, history=pruner.history)


def at_init(model: Any, data: Any, prune: PruneSpec | None = None,
            train: TrainSpec | None = None, *, grads_batches: int = 1,
            model_name: str = "model", **options: Any) -> dict[str, Any]:
    """Prune at initialisation (default: SNIP, global scope, sparsity 0.9), then train
    ``train.epochs`` epochs (default 4) under the masks.

    ``model``'s current weights are taken as the initialisation: pass a freshly built model.
    SNIP (Lee et al. 2019) scores |w · dL/dw| from ``grads_batches`` batches (one, as in the
    paper); ``random`` and ``magnitude`` are the usual baselines. ``accuracy_dense`` is the
    untrained model's (chance level): compare with a dense model trained the same way.
    """
    start = time.perf_counter()
    prune, train, exclude = specs(model, data, prune, train, options, "at_init",
                                  {"criterion": "snip", "scope": "global"}, trains=True,
                                  epochs=4)
    if prune.criterion not in AT_INIT_CRITERIA:
        raise ValueError(f"at_init prunes with one of {AT_INIT_CRITERIA}, got "
                         f"{prune.criterion!r}")
    dense = accuracy(model, data)
    grads = gradients_for(prune.criterion, model, data, train.batch_size, prune.seed,
                          grads_batches)
    prune_model(model, prune, grads=grads)
    before = accuracy(model, data)
    fit_model(model, data, train, desc="train")
    return record(model, data, prune, train, schedule="init", model_name=model_name,
                  exclude=exclude, dense=dense, before=before, after=accuracy(model, data),
                  start=start, grads_batches=grads_batches)


def slimming(model: Any, data: Any, *, sparsity: float = 0.5, strength: float = 1e-4,
             sparse_epochs: int = 5, min_keep: int = 1, exclude: Iterable[str] = (),
             train: TrainSpec | None = None, model_name: str = "model",
             **options: Any) -> dict[str, Any]:
    """Network slimming (Liu et al. 2017) on ``model`` in place (units masked whole).

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
    before, after = _finetuned(model, data, train)
    return record(model, data, prune, train, schedule="slimming", model_name=model_name,
                  exclude=exclude, dense=dense, before=before, after=after, start=start,
                  strength=float(strength),
                  sparse_epochs=int(sparse_epochs), accuracy_sparse_trained=sparse,
                  small_gammas=float(np.mean(gammas < 1e-2)), dead_units=dead)
