"""``nnprune reproduce``: the LeNet-300-100 global-magnitude protocol over seeds, as a table."""
from __future__ import annotations

import argparse
import os

from nnprune.cli.arguments import (add_data_options, fractions, nonnegative_float,
                                   positive_float, positive_int, seed_list)
from nnprune.cli.inputs import data_from
from nnprune.cli.outputs import check_outputs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="the LeNet-300-100 pruning table over seeds",
                       description="Train LeNet-300-100 (SGD, momentum 0.9, weight decay "
                                   "1e-4, batch 64, constant rate) once per seed, then at "
                                   "every sparsity: global L1 pruning one shot, with "
                                   "fine-tuning, random pruning with fine-tuning, and "
                                   "iterative pruning on the same budget. Writes "
                                   "reproduction.md (mean ± sd over the seeds) and "
                                   "reproduction.json (every seed).",
                       examples=("nnprune reproduce --out repro-digits",
                                 "nnprune reproduce --data mnist --split t10k --data-dir "
                                 "DIR --out repro-mnist"))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g = p.add_argument_group("protocol")
    g.add_argument("--seeds", type=seed_list, default=[0, 1, 2],
                   help="training seeds (default: 0,1,2)")
    g.add_argument("--sparsities", type=fractions, default=[0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
                   help="target sparsities (default: 0.5,0.7,0.8,0.9,0.95,0.98)")
    g.add_argument("--epochs", type=positive_int, default=20, help="dense epochs (default: 20)")
    g.add_argument("--finetune-epochs", type=positive_int, default=10,
                   help="fine-tuning epochs after pruning, split over the iterative rounds "
                        "(default: 10)")
    g.add_argument("--rounds", type=positive_int, default=5,
                   help="rounds of the iterative schedule (default: 5)")
    g.add_argument("--lr", type=positive_float, default=0.01,
                   help="constant learning rate (default: 0.01)")
    g.add_argument("--weight-decay", type=nonnegative_float, default=1e-4,
                   help="coupled weight decay (default: 1e-4)")
    g.add_argument("--batch-size", type=positive_int, default=64, help="(default: 64)")
    g.add_argument("--width", type=positive_float, default=1.0,
                   help="feature multiplier of LeNet-300-100 (default: 1.0)")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    add_data_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nnprune.experiment.report import write_json
    from nnprune.experiment.reproduce import Protocol, reproduce, table
    from nnprune.files import atomic_write_text

    check_outputs({}, {}, {"--out": args.out})
    protocol = Protocol(sparsities=tuple(args.sparsities), seeds=tuple(args.seeds),
                        epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                        rounds=args.rounds, lr=args.lr, weight_decay=args.weight_decay,
                        batch_size=args.batch_size, width=args.width)
    data = data_from(args, args.data, 0)
    result = reproduce(data, protocol, echo=(lambda line: None) if args.quiet else print)
    text = (f"# LeNet-300-100, global magnitude pruning\n\nData: {data.description}.\n\n"
            + table(result) + "\n")
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "reproduction.json"), result)
    atomic_write_text(os.path.join(args.out, "reproduction.md"), text)
    print(table(result))
    print(f"wrote {os.path.join(args.out, 'reproduction.md')} and reproduction.json "
          f"in {result['seconds']:.0f} s")
    return 0
