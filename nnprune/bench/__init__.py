"""``nnprune bench``: timings of the kernels, the pruned models, training and the demo.

Every bench prints a table and returns its figures as a dict, which ``--json`` writes;
PyTorch is compared when importable, never a dependency.
"""
from __future__ import annotations

import argparse

from nnprune.bench import conv, demo, hessian, prune, train
from nnprune.bench.machine import blas_threads, import_torch, printer, write_json

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run the bench ``args.what`` names, print its table (and write JSON); the exit status."""
    what, threads = args.what, getattr(args, "threads", None)
    say = printer(args.json)
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
