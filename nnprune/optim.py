"""Optimizers with PyTorch's names and update rules, and learning-rate schedules; all of them
keep pruned weights at zero.

Every optimizer updates each parameter with its own rule (``_update``) and then calls
``p.apply_mask()``; the state buffers (momentum, Adam moments) of a pruned entry are zeroed
too. So however the rule mixes in momentum or weight decay, a pruned weight stays exactly
zero, and the buffers hold nothing that could revive it if the mask is later removed.
Schedules are stepped once per epoch (``scheduler.step()`` after each epoch); ``LRSchedule``
names one of them as a value a workflow or the command line carries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_bool, check_int, check_number
from nnprune.nn.module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR",
           "LRSchedule"]


class Optimizer:
    """Base: holds the parameters, a learning rate ``lr`` and per-parameter ``state``."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Parameters such as "
                            "model.parameters(), got a single " + type(params).__name__)
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: the optimizer has nothing to update")
        first: dict[int, int] = {}
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a Parameter, got {type(p).__name__}")
            if id(p) in first:  # it would be updated twice per step
                raise ValueError(f"params[{i}] is the same Parameter as params[{first[id(p)]}]")
            first[id(p)] = i
        self.lr = check_number(lr, "lr", strict=True)
        # per parameter: its buffers (arrays of its shape) and, for Adam, its step count
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (call before each backward)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, then re-apply its mask."""
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            self._update(p, p.grad, state)
            if p.mask is not None:  # the pruning hook
                p.apply_mask()
                for buf in state.values():
                    if isinstance(buf, np.ndarray):
                        buf *= p.mask

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov and L2 weight decay (PyTorch's rule).

    g ← g + λ w;  v ← μ v + g (v = g on the first step);  w ← w − lr · (g + μ v if nesterov else v)

    This is torch.optim.SGD's documented rule with dampening 0 (Sutskever et al. 2013 for the
    Nesterov form).
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = check_number(momentum, "momentum", maximum=1.0, high_open=True)
        self.weight_decay = check_number(weight_decay, "weight_decay")
        self.nesterov = check_bool(nesterov, "nesterov")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            if "momentum" in state:
                v = state["momentum"]
                v *= self.momentum
                v += g
            else:
                v = state["momentum"] = g.copy()
            g = g + self.momentum * v if self.nesterov else v
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` adds λ w to the gradient.

    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  w ← w − lr · m̂ / (√v̂ + eps),
    m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), t = the number of updates of this parameter.
    The bias correction makes the first step lr·g/(|g| + eps) ≈ lr·sign(g) at any gradient scale.
    """

    decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(check_number(b, f"betas[{i}]", maximum=1.0, high_open=True)
                           for i, b in enumerate(betas))
        self.eps = check_number(eps, "eps", strict=True)
        self.weight_decay = check_number(weight_decay, "weight_decay")

    def _update(self, p, g, state):
        b1, b2 = self.betas
        # t counts this parameter's own updates, as PyTorch's state["step"]: a parameter
        # that had no gradient for a while is not over-corrected when it gets one
        t = state["step"] = state.get("step", 0) + 1
        if self.weight_decay and self.decoupled:
            p.data -= self.lr * self.weight_decay * p.data
        elif self.weight_decay:
            g = g + self.weight_decay * p.data
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p.data -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): w ← w − lr·λ·w, then Adam."""

    decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


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
