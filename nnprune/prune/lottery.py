"""Lottery-ticket rewinding (Frankle & Carbin 2019; late rewinding, Frankle et al. 2019).

One round: train θ from θ_k (the weights at initialisation, k = 0, or after k early steps),
prune a fraction p of the weights that *remain*, then reset the survivors to θ_k:

    m_r = prune(θ_trained, m_{r−1}),   θ ← θ_k ⊙ m_r.

After r rounds the kept fraction is (1 − p)^r. Each round prunes to the cumulative target,
the earlier zeros counting toward it, so the zeros of n entries are exactly
k_r = ⌊(1 − (1 − p)^r)·n + ½⌋: the rounding does not drift from round to round.

>>> import numpy as np
>>> from nnprune import nn
>>> model = nn.Sequential(nn.Linear(10, 10, rng=0))
>>> theta_0 = snapshot(model)
>>> model[0].weight.data += 1.0                     # "training"
>>> report = prune_round(model, rate=0.2, round=2)  # 1 − 0.8² = 0.36 of 100 weights
>>> rewind(model, theta_0)
>>> int((model[0].weight.data == 0).sum()), bool(np.all(
...     (model[0].weight.data == theta_0["0.weight"]) | (model[0].weight.mask == 0)))
(36, True)
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from nnprune.checks import check_int, check_mapping
from nnprune.prune.apply import named_parameters, prune_model
from nnprune.prune.report import PruneReport
from nnprune.prune.schedules import lottery_sparsities


def _named_buffers(model: Any) -> dict[str, np.ndarray]:
    """Buffers (e.g. BatchNorm running statistics) if the model has ``named_buffers()``."""
    fn = getattr(model, "named_buffers", None)
    return dict(fn()) if callable(fn) else {}


def snapshot(model: Any) -> dict[str, np.ndarray]:
    """Copies of every parameter's data and every buffer, by name: the rewind point θ_k.

    Take it before training (k = 0) or after k optimizer steps (e.g. from fit's
    ``step_callback``). Masks are not part of it: the current mask decides what survives.
    """
    state = {name: np.array(p.data, copy=True) for name, p in named_parameters(model).items()}
    state.update({name: np.array(b, copy=True) for name, b in _named_buffers(model).items()})
    return state


def rewind(model: Any, saved: Mapping[str, np.ndarray]) -> None:
    """Reset the model to ``saved`` (from ``snapshot``) under its current masks: θ ← θ_k ⊙ m.

    Every parameter and buffer of the model must be in ``saved`` with the same shape, and
    nothing else. Pruned entries stay exactly zero; gradients are cleared.
    """
    check_mapping(saved, "saved", "from snapshot()")
    params, buffers = named_parameters(model), _named_buffers(model)
    expected = set(params) | set(buffers)
    missing, unexpected = expected - set(saved), set(saved) - expected
    if missing or unexpected:
        raise ValueError(f"saved does not match the model: missing {sorted(missing)}, "
                         f"unexpected {sorted(unexpected)}")
    for name in expected:
        target = params[name].data if name in params else buffers[name]
        if np.shape(saved[name]) != np.shape(target):
            raise ValueError(f"saved[{name!r}] has shape {np.shape(saved[name])}, "
                             f"the model expects {np.shape(target)}")
    for name, p in params.items():
        p.data[...] = saved[name]
        p.grad = None
        if p.mask is not None:
            p.data *= p.mask  # the pruned stay pruned
    for name, b in buffers.items():
        b[...] = saved[name]


def round_sparsity(rate: float, round: int) -> float:
    """The cumulative target after ``round`` rounds at ``rate``: 1 − (1 − rate)^round."""
    return lottery_sparsities(rate, check_int(round, "round", 1))[-1]


def prune_round(model: Any, rate: float, round: int, criterion: str = "magnitude",
                scope: str = "layer", exclude: Iterable[str] = (),
                grads: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                min_keep: int = 1) -> PruneReport:
    """Round ``round`` (1-based) of pruning ``rate`` of the remaining weights: prune the model
    to 1 − (1 − rate)^round (see ``prune_model``; weight granularity). Rewind afterwards."""
    return prune_model(model, criterion, round_sparsity(rate, round), scope, "weight",
                       exclude, grads, seed, min_keep)
