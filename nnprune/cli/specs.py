"""Parsed arguments turned into the library's specs: ``PruneSpec``, ``TrainSpec``,
``SecondOrder``."""
from __future__ import annotations

import argparse
from typing import Any

from nnprune.cli.arguments import UsageError


def schedule_checked(args: argparse.Namespace, schedule: str, criterion: str, sparsity: Any,
                     epochs: int, shrink: bool = False) -> None:
    """``check_schedule`` on ``criterion`` and the options in ``args``; its refusal as a
    ``UsageError``."""
    from nnprune.experiment.pruning import OptionError, check_schedule

    try:
        check_schedule(schedule, criterion=criterion, granularity=args.granularity,
                       sparsity=sparsity, scope=getattr(args, "scope", "layer"),
                       layer_norm=args.layer_norm, epochs=epochs, shrink=shrink)
    except OptionError as err:
        option = f"argument --{err.option.replace('_', '-')}: " if err.option else ""
        raise UsageError(f"{option}{err}") from None


def regularizer(args: argparse.Namespace) -> Any:
    """The fine-tuning penalty asked for with --l1 or --l2 (None without either)."""
    from nnprune.prune.finetune import l1_regularizer, l2_regularizer

    if getattr(args, "l1", None):
        return l1_regularizer(args.l1)
    if getattr(args, "l2", None):
        return l2_regularizer(args.l2)
    return None


def second_order(args: argparse.Namespace) -> Any:
    """The ``SecondOrder`` settings of the obd/obs options."""
    from nnprune.experiment.second_order import SecondOrder
    from nnprune.prune.spec import ObsSettings

    return SecondOrder(hessian=args.hessian, obs=ObsSettings(
        method=args.obs_method, damping=args.damping,
        calibration_batches=args.calibration_batches))


def train_spec(args: argparse.Namespace, epochs: int, lr: float,
               weight_decay: float | None = None, lr_schedule: str | None = None) -> Any:
    """The ``TrainSpec`` of a command's training run: ``epochs`` and ``lr`` from the option
    the command names them by, the rest from the fit options (or the arguments given)."""
    from nnprune.train import TrainSpec

    return TrainSpec(epochs=epochs, lr=lr, optimizer=args.optimizer,
                     batch_size=args.batch_size, seed=args.seed, quiet=args.quiet,
                     weight_decay=args.weight_decay if weight_decay is None else weight_decay,
                     lr_schedule=args.lr_schedule if lr_schedule is None else lr_schedule,
                     regularizer=regularizer(args))


def unfit_excluded(args: argparse.Namespace, model: Any) -> tuple[str, ...]:
    """--exclude and the weights --granularity cannot group, which are said to stay dense."""
    from nnprune.prune.apply import prunable_weights

    shapes = {name: w.shape for name, w in prunable_weights(model, args.exclude).items()}
    try:
        unfit = args.granularity.unfit_names(shapes)
    except ValueError as err:  # no weight fits: said in the command line's words
        text = str(err).replace("use granularity 'weight'", "use --granularity weight")
        raise UsageError(f"argument --granularity: {text}") from None
    if unfit:
        print(f"{args.granularity} granularity does not fit {', '.join(unfit)}: left dense")
    return tuple(args.exclude) + tuple(unfit)


def prune_spec(args: argparse.Namespace, model: Any) -> tuple[Any, tuple[str, ...]]:
    """(the ``PruneSpec`` of ``nnprune prune``'s options on ``model``, every weight it leaves
    dense: --exclude and those the granularity does not fit or spares, each said)."""
    from nnprune.prune.apply import prunable_parameters
    from nnprune.prune.spec import IN_EXCLUDE, PruneSpec

    default = None if args.granularity.fixed_sparsity is not None else 0.9  # N:M fixes it
    sparsity = default if args.sparsity is None else args.sparsity
    spec = PruneSpec(args.criterion, sparsity, args.scope, args.granularity,
                     unfit_excluded(args, model), args.min_keep, layer_norm=args.layer_norm,
                     seed=args.seed, obs=second_order(args).obs)
    exclusions = spec.exclusions(prunable_parameters(model))
    for name, why in exclusions.items():
        if why != IN_EXCLUDE:
            print(f"{name} is not pruned at {args.granularity} granularity ({why})")
    return spec, tuple(exclusions)
