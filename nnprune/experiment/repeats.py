"""Repeated runs: the same sweep under several seeds, summed up as means with their range.

``mean_over_seeds(records)`` groups the records that differ only in ``seed`` (same model,
dataset, criterion, scope, granularity, schedule, sparsity) and returns one record per group:
every numeric field that varies becomes its mean over the seeds (a per-layer sparsity dict,
entry by entry); ``seeds`` lists the seeds, and ``accuracy_before_finetune_range`` /
``accuracy_after_finetune_range`` hold [min, max]. The report and figures of a repeated sweep
are drawn from these; ``results.json`` keeps every run.

>>> runs = [{"criterion": "magnitude", "sparsity": 0.9, "seed": s, "accuracy_before_finetune": a,
...          "accuracy_after_finetune": None} for s, a in [(0, 0.8), (1, 0.9)]]
>>> mean = mean_over_seeds(runs)[0]
>>> round(mean["accuracy_before_finetune"], 6), mean["seeds"]
(0.85, [0, 1])
>>> mean["accuracy_before_finetune_range"], mean["accuracy_after_finetune_range"]
([0.8, 0.9], None)
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

GROUP_FIELDS = ("model", "dataset", "criterion", "scope", "granularity", "schedule", "sparsity")
RANGED = ("accuracy_before_finetune", "accuracy_after_finetune")


def _mean(values: list[Any]) -> Any:
    """The common value; else the mean of numbers, entry by entry for dicts of numbers."""
    first = values[0]
    if all(v == first for v in values):
        return first
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return float(np.mean(values))
    if all(isinstance(v, Mapping) and v.keys() == first.keys() for v in values):
        return {k: _mean([v[k] for v in values]) for k in first}
    return first


def mean_over_seeds(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per group of runs that differ only in ``seed``, in first-seen order."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(str(r.get(k)) for k in GROUP_FIELDS), []).append(r)
    out = []
    for runs in groups.values():
        mean = {key: _mean([r.get(key) for r in runs]) for key in runs[0] if key != "seed"}
        mean["seed"] = runs[0].get("seed")
        mean["seeds"] = [r.get("seed") for r in runs]
        for key in RANGED:
            values = [r.get(key) for r in runs if r.get(key) is not None]
            mean[f"{key}_range"] = [min(values), max(values)] if values else None
        out.append(mean)
    return out
