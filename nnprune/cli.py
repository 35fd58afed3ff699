"""The ``nnprune`` command: train, summary, prune, sweep, demo, bench.

``main(argv)`` returns the exit status: 0 on success, 2 for bad arguments (one line on
stderr, from argparse), 1 when the library refuses an input (a ValueError or a missing
file, printed as ``nnprune: error: ...``). No traceback is shown for either.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from nnprune.data.download import DatasetNotFoundError
from nnprune.models import MODELS
from nnprune.prune.groups import parse_granularity
from nnprune.prune.scores import CRITERIA

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
SCHEDULES = ("oneshot", "iterative", "gradual", "init", "lottery")
SCOPES = ("global", "layer")
DEFAULT_INPUT = {"lenet_300_100": (1, 28, 28), "lenet5": (1, 28, 28),
                 "simple_cnn": (3, 32, 32), "vgg16": (3, 32, 32)}


class UsageError(Exception):
    """Arguments that parse but do not fit together: reported like argparse's, status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nnprune prune: error: ... (see --help)``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------- argument types
def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] (0.9 = 90% zeros), "
                                         f"got {text!r}")
    return value


def _fractions(text: str) -> list[float]:
    values = [_fraction(t.strip()) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.9, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _choices(allowed: Sequence[str]):
    def parse(text: str) -> list[str]:
        values = [t.strip() for t in text.split(",") if t.strip()]
        bad = [v for v in values if v not in allowed]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of "
                                             f"{', '.join(allowed)}; got {text!r}")
        return values
    return parse


def _granularity(text: str) -> str:
    try:
        parse_granularity(text)
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# ---------------------------------------------------------------------- shared pieces
def load_data(name: str, *, data_dir: str | None = None, download: bool = False,
              split: str = "official", seed: int = 0) -> Any:
    """The dataset ``name`` as the commands load it (digits need no files)."""
    from nnprune import data

    if name == "digits":
        return data.digits(seed=seed)
    if name in ("mnist", "fashion_mnist"):
        return data.load_dataset(name, root=data_dir, split=split, seed=seed, download=download)
    return data.load_dataset(name, root=data_dir, download=download)


def _data_options(p: argparse.ArgumentParser, default: str | None = "digits") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATASETS, default=default,
                   help="dataset (default: %(default)s; digits ship with scikit-learn)"
                   if default else "dataset (default: the saved model's, else digits)")
    g.add_argument("--data-dir", metavar="DIR",
                   help="folder of the MNIST/Fashion-MNIST/CIFAR-10 files")
    g.add_argument("--download", action="store_true",
                   help="download missing MNIST/Fashion-MNIST/CIFAR-10 files (checked by SHA-256)")
    g.add_argument("--split", choices=("official", "t10k"), default="official",
                   help="MNIST split: the official 60k/10k, or the t10k files split 80/20")


def _training_options(p: argparse.ArgumentParser, lr: float, epochs_flag: str = "--epochs",
                      epochs: int = 10) -> None:
    g = p.add_argument_group("training")
    g.add_argument(epochs_flag, type=_positive_int, default=epochs, metavar="N",
                   help="epochs (default: %(default)s)")
    g.add_argument("--lr", type=_positive_float, default=lr,
                   help="initial learning rate, cosine-decayed to 0 (default: %(default)s)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (momentum 0.9) or adam (default: %(default)s)")
    g.add_argument("--weight-decay", type=_nonnegative_float, default=0.0,
                   help="L2 weight decay while training (default: %(default)s)")
    g.add_argument("--batch-size", type=_positive_int, default=64,
                   help="mini-batch size (default: %(default)s)")
    g.add_argument("--seed", type=_count, default=0,
                   help="seed of the data split, initial weights, shuffling and random "
                        "scores (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _pruning_options(g: Any) -> None:
    """--granularity, --exclude and --finetune-epochs, added to the group ``g``."""
    g.add_argument("--granularity", type=_granularity, default="weight",
                   help="weight, kernel, filter, channel, neuron or N:M such as 2:4 "
                        "(default: %(default)s)")
    g.add_argument("--exclude", nargs="+", default=[], metavar="NAME",
                   help="parameter names never pruned, e.g. 0.weight")
    g.add_argument("--finetune-epochs", type=_count, default=2, metavar="N",
                   help="fine-tuning epochs after pruning; 0 = none (default: %(default)s)")


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _input_shape(model_name: str | None, given: Sequence[int] | None,
                 metadata: dict[str, Any]) -> tuple[int, int, int]:
    if given:
        return tuple(given)  # type: ignore[return-value]
    if metadata.get("input_shape"):
        return tuple(int(d) for d in metadata["input_shape"])  # type: ignore[return-value]
    if model_name in DEFAULT_INPUT:
        return DEFAULT_INPUT[model_name]
    raise ValueError("the input shape is unknown: pass --input-shape C H W")


def _build(name: str, data: Any, width: float, seed: int) -> Any:
    from nnprune.models import build_model

    c, h, w = data.input_shape
    return build_model(name, in_channels=c, num_classes=data.num_classes, input_size=(h, w),
                       width=width, seed=seed)


def _saved_model(path: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(model, metadata, dataset) for a trained file; the split seed is the one it was
    trained on unless another dataset is asked for."""
    from nnprune import io

    model, metadata = io.load(path)
    name, seed, split = args.data or metadata.get("dataset") or "digits", args.seed, args.split
    if name == metadata.get("dataset"):  # the same split the model was trained on
        seed, split = metadata.get("data_seed", seed), metadata.get("data_split", split)
    data = load_data(name, data_dir=args.data_dir, download=args.download, split=split,
                     seed=int(seed))
    return model, metadata, data


def _check_converged(history: Any, lr: float) -> None:
    """A loss that became NaN or infinite means the run diverged: say so, save nothing."""
    for entry in history.epochs:
        if not math.isfinite(entry["loss"]):
            raise ValueError(f"training diverged: the loss is {entry['loss']} in epoch "
                             f"{entry['epoch']}; try a smaller --lr (it was {lr})")


# ---------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from nnprune import io, train
    from nnprune.experiment.sweep import fit_model

    data = load_data(args.data, data_dir=args.data_dir, download=args.download,
                     split=args.split, seed=args.seed)
    model = _build(args.model, data, args.width, args.seed)
    history = fit_model(model, data, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, batch_size=args.batch_size,
                        seed=args.seed, quiet=args.quiet, desc=f"train {args.model}")
    _check_converged(history, args.lr)
    test = train.evaluate(model, (data.x_test, data.y_test))
    metadata = {"model": args.model, "width": args.width, "dataset": data.name,
                "data_seed": args.seed, "data_split": args.split,
                "data_description": data.description, "input_shape": list(data.input_shape),
                "num_classes": data.num_classes,
                "train": {"epochs": args.epochs, "lr": args.lr, "optimizer": args.optimizer,
                          "weight_decay": args.weight_decay, "batch_size": args.batch_size,
                          "seed": args.seed},
                "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                "history": history.to_dict()}
    io.save(args.out, model, metadata)
    print(f"{args.model} on {data.name}: test accuracy {100 * test['accuracy']:.2f}% "
          f"(loss {test['loss']:.4f}) after {args.epochs} epochs; saved {args.out}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nnprune import io
    from nnprune.count import count
    from nnprune.models import build_model

    if (args.file is None) == (args.model is None):
        raise UsageError("give either a model file or --model NAME (not both)")
    if args.file is not None:
        model, metadata = io.load(args.file)
        shape = _input_shape(metadata.get("model"), args.input_shape, metadata)
        title = f"{args.file}" + (f" ({metadata['model']})" if "model" in metadata else "")
    else:
        shape = _input_shape(args.model, args.input_shape, {})
        model = build_model(args.model, in_channels=shape[0], num_classes=args.num_classes,
                            input_size=shape[1:], width=args.width)
        title = f"{args.model} (width {args.width}, {args.num_classes} classes)"
    report = count(model, shape)
    print(title)
    print(report)
    if args.json:
        from nnprune.experiment.report import write_json
        write_json(args.json, report.to_dict())
        print(f"wrote {args.json}")
    return 0


def _fresh_model(metadata: dict[str, Any]) -> Any:
    """The saved model's architecture with the initial weights it was trained from (built
    again from its name, width and training seed), for the init and lottery schedules."""
    from nnprune.models import build_model

    needed = ("model", "input_shape", "num_classes", "train")
    if any(key not in metadata for key in needed) or metadata["model"] not in MODELS:
        raise ValueError("the init and lottery schedules start from the initial weights, which "
                         "can be rebuilt only for a model saved by 'nnprune train'")
    c, h, w = metadata["input_shape"]
    return build_model(metadata["model"], in_channels=c, num_classes=metadata["num_classes"],
                       input_size=(h, w), width=metadata.get("width", 1.0),
                       seed=metadata["train"]["seed"])


def cmd_prune(args: argparse.Namespace) -> int:
    from nnprune import io
    from nnprune.experiment.report import write_json

    model, metadata, data = _saved_model(args.model, args)
    from nnprune.experiment import workflows
    from nnprune.prune.apply import sparsity_report

    nm = isinstance(parse_granularity(args.granularity), tuple)
    sparsity = args.sparsity if args.sparsity is not None else (None if nm else 0.9)
    options = dict(criterion=args.criterion, sparsity=sparsity, scope=args.scope,
                   granularity=args.granularity, exclude=tuple(args.exclude),
                   finetune_epochs=args.finetune_epochs, lr=args.lr, optimizer=args.optimizer,
                   batch_size=args.batch_size, seed=args.seed, quiet=args.quiet,
                   model_name=metadata.get("model", "model"))
    if args.schedule in ("iterative", "lottery"):
        options["rounds"] = args.rounds
    if args.schedule in ("init", "lottery"):
        model = _fresh_model(metadata)
    run = {"oneshot": workflows.oneshot, "iterative": workflows.iterative,
           "gradual": workflows.gradual, "init": workflows.at_init,
           "lottery": workflows.lottery}[args.schedule]
    result = json.loads(json.dumps(run(model, data, **options), default=float))
    print(f"{args.model}: {args.criterion} scores, {args.scope} scope, {args.granularity} "
          f"granularity, {args.schedule} schedule, target sparsity {100 * result['sparsity']:.1f}%")
    print(sparsity_report(model, args.exclude))
    dense = "initial" if args.schedule == "init" else "dense"
    tuned = result["accuracy_after_finetune"]
    print(f"test accuracy: {dense} {100 * result['accuracy_dense']:.2f}%, right after pruning "
          f"{100 * result['accuracy_before_finetune']:.2f}%, after fine-tuning "
          + ("(none)" if tuned is None else f"{100 * tuned:.2f}%"))
    io.save(args.out, model, {**metadata, "pruning": result})
    print(f"saved {args.out} (masks attached)")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from nnprune.experiment.sweep import fit_model, representative, sweep, write_outputs

    if args.model.endswith(".npz"):
        trained, metadata, data = _saved_model(args.model, args)
        name = metadata.get("model", args.model.rsplit("/", 1)[-1][:-4])
    else:
        if args.model not in MODELS:
            raise ValueError(f"--model must be one of {sorted(MODELS)} or a .npz file, "
                             f"got {args.model!r}")
        data = load_data(args.data or "digits", data_dir=args.data_dir,
                         download=args.download, split=args.split, seed=args.seed)
        name, trained = args.model, _build(args.model, data, args.width, args.seed)
        history = fit_model(trained, data, epochs=args.epochs, lr=args.lr,
                            optimizer=args.optimizer, weight_decay=args.weight_decay,
                            batch_size=args.batch_size, seed=args.seed, quiet=args.quiet,
                            desc=f"train {name}")
        _check_converged(history, args.lr)
    shown = representative(args.criteria, args.scope, args.sparsities)
    kept = {}

    def keep(record: dict[str, Any], model: Any) -> None:
        if (record["criterion"], record["scope"], record["sparsity"]) == shown:
            kept[name] = model

    records = sweep(trained, data, criteria=args.criteria, sparsities=args.sparsities,
                    scopes=args.scope, granularity=args.granularity,
                    finetune_epochs=args.finetune_epochs, lr=args.finetune_lr,
                    optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed,
                    exclude=args.exclude, model_name=name, progress=not args.quiet,
                    on_run=keep)
    paths = write_outputs(args.out, records, trained={name: trained}, pruned=kept,
                          title=f"Pruning sweep: {name} on {data.name}",
                          intro=f"Data: {data.description}.",
                          meta={"command": "sweep", "model": name, "dataset": data.name})
    for r in records:
        tuned = r["accuracy_after_finetune"]
        print(f"{r['scope']:<6} {r['criterion']:<9} {100 * r['sparsity']:5.1f}%  "
              f"pruned {100 * r['accuracy_before_finetune']:5.1f}%  fine-tuned "
              + ("   –" if tuned is None else f"{100 * tuned:5.1f}%"))
    print(f"wrote {paths['results']}, {paths['report']} and {len(paths) - 2} figures")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nnprune.experiment.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed, progress=not args.quiet)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    return int(importlib.import_module("nnprune.bench").run(args) or 0)


# ---------------------------------------------------------------------- the parser
def build_parser(configure_bench: bool = False) -> argparse.ArgumentParser:
    """The ``nnprune`` parser. ``configure_bench`` imports ``nnprune.bench`` to add the
    bench options (only done when the bench command is the one being run)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog="nnprune", formatter_class=fmt,
                    description=_wrap("Pure-NumPy neural-network pruning: train, count, prune, "
                                      "sweep and report."),
                    epilog=_examples("nnprune demo",
                                     "nnprune train --model lenet_300_100 --epochs 20 "
                                     "--out mlp.npz",
                                     "nnprune prune mlp.npz --sparsity 0.9 --scope global "
                                     "--out mlp-90.npz",
                                     "nnprune summary mlp-90.npz"))
    from nnprune import __version__
    parser.add_argument("--version", action="version", version=f"nnprune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)

    p = sub.add_parser("train", help="train a model and save it as .npz", formatter_class=fmt,
                       description=_wrap("Train one of the built-in models and save its weights, "
                                         "architecture and test accuracy to one .npz file."),
                       epilog=_examples("nnprune train --model lenet_300_100 --epochs 20 "
                                        "--out mlp.npz",
                                        "nnprune train --model lenet5 --data mnist --data-dir "
                                        "~/data/mnist --epochs 5 --out lenet5.npz"))
    p.add_argument("--model", choices=sorted(MODELS), required=True, help="architecture")
    p.add_argument("--width", type=_positive_float, default=1.0,
                   help="channel/feature multiplier (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the model")
    _data_options(p)
    _training_options(p, lr=0.02)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("summary", help="per-layer params, MACs and sparsity", formatter_class=fmt,
                       description=_wrap("Per-layer output shape, parameters, non-zero parameters, "
                                         "MACs and effective (sparse) MACs, with totals, per "
                                         "image. MACs exclude biases; FLOPs = 2 x MACs."),
                       epilog=_examples("nnprune summary mlp.npz",
                                        "nnprune summary --model vgg16 --input-shape 3 32 32"))
    p.add_argument("file", nargs="?", metavar="FILE.npz", help="a saved model")
    p.add_argument("--model", choices=sorted(MODELS), help="a fresh built-in model instead")
    p.add_argument("--input-shape", type=_positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="one image's shape (default: the file's, or the model's usual one)")
    p.add_argument("--width", type=_positive_float, default=1.0,
                   help="with --model: width multiplier (default: %(default)s)")
    p.add_argument("--num-classes", type=_positive_int, default=10,
                   help="with --model: number of classes (default: %(default)s)")
    p.add_argument("--json", metavar="FILE.json", help="also write the counts as JSON")
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("prune", help="prune a saved model and fine-tune it", formatter_class=fmt,
                       description=_wrap("Prune a saved model with a criterion, scope, granularity "
                                         "and schedule; report the sparsity reached per layer and "
                                         "the test accuracy before and after fine-tuning; save the "
                                         "pruned model with its masks."),
                       epilog=_examples("nnprune prune mlp.npz --sparsity 0.9 --scope global "
                                        "--out mlp-90.npz",
                                        "nnprune prune cnn.npz --criterion taylor --granularity "
                                        "2:4 --sparsity 0.5 --out cnn-24.npz",
                                        "nnprune prune mlp.npz --schedule iterative --rounds 4 "
                                        "--sparsity 0.95 --out mlp-95.npz --json result.json"))
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by 'nnprune train'")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the result")
    p.add_argument("--json", metavar="RESULT.json", help="also write the result record as JSON")
    g = p.add_argument_group("pruning")
    g.add_argument("--criterion", choices=CRITERIA, default="magnitude",
                   help="importance score (default: %(default)s)")
    g.add_argument("--sparsity", type=_fraction, default=None,
                   help="target fraction of zeros (default: 0.9; an N:M granularity fixes it "
                        "at 1 - N/M)")
    g.add_argument("--scope", choices=SCOPES, default="layer",
                   help="rank per layer or across all layers (default: %(default)s)")
    g.add_argument("--schedule", choices=SCHEDULES, default="oneshot",
                   help="oneshot, iterative (prune/fine-tune rounds), gradual (Zhu & Gupta), "
                        "init (SNIP-style, then train), lottery (rewind) (default: %(default)s)")
    g.add_argument("--rounds", type=_positive_int, default=3,
                   help="rounds of the iterative and lottery schedules (default: %(default)s)")
    _pruning_options(g)
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--lr", type=_positive_float, default=0.02,
                   help="fine-tuning learning rate (default: %(default)s)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (momentum 0.9) or adam (default: %(default)s)")
    g.add_argument("--batch-size", type=_positive_int, default=64,
                   help="mini-batch size (default: %(default)s)")
    g.add_argument("--seed", type=_count, default=0,
                   help="seed of shuffling and random scores (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_options(p, default=None)
    p.set_defaults(handler=cmd_prune)

    p = sub.add_parser("sweep", help="criteria x sparsities x scopes, with a report",
                       formatter_class=fmt,
                       description=_wrap("From one trained model, prune a copy for every "
                                         "criterion, sparsity and scope, measure the test accuracy "
                                         "without and with fine-tuning, and write results.json, "
                                         "report.md and figures to --out."),
                       epilog=_examples("nnprune sweep --model lenet_300_100 --epochs 20 "
                                        "--criteria magnitude,random --sparsities 0.5,0.9 "
                                        "--out sweep-mlp",
                                        "nnprune sweep --model mlp.npz --scope global,layer "
                                        "--finetune-epochs 5 --out sweep-mlp"))
    p.add_argument("--model", required=True, metavar="NAME|FILE.npz",
                   help=f"a built-in model to train first ({', '.join(sorted(MODELS))}) "
                        "or a saved model")
    p.add_argument("--width", type=_positive_float, default=1.0,
                   help="width multiplier of a built-in model (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g = p.add_argument_group("sweep")
    g.add_argument("--criteria", type=_choices(CRITERIA),
                   default=["magnitude", "random", "gradient", "taylor"],
                   help="comma-separated criteria (default: magnitude,random,gradient,taylor)")
    g.add_argument("--sparsities", type=_fractions, default=[0.5, 0.7, 0.9, 0.95],
                   help="comma-separated target sparsities (default: 0.5,0.7,0.9,0.95)")
    g.add_argument("--scope", type=_choices(SCOPES), default=["global"],
                   help="global, layer or global,layer (default: global)")
    g.add_argument("--finetune-lr", type=_positive_float, default=0.02,
                   help="fine-tuning learning rate (default: %(default)s)")
    _pruning_options(g)
    _data_options(p, default=None)
    _training_options(p, lr=0.02)
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("demo", help="the end-to-end demo on the digits", formatter_class=fmt,
                       description=_wrap("Train a small CNN and an MLP on scikit-learn's digits, "
                                         "prune them with magnitude, gradient, Taylor and random "
                                         "scores at several sparsities (global and layer-wise, "
                                         "with and without fine-tuning) and write report.md, "
                                         "results.json and figures."),
                       epilog=_examples("nnprune demo", "nnprune demo --quick --out /tmp/demo"))
    p.add_argument("--quick", action="store_true",
                   help="a few seconds' version for tests: two sparsities, 2-4 training "
                        "epochs, 1-2 fine-tuning epochs")
    p.add_argument("--out", default="nnprune-demo", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=_count, default=0,
                   help="seed of the data split, initial weights, shuffling and random scores "
                        "(default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("bench", help="kernel and training benchmarks", formatter_class=fmt,
                       description=_wrap("Time the NumPy kernels (conv forward and backward, a "
                                         "LeNet-5 training step) and print the BLAS in use."),
                       epilog=_examples("nnprune bench conv --repeat 5"))
    if configure_bench:  # imported only for the bench command: it is the only user
        importlib.import_module("nnprune.bench").configure_parser(p)
    p.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nnprune`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(configure_bench=argv[:1] == ["bench"])
        args = parser.parse_args(argv)
    except ImportError as err:
        print(f"nnprune: error: the bench command is not available: {err}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # --help, --version, or a bad argument (status 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return args.handler(args)
    except UsageError as err:
        print(f"nnprune {args.command}: error: {err} (see 'nnprune {args.command} --help')",
              file=sys.stderr)
        return 2
    except DatasetNotFoundError as err:
        print(f"nnprune: error: {err}\nnnprune: pass --download to fetch them, or --data-dir "
              "to read them from another folder", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # a refused input or a missing/unwritable file
        print(f"nnprune: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nnprune: interrupted", file=sys.stderr)
        return 130
