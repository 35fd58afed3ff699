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
=========== ======================================================= =========================

Every workflow prunes ``model`` in place (its masks stay attached) and takes the same keyword
options: ``criterion``, ``sparsity`` (the final target), ``scope``, ``granularity``,
``exclude``, ``finetune_epochs`` (the epochs of each training run: the fine-tuning after
pruning, each round's, or the whole run while pruning for ``gradual``), ``lr`` (the rate
each run starts from), ``optimizer`` ("sgd" with momentum 0.9 or "adam"), ``batch_size``,
``seed``, ``quiet``, ``model_name``, ``min_keep`` (global scope: entries kept per layer),
``regularizer`` (None, or a penalty added to the loss of every training run, e.g.
``prune.finetune.l2_regularizer(1e-4)``: Han et al. 2015 fine-tune with L2 regularisation of
the remaining weights), ``weight_decay`` (PyTorch's coupled decay g ← g + λ·w on every
parameter, in the optimizer) and ``lr_schedule`` ("constant", "step:S:G" or "cosine", the
default, see ``optim.LRSchedule``; it restarts with every training run). ``data`` is a
``nnprune.data.Dataset``. The shared steps live in ``runs.py``.

The record has the fields of ``nnprune.experiment.report.RECORD_FIELDS``: ``accuracy_dense``
is the test accuracy just before the first pruning, ``accuracy_before_finetune`` right after
the last pruning (no training since), ``accuracy_after_finetune`` at the end (None without
fine-tuning); ``sparsity_reached`` is measured on the weights' values; ``params``,
``nonzero_params``, ``macs``, ``effective_macs`` come from ``nnprune.count.count``. Extra
fields: ``exclude``, ``layer_sparsity``, ``lr``, ``optimizer``, ``batch_size``,
``regularizer``, ``seconds`` and the workflow's own (``rounds``, ``history``, ...).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

from nnprune.experiment.runs import (Recipe, Regularizer, accuracy, check_int, check_options,
                                     fit_model, gradients_for, prune_and_rescale, record,
                                     target_of)
from nnprune.prune.apply import prune_model
from nnprune.prune.groups import parse_granularity
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.masks import check_sparsity
from nnprune.prune.pruner import Pruner
from nnprune.prune.schedules import Gradual, iterative_sparsities, lottery_rate
from nnprune.experiment.second_order import (SecondOrder, check_first_order, describe,
                                             second_order_inputs)

AT_INIT_CRITERIA = ("snip", "random", "magnitude")


def _free_sparsity(granularity: str, workflow: str) -> None:
    if isinstance(parse_granularity(granularity), tuple):
        raise ValueError(f"{workflow} raises the sparsity step by step; granularity "
                         f"{granularity!r} fixes it: use oneshot")


# ---------------------------------------------------------------------- workflows
def _check_hook(after_prune: Any) -> None:
    if after_prune is not None and not callable(after_prune):
        raise TypeError(f"after_prune must be a function of the model or None, got "
                        f"{type(after_prune).__name__}")


def oneshot(model: Any, data: Any, *, criterion: str = "magnitude", sparsity: float | None = 0.9,
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 2, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1, regularizer: Regularizer | None = None, rescale: bool = True,
            cosine: bool = True, grads: dict | None = None,
            accuracy_dense: float | None = None,
            after_prune: Callable[[Any], Any] | None = None, weight_decay: float = 0.0,
            lr_schedule: str | None = None, layer_norm: str = "none",
            second_order: SecondOrder | None = None,
            pruning_inputs: dict | None = None) -> dict[str, Any]:
    """Prune ``model`` once to ``sparsity``, then fine-tune ``finetune_epochs`` epochs (0: not).

    The gradient criteria use dL/dw averaged over the whole training split, or ``grads`` when
    given (a sweep computes them once for all its runs); ``accuracy_dense``, when given, is
    taken as the accuracy before pruning instead of measuring it again. With ``rescale`` every
    dropout rate becomes D_r = D_o·√(C_r/C_o) (Han et al. 2015); ``cosine=False`` keeps the
    fine-tuning rate constant. ``after_prune(model)`` runs right after pruning, before the
    accuracy is measured and fine-tuning starts (e.g. ``prune.mask_units``); what it returns is
    recorded as ``after_prune``. ``layer_norm``: see ``prune_model`` (recorded when not "none").
    ``obd`` and ``obs`` take their settings from ``second_order`` (a
    ``second_order.SecondOrder``; default settings when None), their Hessian diagonal or
    calibration samples from the training split (or, from a sweep that computed them once,
    ``pruning_inputs``); the record gives the seconds pruning took as ``prune_seconds``.
    """
    start = time.perf_counter()
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude,
                            finetune_epochs, 0, lr, optimizer, batch_size, regularizer)
    recipe = Recipe.of(weight_decay, lr_schedule, cosine)
    _check_hook(after_prune)
    dense = accuracy(model, data) if accuracy_dense is None else float(accuracy_dense)
    began = time.perf_counter()
    if grads is None:
        grads = gradients_for(criterion, model, data, batch_size, seed)
    inputs = pruning_inputs if pruning_inputs is not None else \
        second_order_inputs(criterion, model, data, second_order, batch_size, seed)
    _, dropout = prune_and_rescale(model, criterion, sparsity, scope, granularity, exclude, grads,
                                   seed, min_keep, rescale, layer_norm, data, **inputs)
    extra = {"dropout": dropout} if dropout else {}
    if layer_norm != "none":
        extra["layer_norm"] = layer_norm
    if isinstance(sparsity, dict):
        extra["layer_targets"] = dict(sparsity)
    extra["prune_seconds"] = time.perf_counter() - began
    extra.update(describe(criterion, second_order))
    if after_prune is not None:
        extra["after_prune"] = after_prune(model)
    before, after = accuracy(model, data), None
    if finetune_epochs:
        fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer, **recipe.fit,
                  batch_size=batch_size, seed=seed, quiet=quiet,
                  desc="fine-tune", regularizer=regularizer)
        after = accuracy(model, data)
    return record(model, data, schedule="oneshot", model_name=model_name, criterion=criterion,
                  scope=scope, granularity=granularity, sparsity=target_of(sparsity, granularity),
                  exclude=exclude, finetune_epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                  batch_size=batch_size, seed=seed, dense=dense, before=before, after=after,
                  start=start, regularizer=regularizer, **recipe.record, **extra)


def iterative(model: Any, data: Any, *, sparsity: float = 0.9, rounds: int = 3,
              kind: str = "geometric", criterion: str = "magnitude", scope: str = "layer",
              granularity: str = "weight", exclude: Iterable[str] = (), finetune_epochs: int = 2,
              lr: float = 0.02, optimizer: str = "sgd", batch_size: int = 64, seed: int = 0,
              quiet: bool = True, model_name: str = "model", min_keep: int = 1,
              rescale: bool = True, regularizer: Regularizer | None = None,
              after_prune: Callable[[Any], Any] | None = None, weight_decay: float = 0.0,
              lr_schedule: str | None = None, layer_norm: str = "none",
              second_order: SecondOrder | None = None) -> dict[str, Any]:
    """Han et al. 2015: ``rounds`` rounds of prune → fine-tune (``finetune_epochs`` each), the
    target rising as ``iterative_sparsities(sparsity, rounds, kind)`` to exactly ``sparsity``.

    With ``rescale`` every dropout layer is rescaled after each pruning step,
    D_r = D_o·√(C_r/C_o) (``rescale_dropout``). The record's ``rounds`` lists each round's
    target, reached sparsity and accuracies; ``dropout`` the final rates. ``after_prune(model)``
    runs after each pruning step, before that round's accuracy and fine-tuning; what it returns
    is in the round's ``after_prune``. ``obd``/``obs`` recompute their Hessian diagonal or
    calibrate again each round, with ``second_order``'s settings.
    """
    start = time.perf_counter()
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude,
                            finetune_epochs, 0, lr, optimizer, batch_size, regularizer)
    recipe = Recipe.of(weight_decay, lr_schedule)
    _free_sparsity(granularity, "iterative")
    _check_hook(after_prune)
    targets = iterative_sparsities(sparsity, check_int("rounds", rounds, 1), kind)
    dense, log, dropout = accuracy(model, data), [], {}
    before = after = None
    for r, target in enumerate(targets, 1):
        report, rates = prune_and_rescale(
            model, criterion, target, scope, granularity, exclude,
            gradients_for(criterion, model, data, batch_size, seed), seed, min_keep, rescale,
            layer_norm, data,
            **second_order_inputs(criterion, model, data, second_order, batch_size, seed))
        dropout.update(rates)
        hook = {} if after_prune is None else {"after_prune": after_prune(model)}
        before = accuracy(model, data)
        if finetune_epochs:
            fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                      **recipe.fit,
                      batch_size=batch_size, seed=seed, quiet=quiet, desc=f"round {r}/{rounds}",
                      regularizer=regularizer)
            after = accuracy(model, data)
        log.append({"round": r, "target": target, "sparsity": report.sparsity,
                    "accuracy_pruned": before, "accuracy_finetuned": after, **hook})
    return record(model, data, schedule="iterative", model_name=model_name, criterion=criterion,
                  scope=scope, granularity=granularity, sparsity=sparsity, exclude=exclude,
                  finetune_epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                  batch_size=batch_size, seed=seed, dense=dense, before=before, after=after,
                  start=start, regularizer=regularizer, **recipe.record, kind=kind, rounds=log,
                  dropout=dropout)
def gradual(model: Any, data: Any, *, sparsity: float = 0.9, finetune_epochs: int = 4,
            begin_step: int = 0, end_step: int | None = None, frequency: int | None = None,
            initial_sparsity: float = 0.0, criterion: str = "magnitude", scope: str = "layer",
            granularity: str = "weight", exclude: Iterable[str] = (), lr: float = 0.02,
            optimizer: str = "sgd", batch_size: int = 64, seed: int = 0, quiet: bool = True,
            model_name: str = "model", min_keep: int = 1,
            grads_batches: int = 4, regularizer: Regularizer | None = None,
            weight_decay: float = 0.0, lr_schedule: str | None = None) -> dict[str, Any]:
    """Zhu & Gupta 2017: train ``finetune_epochs`` epochs, pruning at the optimizer steps
    t0 = ``begin_step``, t0 + Δt, ..., ``end_step`` (Δt = ``frequency``) to
    s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, exactly ``sparsity`` at ``end_step``.

    Defaults: Δt = a quarter epoch of steps; ``end_step`` the last update step within the
    first three quarters of the run, so the last quarter trains at the final sparsity.
    ``accuracy_before_finetune`` is measured at ``end_step``. The gradient criteria use
    ``grads_batches`` batches at each update.
    """
    start = time.perf_counter()
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude,
                            finetune_epochs, 1, lr, optimizer, batch_size, regularizer)
    recipe = Recipe.of(weight_decay, lr_schedule)
    _free_sparsity(granularity, "gradual")
    check_first_order(criterion, "gradual")
    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    total = finetune_epochs * steps_per_epoch
    frequency = max(1, steps_per_epoch // 4) if frequency is None else frequency
    check_int("frequency", frequency, 1), check_int("begin_step", begin_step, 0)
    if end_step is None:
        end_step = begin_step + max(1, (int(0.75 * total) - begin_step) // frequency) * frequency
    schedule = Gradual.ending_at(initial_sparsity, sparsity, begin_step, end_step, frequency)
    if end_step > total:
        raise ValueError(f"end_step {end_step} is after the last of the {total} training steps "
                         f"({finetune_epochs} epochs of {steps_per_epoch})")
    pruner = Pruner(model, criterion, scope, granularity, exclude, schedule, min_keep=min_keep,
                    seed=seed,
                    grads_fn=lambda: gradients_for(criterion, model, data, batch_size, seed,
                                                   grads_batches))
    dense, at_end = accuracy(model, data), {}

    def step_callback(step: int) -> None:
        pruner.on_step(step)
        if step == end_step:
            at_end["accuracy"] = accuracy(model, data)

    if begin_step == 0:  # fit counts steps from 1: the update at t0 = 0 happens now
        pruner.on_step(0)
    fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer, **recipe.fit,
              batch_size=batch_size, seed=seed, quiet=quiet, desc="gradual",
              regularizer=regularizer, step_callback=step_callback)
    return record(model, data, schedule="gradual", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity, sparsity=sparsity,
                  exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
                  optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                  before=at_end["accuracy"], after=accuracy(model, data), start=start,
                  regularizer=regularizer, **recipe.record,
                  begin_step=begin_step, end_step=end_step, frequency=frequency,
                  total_steps=total, history=pruner.history)


def at_init(model: Any, data: Any, *, criterion: str = "snip", sparsity: float | None = 0.9,
            scope: str = "global", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 4, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1, grads_batches: int = 1,
            regularizer: Regularizer | None = None, weight_decay: float = 0.0,
            lr_schedule: str | None = None) -> dict[str, Any]:
    """Prune at initialisation, then train ``finetune_epochs`` epochs under the masks.

    ``model``'s current weights are taken as the initialisation: pass a freshly built model.
    SNIP (Lee et al. 2019) scores |w · dL/dw| from ``grads_batches`` batches (one, as in the
    paper); ``random`` and ``magnitude`` are the usual baselines. ``accuracy_dense`` is the
    untrained model's (chance level): compare with a dense model trained the same way.
    """
    start = time.perf_counter()
    if criterion not in AT_INIT_CRITERIA:
        raise ValueError(f"at_init prunes with one of {AT_INIT_CRITERIA}, got {criterion!r}")
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude,
                            finetune_epochs, 1, lr, optimizer, batch_size, regularizer)
    recipe = Recipe.of(weight_decay, lr_schedule)
    dense = accuracy(model, data)
    grads = gradients_for(criterion, model, data, batch_size, seed, grads_batches)
    prune_model(model, criterion, sparsity, scope, granularity, exclude, grads, seed, min_keep)
    before = accuracy(model, data)
    fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer, **recipe.fit,
              batch_size=batch_size, seed=seed, quiet=quiet, desc="train",
              regularizer=regularizer)
    return record(model, data, schedule="init", model_name=model_name, criterion=criterion,
                  scope=scope, granularity=granularity, sparsity=target_of(sparsity, granularity),
                  exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
                  optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                  before=before, after=accuracy(model, data), start=start,
                  regularizer=regularizer, **recipe.record,
                  grads_batches=grads_batches)


def lottery(model: Any, data: Any, *, rate: float | None = None, sparsity: float | None = None,
            rounds: int = 3, rewind_step: int = 0, criterion: str = "magnitude",
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 2, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1, regularizer: Regularizer | None = None,
            weight_decay: float = 0.0, lr_schedule: str | None = None) -> dict[str, Any]:
    """Frankle & Carbin 2019: ``rounds`` times train (``finetune_epochs`` epochs) → prune
    ``rate`` of the remaining weights → rewind the survivors to θ_k; then train the ticket.

    θ_k is ``model``'s weights after ``rewind_step`` optimizer steps of the first training
    (0: as given; pass a freshly built model for the paper's rewinding to initialisation).
    Give ``rate`` or the final ``sparsity`` (then rate = 1 − (1 − sparsity)^(1/rounds)),
    not both; neither: rate 0.2. ``accuracy_dense``: the dense model after the first
    training; ``accuracy_before_finetune``: the trained weights right after the last
    pruning; ``accuracy_rewound``: the ticket θ_k ⊙ m before its training.
    """
    start = time.perf_counter()
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude,
                            finetune_epochs, 1, lr, optimizer, batch_size, regularizer)
    recipe = Recipe.of(weight_decay, lr_schedule)
    check_first_order(criterion, "lottery")
    if granularity != "weight":
        raise ValueError(f"lottery prunes single weights: granularity must be 'weight', "
                         f"got {granularity!r}")
    rounds = check_int("rounds", rounds, 1)
    if rate is not None and sparsity is not None:
        raise ValueError(f"give rate or sparsity, not both (got rate={rate!r}, "
                         f"sparsity={sparsity!r})")
    if rate is None:
        rate = 0.2 if sparsity is None else lottery_rate(sparsity, rounds)
    rate = check_sparsity(rate, "rate")
    steps = finetune_epochs * math.ceil(len(data.x_train) / batch_size)
    if check_int("rewind_step", rewind_step, 0) > steps:
        raise ValueError(f"rewind_step {rewind_step} is after the last of the {steps} steps "
                         "of a training run")
    saved = {"theta": snapshot(model)} if rewind_step == 0 else {}

    def keep_theta_k(step: int) -> None:
        if step == rewind_step:
            saved["theta"] = snapshot(model)

    log = []
    for r in range(1, rounds + 1):
        fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer, **recipe.fit,
                  batch_size=batch_size, seed=seed, quiet=quiet, desc=f"round {r}/{rounds}",
                  regularizer=regularizer,
                  step_callback=keep_theta_k if r == 1 and rewind_step else None)
        trained = accuracy(model, data)
        grads = gradients_for(criterion, model, data, batch_size, seed)
        report = prune_round(model, rate, r, criterion, scope, exclude, grads, seed, min_keep)
        pruned = accuracy(model, data)
        rewind(model, saved["theta"])
        log.append({"round": r, "target": round_sparsity(rate, r), "sparsity": report.sparsity,
                    "accuracy_trained": trained, "accuracy_pruned": pruned})
    rewound = accuracy(model, data)
    fit_model(model, data, epochs=finetune_epochs, lr=lr, optimizer=optimizer, **recipe.fit,
              batch_size=batch_size, seed=seed, quiet=quiet, desc="ticket",
              regularizer=regularizer)
    return record(model, data, schedule="lottery", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity,
                  sparsity=round_sparsity(rate, rounds) if sparsity is None else sparsity,
                  exclude=exclude,
                  finetune_epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                  batch_size=batch_size, seed=seed, dense=log[0]["accuracy_trained"],
                  before=log[-1]["accuracy_pruned"], after=accuracy(model, data),
                  start=start, regularizer=regularizer, **recipe.record, rate=rate,
                  rewind_step=rewind_step,
                  accuracy_rewound=rewound, rounds=log)
