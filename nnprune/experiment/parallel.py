"""Independent runs in separate processes, results in order: every core busy, same numbers.

A sweep's runs share nothing but their starting point (the trained model, the data, the
gradients): each copies the model, prunes, fine-tunes and measures. So they can run in
``jobs`` worker processes, each given the shared inputs once, and the results come back in
the order the runs were listed. A run computes exactly what it computes in the parent: the
same arrays, the same seeds, the same operations, so the records are equal bit for bit
(timings aside). Workers are started with ``spawn`` (a fresh interpreter: no inherited
threads or locks, the same on every OS).

Each worker limits its BLAS library to cpu_count // jobs threads when ``threadpoolctl`` is
installed, so ``jobs`` processes do not each start a thread per core and oversubscribe them.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import numbers
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_WORKER: dict[str, Any] = {}


def check_jobs(jobs: Any) -> int:
    """``jobs`` as an int >= 1, or a clear error."""
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1 (worker processes), got {jobs!r}")
    return int(jobs)


def _start_worker(function: Callable[[Any, Any], Any], shared: Any, blas_threads: int) -> None:
    _WORKER["function"], _WORKER["shared"] = function, shared
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the BLAS keeps its own default
        return
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
    jobs, tasks = check_jobs(jobs), list(tasks)
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
