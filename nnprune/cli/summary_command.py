"""``nnprune summary``: per-layer params, non-zero params, MACs and effective MACs."""
from __future__ import annotations

import argparse

from nnprune.cli.arguments import UsageError, positive_float, positive_int
from nnprune.cli.inputs import build, input_shape, load_model
from nnprune.cli.outputs import check_outputs
from nnprune.models import MODELS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer params, MACs and sparsity",
                       description="Per-layer output shape, parameters, non-zero parameters, "
                                   "MACs and effective (sparse) MACs, with totals, per "
                                   "image. MACs exclude biases; FLOPs = 2 x MACs.",
                       examples=("nnprune summary mlp.npz",
                                 "nnprune summary --model vgg16 --input-shape 3 32 32"))
    p.add_argument("file", nargs="?", metavar="FILE.npz", help="a saved model")
    p.add_argument("--model", choices=sorted(MODELS), help="a fresh built-in model instead")
    p.add_argument("--input-shape", type=positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="one image's shape (default: the file's, or the model's usual one)")
    p.add_argument("--width", type=positive_float, default=1.0,
                   help="with --model: width multiplier (default: %(default)s)")
    p.add_argument("--num-classes", type=positive_int, default=10,
                   help="with --model: number of classes (default: %(default)s)")
    p.add_argument("--json", metavar="FILE.json", help="also write the counts as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nnprune.count import count

    if (args.file is None) == (args.model is None):
        raise UsageError("give either a model file or --model NAME (not both)")
    check_outputs({"FILE.npz": args.file}, {"--json": args.json})
    if args.file is not None:
        model, metadata = load_model(args.file)
        shape = input_shape(metadata.get("model"), args.input_shape, metadata)
        title = f"{args.file}" + (f" ({metadata['model']})" if "model" in metadata else "")
    else:
        shape = input_shape(args.model, args.input_shape, {})
        model = build(args.model, shape, args.num_classes, args.width)
        title = f"{args.model} (width {args.width}, {args.num_classes} classes)"
    report = count(model, shape)
    print(title)
    print(report)
    if args.json:
        from nnprune.experiment.report import write_json
        write_json(args.json, report.to_dict())
        print(f"wrote {args.json}")
    return 0
