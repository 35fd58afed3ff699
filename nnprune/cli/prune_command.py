"""``nnprune prune``: prune a saved model with a criterion, scope, granularity and schedule,
fine-tune it, report the sparsity reached and the accuracy, save it with its masks."""
from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from nnprune.cli.arguments import (SCHEDULES, SCOPES, add_data_options, add_pruning_options,
                                   check_output_file, count, examples, fraction, positive_float,
                                   positive_int, regularizer, wrap)
from nnprune.cli.inputs import fresh_model, saved_model
from nnprune.prune.groups import parse_granularity
from nnprune.prune.scores import CRITERIA


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a saved model and fine-tune it",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=wrap("Prune a saved model with a criterion, scope, granularity "
                                        "and schedule; report the sparsity reached per layer and "
                                        "the test accuracy before and after fine-tuning; save the "
                                        "pruned model with its masks."),
                       epilog=examples("nnprune prune mlp.npz --sparsity 0.9 --scope global "
                                       "--out mlp-90.npz",
                                       "nnprune prune cnn.npz --criterion taylor --granularity "
                                       "2:4 --out cnn-24.npz",
                                       "nnprune prune mlp.npz --schedule iterative --rounds 4 "
                                       "--sparsity 0.95 --l2 1e-4 --out mlp-95.npz "
                                       "--json result.json"))
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by 'nnprune train'")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the result")
    p.add_argument("--json", metavar="RESULT.json", help="also write the result record as JSON")
    g = p.add_argument_group("pruning")
    g.add_argument("--criterion", choices=CRITERIA, default="magnitude",
                   help="importance score (default: %(default)s)")
    g.add_argument("--sparsity", type=fraction, default=None,
                   help="target fraction of zeros (default: 0.9; an N:M granularity fixes it "
                        "at 1 - N/M)")
    g.add_argument("--scope", choices=SCOPES, default="layer",
                   help="rank per layer or across all layers (default: %(default)s)")
    g.add_argument("--schedule", choices=SCHEDULES, default="oneshot",
                   help="oneshot, iterative (prune/fine-tune rounds), gradual (Zhu & Gupta), "
                        "init (SNIP-style, then train), lottery (rewind) (default: %(default)s)")
    g.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds of the iterative and lottery schedules (default: %(default)s)")
    add_pruning_options(g)
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--lr", type=positive_float, default=0.02,
                   help="fine-tuning learning rate, cosine-decayed to 0 (default: %(default)s)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (momentum 0.9) or adam (default: %(default)s)")
    g.add_argument("--batch-size", type=positive_int, default=64,
                   help="mini-batch size (default: %(default)s)")
    g.add_argument("--seed", type=count, default=0,
                   help="seed of shuffling and random scores (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_options(p, default=None)
    p.set_defaults(handler=run)


def unfit_layers(model: Any, granularity: str, exclude: tuple[str, ...]) -> list[str]:
    """The prunable weights (not in ``exclude``) that ``granularity`` cannot group: "kernel"
    needs a conv weight (O, I, kh, kw) and "N:M" an input size I that M divides. They are left
    dense; an error names the granularity when no weight fits it."""
    from nnprune.prune.apply import prunable_weights
    from nnprune.prune.groups import granularity_mask

    g = parse_granularity(granularity)
    if g in ("weight", "filter", "channel", "neuron"):
        return []
    weights = prunable_weights(model, exclude)
    unfit = []
    for name, w in weights.items():
        try:
            granularity_mask(np.ones(w.shape), None if isinstance(g, tuple) else 0.5,
                             granularity)
        except ValueError:
            unfit.append(name)
    if weights and len(unfit) == len(weights):
        need = ("conv weights (O, I, kh, kw)" if g == "kernel" else
                f"weights whose input size I is a multiple of {g[1]}")
        raise ValueError(f"granularity {granularity!r} needs {need}; none of the weights "
                         f"{', '.join(f'{n} {weights[n].shape}' for n in unfit)} has that "
                         f"shape: use --granularity weight")
    return unfit


def run(args: argparse.Namespace) -> int:
    from nnprune import io
    from nnprune.experiment import workflows
    from nnprune.experiment.report import write_json
    from nnprune.prune.apply import sparsity_report

    check_output_file("--out", args.out)
    check_output_file("--json", args.json, "result.json")
    model, metadata, data = saved_model(args.model, args)
    nm = isinstance(parse_granularity(args.granularity), tuple)
    sparsity = args.sparsity if args.sparsity is not None else (None if nm else 0.9)
    if args.schedule in ("init", "lottery"):
        model = fresh_model(metadata)
    unfit = unfit_layers(model, args.granularity, tuple(args.exclude))
    if unfit:
        print(f"{args.granularity} granularity does not fit {', '.join(unfit)}: left dense")
    exclude = tuple(args.exclude) + tuple(unfit)
    options = dict(criterion=args.criterion, sparsity=sparsity, scope=args.scope,
                   granularity=args.granularity, exclude=exclude,
                   finetune_epochs=args.finetune_epochs, lr=args.lr,
                   optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed,
                   quiet=args.quiet, model_name=metadata.get("model", "model"),
                   regularizer=regularizer(args))
    if args.schedule in ("iterative", "lottery"):
        options["rounds"] = args.rounds
    run_workflow = {"oneshot": workflows.oneshot, "iterative": workflows.iterative,
                    "gradual": workflows.gradual, "init": workflows.at_init,
                    "lottery": workflows.lottery}[args.schedule]
    result = json.loads(json.dumps(run_workflow(model, data, **options), default=float))
    print(f"{args.model}: {args.criterion} scores, {args.scope} scope, {args.granularity} "
          f"granularity, {args.schedule} schedule, "
          f"target sparsity {100 * result['sparsity']:.1f}%")
    print(sparsity_report(model, exclude))
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
