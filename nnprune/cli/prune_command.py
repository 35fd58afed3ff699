"""``nnprune prune``: prune a saved model with a criterion, scope, granularity and schedule,
fine-tune it, report the sparsity reached and the accuracy, save it with its masks.

With ``--shrink`` (filter, neuron or channel granularity; oneshot or iterative schedule) every
dead unit is masked whole (``prune.mask_units``: weight row, bias, BatchNorm γ and β) right
after each pruning step, so it outputs exactly 0 while the model fine-tunes; at the end
``prune.shrink`` cuts the dead units out and the smaller dense model is saved. It computes
what the masked model computes, up to float32 summation order (see ``prune.units``).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from nnprune.cli.arguments import (SCHEDULES, SCOPES, UsageError, add_data_options,
                                   add_lr_schedule_option, nonnegative_float,
                                   add_pruning_options, count, examples,
                                   fraction, positive_float, positive_int, regularizer, wrap,
                                   add_layer_norm_option, check_unit_criteria, sparsity_spec)
from nnprune.cli.arguments import add_second_order_options, second_order
from nnprune.cli.inputs import fresh_model, saved_model
from nnprune.cli.outputs import check_outputs
from nnprune.prune.groups import parse_granularity
from nnprune.prune.channel_criteria import CHANNEL_CRITERIA
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
                                       "--json result.json",
                                       "nnprune prune cnn.npz --granularity filter --sparsity "
                                       "0.5 --shrink --out cnn-small.npz",
                                       "nnprune prune mlp.npz --criterion obs --scope global "
                                       "--sparsity 0.9 --finetune-epochs 0 --out mlp-obs.npz",
                                       "nnprune prune mlp.npz --criterion obd --hessian fisher "
                                       "--out mlp-obd.npz"))
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by 'nnprune train'")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the result")
    p.add_argument("--json", metavar="RESULT.json", help="also write the result record as JSON")
    p.add_argument("--overwrite-input", action="store_true",
                   help="allow --out to be MODEL.npz itself (replaced by the pruned model)")
    g = p.add_argument_group("pruning")
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
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--finetune-lr", dest="lr", type=positive_float, default=0.02,
                   help="fine-tuning learning rate, moved by --lr-schedule, as in sweep "
                        "(default: %(default)s)")
    g.add_argument("--lr", dest="lr", type=positive_float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the old name of --finetune-lr
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (momentum 0.9) or adam (default: %(default)s)")
    g.add_argument("--batch-size", type=positive_int, default=64,
                   help="mini-batch size (default: %(default)s)")
    g.add_argument("--seed", type=count, default=0,
                   help="seed of shuffling and random scores (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
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


SHRINK_GRANULARITIES = ("filter", "neuron", "channel")
SHRINK_SCHEDULES = ("oneshot", "iterative")


def check_shrink(granularity: str, schedule: str) -> None:
    """Refuse ``--shrink`` with a granularity or schedule it cannot serve, before any work."""
    if granularity not in SHRINK_GRANULARITIES:
        g = parse_granularity(granularity)
        what = ({"weight": "single weights", "kernel": "single kh×kw kernels"}[g]
                if isinstance(g, str) else f"{g[1] - g[0]} of every {g[1]} consecutive weights")
        raise UsageError(f"argument --shrink: {granularity} granularity prunes {what}, and "
                         f"unstructured zeros cannot be cut out of a layer; use --granularity "
                         f"filter, neuron or channel")
    if schedule not in SHRINK_SCHEDULES:
        raise UsageError(f"argument --shrink: works with the oneshot and iterative schedules, "
                         f"which mask dead units whole between pruning and fine-tuning, not "
                         f"with {schedule} (gradual prunes during training; init and lottery "
                         f"train again from the initial weights)")


def check_schedule_options(args: argparse.Namespace) -> None:
    """Refuse, in the command's words and before any work, options the schedule or the
    granularity cannot honour."""
    if args.finetune_epochs < 1 and args.schedule in ("gradual", "init", "lottery"):
        raise UsageError(f"argument --finetune-epochs: the {args.schedule} schedule trains "
                         f"while or after it prunes: give 1 or more, got {args.finetune_epochs}")
    g = parse_granularity(args.granularity)
    if isinstance(g, tuple) and args.sparsity is not None and abs(
            args.sparsity - (1 - g[0] / g[1])) > 1e-12:
        raise UsageError(f"argument --sparsity: {args.granularity} granularity keeps {g[0]} of "
                         f"every {g[1]} weights, which fixes the sparsity at "
                         f"{1 - g[0] / g[1]:g}: leave --sparsity out, got {args.sparsity:g}")


def prune_units(model: Any, data: Any, *, schedule: str, **options: Any) -> dict[str, Any]:
    """The oneshot or iterative workflow with every dead unit masked whole before fine-tuning.

    ``prune.mask_units`` runs as the workflow's ``after_prune`` hook: after each pruning step
    the dead filters and neurons are masked whole (weight, bias, BatchNorm γ and β), so they
    output exactly 0 while the model fine-tunes, and the fine-tuned model is the one ``shrink``
    cuts. ``options``: the keyword options of ``workflows.oneshot`` / ``workflows.iterative``.

    Returns the workflow record (``runs.record``); ``accuracy_before_finetune`` is measured
    after ``mask_units``; ``dead_units`` ({layer: count}) is in the record (oneshot) or in each
    of its ``rounds`` (iterative).
    """
    from nnprune.experiment import workflows
    from nnprune.prune.units import mask_units

    if schedule not in SHRINK_SCHEDULES:
        raise ValueError(f"schedule must be one of {SHRINK_SCHEDULES}, got {schedule!r}")
    run = workflows.oneshot if schedule == "oneshot" else workflows.iterative
    if schedule == "oneshot":
        options.pop("rounds", None)
    result = run(model, data, after_prune=mask_units, **options)
    for step in result.get("rounds", [result]):  # {layer: dead indices} -> {layer: count}
        step["dead_units"] = {k: len(v) for k, v in step.pop("after_prune").items()}
    return result


def drop_full_masks(model: Any) -> int:
    """Remove every mask that keeps all its entries; returns the entries still masked."""
    left = 0
    for p in model.parameters():
        if p.mask is not None:
            if np.all(p.mask != 0):
                p.remove_mask()
            else:
                left += int(np.count_nonzero(p.mask == 0))
    return left


def shrink_model(model: Any, data: Any, result: dict[str, Any]) -> Any:
    """Cut the dead units out of the unit-masked ``model`` (``prune.shrink``), print the
    SurgeryReport and the shrunk model's test accuracy, and add ``shrunk_params``,
    ``shrunk_macs`` (dense, per image), ``accuracy_shrunk``, ``widths`` ({layer: [before,
    after]}) and ``kept_units`` ({layer: kept indices}) to ``result``. Returns the new model,
    its all-ones masks dropped."""
    from nnprune.experiment.runs import accuracy
    from nnprune.prune.surgery import shrink

    small, report = shrink(model, tuple(data.input_shape))
    left = drop_full_masks(small)
    shrunk = accuracy(small, data)
    masked = result["accuracy_after_finetune"]
    masked = result["accuracy_before_finetune"] if masked is None else masked
    surgery = report.to_dict()
    result.update(shrunk_params=report.params[1], shrunk_macs=report.macs[1],
                  accuracy_shrunk=shrunk, widths=surgery["widths"],
                  kept_units=surgery["keep"])
    print(f"shrunk: {report}")
    print(f"test accuracy: shrunk {100 * shrunk:.2f}% (masked {100 * masked:.2f}%)")
    if left:
        print(f"{left:,} weights stay masked: they read channels pruned only in part (e.g. "
              f"some of a channel's columns after a Flatten)")
    return small


def run(args: argparse.Namespace) -> int:
    from nnprune import io
    from nnprune.experiment import workflows
    from nnprune.experiment.report import write_json
    from nnprune.prune.apply import exclude_io, prunable_weights, sparsity_report

    if args.schedule == "slimming":  # Liu et al.: |γ| ranked globally, whole channels
        if (args.criterion, args.scope, args.granularity) != ("bn_gamma", "global", "filter"):
            print("the slimming schedule prunes by bn_gamma, global scope, filter granularity")
        args.criterion, args.scope, args.granularity = "bn_gamma", "global", "filter"
    if args.shrink:
        check_shrink(args.granularity,
                     "oneshot" if args.schedule == "slimming" else args.schedule)
    check_unit_criteria(args.criterion, args.granularity, args.schedule, args.layer_norm)
    if isinstance(args.sparsity, dict) and (args.schedule != "oneshot" or args.scope != "layer"):
        raise UsageError(f"argument --sparsity: a per-layer sparsity works with the oneshot "
                         f"schedule and layer scope, not {args.schedule} / {args.scope}")
    check_outputs({"MODEL.npz": args.model}, {"--out": args.out, "--json": args.json},
                  overwrite_input="--out" if args.overwrite_input else None)
    check_schedule_options(args)
    if "--lr" in getattr(args, "given", ()):
        print("nnprune prune: note: --lr is now called --finetune-lr (as in sweep, where --lr "
              "is the training rate)", file=sys.stderr)
    model, metadata, data = saved_model(args.model, args)
    nm = isinstance(parse_granularity(args.granularity), tuple)
    sparsity = args.sparsity if args.sparsity is not None else (None if nm else 0.9)
    if args.schedule in ("init", "lottery"):
        model = fresh_model(metadata)
    unfit = unfit_layers(model, args.granularity, tuple(args.exclude))
    if unfit:
        print(f"{args.granularity} granularity does not fit {', '.join(unfit)}: left dense")
    exclude = tuple(args.exclude) + tuple(unfit)
    kept = exclude_io(prunable_weights(model), args.granularity, exclude)[len(exclude):]
    for name in kept:
        print(f"{name} is not pruned at {args.granularity} granularity ("
              + ("its input channels are the image's)" if args.granularity == "channel"
                 else "its units are the classes)"))
    exclude += kept
    options = dict(criterion=args.criterion, sparsity=sparsity, scope=args.scope,
                   granularity=args.granularity, exclude=exclude,
                   finetune_epochs=args.finetune_epochs, lr=args.lr,
                   optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed,
                   quiet=args.quiet, model_name=metadata.get("model", "model"),
                   regularizer=regularizer(args), weight_decay=args.weight_decay,
                   lr_schedule=args.lr_schedule, min_keep=args.min_keep)
    if args.criterion in ("obd", "obs"):
        if args.schedule not in ("oneshot", "iterative"):
            raise UsageError(f"argument --criterion: {args.criterion} runs with the oneshot "
                             f"and iterative schedules, not {args.schedule}")
        options["second_order"] = second_order(args)
    if args.schedule in ("iterative", "lottery"):
        options["rounds"] = args.rounds
    if args.schedule == "iterative":
        options["kind"] = args.rounds_kind
    if args.layer_norm != "none":
        options["layer_norm"] = args.layer_norm
    run_workflow = {"oneshot": workflows.oneshot, "iterative": workflows.iterative,
                    "gradual": workflows.gradual, "init": workflows.at_init,
                    "lottery": workflows.lottery}.get(args.schedule)
    if args.schedule == "slimming":  # mask_units is part of the schedule
        from nnprune.experiment.slimming import slimming

        options.update(strength=args.slimming_l1, sparse_epochs=args.sparse_epochs)
        record = slimming(model, data, **options)
    elif args.shrink:
        record = prune_units(model, data, schedule=args.schedule,
                             **{**options, "rounds": args.rounds})
    else:
        record = run_workflow(model, data, **options)
    result = json.loads(json.dumps(record, default=float))
    print(f"{args.model}: {args.criterion} scores, {args.scope} scope, {args.granularity} "
          f"granularity, {args.schedule} schedule, "
          + ("per-layer targets (mean " if isinstance(args.sparsity, dict) else "")
          + f"target sparsity {100 * result['sparsity']:.1f}%"
          + (")" if isinstance(args.sparsity, dict) else ""))
    print(sparsity_report(model, exclude))
    dense = "initial" if args.schedule == "init" else "dense"
    tuned = result["accuracy_after_finetune"]
    print(f"test accuracy: {dense} {100 * result['accuracy_dense']:.2f}%, right after pruning "
          f"{100 * result['accuracy_before_finetune']:.2f}%, after fine-tuning "
          + ("(none)" if tuned is None else f"{100 * tuned:.2f}%"))
    if args.shrink:
        model = shrink_model(model, data, result)
    io.save(args.out, model, {**metadata, "pruning": result})
    print(f"saved {args.out} " + ("(shrunk)" if args.shrink else "(masks attached)"))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
