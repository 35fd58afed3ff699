"""The options of ``nnprune bench`` (the ``cli`` adds them to its ``bench`` subcommand only
when that command runs, so the other commands do not import the bench)."""
from __future__ import annotations

import argparse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the bench options to ``parser`` (the ``nnprune bench`` subcommand)."""
    parser.add_argument("what", nargs="?", default="conv",
                        choices=["conv", "prune", "train", "hessian", "demo"],
                        help="what to time (conv: the conv layers and a LeNet-5 step; prune: "
                             "inference of dense, masked and shrunk filter-pruned models; train: "
                             "training epochs end to end, see nnprune.bench.train; hessian: "
                             "exact OBC, SparseGPT and the Hessian diagonals; demo: "
                             "'demo --quick' with 1 and 2 BLAS threads, try --repeat 3)")
    parser.add_argument("--cases", type=lambda text: [t.strip() for t in text.split(",")
                                                      if t.strip()],
                        help="prune: comma-separated cases (default: all of "
                             "nnprune.bench.prune.CASES)")
    parser.add_argument("--repeat", type=_positive_int, default=10,
                        help="timed runs per case, the median is reported (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results as JSON to FILE ('-': standard output, "
                             "the table then goes to standard error)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch comparison even if torch is importable")
    parser.add_argument("--threads", type=_positive_int,
                        help="BLAS threads (through threadpoolctl) and torch threads, the same "
                             "for both (default: BLAS as configured, torch one per CPU)")
    _train_options(parser)


def _train_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``nnprune bench train``."""
    parser.add_argument("--data-dir", metavar="DIR",
                        help="train: folder with the MNIST t10k files for the LeNet-5 epoch "
                             "(skipped without it)")
    parser.add_argument("--vgg-samples", type=_positive_int, default=1024,
                        help="train: random images in the VGG-16 epoch (default: %(default)s)")
    parser.add_argument("--vgg-width", type=float, default=0.25,
                        help="train: VGG-16 width multiplier (default: %(default)s)")
    parser.add_argument("--epochs", type=_positive_int, default=3,
                        help="train: epochs timed per framework, in turns; the median is "
                             "reported (default: %(default)s)")
    parser.add_argument("--demo", action="store_true",
                        help="train: also time `nnprune demo` in a fresh process")
    parser.add_argument("--tests", action="store_true",
                        help="train: also time the test suite (pytest) in --project")
    parser.add_argument("--project", default=".", metavar="DIR",
                        help="train: the checkout whose tests --tests runs (default: .)")
