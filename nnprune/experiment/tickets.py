"""The lottery-ticket workflow (Frankle & Carbin 2019): train → prune a fraction of what
remains → rewind the survivors, R times, then train the ticket."""
from __future__ import annotations

import math
import time
from typing import Any

from nnprune.checks import check_int
from nnprune.experiment.runs import accuracy, fit_model, gradients_for, record, specs
from nnprune.experiment.second_order import check_first_order
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.masks import check_sparsity
from nnprune.prune.schedules import lottery_rate
from nnprune.prune.spec import PruneSpec
from nnprune.train import TrainSpec


def lottery(model: Any, data: Any, prune: PruneSpec | None = None,
            train: TrainSpec | None = None, *, rate: float | None = None, rounds: int = 3,
            rewind_step: int = 0, model_name: str = "model", **options: Any) -> dict[str, Any]:
    """Frankle & Carbin 2019: ``rounds`` times train (``train.epochs`` epochs) → prune
    ``rate`` of the remaining weights → rewind the survivors to θ_k; then train the ticket.

    θ_k is ``model``'s weights after ``rewind_step`` optimizer steps of the first training
    (0: as given; pass a freshly built model for the paper's rewinding to initialisation).
    Give ``rate`` or the final ``sparsity`` (then rate = 1 − (1 − sparsity)^(1/rounds)),
    not both; neither: rate 0.2. ``accuracy_dense``: the dense model after the first
    training; ``accuracy_before_finetune``: the trained weights right after the last
    pruning; ``accuracy_rewound``: the ticket θ_k ⊙ m before its training.
    """
    start = time.perf_counter()
    rounds = check_int(rounds, "rounds", 1)
    sparsity = options.get("sparsity") if prune is None else prune.sparsity
    if rate is not None and sparsity is not None:
        raise ValueError(f"give rate or sparsity, not both (got rate={rate!r}, "
                         f"sparsity={sparsity!r})")
    if sparsity is None:  # the final target follows from the rate
        rate = check_sparsity(0.2 if rate is None else rate, "rate")
        options["sparsity"] = round_sparsity(rate, rounds)
    prune, train, exclude = specs(model, data, prune, train, options, "lottery", trains=True)
    rate = lottery_rate(prune.sparsity, rounds) if rate is None else rate
    check_first_order(prune.criterion, "lottery")
    if prune.granularity != "weight":
        raise ValueError(f"lottery prunes single weights: granularity must be 'weight', "
                         f"got {str(prune.granularity)!r}")
    steps = train.epochs * math.ceil(len(data.x_train) / train.batch_size)
    if check_int(rewind_step, "rewind_step", 0) > steps:
        raise ValueError(f"rewind_step {rewind_step} is after the last of the {steps} steps "
                         "of a training run")
    return _lottery_rounds(model, data, prune, train, rate, rounds, rewind_step, exclude,
                           model_name, start)


def _lottery_rounds(model: Any, data: Any, prune: PruneSpec, train: TrainSpec, rate: float,
                    rounds: int, rewind_step: int, exclude: tuple[str, ...], model_name: str,
                    start: float) -> dict[str, Any]:
    """The rounds of ``lottery`` once its options are checked, then the ticket's training."""
    saved = {"theta": snapshot(model)}

    def keep_theta_k(step: int) -> None:
        if step == rewind_step:
            saved["theta"] = snapshot(model)

    log = []
    for r in range(1, rounds + 1):
        fit_model(model, data, train, desc=f"round {r}/{rounds}",
                  step_callback=keep_theta_k if r == 1 and rewind_step else None)
        trained = accuracy(model, data)
        grads = gradients_for(prune.criterion, model, data, train.batch_size, prune.seed)
        report = prune_round(model, rate, r, prune.criterion, prune.scope, exclude, grads,
                             prune.seed, prune.min_keep)
        pruned = accuracy(model, data)
        rewind(model, saved["theta"])
        log.append({"round": r, "target": round_sparsity(rate, r), "sparsity": report.sparsity,
                    "accuracy_trained": trained, "accuracy_pruned": pruned})
    rewound = accuracy(model, data)
    fit_model(model, data, train, desc="ticket")
    return record(model, data, prune, train, schedule="lottery", model_name=model_name,
                  exclude=exclude, dense=log[0]["accuracy_trained"],
                  before=log[-1]["accuracy_pruned"], after=accuracy(model, data), start=start,
                  rate=rate, rewind_step=rewind_step, accuracy_rewound=rewound, rounds=log)
