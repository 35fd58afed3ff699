"""The one rule for dividing two counts (parameters, MACs, zeros), shared by every report.

0 / 0 = 1: **nothing counted is nothing pruned** (an empty model or tensor is dense), and
x / 0 = inf for x > 0 (everything pruned; null in JSON). So a pruned fraction is 0 for n = 0.
It imports nothing from nnprune, so the array-only core and ``nnprune.count`` both use it.

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
    """zeros / n, the sparsity of n entries of which ``zeros`` are 0 (not 1 − (n − zeros) / n,
    which rounds differently); 0.0 when n = 0 (= 1 − ratio(0, 0))."""
    return zeros / n if n else 1.0 - ratio(0, 0)


def json_ratio(x: float) -> float | None:
    """``x`` for JSON, which has no infinity: an infinite ratio (everything pruned) is null."""
    return None if math.isinf(x) else float(x)
