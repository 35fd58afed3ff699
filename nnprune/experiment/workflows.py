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

Every workflow prunes ``model`` in place (its masks stay attached) and takes the same pruning
options: ``criterion``, ``sparsity`` (the final target), ``scope``, ``granularity``,
``exclude``, ``min_keep`` (global scope: entries kept per layer), and ``model_name``.
How every training run goes is one ``train=TrainSpec(...)`` (``nnprune.train.TrainSpec``:
``epochs`` of each training run — the fine-tuning after pruning, each round's, or the whole
run while pruning for ``gradual`` —, ``lr``, ``optimizer``, ``batch_size``, ``seed``,
``regularizer`` such as ``prune.finetune.l2_regularizer(1e-4)`` (Han et al. 2015 fine-tune
with L2 regularisation of the remaining weights), ``weight_decay``, ``lr_schedule``, which
restarts with every training run, and ``quiet``), or the same settings as keywords:
``finetune_epochs``, ``lr``, ``optimizer``, ``batch_size``, ``seed``, ``quiet``,
``regularizer``, ``weight_decay``, ``lr_schedule`` (built into one TrainSpec on entry).
``data`` is a ``nnprune.data.Dataset``. The shared steps live in ``runs.py``.

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

from nnprune.experiment.runs import (accuracy, check_int, check_options, fit_model,
                                     gradients_for, prune_and_rescale, record, target_of,
                                     train_spec)
from nnprune.experiment.second_order import (SecondOrder, check_first_order, describe,
                                             second_order_inputs)
from nnprune.prune.apply import prune_model
from nnprune.prune.groups import parse_granularity
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.masks import check_sparsity
from nnprune.prune.pruner import Pruner
from nnprune.prune.schedules import Gradual, iterative_sparsities, lottery_rate
from nnprune.train import TrainSpec

AT_INIT_CRITERIA = ("snip", "random", "magnitude")


def _free_sparsity(granularity: str, workflow: str) -> None:
    if isinstance(parse_granularity(granularity), tuple):
        raise ValueError(f"{workflow} raises the sparsity step by step; granularity "
                         f"{granularity!r} fixes it: use oneshot")


def _check_hook(after_prune: Any) -> None:
    if after_prune is not None and not callable(after_prune):
        raise TypeError(f"after_prune must be a function of the model or None, got "
                        f"{type(after_prune).__name__}")


def _trains(train: TrainSpec, workflow: str) -> None:
    if train.epochs < 1:
        raise ValueError(f"finetune_epochs must be an int >= 1: {workflow} trains while or "
                         f"after it prunes, got {train.epochs}")


# ---------------------------------------------------------------------- workflows
def oneshot(model: Any, data: Any, *, criterion: str = "magnitude", sparsity: float | None = 0.9,
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            min_keep: int = 1, layer_norm: str = "none", train: TrainSpec | None = None,
            model_name: str = "model", rescale: bool = True, grads: dict | None = None,
            accuracy_dense: float | None = None,
            after_prune: Callable[[Any], Any] | None = None,
            second_order: SecondOrder | None = None, pruning_inputs: dict | None = None,
            **training: Any) -> dict[str, Any]:
    """Prune ``model`` once to ``sparsity``, then fine-tune ``train.epochs`` epochs (0: not).

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
    train = train_spec(train, training, "oneshot")
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude)
    _check_hook(after_prune)
    dense = accuracy(model, data) if accuracy_dense is None else float(accuracy_dense)
    began, seed = time.perf_counter(), train.seed
    if grads is None:
        grads = gradients_for(criterion, model, data, train.batch_size, seed)
    inputs = pruning_inputs if pruning_inputs is not None else \
        second_order_inputs(criterion, model, data, second_order, train.batch_size, seed)
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
    if train.epochs:
        fit_model(model, data, train, desc="fine-tune")
        after = accuracy(model, data)
    return record(model, data, train, schedule="oneshot", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity,
                  sparsity=target_of(sparsity, granularity), exclude=exclude, dense=dense,
                  before=before, after=after, start=start, **extra)


def iterative(model: Any, data: Any, *, sparsity: float = 0.9, rounds: int = 3,
              kind: str = "geometric", criterion: str = "magnitude", scope: str = "layer",
              granularity: str = "weight", exclude: Iterable[str] = (), min_keep: int = 1,
              layer_norm: str = "none", train: TrainSpec | None = None,
              model_name: str = "model", rescale: bool = True,
              after_prune: Callable[[Any], Any] | None = None,
              second_order: SecondOrder | None = None, **training: Any) -> dict[str, Any]:
    """Han et al. 2015: ``rounds`` rounds of prune → fine-tune (``train.epochs`` each), the
    target rising as ``iterative_sparsities(sparsity, rounds, kind)`` to exactly ``sparsity``.

    With ``rescale`` every dropout layer is rescaled after each pruning step,
    D_r = D_o·√(C_r/C_o) (``rescale_dropout``). The record's ``rounds`` lists each round's
    target, reached sparsity and accuracies; ``dropout`` the final rates. ``after_prune(model)``
    runs after each pruning step, before that round's accuracy and fine-tuning; what it returns
    is in the round's ``after_prune``. ``obd``/``obs`` recompute their Hessian diagonal or
    calibrate again each round, with ``second_order``'s settings.
    """
    start = time.perf_counter()
    train = train_spec(train, training, "iterative")
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude)
    _free_sparsity(granularity, "iterative")
    _check_hook(after_prune)
    targets = iterative_sparsities(sparsity, check_int("rounds", rounds, 1), kind)
    dense, log, dropout = accuracy(model, data), [], {}
    before = after = None
    batch_size, seed = train.batch_size, train.seed
    for r, target in enumerate(targets, 1):
        report, rates = prune_and_rescale(
            model, criterion, target, scope, granularity, exclude,
            gradients_for(criterion, model, data, batch_size, seed), seed, min_keep, rescale,
            layer_norm, data,
            **second_order_inputs(criterion, model, data, second_order, batch_size, seed))
        dropout.update(rates)
        hook = {} if after_prune is None else {"after_prune": after_prune(model)}
        before = accuracy(model, data)
        if train.epochs:
            fit_model(model, data, train, desc=f"round {r}/{rounds}")
            after = accuracy(model, data)
        log.append({"round": r, "target": target, "sparsity": report.sparsity,
                    "accuracy_pruned": before, "accuracy_finetuned": after, **hook})
    return record(model, data, train, schedule="iterative", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity, sparsity=sparsity,
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
    check_int("frequency", frequency, 1), check_int("begin_step", begin_step, 0)
    if end_step is None:
        end_step = begin_step + max(1, (int(0.75 * total) - begin_step) // frequency) * frequency
    schedule = Gradual.ending_at(initial_sparsity, sparsity, begin_step, end_step, frequency)
    if end_step > total:
        raise ValueError(f"end_step {end_step} is after the last of the {total} training steps "
                         f"({epochs} epochs of {steps_per_epoch})")
    return schedule


def gradual(model: Any, data: Any, *, sparsity: float = 0.9, begin_step: int = 0,
            end_step: int | None = None, frequency: int | None = None,
            initial_sparsity: float = 0.0, criterion: str = "magnitude", scope: str = "layer",
            granularity: str = "weight", exclude: Iterable[str] = (), min_keep: int = 1,
            grads_batches: int = 4, train: TrainSpec | None = None,
            model_name: str = "model", **training: Any) -> dict[str, Any]:
    """Zhu & Gupta 2017: train ``train.epochs`` epochs (default 4), pruning at the optimizer
    steps t0 = ``begin_step``, t0 + Δt, ..., ``end_step`` (Δt = ``frequency``) to
    s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, exactly ``sparsity`` at ``end_step``.

    Defaults: Δt = a quarter epoch of steps; ``end_step`` the last update step within the
    first three quarters of the run, so the last quarter trains at the final sparsity.
    ``accuracy_before_finetune`` is measured at ``end_step``. The gradient criteria use
    ``grads_batches`` batches at each update.
    """
    start = time.perf_counter()
    train = train_spec(train, training, "gradual", epochs=4)
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude)
    _trains(train, "gradual")
    _free_sparsity(granularity, "gradual")
    check_first_order(criterion, "gradual")
    steps_per_epoch = math.ceil(len(data.x_train) / train.batch_size)
    schedule = gradual_schedule(steps_per_epoch, train.epochs, initial_sparsity, sparsity,
                                begin_step, end_step, frequency)
    end_step = schedule.end_step
    pruner = Pruner(model, criterion, scope, granularity, exclude, schedule, min_keep=min_keep,
                    seed=train.seed,
                    grads_fn=lambda: gradients_for(criterion, model, data, train.batch_size,
                                                   train.seed, grads_batches))
    dense, at_end = accuracy(model, data), {}

    def step_callback(step: int) -> None:
        pruner.on_step(step)
        if step == end_step:
            at_end["accuracy"] = accuracy(model, data)

    if begin_step == 0:  # fit counts steps from 1: the update at t0 = 0 happens now
        pruner.on_step(0)
    fit_model(model, data, train, desc="gradual", step_callback=step_callback)
    return record(model, data, train, schedule="gradual", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity, sparsity=sparsity,
                  exclude=exclude, dense=dense, before=at_end["accuracy"],
                  after=accuracy(model, data), start=start, begin_step=begin_step,
                  end_step=end_step, frequency=schedule.frequency,
                  total_steps=train.epochs * steps_per_epoch, history=pruner.history)


def at_init(model: Any, data: Any, *, criterion: str = "snip", sparsity: float | None = 0.9,
            scope: str = "global", granularity: str = "weight", exclude: Iterable[str] = (),
            min_keep: int = 1, grads_batches: int = 1, train: TrainSpec | None = None,
            model_name: str = "model", **training: Any) -> dict[str, Any]:
    """Prune at initialisation, then train ``train.epochs`` epochs (default 4) under the masks.

    ``model``'s current weights are taken as the initialisation: pass a freshly built model.
    SNIP (Lee et al. 2019) scores |w · dL/dw| from ``grads_batches`` batches (one, as in the
    paper); ``random`` and ``magnitude`` are the usual baselines. ``accuracy_dense`` is the
    untrained model's (chance level): compare with a dense model trained the same way.
    """
    start = time.perf_counter()
    if criterion not in AT_INIT_CRITERIA:
        raise ValueError(f"at_init prunes with one of {AT_INIT_CRITERIA}, got {criterion!r}")
    train = train_spec(train, training, "at_init", epochs=4)
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude)
    _trains(train, "at_init")
    dense = accuracy(model, data)
    grads = gradients_for(criterion, model, data, train.batch_size, train.seed, grads_batches)
    prune_model(model, criterion, sparsity, scope, granularity, exclude, grads, train.seed,
                min_keep)
    before = accuracy(model, data)
    fit_model(model, data, train, desc="train")
    return record(model, data, train, schedule="init", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity,
                  sparsity=target_of(sparsity, granularity), exclude=exclude, dense=dense,
                  before=before, after=accuracy(model, data), start=start,
                  grads_batches=grads_batches)


def _round_rate(rate: float | None, sparsity: float | None, rounds: int) -> float:
    """The fraction of the remaining weights each lottery round prunes: ``rate``, or the one
    that reaches ``sparsity`` in ``rounds`` rounds (``schedules.lottery_rate``); 0.2 when
    neither is given."""
    if rate is not None and sparsity is not None:
        raise ValueError(f"give rate or sparsity, not both (got rate={rate!r}, "
                         f"sparsity={sparsity!r})")
    if rate is None:
        rate = 0.2 if sparsity is None else lottery_rate(sparsity, rounds)
    return check_sparsity(rate, "rate")


def lottery(model: Any, data: Any, *, rate: float | None = None, sparsity: float | None = None,
            rounds: int = 3, rewind_step: int = 0, criterion: str = "magnitude",
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            min_keep: int = 1, train: TrainSpec | None = None, model_name: str = "model",
            **training: Any) -> dict[str, Any]:
    """Frankle & Carbin 2019: ``rounds`` times train (``train.epochs`` epochs) → prune
    ``rate`` of the remaining weights → rewind the survivors to θ_k; then train the ticket.

    θ_k is ``model``'s weights after ``rewind_step`` optimizer steps of the first training
    (0: as given; pass a freshly built model for the paper's rewinding to initialisation).
    Give ``rate`` or the final ``sparsity`` (then rate = 1 − (1 − sparsity)^(1/rounds)),
    not both; neither: rate 0.2. ``accuracy_dense``: the dense model after the first
    training; ``accuracy_before_finetune``: the trained weights right after the last
    pruning; ``accuracy_rewound``: the ticket θ_k ⊙ m before its training.
    """
    start = time.perf_counter()
    train = train_spec(train, training, "lottery")
    exclude = check_options(model, data, criterion, sparsity, scope, granularity, exclude)
    _trains(train, "lottery")
    check_first_order(criterion, "lottery")
    if granularity != "weight":
        raise ValueError(f"lottery prunes single weights: granularity must be 'weight', "
                         f"got {granularity!r}")
    rate = _round_rate(rate, sparsity, check_int("rounds", rounds, 1))
    steps = train.epochs * math.ceil(len(data.x_train) / train.batch_size)
    if check_int("rewind_step", rewind_step, 0) > steps:
        raise ValueError(f"rewind_step {rewind_step} is after the last of the {steps} steps "
                         "of a training run")
    saved = {"theta": snapshot(model)}

    def keep_theta_k(step: int) -> None:
        if step == rewind_step:
            saved["theta"] = snapshot(model)

    log = []
    for r in range(1, rounds + 1):
        fit_model(model, data, train, desc=f"round {r}/{rounds}",
                  step_callback=keep_theta_k if r == 1 and rewind_step else None)
        trained = accuracy(model, data)
        grads = gradients_for(criterion, model, data, train.batch_size, train.seed)
        report = prune_round(model, rate, r, criterion, scope, exclude, grads, train.seed,
                             min_keep)
        pruned = accuracy(model, data)
        rewind(model, saved["theta"])
        log.append({"round": r, "target": round_sparsity(rate, r), "sparsity": report.sparsity,
                    "accuracy_trained": trained, "accuracy_pruned": pruned})
    rewound = accuracy(model, data)
    fit_model(model, data, train, desc="ticket")
    return record(model, data, train, schedule="lottery", model_name=model_name,
                  criterion=criterion, scope=scope, granularity=granularity,
                  sparsity=round_sparsity(rate, rounds) if sparsity is None else sparsity,
                  exclude=exclude, dense=log[0]["accuracy_trained"],
                  before=log[-1]["accuracy_pruned"], after=accuracy(model, data), start=start,
                  rate=rate, rewind_step=rewind_step, accuracy_rewound=rewound, rounds=log)
