"""``nnprune train``: train a built-in model and save it with its metadata."""
from __future__ import annotations

import argparse
from pathlib import Path

from nnprune.cli.arguments import add_data_options, add_training_options, positive_float
from nnprune.cli.inputs import build, data_from, data_options
from nnprune.cli.outputs import check_outputs
from nnprune.cli.specs import train_spec
from nnprune.models import MODELS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and save it as .npz",
                       description="Train one of the built-in models and save its weights, "
                                   "architecture and test accuracy to one .npz file.",
                       examples=("nnprune train --model lenet_300_100 --epochs 20 --out mlp.npz",
                                 "nnprune train --model lenet5 --data mnist --data-dir "
                                 "~/data/mnist --epochs 5 --out lenet5.npz"))
    p.add_argument("--model", choices=sorted(MODELS), required=True, help="architecture")
    p.add_argument("--width", type=positive_float, default=1.0,
                   help="channel/feature multiplier (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the model")
    add_data_options(p)
    add_training_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nnprune import io, train
    from nnprune.experiment.runs import fit_model

    check_outputs({}, {"--out": args.out})
    data = data_from(args, args.data, args.seed)
    model = build(args.model, data.input_shape, data.num_classes, args.width, args.seed)
    history = fit_model(model, data, train_spec(args, args.epochs, args.lr),
                        desc=f"train {args.model}")
    test = train.evaluate(model, (data.x_test, data.y_test))
    metadata = {"model": args.model, "width": args.width, "dataset": data.name,
                "data_seed": args.seed, "data_split": args.split,
                # where the files were, so that prune and sweep find them again
                "data_dir": None if args.data_dir is None else str(Path(args.data_dir).resolve()),
                "data_description": data.description, "input_shape": list(data.input_shape),
                "num_classes": data.num_classes, **data_options(args),
                "train": {"epochs": args.epochs, "lr": args.lr, "optimizer": args.optimizer,
                          "weight_decay": args.weight_decay, "batch_size": args.batch_size,
                          "seed": args.seed, "lr_schedule": args.lr_schedule},
                "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                "history": history.to_dict()}
    io.save(args.out, model, metadata)
    print(f"{args.model} on {data.name}: test accuracy {100 * test['accuracy']:.2f}% "
          f"(loss {test['loss']:.4f}) after {args.epochs} epochs; saved {args.out}")
    return 0
