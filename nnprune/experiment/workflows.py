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
pruning, each round's, or the whole run while pruning for ``gradual``), ``lr`` (cosine-decayed
to 0 over each run), ``optimizer`` ("sgd" with momentum 0.9 or "adam"), ``batch_size``,
``seed``, ``quiet`` and ``model_name``. ``data`` is a ``nnprune.data.Dataset``.

The record has the fields of ``nnprune.experiment.report.RECORD_FIELDS``: ``accuracy_dense``
is the test accuracy just before the first pruning, ``accuracy_before_finetune`` right after
the last pruning (no training since), ``accuracy_after_finetune`` at the end (None without
fine-tuning); ``sparsity_reached`` is measured on the weights' values; ``params``,
``nonzero_params``, ``macs``, ``effective_macs`` come from ``nnprune.count.count``. Extra
fields: ``exclude``, ``layer_sparsity``, ``lr``, ``optimizer``, ``batch_size``, ``seconds`` and
the workflow's own (``rounds``, ``history``, ...).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

from nnprune import optim, train
from nnprune.count import count
from nnprune.experiment.sweep import OPTIMIZERS, make_optimizer
from nnprune.prune.apply import SCOPES, prunable_parameters, prune_model, sparsity_report
from nnprune.prune.finetune import rescale_dropout
from nnprune.prune.groups import parse_granularity
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.masks import check_sparsity
from nnprune.prune.pruner import Pruner
from nnprune.prune.schedules import Gradual, iterative_sparsities
from nnprune.prune.scores import CRITERIA, NEEDS_GRADS

AT_INIT_CRITERIA = ("snip", "random", "magnitude")


# ---------------------------------------------------------------------- shared steps
def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check(model: Any, data: Any, criterion: str, sparsity: Any, scope: str, granularity: str,
           exclude: Iterable[str], finetune_epochs: int, min_epochs: int, lr: float,
           optimizer: str, batch_size: int) -> tuple[str, ...]:
    """Every option checked before any training starts; returns ``exclude`` as a tuple."""
    for field in ("x_train", "y_train", "x_test", "y_test", "input_shape"):
        if not hasattr(data, field):
            raise TypeError(f"data must be a nnprune.data Dataset (x_train, y_train, x_test, "
                            f"y_test, input_shape), got {type(data).__name__} without {field}")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    parse_granularity(granularity)
    if sparsity is not None:
        check_sparsity(sparsity)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    prunable_parameters(model, exclude)
    _int("finetune_epochs", finetune_epochs, min_epochs)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    _int("batch_size", batch_size, 1)
    return exclude


def _free_sparsity(granularity: str, workflow: str) -> None:
    if isinstance(parse_granularity(granularity), tuple):
        raise ValueError(f"{workflow} raises the sparsity step by step; granularity "
                         f"{granularity!r} fixes it: use oneshot")


def _train(model: Any, data: Any, epochs: int, lr: float, optimizer: str, batch_size: int,
           seed: int, quiet: bool, desc: str,
           step_callback: Callable[[int], None] | None = None) -> train.History:
    """``epochs`` epochs on the training split, a fresh optimizer, lr cosine-decayed to 0."""
    opt = make_optimizer(optimizer, model, lr)
    return train.fit(model, (data.x_train, data.y_train), opt, epochs, batch_size=batch_size,
                     seed=seed, scheduler=optim.CosineAnnealingLR(opt, epochs),
                     step_callback=step_callback, quiet=quiet, desc=desc)


def _accuracy(model: Any, data: Any) -> float:
    return float(train.evaluate(model, (data.x_test, data.y_test))["accuracy"])


def _grads(criterion: str, model: Any, data: Any, batch_size: int, seed: int,
           num_batches: int | None = None) -> dict | None:
    """dL/dw on the training split, for the criteria that need it (None otherwise)."""
    if criterion not in NEEDS_GRADS:
        return None
    return train.gradients(model, (data.x_train, data.y_train), batch_size=batch_size,
                           num_batches=num_batches, seed=seed)


def _record(model: Any, data: Any, *, schedule: str, model_name: str, criterion: str,
            scope: str, granularity: str, sparsity: float, exclude: tuple[str, ...],
            finetune_epochs: int, lr: float, optimizer: str, batch_size: int, seed: int,
            dense: float, before: float, after: float | None, start: float,
            **extra: Any) -> dict[str, Any]:
    reached = sparsity_report(model, exclude)  # measured on the values the model holds
    cost = count(model, tuple(data.input_shape))
    record = {
        "model": model_name, "dataset": getattr(data, "name", "data"), "criterion": criterion,
        "scope": scope, "granularity": granularity, "schedule": schedule,
        "sparsity": float(sparsity), "sparsity_reached": float(reached.sparsity),
        "finetune_epochs": int(finetune_epochs), "accuracy_dense": float(dense),
        "accuracy_before_finetune": float(before),
        "accuracy_after_finetune": None if after is None else float(after),
        "params": int(cost.params), "nonzero_params": int(cost.nonzero_params),
        "macs": int(cost.macs), "effective_macs": int(cost.effective_macs), "seed": int(seed),
        "exclude": list(exclude), "layer_sparsity": reached.per_layer, "lr": float(lr),
        "optimizer": optimizer, "batch_size": int(batch_size),
    }
    record.update(extra)
    record["seconds"] = time.perf_counter() - start
    return record


def _target(sparsity: float | None, granularity: str) -> float:
    """The target for the record: an N:M granularity fixes it at 1 − N/M."""
    g = parse_granularity(granularity)
    return 1 - g[0] / g[1] if isinstance(g, tuple) else float(sparsity)


# ---------------------------------------------------------------------- workflows
def oneshot(model: Any, data: Any, *, criterion: str = "magnitude", sparsity: float | None = 0.9,
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 2, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1) -> dict[str, Any]:
    """Prune ``model`` once to ``sparsity``, then fine-tune ``finetune_epochs`` epochs (0: not).

    The gradient criteria use dL/dw averaged over the whole training split.
    """
    start = time.perf_counter()
    exclude = _check(model, data, criterion, sparsity, scope, granularity, exclude,
                     finetune_epochs, 0, lr, optimizer, batch_size)
    dense = _accuracy(model, data)
    prune_model(model, criterion, sparsity, scope, granularity, exclude,
                _grads(criterion, model, data, batch_size, seed), seed, min_keep)
    before, after = _accuracy(model, data), None
    if finetune_epochs:
        _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet, "fine-tune")
        after = _accuracy(model, data)
    return _record(model, data, schedule="oneshot", model_name=model_name,
                   criterion=criterion, scope=scope, granularity=granularity,
                   sparsity=_target(sparsity, granularity), exclude=exclude,
                   finetune_epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                   batch_size=batch_size, seed=seed, dense=dense, before=before, after=after,
                   start=start)


def iterative(model: Any, data: Any, *, sparsity: float = 0.9, rounds: int = 3,
              kind: str = "geometric", criterion: str = "magnitude", scope: str = "layer",
              granularity: str = "weight", exclude: Iterable[str] = (), finetune_epochs: int = 2,
              lr: float = 0.02, optimizer: str = "sgd", batch_size: int = 64, seed: int = 0,
              quiet: bool = True, model_name: str = "model", min_keep: int = 1,
              rescale: bool = True) -> dict[str, Any]:
    """Han et al. 2015: ``rounds`` rounds of prune → fine-tune (``finetune_epochs`` each), the
    target rising as ``iterative_sparsities(sparsity, rounds, kind)`` to exactly ``sparsity``.

    With ``rescale`` every dropout layer is rescaled after each pruning step,
    D_r = D_o·√(C_r/C_o) (``rescale_dropout``). The record's ``rounds`` lists each round's
    target, reached sparsity and accuracies; ``dropout`` the final rates.
    """
    start = time.perf_counter()
    exclude = _check(model, data, criterion, sparsity, scope, granularity, exclude,
                     finetune_epochs, 0, lr, optimizer, batch_size)
    _free_sparsity(granularity, "iterative")
    targets = iterative_sparsities(sparsity, _int("rounds", rounds, 1), kind)
    dense, log, dropout = _accuracy(model, data), [], {}
    before = after = None
    for r, target in enumerate(targets, 1):
        old = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
        report = prune_model(model, criterion, target, scope, granularity, exclude,
                             _grads(criterion, model, data, batch_size, seed), seed, min_keep)
        if rescale:
            new = {k: 1 - s for k, s in sparsity_report(model).per_layer.items()}
            dropout.update({k: v[1] for k, v in rescale_dropout(model, old, new).items()})
        before = _accuracy(model, data)
        if finetune_epochs:
            _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet,
                   f"round {r}/{rounds}")
            after = _accuracy(model, data)
        log.append({"round": r, "target": target, "sparsity": report.sparsity,
                    "accuracy_pruned": before, "accuracy_finetuned": after})
    return _record(model, data, schedule="iterative", model_name=model_name,
                   criterion=criterion, scope=scope, granularity=granularity, sparsity=sparsity,
                   exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
                   optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                   before=before, after=after, start=start, kind=kind, rounds=log,
                   dropout=dropout)


def gradual(model: Any, data: Any, *, sparsity: float = 0.9, finetune_epochs: int = 4,
            begin_step: int = 0, end_step: int | None = None, frequency: int | None = None,
            initial_sparsity: float = 0.0, criterion: str = "magnitude", scope: str = "layer",
            granularity: str = "weight", exclude: Iterable[str] = (), lr: float = 0.02,
            optimizer: str = "sgd", batch_size: int = 64, seed: int = 0, quiet: bool = True,
            model_name: str = "model", min_keep: int = 1,
            grads_batches: int = 4) -> dict[str, Any]:
    """Zhu & Gupta 2017: train ``finetune_epochs`` epochs, pruning at the optimizer steps
    t0 = ``begin_step``, t0 + Δt, ..., ``end_step`` (Δt = ``frequency``) to
    s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³, exactly ``sparsity`` at ``end_step``.

    Defaults: Δt = a quarter epoch of steps; ``end_step`` the last update step within the
    first three quarters of the run, so the last quarter trains at the final sparsity.
    ``accuracy_before_finetune`` is measured at ``end_step``. The gradient criteria use
    ``grads_batches`` batches at each update.
    """
    start = time.perf_counter()
    exclude = _check(model, data, criterion, sparsity, scope, granularity, exclude,
                     finetune_epochs, 1, lr, optimizer, batch_size)
    _free_sparsity(granularity, "gradual")
    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    total = finetune_epochs * steps_per_epoch
    frequency = max(1, steps_per_epoch // 4) if frequency is None else frequency
    _int("frequency", frequency, 1), _int("begin_step", begin_step, 0)
    if end_step is None:
        end_step = begin_step + max(1, (int(0.75 * total) - begin_step) // frequency) * frequency
    updates, rest = divmod(_int("end_step", end_step, 0) - begin_step, frequency)
    if updates < 1 or rest:
        raise ValueError(f"end_step − begin_step must be a positive multiple of frequency "
                         f"({frequency}), got begin_step={begin_step}, end_step={end_step}")
    schedule = Gradual(initial_sparsity, sparsity, begin_step, updates, frequency)
    if end_step > total:
        raise ValueError(f"end_step {end_step} is after the last of the {total} training steps "
                         f"({finetune_epochs} epochs of {steps_per_epoch})")
    pruner = Pruner(model, criterion, scope, granularity, exclude, schedule, min_keep=min_keep,
                    seed=seed,
                    grads_fn=lambda: _grads(criterion, model, data, batch_size, seed,
                                            grads_batches))
    dense, at_end = _accuracy(model, data), {}

    def step_callback(step: int) -> None:
        pruner.on_step(step)
        if step == end_step:
            at_end["accuracy"] = _accuracy(model, data)

    if begin_step == 0:  # fit counts steps from 1: the update at t0 = 0 happens now
        pruner.on_step(0)
    _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet, "gradual",
           step_callback)
    return _record(model, data, schedule="gradual", model_name=model_name,
                   criterion=criterion, scope=scope, granularity=granularity, sparsity=sparsity,
                   exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
                   optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                   before=at_end["accuracy"], after=_accuracy(model, data), start=start,
                   begin_step=begin_step, end_step=end_step, frequency=frequency,
                   total_steps=total, history=pruner.history)


def at_init(model: Any, data: Any, *, criterion: str = "snip", sparsity: float | None = 0.9,
            scope: str = "global", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 4, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1, grads_batches: int = 1) -> dict[str, Any]:
    """Prune at initialisation, then train ``finetune_epochs`` epochs under the masks.

    ``model``'s current weights are taken as the initialisation: pass a freshly built model.
    SNIP (Lee et al. 2019) scores |w · dL/dw| from ``grads_batches`` batches (one, as in the
    paper); ``random`` and ``magnitude`` are the usual baselines. ``accuracy_dense`` is the
    untrained model's (chance level): compare with a dense model trained the same way.
    """
    start = time.perf_counter()
    if criterion not in AT_INIT_CRITERIA:
        raise ValueError(f"at_init prunes with one of {AT_INIT_CRITERIA}, got {criterion!r}")
    exclude = _check(model, data, criterion, sparsity, scope, granularity, exclude,
                     finetune_epochs, 1, lr, optimizer, batch_size)
    dense = _accuracy(model, data)
    prune_model(model, criterion, sparsity, scope, granularity, exclude,
                _grads(criterion, model, data, batch_size, seed, grads_batches), seed, min_keep)
    before = _accuracy(model, data)
    _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet, "train")
    return _record(model, data, schedule="init", model_name=model_name, criterion=criterion,
                   scope=scope, granularity=granularity, sparsity=_target(sparsity, granularity),
                   exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
                   optimizer=optimizer, batch_size=batch_size, seed=seed, dense=dense,
                   before=before, after=_accuracy(model, data), start=start,
                   grads_batches=grads_batches)


def lottery(model: Any, data: Any, *, rate: float | None = None, sparsity: float | None = None,
            rounds: int = 3, rewind_step: int = 0, criterion: str = "magnitude",
            scope: str = "layer", granularity: str = "weight", exclude: Iterable[str] = (),
            finetune_epochs: int = 2, lr: float = 0.02, optimizer: str = "sgd",
            batch_size: int = 64, seed: int = 0, quiet: bool = True, model_name: str = "model",
            min_keep: int = 1) -> dict[str, Any]:
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
    exclude = _check(model, data, criterion, sparsity, scope, granularity, exclude,
                     finetune_epochs, 1, lr, optimizer, batch_size)
    if granularity != "weight":
        raise ValueError(f"lottery prunes single weights: granularity must be 'weight', "
                         f"got {granularity!r}")
    rounds = _int("rounds", rounds, 1)
    if rate is not None and sparsity is not None:
        raise ValueError(f"give rate or sparsity, not both (got rate={rate!r}, "
                         f"sparsity={sparsity!r})")
    if rate is None:
        rate = 0.2 if sparsity is None else 1 - (1 - sparsity) ** (1 / rounds)
    rate = check_sparsity(rate, "rate")
    steps = finetune_epochs * math.ceil(len(data.x_train) / batch_size)
    if _int("rewind_step", rewind_step, 0) > steps:
        raise ValueError(f"rewind_step {rewind_step} is after the last of the {steps} steps "
                         "of a training run")
    saved = {"theta": snapshot(model)} if rewind_step == 0 else {}

    def keep_theta_k(step: int) -> None:
        if step == rewind_step:
            saved["theta"] = snapshot(model)

    log = []
    for r in range(1, rounds + 1):
        _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet,
               f"round {r}/{rounds}", keep_theta_k if r == 1 and rewind_step else None)
        trained = _accuracy(model, data)
        report = prune_round(model, rate, r, criterion, scope, exclude,
                             _grads(criterion, model, data, batch_size, seed), seed, min_keep)
        pruned = _accuracy(model, data)
        rewind(model, saved["theta"])
        log.append({"round": r, "target": round_sparsity(rate, r), "sparsity": report.sparsity,
                    "accuracy_trained": trained, "accuracy_pruned": pruned})
    rewound = _accuracy(model, data)
    _train(model, data, finetune_epochs, lr, optimizer, batch_size, seed, quiet, "ticket")
    return _record(model, data, schedule="lottery", model_name=model_name,
                   criterion=criterion, scope=scope, granularity=granularity,
                   sparsity=round_sparsity(rate, rounds) if sparsity is None else sparsity,
                   exclude=exclude,
                   finetune_epochs=finetune_epochs, lr=lr, optimizer=optimizer,
                   batch_size=batch_size, seed=seed, dense=log[0]["accuracy_trained"],
                   before=log[-1]["accuracy_pruned"], after=_accuracy(model, data),
                   start=start, rate=rate, rewind_step=rewind_step, accuracy_rewound=rewound,
                   rounds=log)
