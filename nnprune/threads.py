"""How many BLAS threads a workload gets: one for small models, all for large ones.

OpenBLAS starts one thread per core and, between GEMMs, lets them spin waiting for work. On
small matrices (the digits models: a few hundred thousand multiply-accumulates per batch)
the second thread saves nothing, and when other processes hold the cores the spinning
threads fight them: ``nnprune demo --quick`` took 25 s with two threads against 7 s with one
at load 2.6 on two cores. So a workload whose largest layer does fewer than
``SMALL_LAYER_MACS`` multiply-accumulates per batch runs with one BLAS thread; larger ones
keep the library's default (one per core).

The thread count is set with threadpoolctl (only for the BLAS NumPy uses, only inside the
``with`` block). A count the user chose wins: with ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or inside ``fixed_blas_threads``, nothing is
changed.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator

SMALL_LAYER_MACS = 2**26  # multiply-accumulates of one layer for one batch (~67 million)
USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_state = threading.local()


def largest_layer_macs(model: Any, input_shape: tuple[int, ...], batch_size: int) -> int | None:
    """MACs of the model's most expensive layer for one batch (None if it cannot be counted)."""
    from nnprune.count import count

    try:
        report = count(model, tuple(input_shape))
    except (ValueError, TypeError, NotImplementedError):
        return None
    return max((row.macs for row in report.layers), default=0) * int(batch_size)


def threads_for(model: Any, input_shape: tuple[int, ...], batch_size: int) -> int | None:
    """1 for a model whose largest layer is below ``SMALL_LAYER_MACS`` per batch, else None
    (the BLAS default: one thread per core)."""
    macs = largest_layer_macs(model, input_shape, batch_size)
    return 1 if macs is not None and macs < SMALL_LAYER_MACS else None


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` BLAS threads (None: leave them as they are)."""
    if threads is None or getattr(_state, "fixed", False) or any(
            os.environ.get(name) for name in USER_SETTINGS):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


@contextlib.contextmanager
def blas_threads_for(model: Any, input_shape: tuple[int, ...], batch_size: int) -> Iterator[None]:
    """``blas_threads(threads_for(model, input_shape, batch_size))``."""
    with blas_threads(threads_for(model, input_shape, batch_size)):
        yield


@contextlib.contextmanager
def fixed_blas_threads(threads: int) -> Iterator[None]:
    """Run the block with exactly ``threads`` BLAS threads, whatever the workload (for
    benchmarks that compare thread counts)."""
    from threadpoolctl import threadpool_limits

    before = getattr(_state, "fixed", False)
    with threadpool_limits(limits=int(threads), user_api="blas"):
        _state.fixed = True
        try:
            yield
        finally:
            _state.fixed = before


def blas_thread_counts() -> list[int]:
    """The thread count of every BLAS library NumPy has loaded."""
    import numpy  # noqa: F401  (threadpoolctl lists only the libraries already loaded)
    from threadpoolctl import threadpool_info

    return [int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]
