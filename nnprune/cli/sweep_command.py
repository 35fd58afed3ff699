"""``nnprune sweep``: criteria × sparsities × scopes from one trained model, with
``results.json``, ``report.md`` and the figures."""
from __future__ import annotations

import argparse
from typing import Any

from nnprune.cli.arguments import (SCOPES, UsageError, add_data_options, add_layer_norm_option,
                                   add_lr_schedule_option, add_pruning_options,
                                   add_second_order_options, add_training_options, choices,
                                   fractions, nonnegative_float, positive_float, positive_int,
                                   seed_list)
from nnprune.cli.inputs import build, data_from, saved_model
from nnprune.cli.outputs import check_outputs
from nnprune.cli.specs import schedule_checked, second_order, train_spec, unfit_excluded
from nnprune.experiment.second_order import VARIANTS
from nnprune.models import MODELS
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA
from nnprune.prune.scores import CRITERIA


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="criteria x sparsities x scopes, with a report",
                       description="From one trained model, prune a copy for every "
                                   "criterion, sparsity and scope, measure the test accuracy "
                                   "without and with fine-tuning, and write results.json, "
                                   "report.md and figures to --out.",
                       examples=("nnprune sweep --model lenet_300_100 --epochs 20 "
                                 "--criteria magnitude,random --sparsities 0.5,0.9 "
                                 "--out sweep-mlp",
                                 "nnprune sweep --model mlp.npz --scope global,layer "
                                 "--finetune-epochs 5 --out sweep-mlp"))
    p.add_argument("--model", required=True, metavar="NAME|FILE.npz",
                   help=f"a built-in model to train first ({', '.join(sorted(MODELS))}) "
                        "or a saved model")
    p.add_argument("--width", type=positive_float, default=1.0,
                   help="width multiplier of a built-in model (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g = p.add_argument_group("sweep")
    g.add_argument("--criteria", type=choices(CRITERIA + CHANNEL_CRITERIA + VARIANTS),
                   default=["magnitude", "random", "gradient", "taylor"],
                   help="comma-separated criteria (default: magnitude,random,gradient,taylor); "
                        f"with --granularity filter or neuron also {', '.join(CHANNEL_CRITERIA)}; "
                        "obd:HESSIAN and obs:METHOD name a second-order variant, e.g. "
                        "magnitude,obd,obd:fisher,obs,obs:sparsegpt")
    add_layer_norm_option(g)
    g.add_argument("--sparsities", type=fractions, default=[0.5, 0.7, 0.9, 0.95],
                   help="comma-separated target sparsities (default: 0.5,0.7,0.9,0.95)")
    g.add_argument("--scope", type=choices(SCOPES), default=["layer"],
                   help="layer, global or layer,global (default: layer, as in prune)")
    g.add_argument("--finetune-lr", type=positive_float, default=0.02,
                   help="fine-tuning learning rate (default: %(default)s)")
    g.add_argument("--jobs", type=positive_int, default=1,
                   help="run the pruning runs in this many processes (same numbers as 1; "
                        "default: %(default)s)")
    g.add_argument("--seeds", type=seed_list, default=None,
                   help="comma-separated seeds: repeat every run with each (random scores, "
                        "gradient batches, fine-tuning order); the report shows means and "
                        "ranges, results.json every run (default: --seed)")
    add_pruning_options(g)
    g.add_argument("--finetune-weight-decay", type=nonnegative_float, default=0.0,
                   help="PyTorch's coupled weight decay while fine-tuning (default: %(default)s)")
    add_lr_schedule_option(g, "--finetune-lr-schedule", "fine-tuning")
    add_second_order_options(g)
    add_data_options(p, default=None)
    add_training_options(p)
    p.set_defaults(handler=run)


TRAINING_OPTIONS = ("--epochs", "--lr", "--weight-decay")


def run(args: argparse.Namespace) -> int:
    from nnprune.experiment.sweep import representative, sweep

    check_outputs({"--model": args.model if args.model.endswith(".npz") else None}, {},
                  {"--out": args.out})
    if args.granularity.is_nm:
        raise ValueError(f"granularity {str(args.granularity)!r} fixes the sparsity at 1 - N/M: "
                         f"a sweep over sparsities needs weight, kernel, filter, channel or "
                         f"neuron (prune one model with 'nnprune prune --granularity "
                         f"{args.granularity}')")
    for criterion in args.criteria:
        schedule_checked(args, "oneshot", criterion.split(":")[0], None, args.finetune_epochs)
    trained, name, data = _trained(args)
    exclude = unfit_excluded(args, trained)
    shown, kept = representative(args.criteria, args.scope, args.sparsities), {}

    def keep(record: dict[str, Any], model: Any) -> None:
        if (record["criterion"], record["scope"], record["sparsity"]) == shown \
                and name not in kept:  # the first seed's
            kept[name] = model

    finetune = train_spec(args, args.finetune_epochs, args.finetune_lr,
                          args.finetune_weight_decay, args.finetune_lr_schedule)
    records = sweep(trained, data, criteria=args.criteria, sparsities=args.sparsities,
                    scopes=args.scope, granularity=args.granularity, exclude=exclude,
                    train=finetune, model_name=name, progress=not args.quiet, on_run=keep,
                    layer_norm=args.layer_norm, second_order=second_order(args),
                    jobs=args.jobs, seeds=args.seeds)
    paths = _write(args, records, trained, kept, name, data)
    for r in records:
        tuned = r["accuracy_after_finetune"]
        print(("" if len(args.seeds or ()) < 2 else f"seed {r['seed']:<3} ")
              + f"{r['scope']:<6} {r['criterion']:<9} {100 * r['sparsity']:5.1f}%  "
              f"pruned {100 * r['accuracy_before_finetune']:5.1f}%  fine-tuned "
              + ("   –" if tuned is None else f"{100 * tuned:5.1f}%"))
    print(f"wrote {paths['results']}, {paths['report']} and {len(paths) - 2} figures")
    return 0


def _trained(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """(the trained model, its name, the data): --model's file, or a built-in model trained
    here with the training options."""
    from nnprune.experiment.runs import fit_model

    if args.model.endswith(".npz"):
        ignored = sorted(set(getattr(args, "given", ())) & set(TRAINING_OPTIONS))
        if ignored:
            raise UsageError(f"argument {ignored[0]}: {args.model} is already trained, and "
                             f"{', '.join(ignored)} only train a built-in --model; the pruned "
                             f"copies fine-tune with --finetune-epochs and --finetune-lr")
        trained, metadata, data = saved_model(args.model, args)
        return trained, metadata.get("model", args.model.rsplit("/", 1)[-1][:-4]), data
    if args.model not in MODELS:
        raise UsageError(f"argument --model: expected one of {', '.join(sorted(MODELS))} "
                         f"or a saved .npz file, got {args.model!r}")
    data = data_from(args, args.data or "digits", args.seed)
    trained = build(args.model, data.input_shape, data.num_classes, args.width, args.seed)
    fit_model(trained, data, train_spec(args, args.epochs, args.lr).replace(regularizer=None),
              desc=f"train {args.model}")
    return trained, args.model, data


def _write(args: argparse.Namespace, records: list[dict[str, Any]], trained: Any,
           kept: dict[str, Any], name: str, data: Any) -> dict[str, Any]:
    """results.json, report.md and the figures; with several seeds the report shows the
    means and results.json every run."""
    from nnprune.experiment.report import write_results
    from nnprune.experiment.sweep import mean_over_seeds, write_outputs

    meta = {"command": "sweep", "model": name, "dataset": data.name}
    shown, intro = records, f"Data: {data.description}."
    if args.seeds is not None and len(args.seeds) > 1:
        shown = mean_over_seeds(records)
        intro += (f" Every run repeated with seeds {', '.join(map(str, args.seeds))}: the "
                  f"table, findings and figures show means over them; results.json holds "
                  f"every run (the figures' model is seed {args.seeds[0]}'s).")
    paths = write_outputs(args.out, shown, trained={name: trained}, pruned=kept,
                          title=f"Pruning sweep: {name} on {data.name}", intro=intro, meta=meta)
    if shown is not records:
        write_results(paths["results"], records, meta | {"seeds": args.seeds})
    return paths
