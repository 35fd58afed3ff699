"""A sweep: criteria × sparsities × scopes, each a one-shot run (``prune_once``) on a copy of
the same trained model, measured before and after fine-tuning: one record per run. The
gradients, Hessian diagonals and calibration samples the criteria need are computed once,
from the trained model, and shared by all runs; ``mean_over_seeds`` sums up repeated runs.

The runs share nothing else, so they may run in ``jobs`` worker processes (``map_runs``): a
run computes there exactly what it computes in the parent (the same arrays, seeds and
operations), so the records are equal bit for bit, timings aside. Workers start with
``spawn`` (no inherited threads or locks) and limit their BLAS to cpu_count // jobs threads,
so ``jobs`` processes do not oversubscribe the cores.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nnprune import train as training
from nnprune.checks import check_int
from nnprune.experiment import workflows
from nnprune.experiment.outputs import representative, write_outputs
from nnprune.experiment.runs import accuracy, clone_model, fit_model, make_optimizer, specs
from nnprune.experiment.second_order import SecondOrder, second_order_inputs, split_variant
from nnprune.nn import Module
from nnprune.prune.scores import NEEDS_GRADS
from nnprune.prune.spec import PruneSpec
from nnprune.train import OPTIMIZERS, TrainSpec

__all__ = ["prune_once", "sweep", "representative", "write_outputs", "clone_model", "fit_model",
           "make_optimizer", "OPTIMIZERS", "SCOPES"]

SCOPES = ("global", "layer")


def prune_once(trained: Module, data: Any, prune: PruneSpec | None = None,
               train: TrainSpec | None = None, **options: Any) -> tuple[dict[str, Any], Module]:
    """Prune a copy of ``trained`` once, evaluate, fine-tune, evaluate: (record, pruned model).

    ``workflows.oneshot`` on ``clone_model(trained)``, so ``trained`` is never modified; its
    options (``grads``, ``accuracy_dense``, ``pruning_inputs``, ...) and the specs' keywords
    pass through, the fine-tuning ``lr`` defaulting to 0.01. The keyword ``criterion`` may
    name a second-order variant (``obd:fisher``, ``obs:sparsegpt``, see
    ``second_order.split_variant``), kept as the record's criterion.
    """
    variant = options.get("criterion", "")
    if ":" in variant:
        options["criterion"], options["second_order"] = split_variant(
            variant, options.get("second_order"))
    if train is None:
        options.setdefault("lr", 0.01)
    model = clone_model(trained)
    record = workflows.oneshot(model, data, prune, train, **options)
    if ":" in variant:
        record["criterion"] = variant
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
          scopes: Sequence[str] = ("global",), prune: PruneSpec | None = None,
          train: TrainSpec | None = None, model_name: str = "model", progress: bool = True,
          on_run: Callable[[dict[str, Any], Module], None] | None = None,
          second_order: SecondOrder | None = None, jobs: int = 1,
          seeds: Sequence[int] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Every (seed, scope, criterion, sparsity) one-shot run from ``trained``: a list of records.

    Each run prunes as ``prune`` says, its criterion, sparsity, scope and seed set by the run
    (a ``PruneSpec``, or its keywords: ``granularity``, ``exclude``, ``layer_norm``, ...), and
    fine-tunes as ``train`` says (a ``TrainSpec``, or its keywords, ``lr`` defaulting to 0.01).
    ``seeds`` (default ``[train.seed]``) repeats every run with each seed. The gradients, obd's
    Hessian diagonal and obs's calibration samples (``second_order``'s settings) are computed
    once per seed and criterion: a record's ``prune_seconds`` is its own pruning, its
    ``setup_seconds`` those shared inputs. ``on_run(record, pruned_model)`` is called after
    each run; ``jobs`` worker processes give the same records, bit for bit, timings aside.
    """
    criteria = _check_choices("criteria", criteria, None)
    scopes = _check_choices("scopes", scopes, SCOPES)
    sparsities = _check_choices("sparsities", sparsities, None)
    for s in sparsities:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise ValueError(f"sparsities must be fractions in [0, 1], got {s!r}")
    prune, train, _ = specs(trained, data, prune, train, options, "sweep",
                            {"sparsity": sparsities[0]}, second_order, lr=0.01)
    if on_run is not None and not callable(on_run):
        raise TypeError(f"on_run must be callable or None, got {type(on_run).__name__}")
    jobs = check_int(jobs, "jobs", 1)
    seeds = [train.seed] if seeds is None else _check_choices("seeds", seeds, None)
    for s in seeds:
        check_int(s, "seeds", 0)
    shared = _shared_inputs(trained, data, criteria, seeds, second_order, train.batch_size)
    shared.update(keep_models=on_run is not None, prune=prune, train=train,
                  second_order=second_order, options=dict(
                      model_name=model_name, accuracy_dense=accuracy(trained, data)))
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
    base, settings = split_variant(criterion, shared["second_order"])
    prune = shared["prune"].replace(criterion=base, sparsity=sparsity, scope=scope, seed=seed,
                                    obs=None if settings is None else settings.obs)
    record, model = prune_once(shared["trained"], shared["data"], prune,
                               shared["train"].replace(seed=seed), second_order=settings,
                               grads=shared["grads"][seed],
                               pruning_inputs=shared["inputs"][seed, criterion],
                               **shared["options"])
    record["criterion"] = criterion
    return record, model if shared["keep_models"] else None


# ---------------------------------------------------------------------- means over seeds
GROUP_FIELDS = ("model", "dataset", "criterion", "scope", "granularity", "schedule", "sparsity")
RANGED = ("accuracy_before_finetune", "accuracy_after_finetune")


def _mean(values: list[Any]) -> Any:
    """The common value; else the mean of numbers, entry by entry for dicts of numbers."""
    first = values[0]
    if all(v == first for v in values):
        return first
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return float(np.mean(values))
    if all(isinstance(v, Mapping) and v.keys() == first.keys() for v in values):
        return {k: _mean([v[k] for v in values]) for k in first}
    return first


def mean_over_seeds(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per group of runs that differ only in ``seed`` (same ``GROUP_FIELDS``), in
    first-seen order: every numeric field that varies becomes its mean over the seeds (a
    per-layer sparsity dict, entry by entry); ``seeds`` lists the seeds, and
    ``accuracy_before_finetune_range`` / ``accuracy_after_finetune_range`` hold [min, max].
    The report and figures of a repeated sweep are drawn from these.

    >>> runs = [{"criterion": "magnitude", "sparsity": 0.9, "seed": s,
    ...          "accuracy_before_finetune": a, "accuracy_after_finetune": None}
    ...         for s, a in [(0, 0.8), (1, 0.9)]]
    >>> mean = mean_over_seeds(runs)[0]
    >>> round(mean["accuracy_before_finetune"], 6), mean["seeds"]
    (0.85, [0, 1])
    >>> mean["accuracy_before_finetune_range"], mean["accuracy_after_finetune_range"]
    ([0.8, 0.9], None)
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(str(r.get(k)) for k in GROUP_FIELDS), []).append(r)
    out = []
    for runs in groups.values():
        mean = {key: _mean([r.get(key) for r in runs]) for key in runs[0] if key != "seed"}
        mean["seed"] = runs[0].get("seed")
        mean["seeds"] = [r.get("seed") for r in runs]
        for key in RANGED:
            values = [r.get(key) for r in runs if r.get(key) is not None]
            mean[f"{key}_range"] = [min(values), max(values)] if values else None
        out.append(mean)
    return out


# ---------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _start_worker(function: Callable[[Any, Any], Any], shared: Any, blas_threads: int) -> None:
    from threadpoolctl import threadpool_limits

    _WORKER["function"], _WORKER["shared"] = function, shared
    _WORKER["limits"] = threadpool_limits(limits=blas_threads, user_api="blas")


def _run_in_worker(task: Any) -> Any:
    return _WORKER["function"](_WORKER["shared"], task)


def map_runs(function: Callable[[Any, Any], Any], shared: Any, tasks: Iterable[Any],
             jobs: int = 1) -> Iterator[Any]:
    """``function(shared, task)`` for every task, yielded in task order as they finish.

    ``jobs=1`` runs them here, one after another; more starts that many worker processes,
    hands each ``shared`` once (pickled), and sends the tasks out. ``function`` must be a
    module-level function (workers import it by name); ``shared``, the tasks and the results
    must pickle.
    """
    jobs, tasks = check_int(jobs, "jobs", 1), list(tasks)
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield function(shared, task)
        return
    jobs = min(jobs, len(tasks))
    blas_threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start_worker,
            initargs=(function, shared, blas_threads)) as pool:
        yield from pool.map(_run_in_worker, tasks)
