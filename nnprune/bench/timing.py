"""How every bench times: repeated calls after warm-up ones, several functions in turns.

Two libraries are timed in alternating blocks instead (``grouped_times``): OpenBLAS's and
torch's OpenMP worker threads keep spinning after each call, and on a machine with few cores
each library's threads would wait for the other's to yield.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


# Seconds between two groups' blocks in grouped_times. Without it, two warm-up calls were not
# always enough: in 2 of 2 runs of `bench conv` LeNet conv2's forward (BLAS on two threads)
# took 1.24 ms in place of 0.40, and its forward + backward ratio to PyTorch's read 1.5–2.6×;
# with 0.3 s, 0.40–0.41 ms in 2 of 2 runs.
PAUSE = 0.3


def timings(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> list[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones (first-touch
    allocations, BLAS threads starting)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 0
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall, CPU) seconds of each function over ``repeat`` rounds, each round calling every
    function once in turn (a, b, a, b, ...: a change of load reaches all alike), after
    ``warmup`` untimed calls of each. The CPU time (``time.process_time``) leaves out the
    time spent waiting for a core another process holds; the wall clock does not."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return wall, cpu


def median_ms(times: dict[str, list[list[float]]]) -> dict[str, float]:
    """Each function's median over all its blocks (the times of ``grouped_times``), in ms."""
    return {name: 1e3 * statistics.median(t for block in blocks for t in block)
            for name, blocks in times.items()}


def grouped_times(groups: list[dict[str, Callable[[], Any]]], repeat: int, blocks: int = 3,
                  pause: float = PAUSE) -> dict[str, list[list[float]]]:
    """Wall-clock seconds of each function, block by block: each group's functions timed in
    turns, the groups one after the other in ``blocks`` alternating blocks of about
    ``repeat / blocks`` rounds, each block after a ``pause`` of that many seconds (when there
    are several groups: the previous group's threads stop spinning) and two warm-up calls of
    each function. Block b of one group ran next to block b of the others, so a ratio of
    their medians compares the libraries under the same load (``block_ratios``)."""
    times: dict[str, list[list[float]]] = {}
    rounds = max(1, -(-repeat // blocks))
    for _ in range(blocks):
        for fns in groups:
            if len(groups) > 1:
                time.sleep(pause)
            for name, block in interleaved(fns, rounds, warmup=2)[0].items():
                times.setdefault(name, []).append(block)
    return times


def block_ratios(times: dict[str, list[list[float]]], name: str, reference: str) -> list[float]:
    """median(name) / median(reference), block by block (the times of ``grouped_times``).

    >>> block_ratios({"a": [[2, 4, 3], [5]], "t": [[1, 1, 2], [4]]}, "a", "t")
    [3.0, 1.25]
    """
    return [statistics.median(a) / statistics.median(r)
            for a, r in zip(times[name], times[reference])]


def ratio_range(ratios: list[float]) -> str:
    """The least and the greatest of ``ratios`` as printed beside a ratio: "lo–hi".

    >>> ratio_range([1.04, 0.91, 1.16])
    '0.91–1.16'
    """
    if not ratios:
        raise ValueError("ratios must hold at least one ratio, got an empty list")
    return f"{min(ratios):.2f}–{max(ratios):.2f}"
