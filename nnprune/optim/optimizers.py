"""Optimizers with PyTorch's names and update rules, and the pruning-mask hook.

Every optimizer updates each parameter with its own rule (``_update``) and then calls
``p.apply_mask()``; the state buffers (momentum, Adam moments) of a pruned entry are zeroed
too. So however the rule mixes in momentum or weight decay, a pruned weight stays exactly
zero, and the buffers hold nothing that could revive it if the mask is later removed.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_bool, check_number
from nnprune.nn.module import Parameter


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
