"""Learning-rate schedules, stepped once per epoch (``scheduler.step()`` after each epoch),
and ``LRSchedule``, which names one of them as a value a workflow or the command line carries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnprune.checks import check_int, check_number
from nnprune.optim.optimizers import Optimizer


class LRScheduler:
    """Base: remembers the optimizer's initial ``lr`` and sets ``optimizer.lr`` each step."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch; returns the new learning rate."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    lr_e = lr_0 · γ^⌊e / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = check_number(gamma, "gamma", strict=True, maximum=1.0)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the initial rate to ``eta_min`` over ``T_max`` epochs:
    lr_e = η_min + (lr_0 − η_min)(1 + cos(π e / T_max)) / 2; past T_max this closed form
    follows the cosine back up (period 2·T_max), as PyTorch's does."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        self.T_max = check_int(T_max, "T_max", 1)
        self.eta_min = check_number(eta_min, "eta_min", maximum=self.base_lr)

    def lr_at(self, epoch: int) -> float:
        cosine = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cosine / 2


LR_SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """How the learning rate moves over a training run of E epochs, stepped once per epoch.

    - ``constant``: lr_e = lr_0;
    - ``step``: lr_e = lr_0 · γ^⌊e / step_size⌋ (``StepLR``);
    - ``cosine``: lr_e = ½·lr_0·(1 + cos(π e / E)), from lr_0 to 0 at the end of the run
      (``CosineAnnealingLR`` with T_max = E; Loshchilov & Hutter 2017).

    >>> LRSchedule.parse("step:10:0.5")
    LRSchedule(kind='step', step_size=10, gamma=0.5)
    """

    kind: str = "cosine"
    step_size: int | None = None
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES} (step as "
                             f"'step:STEP_SIZE[:GAMMA]'), got {self.kind!r}")
        if self.kind == "step":
            size = self.step_size
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"a step schedule needs step_size, a positive int of epochs, "
                                 f"got {size!r}")
            check_number(self.gamma, "gamma", strict=True, maximum=1.0)

    @classmethod
    def parse(cls, spec: Any) -> "LRSchedule":
        """``spec`` as a schedule: an LRSchedule, or "constant", "cosine", "step:S" or
        "step:S:G" (every S epochs multiply by G, default 0.1)."""
        if isinstance(spec, LRSchedule):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"lr_schedule must be a string such as 'cosine', 'constant' or "
                            f"'step:10:0.1', got {type(spec).__name__}")
        kind, *rest = spec.strip().split(":")
        if kind != "step" or not rest:
            if rest:
                raise ValueError(f"lr_schedule {spec!r}: only 'step' takes ':' arguments")
            return cls(kind)
        try:
            step_size = int(rest[0])
            gamma = float(rest[1]) if len(rest) > 1 else 0.1
        except ValueError:
            raise ValueError(f"lr_schedule {spec!r}: expected 'step:STEP_SIZE[:GAMMA]' with "
                             f"an int and a float") from None
        if len(rest) > 2:
            raise ValueError(f"lr_schedule {spec!r}: expected 'step:STEP_SIZE[:GAMMA]'")
        return cls("step", step_size, gamma)

    def __str__(self) -> str:
        return self.kind if self.kind != "step" else f"step:{self.step_size}:{self.gamma:g}"

    def scheduler(self, optimizer: Optimizer, epochs: int) -> LRScheduler | None:
        """The scheduler that moves ``optimizer.lr`` over ``epochs`` epochs (None: constant)."""
        if self.kind == "step":
            return StepLR(optimizer, self.step_size, self.gamma)
        if self.kind == "cosine":
            return CosineAnnealingLR(optimizer, epochs)
        return None
