"""``Pruner``: how to prune (criterion, scope, granularity, exclusions, min_keep) and when
(a gradual schedule), tied to one model.

- ``pruner.prune_to(s)`` prunes the model to sparsity s now (one shot, or one round of an
  iterative schedule). Masks compose: zeros already there count toward s, none is revived.
- ``pruner.on_step(step)`` follows a ``GradualSchedule`` (Zhu & Gupta 2017): at the update
  steps t0, t0 + Δt, ..., t0 + nΔt it prunes to s_t; between them it does nothing. It has
  the signature of ``nnprune.train.fit``'s ``step_callback``::

      pruner = Pruner(model, "magnitude", schedule=GradualSchedule(0.9, 0, 400, 40))
      fit(model, train, optimizer, epochs, step_callback=pruner.on_step)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nnprune.prune.apply import SCOPES, prunable_parameters, prune_model
from nnprune.prune.groups import parse_granularity
from nnprune.prune.report import PruneReport
from nnprune.prune.schedules import polynomial_sparsity
from nnprune.prune.scores import CRITERIA

NEEDS_GRADS = ("gradient", "taylor", "taylor2", "snip")


@dataclass(frozen=True)
class GradualSchedule:
    """Zhu & Gupta 2017: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³ at the update steps
    t = t0 + jΔt, j = 0..n, with t0 = ``begin_step``, Δt = ``frequency`` and
    t0 + nΔt = ``end_step`` (so end_step − begin_step must be a multiple of frequency):
    the target is exactly ``final_sparsity`` at ``end_step``.

    >>> schedule = GradualSchedule(0.8, begin_step=0, end_step=4, frequency=2)
    >>> [round(schedule.sparsity_at(t), 4) for t in range(6)]
    [0.0, 0.0, 0.7, 0.7, 0.8, 0.8]
    """

    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int = 1
    initial_sparsity: float = 0.0
    power: int = 3

    def __post_init__(self) -> None:
        for name in ("begin_step", "end_step", "frequency", "power"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        if self.frequency < 1:
            raise ValueError(f"frequency must be an int >= 1, got {self.frequency!r}")
        span = self.end_step - self.begin_step
        if span < 1 or span % self.frequency:
            raise ValueError(f"end_step − begin_step must be a positive multiple of frequency "
                             f"({self.frequency}), got begin_step={self.begin_step}, "
                             f"end_step={self.end_step}")
        self.sparsity_at(self.begin_step)  # checks both sparsities

    @property
    def num_updates(self) -> int:
        """n, the number of pruning updates after t0."""
        return (self.end_step - self.begin_step) // self.frequency

    def is_update(self, step: int) -> bool:
        """True at t0, t0 + Δt, ..., t0 + nΔt: the steps at which the pruner prunes."""
        return (self.begin_step <= step <= self.end_step
                and (step - self.begin_step) % self.frequency == 0)

    def sparsity_at(self, step: int) -> float:
        """The target s_t (s_i before t0, s_f from t0 + nΔt on)."""
        return polynomial_sparsity(step, self.initial_sparsity, self.final_sparsity,
                                   self.begin_step, self.num_updates, self.frequency, self.power)


class Pruner:
    """Prunes ``model`` with a fixed criterion, scope, granularity and exclusions.

    ``grads_fn()`` returns {name: dL/dw} for the gradient criteria (e.g. a closure over
    ``nnprune.train.gradients``); ``prune_to`` also accepts ``grads`` directly. ``history``
    lists every pruning call: {"step", "target", "sparsity"} (step None outside on_step).
    """

    def __init__(self, model: Any, criterion: str = "magnitude", scope: str = "layer",
                 granularity: str = "weight", exclude: Iterable[str] = (),
                 schedule: GradualSchedule | None = None, *, min_keep: int = 1, seed: int = 0,
                 grads_fn: Callable[[], Mapping[str, np.ndarray]] | None = None) -> None:
        if not isinstance(criterion, str) or criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        if schedule is not None and not isinstance(schedule, GradualSchedule):
            raise TypeError(f"schedule must be a GradualSchedule or None, "
                            f"got {type(schedule).__name__}")
        if schedule is not None and isinstance(parse_granularity(granularity), tuple):
            raise ValueError(f"granularity {granularity!r} fixes the sparsity: it cannot follow "
                             "a gradual schedule")
        if grads_fn is not None and not callable(grads_fn):
            raise TypeError(f"grads_fn must be callable or None, got {type(grads_fn).__name__}")
        if schedule is not None and criterion in NEEDS_GRADS and grads_fn is None:
            raise ValueError(f"criterion {criterion!r} needs grads_fn to prune from on_step")
        exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
        prunable_parameters(model, exclude)  # checks the model and the exclude names now
        self.model, self.criterion, self.scope = model, criterion, scope
        self.granularity, self.exclude, self.schedule = granularity, exclude, schedule
        self.min_keep, self.seed, self.grads_fn = min_keep, seed, grads_fn
        self.history: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return (f"Pruner(criterion={self.criterion!r}, scope={self.scope!r}, "
                f"granularity={self.granularity!r}, exclude={list(self.exclude)}, "
                f"schedule={self.schedule})")

    def prune_to(self, sparsity: float | None,
                 grads: Mapping[str, np.ndarray] | None = None) -> PruneReport:
        """Prune the model to ``sparsity`` (see ``prune_model``); returns what was reached."""
        if grads is None and self.criterion in NEEDS_GRADS and self.grads_fn is not None:
            grads = self.grads_fn()
        report = prune_model(self.model, self.criterion, sparsity, self.scope, self.granularity,
                             self.exclude, grads, self.seed, self.min_keep)
        self.history.append({"step": None, "target": sparsity, "sparsity": report.sparsity})
        return report

    def on_step(self, step: int) -> PruneReport | None:
        """At an update step of the schedule prune to its target; otherwise do nothing."""
        if self.schedule is None:
            raise ValueError("on_step needs a schedule: Pruner(..., schedule=GradualSchedule(...))")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        if not self.schedule.is_update(step):
            return None
        report = self.prune_to(self.schedule.sparsity_at(step))
        self.history[-1]["step"] = int(step)
        return report
