"""``nnprune bench``: timings of the kernels, the pruned models, training and the demo.

- ``conv.py`` (``bench conv``): the conv layers by algorithm, and the LeNet-5 step of
  ``step.py`` (autograd against the kernels called directly);
- ``prune.py`` (``bench prune``): inference of dense, masked and shrunk filter-pruned models;
- ``train.py`` (``bench train``): training epochs end to end;
- ``hessian.py`` (``bench hessian``): exact OBC, SparseGPT and the Hessian diagonals;
- ``demo.py`` (``bench demo``): ``demo --quick`` with 1 and 2 BLAS threads.

Every bench prints a table and returns its figures as a dict, which ``--json`` writes.
``timing.py`` holds how they time (after warm-up calls, several functions in turns) and
``machine.py`` what they record about the machine (BLAS, CPUs, load average); PyTorch is
compared when importable, never a dependency.
"""
from __future__ import annotations

import argparse

from nnprune.bench import conv, demo, hessian, prune, train
from nnprune.bench.machine import blas_threads, import_torch, printer, write_json

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run the bench ``args.what`` names, print its table (and write JSON); the exit status."""
    if isinstance(args.repeat, bool) or not isinstance(args.repeat, int) or args.repeat < 1:
        raise ValueError(f"--repeat must be a positive int, got {args.repeat!r}")
    what, threads = getattr(args, "what", "conv"), getattr(args, "threads", None)
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
