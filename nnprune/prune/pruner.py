"""``Pruner``: how to prune, tied to one model, and when (a gradual schedule).

``pruner.prune_to(s)`` prunes to sparsity s now; ``pruner.on_step(step)`` follows a
``Gradual`` schedule (Zhu & Gupta 2017), with the signature of ``nnprune.train.fit``'s
``step_callback`` (fit counts steps from 1)::

    schedule = Gradual(initial_sparsity=0.0, final_sparsity=0.9, begin_step=0,
                       num_steps=10, frequency=40)          # s_f at step 400
    pruner = Pruner(model, "magnitude", schedule=schedule)
    fit(model, train, optimizer, epochs, step_callback=pruner.on_step)
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nnprune.checks import check_int
from nnprune.prune.apply import prunable_parameters, prune_model
from nnprune.prune.granularity import as_granularity
from nnprune.prune.report import PruneReport
from nnprune.prune.schedules import Gradual
from nnprune.prune.scores import CRITERIA, NEEDS_GRADS
from nnprune.prune.spec import PruneSpec


class Pruner:
    """Prunes ``model`` with a fixed criterion, scope, granularity and exclusions (``spec``).

    ``grads_fn()`` returns {name: dL/dw} for the gradient criteria (e.g. a closure over
    ``nnprune.train.gradients``), called at each pruning; ``prune_to`` also accepts ``grads``
    directly. ``history`` lists every pruning call: {"step", "target", "sparsity"} (step is
    None outside ``on_step``; sparsity is the one reached).
    """

    def __init__(self, model: Any, criterion: str = "magnitude", scope: str = "layer",
                 granularity: str = "weight", exclude: Iterable[str] = (),
                 schedule: Gradual | None = None, *, min_keep: int = 1, seed: int = 0,
                 grads_fn: Callable[[], Mapping[str, np.ndarray]] | None = None) -> None:
        if not isinstance(criterion, str) or criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
        g = as_granularity(granularity)
        if schedule is not None and not isinstance(schedule, Gradual):
            raise TypeError(f"schedule must be a schedules.Gradual or None, "
                            f"got {type(schedule).__name__}")
        if schedule is not None and g.is_nm:
            raise ValueError(f"granularity {granularity!r} fixes the sparsity: it cannot follow "
                             "a gradual schedule")
        if grads_fn is not None and not callable(grads_fn):
            raise TypeError(f"grads_fn must be callable or None, got {type(grads_fn).__name__}")
        if schedule is not None and criterion in NEEDS_GRADS and grads_fn is None:
            raise ValueError(f"criterion {criterion!r} needs grads_fn to prune from on_step")
        # every choice checked now; each pruning replaces only the sparsity (N:M: its own)
        self.spec = PruneSpec(criterion, g.fixed_sparsity or 0.0, scope, g, exclude, min_keep,
                              seed=seed)
        prunable_parameters(model, self.spec.exclude)  # checks the model and the names now
        self.model, self.schedule, self.grads_fn = model, schedule, grads_fn
        self.history: list[dict[str, Any]] = []

    # the spec's settings, readable on the pruner itself
    criterion = property(lambda self: self.spec.criterion)
    scope = property(lambda self: self.spec.scope)
    granularity = property(lambda self: self.spec.granularity)
    exclude = property(lambda self: self.spec.exclude)
    min_keep = property(lambda self: self.spec.min_keep)
    seed = property(lambda self: self.spec.seed)

    def __repr__(self) -> str:
        s = self.spec
        return (f"Pruner(criterion={s.criterion!r}, scope={s.scope!r}, granularity="
                f"{s.granularity!r}, exclude={list(s.exclude)}, schedule={self.schedule})")

    def prune_to(self, sparsity: float | None,
                 grads: Mapping[str, np.ndarray] | None = None) -> PruneReport:
        """Prune the model to ``sparsity`` (see ``prune_model``); returns what was reached."""
        if grads is None and self.spec.criterion in NEEDS_GRADS and self.grads_fn is not None:
            grads = self.grads_fn()
        report = prune_model(self.model, self.spec.replace(sparsity=sparsity), grads=grads)
        self.history.append({"step": None, "target": sparsity, "sparsity": report.sparsity})
        return report

    def on_step(self, step: int) -> PruneReport | None:
        """At an update step of the schedule prune to its target; otherwise do nothing."""
        if self.schedule is None:
            raise ValueError("on_step needs a schedule: Pruner(..., schedule=Gradual(...))")
        check_int(step, "step", 0)
        if not self.schedule.is_update(step):
            return None
        report = self.prune_to(self.schedule.sparsity_at(step))
        self.history[-1]["step"] = int(step)
        return report
