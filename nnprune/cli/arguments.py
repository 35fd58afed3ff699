"""Argument types and the option groups the commands share.

An argument type turns one command-line string into a value or raises
``argparse.ArgumentTypeError``, which argparse prints as a one-line error naming the option.
"""
from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from nnprune.data import DATASETS
from nnprune.prune.granularity import Granularity

SCOPES = ("global", "layer")


class UsageError(Exception):
    """Arguments that parse but do not fit together: reported like argparse's, status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nnprune prune: error: ... (see --help)``, exit 2; the
    description wrapped at 79 columns, the ``examples`` listed below the options."""

    def __init__(self, *args: Any, description: str | None = None,
                 examples: Sequence[str] = (), **kwargs: Any) -> None:
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        super().__init__(*args, description=description and textwrap.fill(description, 79),
                         epilog=epilog if examples else None,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------- argument types
def fraction(text: str) -> float:
    """A float in [0, 1], e.g. a sparsity."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] (0.9 = 90% zeros), "
                                         f"got {text!r}")
    return value


def fractions(text: str) -> list[float]:
    """A comma-separated list of fractions: ``0.5,0.9``."""
    values = [fraction(t.strip()) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.9, got {text!r}")
    return list(dict.fromkeys(values))  # a value given twice runs once


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def count(text: str) -> int:
    """An int >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    return _finite(text, "a positive number", lambda value: value > 0)


def nonnegative_float(text: str) -> float:
    return _finite(text, "a number >= 0", lambda value: value >= 0)


def _finite(text: str, expected: str, accept: Callable[[float], bool]) -> float:
    """A finite float that ``accept`` takes (NaN and text are refused by every test)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not accept(value) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def seed_list(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: distinct ints >= 0."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints such as 0,1,2, "
                                         f"got {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct ints >= 0, got {text!r}")
    return seeds


def choices(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """A comma-separated list of names, each one of ``allowed``."""
    def parse(text: str) -> list[str]:
        values = [t.strip() for t in text.split(",") if t.strip()]
        bad = [v for v in values if v not in allowed]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of "
                                             f"{', '.join(allowed)}; got {text!r}")
        return list(dict.fromkeys(values))  # a name given twice runs once
    return parse


def granularity(text: str) -> Granularity:
    """A ``Granularity``: weight, kernel, filter, channel, neuron or N:M such as 2:4."""
    try:
        return Granularity(text)
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# ---------------------------------------------------------------------- option groups
def add_data_options(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    """--data, --data-dir, --download, --split."""
    g = p.add_argument_group("data")
    g.add_argument("--data", type=dataset, default=default, metavar="NAME|FILE.npz",
                   help=f"dataset: {', '.join(DATASETS)}, or an .npz of your arrays (x and y, "
                        f"or x_train, y_train, x_test and y_test) "
                   + ("(default: %(default)s; digits ship with nnprune)" if default
                      else "(default: the saved model's, else digits)"))
    g.add_argument("--data-dir", metavar="DIR",
                   help="folder of the MNIST/Fashion-MNIST/CIFAR-10 files (default: "
                        "$NNPRUNE_DATA/<dataset>, else ~/.cache/nnprune/<dataset>)")
    g.add_argument("--download", action="store_true",
                   help="download missing MNIST/Fashion-MNIST/CIFAR-10 files (checked by SHA-256)")
    g.add_argument("--verify", action="store_true",
                   help="check the SHA-256 of MNIST/Fashion-MNIST/CIFAR-10 files already on "
                        "disk before reading them")
    g.add_argument("--split", choices=("official", "t10k"), default="official",
                   help="MNIST split: the official 60k/10k, or the t10k files split 80/20")
    g.add_argument("--split-indices", metavar="FILE.npz",
                   help="your own split: an .npz of 'train' and 'test' index arrays into the "
                        "digits, the t10k files (with --split t10k) or the x of --data FILE.npz")
    g.add_argument("--no-stratify", dest="stratify", action="store_const", const=False,
                   default=None, help="split at random instead of keeping every class's share")
    g.add_argument("--no-standardize", dest="standardize", action="store_const", const=False,
                   default=None, help="keep the pixels scaled to [0, 1] (digits: x/16) instead "
                                      "of standardising them with the training split's mean "
                                      "and std")


def add_training_options(p: argparse.ArgumentParser) -> None:
    """--epochs, --lr, --weight-decay, --optimizer, --batch-size, --seed, --quiet."""
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=10, metavar="N",
                   help="epochs (default: %(default)s)")
    g.add_argument("--lr", type=positive_float, default=0.02,
                   help="initial learning rate, moved by --lr-schedule (default: %(default)s)")
    g.add_argument("--weight-decay", type=nonnegative_float, default=0.0,
                   help="L2 weight decay while training (default: %(default)s)")
    add_fit_options(g, seed="seed of the data split, initial weights, shuffling and random "
                            "scores")
    add_lr_schedule_option(g)


def add_fit_options(g: Any, seed: str) -> None:
    """--optimizer, --batch-size, --seed (``seed``: what it seeds) and --quiet."""
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (momentum 0.9) or adam (default: %(default)s)")
    g.add_argument("--batch-size", type=positive_int, default=64,
                   help="mini-batch size (default: %(default)s)")
    g.add_argument("--seed", type=count, default=0, help=f"{seed} (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def dataset(text: str) -> str:
    """A bundled dataset's name, or the path of an existing .npz of arrays."""
    if text in DATASETS:
        return text
    if text.endswith(".npz"):
        if not os.path.isfile(text):
            raise argparse.ArgumentTypeError(f"{text!r}: no such file")
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)} or an .npz file, "
                                     f"got {text!r}")


def lr_schedule(text: str) -> str:
    """constant, cosine or step:S[:G], checked by ``optim.LRSchedule.parse``."""
    from nnprune.optim import LRSchedule

    try:
        return str(LRSchedule.parse(text))
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_lr_schedule_option(g: Any, flag: str = "--lr-schedule", what: str = "training") -> None:
    """The learning-rate schedule of a training run (``optim.LRSchedule``)."""
    g.add_argument(flag, type=lr_schedule, default="cosine", metavar="SCHEDULE",
                   help=f"{what} learning-rate schedule: cosine (to 0 at the last epoch), "
                        f"constant, or step:S[:G] (times G, default 0.1, every S epochs) "
                        f"(default: %(default)s)")


def add_pruning_options(g: Any) -> None:
    """--granularity, --exclude, --finetune-epochs and the fine-tuning penalties --l1 / --l2."""
    g.add_argument("--granularity", type=granularity, default="weight",
                   help="weight, kernel, filter, channel, neuron or N:M such as 2:4 "
                        "(default: %(default)s)")
    g.add_argument("--exclude", nargs="+", default=[], metavar="NAME",
                   help="parameter names never pruned, e.g. 0.weight")
    g.add_argument("--finetune-epochs", type=count, default=2, metavar="N",
                   help="fine-tuning epochs after pruning; 0 = none (default: %(default)s)")
    penalty = g.add_mutually_exclusive_group()
    penalty.add_argument("--l1", type=positive_float, metavar="LAMBDA",
                         help="fine-tune with the penalty LAMBDA * sum |w| on the remaining "
                              "weights (pushes small ones towards zero)")
    penalty.add_argument("--l2", type=positive_float, metavar="LAMBDA",
                         help="fine-tune with the penalty LAMBDA * sum w^2 on the remaining "
                              "weights (Han et al. 2015)")


def add_layer_norm_option(g: Any) -> None:
    """--layer-norm: each layer's filter scores on a common scale before a global ranking."""
    g.add_argument("--layer-norm", choices=("none", "l2", "max"), default="none",
                   help="filter or neuron granularity: divide each layer's unit scores by "
                        "their L2 norm or maximum before ranking, so a global ranking compares "
                        "layers whose scores differ in scale (default: %(default)s)")


def sparsity_spec(text: str) -> float | dict[str, float]:
    """A fraction (``0.5``), a per-layer list (``0.weight=0.3,3.weight=0.6``) or a sensitivity
    file written by ``nnprune sensitivity`` (``sens/sensitivity.json``: its tolerated ratios)."""
    if text.endswith(".json"):
        from nnprune.experiment.sensitivity import read_ratios

        try:
            return read_ratios(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    if "=" not in text:
        return fraction(text)
    out = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected layer=fraction pairs like "
                                             f"0.weight=0.3,3.weight=0.6, got {text!r}")
        out[name.strip()] = fraction(value.strip())
    return out


def add_second_order_options(g: Any) -> None:
    """--hessian, --calibration-batches, --obs-method, --damping (the obd and obs criteria)."""
    from nnprune.curvature_diag import HESSIANS
    from nnprune.prune.layerwise import METHODS

    g.add_argument("--hessian", choices=HESSIANS, default="gauss-newton",
                   help="obd: the Hessian diagonal, by second-order backpropagation "
                        "(gauss-newton: exact Gauss-Newton; lecun: OBD's own recursion), the "
                        "empirical fisher, hutchinson's estimate or exact (small layers "
                        "only) (default: %(default)s)")
    g.add_argument("--calibration-batches", type=positive_int, default=16, metavar="N",
                   help="obd/obs: training batches the Hessian is measured on "
                        "(default: %(default)s)")
    g.add_argument("--obs-method", choices=METHODS, default="exact",
                   help="obs: exact layer-wise OBS per row (Optimal Brain Compression) or the "
                        "one-pass sparsegpt (default: %(default)s)")
    g.add_argument("--damping", type=nonnegative_float, default=0.01,
                   help="obs: H + DAMPING * mean(diag H) * I (default: %(default)s)")
