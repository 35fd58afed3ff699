"""A sweep: criteria × sparsities × scopes, each run from the same trained starting point.

Every run copies the trained model (``clone_model``), prunes the copy once
(``workflows.oneshot``), measures the test accuracy without fine-tuning, then
fine-tunes the pruned copy (its masks stay attached, so pruned weights stay zero) and
measures it again. So one run gives both arms of the comparison {no fine-tuning,
fine-tuning}, and one record (see ``nnprune.experiment.report.RECORD_FIELDS``) holds them.

The gradients the gradient, Taylor and SNIP criteria need are computed once, on the trained
model and the training data, and shared by all runs: every run prunes the same model, so
they would be the same each time.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nnprune import train as training
from nnprune.experiment import workflows
from nnprune.experiment.outputs import representative, write_outputs
from nnprune.experiment.parallel import check_jobs, map_runs
from nnprune.experiment.runs import clone_model, fit_model, make_optimizer, train_spec
from nnprune.experiment.second_order import SecondOrder, second_order_inputs, split_variant
from nnprune.nn import Module
from nnprune.prune.scores import NEEDS_GRADS
from nnprune.train import OPTIMIZERS, TrainSpec

# clone_model, fit_model and make_optimizer live in runs.py, write_outputs and representative
# in outputs.py; they are importable from here too
__all__ = ["prune_once", "sweep", "representative", "write_outputs", "clone_model", "fit_model",
           "make_optimizer", "OPTIMIZERS", "SCOPES"]

SCOPES = ("global", "layer")


def prune_once(trained: Module, data: Any, *, criterion: str, sparsity: float,
               scope: str = "global", granularity: str = "weight", exclude: Sequence[str] = (),
               train: TrainSpec | None = None, grads: Mapping[str, np.ndarray] | None = None,
               accuracy_dense: float | None = None, model_name: str = "model",
               layer_norm: str = "none", second_order: SecondOrder | None = None,
               pruning_inputs: dict[str, Any] | None = None,
               **options: Any) -> tuple[dict[str, Any], Module]:
    """Prune a copy of ``trained`` once, evaluate, fine-tune, evaluate: (record, pruned model).

    ``workflows.oneshot`` on ``clone_model(trained)``, so ``trained`` is never modified.
    ``data``: a ``nnprune.data.Dataset`` (x_train, y_train, x_test, y_test, name,
    input_shape). ``grads``: dL/dw of ``trained`` for the gradient criteria (computed when
    None and needed); ``accuracy_dense``: its test accuracy (measured when None). Fine-tuning
    follows ``train`` (a ``TrainSpec``; or its keywords ``finetune_epochs``, ``lr`` (default
    0.01), ``optimizer``, ``cosine``, ``lr_schedule``, ``weight_decay``, ``regularizer``, ...);
    0 epochs skip it (``accuracy_after_finetune`` is then None). The record also carries
    ``layer_sparsity`` (the reached sparsity of every prunable weight, excluded ones
    included) and ``seconds``. ``criterion`` may name a second-order variant (``obd:fisher``,
    ``obs:sparsegpt``, see ``second_order.split_variant``), kept as the record's criterion;
    ``pruning_inputs`` are its Hessian diagonal or calibration samples when computed already.
    """
    train = train_spec(train, options, "prune_once", lr=0.01)
    label = criterion
    criterion, second_order = split_variant(criterion, second_order)
    model = clone_model(trained)
    record = workflows.oneshot(
        model, data, criterion=criterion, sparsity=sparsity, scope=scope,
        granularity=granularity, exclude=exclude, train=train, model_name=model_name,
        grads=grads, accuracy_dense=accuracy_dense, layer_norm=layer_norm,
        second_order=second_order, pruning_inputs=pruning_inputs)
    record["criterion"] = label
    return record, model


def _check_choices(name: str, values: Sequence[Any], allowed: Sequence[Any] | None) -> list:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{name}: unknown {bad}; choose from {list(allowed)}")
    return list(values)


def sweep(trained: Module, data: Any, *, criteria: Sequence[str], sparsities: Sequence[float],
          scopes: Sequence[str] = ("global",), granularity: str = "weight",
          exclude: Sequence[str] = (), train: TrainSpec | None = None,
          model_name: str = "model", progress: bool = True,
          on_run: Callable[[dict[str, Any], Module], None] | None = None,
          layer_norm: str = "none", second_order: SecondOrder | None = None, jobs: int = 1,
          seeds: Sequence[int] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Every (seed, scope, criterion, sparsity) one-shot run from ``trained``: a list of records.

    Each run fine-tunes as ``train`` says (a ``TrainSpec``, or its keywords as for
    ``prune_once``: ``finetune_epochs``, ``lr`` (default 0.01), ``optimizer``, ``seed``, ...).
    obd's Hessian diagonal and obs's calibration samples are computed once per criterion
    (variant), from ``trained``, with ``second_order``'s settings, like the gradients; every
    record keeps the seconds its own pruning took (``prune_seconds``) and the seconds those
    shared inputs took (``setup_seconds``): one pruning from scratch costs their sum.

    The trained model itself is never modified. ``on_run(record, pruned_model)`` is called
    after each run (e.g. to keep a model for the figures). A tqdm bar counts the runs.
    ``layer_norm`` (filter criteria, global scope): see ``prune_model``.
    ``seeds``: repeat every run with each seed (random scores, gradient batches, calibration
    samples, fine-tuning order; default ``[train.seed]``). ``jobs``: worker processes
    (``parallel.map_runs``); the records are the same, bit for bit, whatever the number
    (their ``*seconds`` timings aside).
    """
    train = train_spec(train, options, "sweep", lr=0.01)
    criteria = _check_choices("criteria", criteria, None)
    scopes = _check_choices("scopes", scopes, SCOPES)
    sparsities = _check_choices("sparsities", sparsities, None)
    for s in sparsities:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise ValueError(f"sparsities must be fractions in [0, 1], got {s!r}")
    if on_run is not None and not callable(on_run):
        raise TypeError(f"on_run must be callable or None, got {type(on_run).__name__}")
    jobs = check_jobs(jobs)
    seeds = [train.seed] if seeds is None else _check_choices("seeds", seeds, None)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be ints >= 0, got {s!r}")
    shared = _shared_inputs(trained, data, criteria, seeds, second_order, train.batch_size)
    shared.update(keep_models=on_run is not None, options=dict(
        granularity=granularity, exclude=exclude, train=train, model_name=model_name,
        layer_norm=layer_norm, second_order=second_order,
        accuracy_dense=training.evaluate(trained, (data.x_test, data.y_test))["accuracy"]))
    runs = [(run_seed, scope, c, float(s)) for run_seed in seeds for scope in scopes
            for c in criteria for s in sparsities]
    records = []
    bar = tqdm(total=len(runs), desc=f"sweep {model_name}" + (f" ({jobs} jobs)" if jobs > 1
                                                              else ""),
               disable=not progress, dynamic_ncols=True)
    for (run_seed, _, criterion, _), (record, model) in zip(
            runs, map_runs(_one_run, shared, runs, jobs)):
        bar.set_postfix_str(f"{record['scope']} {criterion} {record['sparsity']:.0%}",
                            refresh=False)
        bar.update()
        record["setup_seconds"] = shared["setup"][run_seed, criterion]
        records.append(record)
        if on_run is not None:
            on_run(record, model)
    bar.close()
    return records


def _shared_inputs(trained: Module, data: Any, criteria: Sequence[str], seeds: Sequence[int],
                   second_order: SecondOrder | None, batch_size: int) -> dict[str, Any]:
    """What every run of a sweep shares, computed once per seed (their batches are seeded):
    the gradients (``grads[seed]``), each second-order criterion's diagonal or calibration
    set (``inputs[seed, criterion]``) and the seconds they took (``setup[seed, criterion]``)."""
    grads, inputs, setup = {}, {}, {}
    for run_seed in seeds:
        grads[run_seed], grads_seconds = None, 0.0
        if any(c in NEEDS_GRADS for c in criteria):
            start = time.perf_counter()
            grads[run_seed] = training.gradients(trained, (data.x_train, data.y_train),
                                                 batch_size=batch_size, seed=run_seed)
            grads_seconds = time.perf_counter() - start
        for c in criteria:
            base, settings = split_variant(c, second_order)
            start = time.perf_counter()
            inputs[run_seed, c] = second_order_inputs(base, trained, data, settings, batch_size,
                                                      run_seed)
            setup[run_seed, c] = time.perf_counter() - start + (grads_seconds
                                                                 if c in NEEDS_GRADS else 0.0)
    return {"trained": trained, "data": data, "grads": grads, "inputs": inputs,
            "setup": setup}


def _one_run(shared: Mapping[str, Any], run: tuple[int, str, str, float]
             ) -> tuple[dict[str, Any], Module | None]:
    """One run of ``sweep``: (record, pruned model, or None when no one keeps it)."""
    seed, scope, criterion, sparsity = run
    options = dict(shared["options"])
    options["train"] = options["train"].replace(seed=seed)
    record, model = prune_once(shared["trained"], shared["data"], criterion=criterion,
                               sparsity=sparsity, scope=scope, grads=shared["grads"][seed],
                               pruning_inputs=shared["inputs"][seed, criterion], **options)
    return record, model if shared["keep_models"] else None
