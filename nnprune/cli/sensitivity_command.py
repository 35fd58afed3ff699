"""``nnprune sensitivity``: prune each layer of a saved model alone at a range of ratios (no
fine-tuning), plot one accuracy curve per layer and derive the ratio each layer tolerates
(Li et al. 2017, Fig. 2); ``nnprune prune --sparsity DIR/sensitivity.json`` uses them."""
from __future__ import annotations

import argparse

from nnprune.cli.arguments import UsageError, add_data_options, fraction, fractions
from nnprune.cli.inputs import saved_model
from nnprune.cli.outputs import check_outputs
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA, NEEDS_DATA
from nnprune.prune.scores import CRITERIA, NEEDS_GRADS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sensitivity", help="per-layer pruning sensitivity curves",
                       description="Prune each layer of a saved model alone at every ratio "
                                   "(no fine-tuning), record the accuracy, write "
                                   "sensitivity.json (curves and the ratio each layer "
                                   "tolerates within --tolerance) and sensitivity.png.",
                       examples=("nnprune sensitivity cnn.npz --out sens",
                                 "nnprune sensitivity cnn.npz --criterion fpgm "
                                 "--tolerance 0.02 --out sens",
                                 "nnprune prune cnn.npz --granularity filter --sparsity "
                                 "sens/sensitivity.json --out cnn-small.npz"))
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by 'nnprune train'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--criterion", choices=CRITERIA + CHANNEL_CRITERIA, default="l1_norm",
                   help="importance score (default: %(default)s, Li et al.'s filter L1 norm)")
    p.add_argument("--granularity", choices=("filter", "neuron", "channel", "weight"),
                   default="filter", help="what is pruned in a layer (default: %(default)s)")
    p.add_argument("--ratios", type=fractions, default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                                         0.8, 0.9],
                   help="fractions pruned per layer (default: 0.1,0.2,...,0.9)")
    p.add_argument("--tolerance", type=fraction, default=0.01,
                   help="accuracy drop each layer may cost alone (default: %(default)s = 1 "
                        "point)")
    p.add_argument("--measure-on", choices=("test", "train"), default="test",
                   help="the split the accuracy is measured on (default: %(default)s, as Li "
                        "et al.)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random criterion")
    add_data_options(p, default=None)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nnprune.experiment.plots import sensitivity_plot
    from nnprune.experiment.sensitivity import (layer_sensitivity, tolerated_ratios,
                                                write_sensitivity)

    check_outputs({"MODEL.npz": args.model}, {}, {"--out": args.out})
    if args.criterion in NEEDS_GRADS:
        raise UsageError(f"argument --criterion: {args.criterion} needs gradients; use one of "
                         f"magnitude, random or {', '.join(CHANNEL_CRITERIA)}")
    if args.criterion in CHANNEL_CRITERIA and args.granularity not in ("filter", "neuron"):
        raise UsageError(f"argument --criterion: {args.criterion} scores whole filters or "
                         f"neurons; use --granularity filter or neuron")
    model, _, data = saved_model(args.model, args)
    split = (data.x_test, data.y_test) if args.measure_on == "test" else \
        (data.x_train, data.y_train)
    result = layer_sensitivity(model, split, ratios=args.ratios, criterion=args.criterion,
                               granularity=args.granularity, seed=args.seed,
                               train_data=(data.x_train, data.y_train)
                               if args.criterion in NEEDS_DATA else None)
    result["measured_on"] = args.measure_on
    ratios = tolerated_ratios(result["curves"], result["accuracy_dense"], args.tolerance)
    print(f"{args.model}: {args.criterion} {args.granularity}s, accuracy on the "
          f"{args.measure_on} split, dense {100 * result['accuracy_dense']:.2f}%")
    grid = [r for r, _ in next(iter(result["curves"].values()))]
    print(f"{'layer':<16}" + "".join(f"{100 * r:>6.0f}%" for r in grid) + "   tolerated")
    for name, curve in result["curves"].items():
        print(f"{name:<16}" + "".join(f"{100 * a:>7.1f}" for _, a in curve)
              + f"   {100 * ratios[name]:.0f}%")
    json_path = write_sensitivity(f"{args.out}/sensitivity.json", result, args.tolerance)
    png = sensitivity_plot(result, f"{args.out}/sensitivity.png", tolerance=args.tolerance)
    print(f"wrote {json_path} and {png}")
    return 0
