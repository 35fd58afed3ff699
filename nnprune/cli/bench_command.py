"""``nnprune bench``: its options here, its work in ``nnprune.bench`` (imported when it runs)."""
from __future__ import annotations

import argparse
import importlib

from nnprune.cli.arguments import positive_float, positive_int

BENCHES = ("conv", "prune", "train", "hessian", "demo")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="kernel and training benchmarks",
                       description="Time the NumPy kernels (conv forward and backward, a "
                                   "LeNet-5 training step) and print the BLAS in use.",
                       examples=("nnprune bench conv --repeat 5",
                                 "nnprune bench prune --repeat 7",
                                 "nnprune bench hessian --repeat 3"))
    p.add_argument("what", nargs="?", default="conv", choices=BENCHES,
                   help="what to time (conv: the conv layers and a LeNet-5 step; prune: "
                        "inference of dense, masked and shrunk filter-pruned models; train: "
                        "training epochs end to end, see nnprune.bench.train; hessian: "
                        "exact OBC, SparseGPT and the Hessian diagonals; demo: "
                        "'demo --quick' with 1 and 2 BLAS threads, try --repeat 3)")
    p.add_argument("--cases", type=lambda text: [t.strip() for t in text.split(",")
                                                 if t.strip()],
                   help="prune: comma-separated cases (default: all of "
                        "nnprune.bench.prune.CASES)")
    p.add_argument("--repeat", type=positive_int, default=10,
                   help="timed runs per case, the median is reported (default: %(default)s)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE ('-': standard output, "
                        "the table then goes to standard error)")
    p.add_argument("--no-torch", action="store_true",
                   help="skip the PyTorch comparison even if torch is importable")
    p.add_argument("--threads", type=positive_int,
                   help="BLAS threads (through threadpoolctl) and torch threads, the same "
                        "for both (default: BLAS as configured, torch one per CPU)")
    g = p.add_argument_group("bench train")
    g.add_argument("--data-dir", metavar="DIR",
                   help="folder with the MNIST t10k files for the LeNet-5 epoch (skipped "
                        "without it)")
    g.add_argument("--vgg-samples", type=positive_int, default=1024,
                   help="random images in the VGG-16 epoch (default: %(default)s)")
    g.add_argument("--vgg-width", type=positive_float, default=0.25,
                   help="VGG-16 width multiplier (default: %(default)s)")
    g.add_argument("--epochs", type=positive_int, default=3,
                   help="epochs timed per framework, in turns; the median is reported "
                        "(default: %(default)s)")
    g.add_argument("--demo", action="store_true",
                   help="also time `nnprune demo` in a fresh process")
    g.add_argument("--tests", action="store_true",
                   help="also time the test suite (pytest) in --project")
    g.add_argument("--project", default=".", metavar="DIR",
                   help="the checkout whose tests --tests runs (default: .)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        bench = importlib.import_module("nnprune.bench")
    except ImportError as err:
        raise ValueError(f"the bench command is not available: {err}") from None
    return int(bench.run(args) or 0)
