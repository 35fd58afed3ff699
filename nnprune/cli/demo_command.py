"""``nnprune demo``: the end-to-end digits demo."""
from __future__ import annotations

import argparse

from nnprune.cli.arguments import count
from nnprune.cli.outputs import check_outputs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on the digits",
                       description="Train a small CNN and an MLP on the bundled 8×8 digits, "
                                   "prune them with magnitude, gradient, Taylor and random "
                                   "scores at several sparsities (global and layer-wise, "
                                   "with and without fine-tuning), cut whole filters out "
                                   "of the CNN and time the smaller model against the "
                                   "dense and the unstructured one, and write report.md, "
                                   "results.json and figures.",
                       examples=("nnprune demo", "nnprune demo --quick --out /tmp/demo"))
    p.add_argument("--quick", action="store_true",
                   help="a few seconds' version for tests: two sparsities, 2-4 training "
                        "epochs, 1-2 fine-tuning epochs")
    p.add_argument("--out", default="nnprune-demo", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=count, default=0,
                   help="seed of the data split, initial weights, shuffling and random scores "
                        "(default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from nnprune.experiment.demo import run_demo as demo
    from nnprune.threads import blas_threads

    check_outputs({}, {}, {"--out": args.out})
    with blas_threads(1):  # every demo model is digits-sized: far below SMALL_LAYER_MACS
        demo(args.out, quick=args.quick, seed=args.seed, progress=not args.quiet)
    return 0

