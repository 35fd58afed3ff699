"""The ``nnprune`` command: train, summary, prune, sweep, demo, bench, export.

``main(argv)`` returns the exit status: 0 on success, 2 for bad arguments (one line on
stderr, from argparse), 1 when the library refuses an input (a ValueError or a missing
file, printed as ``nnprune: error: ...``) or training diverges (``DivergenceError``: one
line naming the learning rate and its option; nothing is saved). No traceback is shown.

- ``arguments.py``: argument types, the shared option groups, the one-line-error parser;
- ``inputs.py``: datasets, saved and built-in models, input shapes;
- ``specs.py``: parsed options turned into the library's ``PruneSpec`` and ``TrainSpec``;
- ``train_command.py``, ``summary_command.py``, ``prune_command.py``, ``sweep_command.py``,
  ``demo_command.py``, ``bench_command.py``, ``export_command.py``, ...: each command's options
  (``add_parser``) and what it does (``run``).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnprune.cli import (bench_command, demo_command, prune_command, sensitivity_command, summary_command,
                         sweep_command, train_command, reproduce_command)
from nnprune.cli import export_command
from nnprune.cli import assignment_command
from nnprune.cli.arguments import Parser, UsageError, examples, wrap
from nnprune.data.download import DatasetNotFoundError
from nnprune.divergence import DivergenceError

__all__ = ["main", "build_parser", "Parser", "UsageError"]

# where each command takes its learning rates, named when training diverges
LR_OPTIONS = {"train": "--lr", "prune": "--finetune-lr",
              "sweep": "--lr (training) or --finetune-lr", "reproduce": "--lr"}


def build_parser() -> argparse.ArgumentParser:
    """The ``nnprune`` parser, every subcommand with its options."""
    from nnprune import __version__

    parser = Parser(prog="nnprune", formatter_class=argparse.RawDescriptionHelpFormatter,
                    description=wrap("Pure-NumPy neural-network pruning: train, count, prune, "
                                     "sweep and report."),
                    epilog=examples("nnprune demo",
                                    "nnprune train --model lenet_300_100 --epochs 20 "
                                    "--out mlp.npz",
                                    "nnprune prune mlp.npz --sparsity 0.9 --scope global "
                                    "--out mlp-90.npz",
                                    "nnprune summary mlp-90.npz"))
    parser.add_argument("--version", action="version", version=f"nnprune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    train_command.add_parser(sub)
    summary_command.add_parser(sub)
    prune_command.add_parser(sub)
    sweep_command.add_parser(sub)
    demo_command.add_parser(sub)
    bench_command.add_parser(sub)
    export_command.add_parser(sub)
    sensitivity_command.add_parser(sub)
    assignment_command.add_parser(sub)
    reproduce_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nnprune`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad argument (status 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    # the options typed (not their defaults), for commands that refuse one that does nothing
    args.given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    try:
        return args.handler(args)
    except UsageError as err:
        print(f"nnprune {args.command}: error: {err} (see 'nnprune {args.command} --help')",
              file=sys.stderr)
        return 2
    except DatasetNotFoundError as err:
        advice = ("the download failed: check the network, or put the files there yourself "
                  "(or in another folder given with --data-dir)"
                  if getattr(args, "download", False) else
                  "pass --download to fetch them, or --data-dir to read them from another folder")
        print(f"nnprune: error: {err.missing}\nnnprune: {advice}", file=sys.stderr)
        return 1
    except DivergenceError as err:  # nothing was saved: every command saves after training
        hint = LR_OPTIONS.get(args.command, "")
        print(f"nnprune: error: {err}" + (f" (set with {hint})" if hint else ""),
              file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # a refused input or a missing/unwritable file
        print(f"nnprune: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nnprune: interrupted", file=sys.stderr)
        return 130
