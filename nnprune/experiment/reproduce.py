"""The LeNet-300-100 global-magnitude protocol, run over seeds, as one table.

The protocol (``Protocol``; Han et al. 2015's LeNet-300-100 with PyTorch's defaults):
LeNet-300-100 from PyTorch's initialisation; SGD, momentum 0.9, coupled weight decay 1e-4 on
every parameter, batch 64, a constant learning rate; ``epochs`` of dense training. Then, from
the trained weights, at every sparsity s:

- **L1 one-shot**: global magnitude (|w|) pruning of the three weight matrices to s, no
  training (``accuracy_before_finetune`` of the next row);
- **L1 + fine-tune**: the same, then ``finetune_epochs`` epochs under the masks;
- **random + fine-tune**: a random global mask of the same sparsity, fine-tuned as long;
- **iterative**: ``rounds`` geometric rounds of prune → fine-tune (``finetune_epochs //
  rounds`` epochs each), the same training budget, ending at exactly s.

Each seed draws the initial weights, the batch order and the random masks; the train/test
split stays the one of ``data``. The table gives the mean and the sample standard deviation
(n − 1) of the test accuracy over the seeds, in %.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from nnprune import models
from nnprune.experiment import workflows
from nnprune.experiment.runs import accuracy, clone_model, fit_model
from nnprune.prune.spec import PruneSpec
from nnprune.train import TrainSpec

METHODS = ("L1 one-shot", "L1 + fine-tune", "random + fine-tune", "iterative")


@dataclass(frozen=True)
class Protocol:
    """The settings of a reproduction; the defaults are the protocol of the module doc."""

    sparsities: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 20
    finetune_epochs: int = 10
    rounds: int = 5
    lr: float = 0.01
    weight_decay: float = 1e-4
    batch_size: int = 64
    width: float = 1.0

    def __post_init__(self) -> None:
        for name in ("epochs", "finetune_epochs", "rounds", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.finetune_epochs < self.rounds:
            raise ValueError(f"finetune_epochs ({self.finetune_epochs}) must give every one of "
                             f"the {self.rounds} rounds at least one epoch")
        if not self.seeds or not self.sparsities:
            raise ValueError("give at least one seed and one sparsity")
        if any(not 0 < s < 1 for s in self.sparsities):
            raise ValueError(f"sparsities must lie in (0, 1), got {self.sparsities}")


def run_seed(data: Any, protocol: Protocol, seed: int) -> dict[str, Any]:
    """One seed of the protocol: {"dense": accuracy, "runs": {method: {sparsity: accuracy}}}."""
    c, h, w = data.input_shape
    model = models.lenet_300_100(in_channels=c, num_classes=data.num_classes, input_size=(h, w),
                                 width=protocol.width, seed=seed)
    train = TrainSpec(epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                      weight_decay=protocol.weight_decay, lr_schedule="constant", seed=seed)
    fit_model(model, data, train, desc="dense")
    finetune = train.replace(epochs=protocol.finetune_epochs)
    per_round = train.replace(epochs=protocol.finetune_epochs // protocol.rounds)
    runs: dict[str, dict[float, float]] = {m: {} for m in METHODS}
    for s in protocol.sparsities:
        magnitude = PruneSpec("magnitude", s, "global", seed=seed)
        l1 = workflows.oneshot(clone_model(model), data, magnitude, finetune)
        rnd = workflows.oneshot(clone_model(model), data, magnitude.replace(criterion="random"),
                                finetune)
        it = workflows.iterative(clone_model(model), data, magnitude, per_round,
                                 rounds=protocol.rounds, kind="geometric")
        runs["L1 one-shot"][s] = l1["accuracy_before_finetune"]
        runs["L1 + fine-tune"][s] = l1["accuracy_after_finetune"]
        runs["random + fine-tune"][s] = rnd["accuracy_after_finetune"]
        runs["iterative"][s] = it["accuracy_after_finetune"]
    return {"seed": seed, "dense": accuracy(model, data), "runs": runs}


def reproduce(data: Any, protocol: Protocol = Protocol(),
              echo: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Every seed of ``protocol`` on ``data``; the per-seed results and the summary table.

    Returns {"protocol", "dataset", "seeds": [run_seed ...], "summary": {row: {sparsity or
    "dense": (mean %, sd %)}}, "seconds"}.
    """
    start, seeds = time.perf_counter(), []
    for seed in protocol.seeds:
        t0 = time.perf_counter()
        seeds.append(run_seed(data, protocol, seed))
        echo(f"seed {seed}: dense {100 * seeds[-1]['dense']:.2f}% "
             f"({time.perf_counter() - t0:.0f} s)")
    summary: dict[str, dict[Any, tuple[float, float]]] = {
        "dense": {"dense": _spread([r["dense"] for r in seeds])}}
    for method in METHODS:
        summary[method] = {s: _spread([r["runs"][method][s] for r in seeds])
                           for s in protocol.sparsities}
    return {"protocol": asdict(protocol), "dataset": data.description, "seeds": seeds,
            "summary": summary, "seconds": time.perf_counter() - start}


def _spread(values: list[float]) -> tuple[float, float]:
    """(mean, sample sd) in %; sd 0 for a single value."""
    pct = [100 * v for v in values]
    return statistics.fmean(pct), statistics.stdev(pct) if len(pct) > 1 else 0.0


def table(result: dict[str, Any]) -> str:
    """The summary as a markdown table: one row per method, one column per sparsity,
    cells "mean ± sd" in %."""
    sparsities = result["protocol"]["sparsities"]
    n = len(result["protocol"]["seeds"])
    mean, sd = result["summary"]["dense"]["dense"]
    head = "| method | " + " | ".join(f"{s:g}" for s in sparsities) + " |"
    lines = [f"Dense: {mean:.2f} ± {sd:.2f} % (mean ± sd over {n} seeds).", "", head,
             "|---|" + "---:|" * len(sparsities)]
    for method in METHODS:
        cells = [f"{m:.2f} ± {d:.2f}" for m, d in
                 (result["summary"][method][s] for s in sparsities)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
