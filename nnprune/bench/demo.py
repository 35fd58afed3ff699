"""``nnprune bench demo``: the quick demo's wall time with 1 and with 2 BLAS threads, in turns.

The load average is printed before and after: above the number of CPUs, other processes
compete for the cores and the figures are those of a loaded machine.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any, Callable

from nnprune.bench.machine import blas_line, machine

THREADS = (1, 2)


def time_demo(threads: int) -> float:
    """Seconds of one ``run_demo(quick=True)`` with exactly ``threads`` BLAS threads."""
    from nnprune.experiment.demo import run_demo
    from nnprune.threads import fixed_blas_threads

    with tempfile.TemporaryDirectory() as out, fixed_blas_threads(threads):
        start = time.perf_counter()
        run_demo(out, quick=True, progress=False, echo=lambda line: None)
        return time.perf_counter() - start


def run(args: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Time the quick demo ``--repeat`` times per thread count, interleaved; the results."""
    say(blas_line(machine()))
    repeat, cpus = args.repeat, os.cpu_count() or 1
    before = os.getloadavg()[0]
    times: dict[int, list[float]] = {t: [] for t in THREADS}
    for i in range(repeat):
        for threads in THREADS:
            times[threads].append(time_demo(threads))
            say(f"  run {i + 1}/{repeat}, {threads} BLAS thread{'s' * (threads > 1)}: "
                f"{times[threads][-1]:.1f} s")
    after = os.getloadavg()[0]
    medians = {t: statistics.median(v) for t, v in times.items()}
    loaded = max(before, after) > cpus - 0.5
    result = {"what": "demo --quick", "repeat": repeat, "cpus": cpus,
              "load_average": [before, after], "loaded": loaded,
              "seconds": {str(t): v for t, v in times.items()},
              "median_seconds": {str(t): m for t, m in medians.items()},
              "ratio_2_to_1": medians[2] / medians[1]}
    say(f"demo --quick, median of {repeat}: 1 BLAS thread {medians[1]:.1f} s, 2 threads "
        f"{medians[2]:.1f} s (2/1 = {medians[2] / medians[1]:.2f}x)")
    say(f"load average {before:.2f} before, {after:.2f} after, on {cpus} CPUs: "
        + ("LOADED (other processes compete for the cores)" if loaded else "idle enough"))
    return result
