"""``TrainSpec``: the settings of one training run, checked once where they enter.

============== ==============================================================================
``epochs``      epochs of the run, an int >= 0 (0: no training, e.g. no fine-tuning)
``lr``          the learning rate the run starts from, a finite number > 0
``optimizer``   "sgd" (with ``momentum``) or "adam"
``momentum``    SGD's momentum μ in [0, 1) (default 0.9)
``batch_size``  samples per step, an int >= 1
``weight_decay`` PyTorch's coupled decay λ on every parameter, g ← g + λ·w (>= 0)
``lr_schedule`` how the rate moves over the run: "cosine" (default), "constant" or
                "step:S:G" (parsed once into an ``optim.LRSchedule``)
``regularizer`` None, or a penalty R(model) added to every batch's loss (the L1/L2
                penalties on the remaining weights of ``prune.finetune``)
``seed``        the shuffling seed, an int >= 0
``quiet``       True hides the progress bars
============== ==============================================================================

The functions a spec is handed to (``experiment.runs.fit_model``, the workflows) trust it.

>>> spec = TrainSpec(epochs=3, lr=0.05, lr_schedule="step:2:0.5")
>>> spec.lr_schedule, spec.replace(epochs=0).epochs
(LRSchedule(kind='step', step_size=2, gamma=0.5), 0)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from nnprune import optim
from nnprune.optim import LRSchedule

OPTIMIZERS = ("sgd", "adam")


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_float(value: Any, name: str, low: float, high: float = math.inf,
                 low_open: bool = False) -> float:
    """``value`` as a float in [low, high) ((low, high) with ``low_open``), or a TypeError /
    ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} of type "
                        f"{type(value).__name__}")
    if not ((value > low if low_open else value >= low) and value < high):  # NaN fails
        want = (f"{'>' if low_open else '>='} {low:g}" if high == math.inf else
                f"in {'(' if low_open else '['}{low:g}, {high:g})")
        raise ValueError(f"{name} must be a finite number {want}, got {value!r}")
    return float(value)


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
        _check_int(self.epochs, "epochs", 0)
        put("lr", _check_float(self.lr, "lr", 0.0, low_open=True))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        put("momentum", _check_float(self.momentum, "momentum", 0.0, 1.0))
        _check_int(self.batch_size, "batch_size", 1)
        put("weight_decay", _check_float(self.weight_decay, "weight_decay", 0.0))
        put("lr_schedule", LRSchedule.parse(self.lr_schedule))
        if self.regularizer is not None and not callable(self.regularizer):
            raise TypeError(f"regularizer must be None or callable (model -> penalty Tensor, "
                            f"e.g. l2_regularizer(1e-4)), got {type(self.regularizer).__name__}")
        _check_int(self.seed, "seed", 0)
        if not isinstance(self.quiet, bool):
            raise TypeError(f"quiet must be a bool, got {type(self.quiet).__name__}")

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

    @property
    def penalty_name(self) -> str | None:
        """What a result record shows for ``regularizer`` (e.g. "l2 0.0001"), None without."""
        if self.regularizer is None:
            return None
        return str(getattr(self.regularizer, "description",
                           getattr(self.regularizer, "__name__", "custom")))

    def record(self) -> dict[str, Any]:
        """The fields a result record keeps of the spec."""
        return {"lr": self.lr, "optimizer": self.optimizer, "batch_size": self.batch_size,
                "regularizer": self.penalty_name, "weight_decay": self.weight_decay,
                "lr_schedule": str(self.lr_schedule)}
