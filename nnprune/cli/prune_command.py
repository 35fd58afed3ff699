"""``nnprune prune``: the options become a ``PruneSpec`` and a ``TrainSpec`` that
``experiment.pruning`` runs; the sparsity reached and the accuracy are printed."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nnprune.cli.arguments import (SCOPES, add_data_options, add_fit_options,
                                   add_layer_norm_option, add_lr_schedule_option,
                                   add_pruning_options, add_second_order_options, count,
                                   granularity, nonnegative_float, positive_float, positive_int,
                                   sparsity_spec)
from nnprune.cli.inputs import fresh_model, saved_model
from nnprune.cli.outputs import check_outputs
from nnprune.cli.specs import prune_spec, schedule_checked, second_order, train_spec
from nnprune.experiment.pruning import SCHEDULES, SLIMMING
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA
from nnprune.prune.scores import CRITERIA

EXAMPLES = ("nnprune prune mlp.npz --sparsity 0.9 --scope global --out mlp-90.npz",
            "nnprune prune cnn.npz --criterion taylor --granularity 2:4 --out cnn-24.npz",
            "nnprune prune mlp.npz --schedule iterative --rounds 4 --sparsity 0.95 --l2 1e-4 "
            "--out mlp-95.npz --json result.json",
            "nnprune prune cnn.npz --granularity filter --sparsity 0.5 --shrink "
            "--out cnn-small.npz",
            "nnprune prune mlp.npz --criterion obs --scope global --sparsity 0.9 "
            "--finetune-epochs 0 --out mlp-obs.npz",
            "nnprune prune mlp.npz --criterion obd --hessian fisher --out mlp-obd.npz")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a saved model and fine-tune it",
                       description="Prune a saved model with a criterion, scope, granularity "
                                   "and schedule; report the sparsity reached per layer and "
                                   "the test accuracy before and after fine-tuning; save the "
                                   "pruned model with its masks.",
                       examples=EXAMPLES)
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by 'nnprune train'")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the result")
    p.add_argument("--json", metavar="RESULT.json", help="also write the result record as JSON")
    p.add_argument("--overwrite-input", action="store_true",
                   help="allow --out to be MODEL.npz itself (replaced by the pruned model)")
    _add_pruning_group(p.add_argument_group("pruning"))
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--finetune-lr", dest="lr", type=positive_float, default=0.02,
                   help="fine-tuning learning rate, moved by --lr-schedule, as in sweep "
                        "(default: %(default)s)")
    g.add_argument("--lr", dest="lr", type=positive_float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old name of --finetune-lr
    add_fit_options(g, seed="seed of shuffling and random scores")
    g.add_argument("--weight-decay", type=nonnegative_float, default=0.0,
                   help="PyTorch's coupled weight decay on every parameter while fine-tuning "
                        "(beside --l1/--l2, which penalise the pruned weights) "
                        "(default: %(default)s)")
    add_lr_schedule_option(g, what="fine-tuning")
    g.add_argument("--rounds-kind", choices=("geometric", "linear"), default="geometric",
                   help="how the iterative schedule's targets rise: keep the same fraction "
                        "each round, or add equal steps (default: %(default)s)")
    add_data_options(p, default=None)
    p.set_defaults(handler=run)


def _add_pruning_group(g: Any) -> None:
    """The options of the "pruning" group: what to prune, how, and on what schedule."""
    g.add_argument("--criterion", choices=CRITERIA + CHANNEL_CRITERIA, default="magnitude",
                   help="importance score (default: %(default)s); "
                        f"{', '.join(CHANNEL_CRITERIA)} score whole filters or neurons")
    add_layer_norm_option(g)
    g.add_argument("--sparsity", type=sparsity_spec, default=None,
                   help="target fraction of zeros (default: 0.9; an N:M granularity fixes it "
                        "at 1 - N/M); or per layer (oneshot, layer scope): a list "
                        "0.weight=0.3,3.weight=0.6 or a sensitivity.json written by "
                        "'nnprune sensitivity'")
    g.add_argument("--scope", choices=SCOPES, default="layer",
                   help="rank per layer or across all layers (default: %(default)s)")
    g.add_argument("--schedule", choices=SCHEDULES, default="oneshot",
                   help="oneshot, iterative (prune/fine-tune rounds), gradual (Zhu & Gupta), "
                        "init (SNIP-style, then train), lottery (rewind), slimming (L1 on "
                        "BatchNorm scales, then prune by |gamma|, Liu et al.) "
                        "(default: %(default)s)")
    g.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds of the iterative and lottery schedules (default: %(default)s)")
    add_pruning_options(g)
    g.add_argument("--slimming-l1", type=positive_float, default=1e-4, metavar="LAMBDA",
                   help="slimming schedule: the penalty LAMBDA * sum |gamma| on every "
                        "BatchNorm scale while training (default: %(default)s, Liu et al.)")
    g.add_argument("--sparse-epochs", type=positive_int, default=5, metavar="N",
                   help="slimming schedule: epochs of training with that penalty before "
                        "pruning (default: %(default)s)")
    add_second_order_options(g)
    g.add_argument("--min-keep", type=count, default=1, metavar="N",
                   help="global scope: entries (or groups) every layer keeps, so no layer is "
                        "emptied; 0 turns the floor off (default: %(default)s)")
    g.add_argument("--shrink", action="store_true",
                   help="filter, neuron or channel granularity, oneshot or iterative schedule: "
                        "cut the pruned units out and save the smaller dense model")


def run(args: argparse.Namespace) -> int:
    from nnprune import io
    from nnprune.experiment import pruning
    from nnprune.experiment.report import write_json
    from nnprune.prune.apply import sparsity_report

    if args.schedule == "slimming":  # Liu et al.: |γ| ranked globally, whole channels
        if (args.criterion, args.scope, args.granularity) != tuple(SLIMMING.values()):
            print("the slimming schedule prunes by bn_gamma, global scope, filter granularity")
        args.criterion, args.scope = SLIMMING["criterion"], SLIMMING["scope"]
        args.granularity = granularity(SLIMMING["granularity"])
    schedule_checked(args, args.schedule, args.criterion, args.sparsity, args.finetune_epochs,
                     args.shrink)
    check_outputs({"MODEL.npz": args.model}, {"--out": args.out, "--json": args.json},
                  overwrite_input="--out" if args.overwrite_input else None)
    if "--lr" in getattr(args, "given", ()):
        print("nnprune prune: note: --lr is now called --finetune-lr (as in sweep, where --lr "
              "is the training rate)", file=sys.stderr)
    model, metadata, data = saved_model(args.model, args)
    if args.schedule in ("init", "lottery"):
        model = fresh_model(metadata)
    prune, exclude = prune_spec(args, model)
    record = pruning.run_schedule(
        model, data, args.schedule, prune, train_spec(args, args.finetune_epochs, args.lr),
        rounds=args.rounds, kind=args.rounds_kind, shrink=args.shrink,
        strength=args.slimming_l1, sparse_epochs=args.sparse_epochs,
        second_order=second_order(args), model_name=metadata.get("model", "model"))
    result = json.loads(json.dumps(record, default=float))
    per_layer = isinstance(args.sparsity, dict)
    print(f"{args.model}: {args.criterion} scores, {args.scope} scope, {args.granularity} "
          f"granularity, {args.schedule} schedule, "
          + ("per-layer targets (mean " if per_layer else "")
          + f"target sparsity {100 * result['sparsity']:.1f}%" + (")" if per_layer else ""))
    print(sparsity_report(model, exclude))
    dense, tuned = "initial" if args.schedule == "init" else "dense", \
        result["accuracy_after_finetune"]
    print(f"test accuracy: {dense} {100 * result['accuracy_dense']:.2f}%, right after pruning "
          f"{100 * result['accuracy_before_finetune']:.2f}%, after fine-tuning "
          + ("(none)" if tuned is None else f"{100 * tuned:.2f}%"))
    if args.shrink:
        model = _shrunk(model, data, result)
    io.save(args.out, model, {**metadata, "pruning": result})
    print(f"saved {args.out} " + ("(shrunk)" if args.shrink else "(masks attached)"))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _shrunk(model: Any, data: Any, result: dict[str, Any]) -> Any:
    """The dead units cut out (``pruning.shrink_pruned``), with what that did printed."""
    from nnprune.experiment.pruning import shrink_pruned

    small, report, left = shrink_pruned(model, data, result)
    masked = result["accuracy_after_finetune"]
    masked = result["accuracy_before_finetune"] if masked is None else masked
    print(f"shrunk: {report}")
    print(f"test accuracy: shrunk {100 * result['accuracy_shrunk']:.2f}% "
          f"(masked {100 * masked:.2f}%)")
    if left:
        print(f"{left:,} weights stay masked: they read channels pruned only in part (e.g. "
              f"some of a channel's columns after a Flatten)")
    return small
