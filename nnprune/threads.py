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

Some kernels split the other way: ``chunk_runner`` runs whole chunks of a batch side by side
on as many Python threads as BLAS has, with BLAS at one thread meanwhile. Winograd's α²
products on a chunk of images are too small for OpenBLAS to share out (its second thread
made them slower), and its transforms are copies that OpenBLAS never sees; NumPy releases
the GIL in both, so whole chunks run in parallel. im2col does the same for layers of at
least ``SMALL_LAYER_MACS`` (VGG's 3→64 layer: one GEMM per image, 64 channels by 28
rows, too small to share out, beside an im2col copy and a col2im that run on one core).
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence, TypeVar

SMALL_LAYER_MACS = 2**26  # multiply-accumulates of one layer for one batch (~67 million)
USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_state = threading.local()
T, R = TypeVar("T"), TypeVar("R")


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


def even_slices(size: int, count: int) -> list[slice]:
    """range(size) in min(count, size) consecutive slices (at least one) whose lengths
    differ by at most one.

    >>> even_slices(7, 3)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 7, None)]
    """
    count = max(1, min(size, count))
    bounds = [i * size // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def chunk_slices(units: int, per_chunk: int, workers: int = 1) -> list[slice]:
    """range(units) in chunks of at most ``per_chunk`` (taken as 1 if smaller), as many as a
    multiple of ``workers`` where there are enough units (so that no thread waits idle),
    their lengths within one of each other."""
    count = -(-units // max(1, per_chunk))
    return even_slices(units, -(-count // workers) * workers)


class ChunkMap:
    """``map_chunks(fn, chunks)``: [fn(c) for c in chunks], on ``workers`` threads."""

    def __init__(self, workers: int = 1, pool: ThreadPoolExecutor | None = None) -> None:
        self.workers, self.pool = workers, pool

    def __call__(self, fn: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
        if self.pool is None or len(chunks) < 2:
            return [fn(c) for c in chunks]
        return list(self.pool.map(fn, chunks))


@contextlib.contextmanager
def chunk_runner(parallel: bool = True) -> Iterator[ChunkMap]:
    """A ``ChunkMap`` on as many threads as NumPy's BLAS has, with BLAS at one thread for the
    whole block (its own workers would only spin beside them). The mapped function must
    write only its own chunk's part of shared arrays.

    Serial when BLAS has one thread, and while another thread holds a runner (the BLAS
    thread count is process-wide); a runner opened inside a runner is the same runner.
    ``parallel=False`` runs the chunks in turn, BLAS still at one thread: for work too small
    to share out either way (Winograd on VGG-16 ×0.25's layers ran 5–30 % slower on two
    threads than on one).
    """
    current = getattr(_state, "runner", None)
    if current is not None:
        yield current
        return
    blas = _blas_controller()
    workers = blas.threads() if blas else 1
    if workers < 2 or not _chunks_lock.acquire(False):
        yield ChunkMap()
        return
    try:
        with blas.limited(1):
            _state.runner = ChunkMap(workers, _pool(workers)) if parallel else ChunkMap()
            yield _state.runner
    finally:
        _state.runner = None
        _chunks_lock.release()


class _Blas:
    """The thread counts of the BLAS libraries threadpoolctl finds, read and set directly
    (a few microseconds, where a ``threadpool_limits`` block scans the loaded libraries)."""

    def __init__(self, libs: list[Any]) -> None:
        self.libs = libs

    def threads(self) -> int:
        return min(lib.get_num_threads() or 1 for lib in self.libs)

    @contextlib.contextmanager
    def limited(self, threads: int) -> Iterator[None]:
        before = [lib.get_num_threads() for lib in self.libs]
        for lib in self.libs:
            lib.set_num_threads(threads)
        try:
            yield
        finally:
            for lib, count in zip(self.libs, before):
                lib.set_num_threads(count)


_chunks_lock = threading.Lock()
_found: dict[str, Any] = {}


def _forget_threads_after_fork() -> None:
    """A forked child has none of its parent's pool threads: start afresh."""
    global _chunks_lock
    _found.pop("pool", None)
    _chunks_lock = threading.Lock()
    _state.__dict__.clear()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_forget_threads_after_fork)


def _blas_controller() -> _Blas | None:
    """NumPy's BLAS libraries, found once (None if threadpoolctl finds none)."""
    if "blas" not in _found:
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        _found["blas"] = _Blas(libs) if libs else None
    return _found["blas"]


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, kept (their scratch arrays stay warm between calls)."""
    size, pool = _found.get("pool", (0, None))
    if size != workers:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="nnprune-chunks")
        _found["pool"] = (workers, pool)
    return pool
