"""The ``nnprune`` command; each ``*_command.py`` holds one command's options and its ``run``.

``main(argv)`` returns the exit status: 0 on success, 2 for bad arguments (one line on
stderr, from argparse), 1 when the library refuses an input (a ValueError or a missing
file, printed as ``nnprune: error: ...``) or training diverges (``DivergenceError``: one
line naming the learning rate and its option; nothing is saved). No traceback is shown.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnprune.cli import (assignment_command, bench_command, demo_command, export_command,
                         prune_command, reproduce_command, sensitivity_command, summary_command,
                         sweep_command, train_command)
from nnprune.cli.arguments import Parser, UsageError
from nnprune.data.download import DatasetNotFoundError
from nnprune.divergence import DivergenceError

__all__ = ["main", "build_parser", "Parser", "UsageError"]

# where each command takes its learning rates, named when training diverges
LR_OPTIONS = {"train": "--lr", "prune": "--finetune-lr",
              "sweep": "--lr (training) or --finetune-lr", "reproduce": "--lr"}


def build_parser() -> argparse.ArgumentParser:
    """The ``nnprune`` parser, every subcommand with its options."""
    from nnprune import __version__

    parser = Parser(prog="nnprune", description="Pure-NumPy neural-network pruning: train, "
                                                "count, prune, sweep and report.",
                    examples=("nnprune demo",
                              "nnprune train --model lenet_300_100 --epochs 20 --out mlp.npz",
                              "nnprune prune mlp.npz --sparsity 0.9 --scope global "
                              "--out mlp-90.npz",
                              "nnprune summary mlp-90.npz"))
    parser.add_argument("--version", action="version", version=f"nnprune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    for command in (train_command, summary_command, prune_command, sweep_command, demo_command,
                    bench_command, export_command, sensitivity_command, assignment_command,
                    reproduce_command):
        command.add_parser(sub)
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
