"""``TrainSpec``: the settings of one training run, checked once where they enter; the
functions it is handed to (``experiment.runs.fit_model``, the workflows) trust it.

``epochs`` may be 0 (no training, e.g. no fine-tuning); ``momentum`` is SGD's μ;
``weight_decay`` is PyTorch's coupled decay λ on every parameter, g ← g + λ·w;
``lr_schedule`` ("cosine", "constant" or "step:S:G") is parsed once into an
``optim.LRSchedule``; ``regularizer`` is None or a penalty R(model) added to every batch's
loss (``prune.finetune``'s L1/L2 penalties on the remaining weights); ``quiet`` hides the
progress bars.

>>> spec = TrainSpec(epochs=3, lr=0.05, lr_schedule="step:2:0.5")
>>> spec.lr_schedule, spec.replace(epochs=0).epochs
(LRSchedule(kind='step', step_size=2, gamma=0.5), 0)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from nnprune import optim
from nnprune.checks import check_bool, check_choice, check_int, check_number, check_probability
from nnprune.optim import LRSchedule

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainSpec:
    """How to train (see the module docstring); every field checked on construction."""

    epochs: int = 2
    lr: float = 0.02
    optimizer: str = "sgd"
    momentum: float = 0.9
    batch_size: int = 64
    weight_decay: float = 0.0
    lr_schedule: LRSchedule | str = "cosine"
    regularizer: Callable[[Any], Any] | None = None
    seed: int = 0
    quiet: bool = True

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        check_int(self.epochs, "epochs", 0)
        put("lr", check_number(self.lr, "lr", strict=True))
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        put("momentum", check_probability(self.momentum, "momentum", high_open=True))
        check_int(self.batch_size, "batch_size", 1)
        put("weight_decay", check_number(self.weight_decay, "weight_decay"))
        put("lr_schedule", LRSchedule.parse(self.lr_schedule))
        if self.regularizer is not None and not callable(self.regularizer):
            raise TypeError(f"regularizer must be None or callable (model -> penalty Tensor, "
                            f"e.g. l2_regularizer(1e-4)), got {type(self.regularizer).__name__}")
        check_int(self.seed, "seed", 0)
        check_bool(self.quiet, "quiet")

    def replace(self, **changes: Any) -> "TrainSpec":
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)

    def optimizer_for(self, params: Any) -> optim.Optimizer:
        """The optimizer over ``params``: SGD with ``momentum`` or Adam, ``lr``,
        ``weight_decay``."""
        if self.optimizer == "sgd":
            return optim.SGD(params, lr=self.lr, momentum=self.momentum,
                             weight_decay=self.weight_decay)
        return optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def record(self) -> dict[str, Any]:
        """The fields a result record keeps of the spec."""
        # the regularizer by its description (e.g. "l2 0.0001"), or its name
        penalty = None if self.regularizer is None else str(getattr(
            self.regularizer, "description", getattr(self.regularizer, "__name__", "custom")))
        return {"lr": self.lr, "optimizer": self.optimizer, "batch_size": self.batch_size,
                "regularizer": penalty, "weight_decay": self.weight_decay,
                "lr_schedule": str(self.lr_schedule)}
