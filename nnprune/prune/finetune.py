"""Fine-tuning a pruned model: L1/L2 penalties on the remaining weights, dropout rescaling.

The penalties cover the prunable weights only (SGD's ``weight_decay=λ'`` is the L2 penalty
with λ = λ'/2 on *every* parameter); a pruned weight is zero and adds nothing, nor gradient.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_number
from nnprune.prune.apply import prunable_parameters


class _Penalty:
    """λ Σ |w|^power over the prunable weights: a callable model -> scalar Tensor, and a plain
    object, so it travels to the worker processes of a parallel sweep."""

    def __init__(self, strength: float, exclude: Iterable[str], power: int,
                 label: str = "") -> None:
        self.strength = check_number(strength, "strength")
        self.exclude, self.power = tuple(exclude), power
        # what a result record shows for it, e.g. "l2 0.0001"
        self.description = f"{label or f'l{power}'} {self.strength:g}"

    def parameters(self, model: Any) -> dict[str, Any]:
        """The parameters penalised: the prunable weights, minus ``exclude``."""
        params = prunable_parameters(model, self.exclude)
        if not params:
            raise ValueError("the model has no prunable weights to penalise")
        return params

    def __call__(self, model: Any) -> Tensor:
        total = None
        for p in self.parameters(model).values():
            # |w| = w · sign(w): value |w|, gradient sign(w) (0 at 0, so a zero stays put)
            term = (p * np.sign(p.data) if self.power == 1 else p * p).sum()
            total = term if total is None else total + term
        return total * Tensor(self.strength, dtype=total.dtype)


def l1_regularizer(strength: float, exclude: Iterable[str] = ()) -> Callable[[Any], Tensor]:
    """R(model) = λ Σ |w| over the prunable weights (minus ``exclude``); a scalar Tensor.

    dR/dw = λ sign(w): it pushes small weights to zero before the next pruning round.

    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(2, 1, rng=0))
    >>> model[0].weight.data[...] = [[3.0, -4.0]]
    >>> l1_regularizer(0.5)(model).item()
    3.5
    """
    return _Penalty(strength, exclude, 1)


def l2_regularizer(strength: float, exclude: Iterable[str] = ()) -> Callable[[Any], Tensor]:
    """R(model) = λ Σ w² over the prunable weights (minus ``exclude``); a scalar Tensor.

    dR/dw = 2λ w. Han et al. 2015 retrain with L2 regularisation after pruning.

    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(2, 1, rng=0))
    >>> model[0].weight.data[...] = [[3.0, -4.0]]
    >>> l2_regularizer(0.5)(model).item()
    12.5
    """
    return _Penalty(strength, exclude, 2)


def _is_dropout(module: Any) -> bool:
    """A dropout layer, recognised by protocol: its class is named *Dropout* and it has a
    rate ``p`` (true of nnprune's and of PyTorch's dropout layers)."""
    return "Dropout" in type(module).__name__ and isinstance(getattr(module, "p", None), float)


def _density(value: float | Mapping[str, float], weight: str, name: str) -> float:
    if isinstance(value, Mapping):
        if weight not in value:
            raise ValueError(f"{name} has no density for {weight!r} (the weight feeding a "
                             f"dropout); it has {sorted(value)}")
        value = value[weight]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a density in [0, 1] (or a mapping weight name -> "
                         f"density), got {value!r}")
    return float(value)


def rescale_dropout(model: Any, old_density: float | Mapping[str, float],
                    new_density: float | Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Set every dropout rate to D_r = D_o · √(C_r / C_o) (Han et al. 2015); returns
    {dropout module name: (D_o, D_r)}.

    C is the number of connections (non-zero weights) of the layer *feeding* the dropout:
    the nearest conv/linear layer before it in ``named_modules()`` order, whose N_i outputs
    the dropout masks. Han's C_i = N_i·N_{i−1} is that layer's weight count; pruned,
    C_r = density · C_i, so C_r / C_o = new_density / old_density of that weight. A density
    is one float or a mapping {weight name: density} (e.g. ``1 − report.per_layer``).
    A dropout with no weight layer before it (dropout on the input) is left as it is.

    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(4, 4, rng=0), nn.ReLU(), nn.Dropout(0.5))
    >>> rescale_dropout(model, 1.0, 0.25)
    {'2': (0.5, 0.25)}
    """
    if not callable(getattr(model, "named_modules", None)):
        raise TypeError(f"model must have a named_modules() method, got {type(model).__name__}")
    weights = set(prunable_parameters(model))
    changed, feeding = {}, None
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if f"{prefix}weight" in weights:
            feeding = f"{prefix}weight"
        elif _is_dropout(module) and feeding is not None:
            old = _density(old_density, feeding, "old_density")
            new = _density(new_density, feeding, "new_density")
            if old == 0:
                raise ValueError(f"old_density of {feeding!r} is 0: nothing to rescale from")
            rate = module.p * math.sqrt(new / old)
            if rate >= 1:
                raise ValueError(f"the rescaled dropout rate of {name!r} would be {rate:.3g} "
                                 f"(>= 1): new_density must not exceed old_density that much")
            changed[name] = (module.p, rate)
    for name, module in model.named_modules():
        if name in changed:
            module.p = changed[name][1]
    return changed
