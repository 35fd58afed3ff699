"""The one rule for dividing two counts (parameters, MACs, zeros), shared by every report.

``ratio(num, den)`` is num / den, and when den = 0:

- 0 / 0 = 1: **nothing counted is nothing pruned** — an empty model or tensor is dense
  (density 1, compression 1×, speed-up 1×);
- x / 0 = inf for x > 0: every parameter (or MAC) pruned is an infinite compression (or
  speed-up); JSON has no infinity, so ``json_ratio`` writes it as null.

A pruned fraction (sparsity) is 1 − density, so by the same rule it is 0 for nothing:
``pruned_fraction(0, 0) == 1 − ratio(0, 0) == 0``. It is computed as zeros / n (not as
1 − (n − zeros) / n, which rounds differently), so saved figures keep their last digit.

This module imports nothing, so the array-only pruning core and the model-level accounting
(``nnprune.count``) both use it.

>>> ratio(6, 3), ratio(0, 0), ratio(5, 0), pruned_fraction(1, 4), pruned_fraction(0, 0)
(2.0, 1.0, inf, 0.25, 0.0)
"""
from __future__ import annotations

import math


def ratio(num: int, den: int) -> float:
    """num / den of two counts ≥ 0; 0 / 0 = 1 (empty is dense) and x / 0 = inf for x > 0."""
    if den == 0:
        return math.inf if num > 0 else 1.0
    return num / den


def pruned_fraction(zeros: int, n: int) -> float:
    """zeros / n, the sparsity of n entries of which ``zeros`` are 0; 0.0 when n = 0
    (= 1 − ratio(0, 0): nothing counted, nothing pruned)."""
    return zeros / n if n else 1.0 - ratio(0, 0)


def json_ratio(x: float) -> float | None:
    """``x`` for JSON, which has no infinity: an infinite ratio (everything pruned) is null."""
    return None if math.isinf(x) else float(x)
