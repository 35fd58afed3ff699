"""``nnprune bench``: timings of the kernels, the pruned models, training and the demo.

Every bench prints a table and returns its figures as a dict, which ``--json`` writes;
PyTorch is compared when importable, never a dependency.
"""
from __future__ import annotations

import argparse

from nnprune.bench import conv, demo, hessian, prune, train
from nnprune.bench.machine import blas_threads, import_torch, printer, write_json
from nnprune.heap import keep_freed_memory

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run the bench ``args.what`` names, print its table (and write JSON); the exit status."""
    what, threads = args.what, getattr(args, "threads", None)
    say = printer(args.json)
    # Every bench runs with the allocator settings nnprune's training makes on its first
    # backward, from the start and for PyTorch too. With glibc's defaults PyTorch's VGG 3→64
    # forward took a page fault per 4 KB of its 16.8 MB output on every call: 12.6 ms
    # against 2.1 ms.
    keep_freed_memory()
    if what == "prune":
        result = prune.run(args, say)
    elif what == "demo":
        result = demo.run(args, say)
    elif what == "hessian":
        with blas_threads(threads):
            result = hessian.run(args, say)
    else:  # torch first, so that the BLAS limit reaches its BLAS too
        torch = import_torch(args.no_torch, threads)
        with blas_threads(threads):
            result = (train if what == "train" else conv).run(args, torch, say)
    write_json(args.json, result)
    return 0
