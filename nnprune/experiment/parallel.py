"""Independent runs in ``jobs`` worker processes, results in the order the runs were listed.

A run computes in a worker exactly what it computes in the parent (the same arrays, seeds and
operations), so the records are equal bit for bit, timings aside. Workers start with
``spawn`` (no inherited threads or locks) and limit their BLAS to cpu_count // jobs threads,
so ``jobs`` processes do not oversubscribe the cores.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nnprune.checks import check_int

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
