"""``PruneReport``: the sparsity a pruning call actually reached, per layer and overall."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass
class PruneReport:
    """Counts per tensor: ``layers[name] = (entries, zeros)``; ``excluded`` names were left alone."""

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()

    @classmethod
    def from_masks(cls, masks: Mapping[str, np.ndarray], excluded=()) -> PruneReport:
        return cls({n: (int(m.size), int(m.size - np.count_nonzero(m))) for n, m in masks.items()},
                   tuple(excluded))

    def sparsity_of(self, name: str) -> float:
        n, z = self.layers[name]
        return z / n if n else 0.0

    @property
    def per_layer(self) -> dict[str, float]:
        return {name: self.sparsity_of(name) for name in self.layers}

    @property
    def sparsity(self) -> float:
        """Zeros over entries of the pruned (non-excluded) tensors."""
        pairs = [v for k, v in self.layers.items() if k not in self.excluded]
        n = sum(p[0] for p in pairs)
        return sum(p[1] for p in pairs) / n if n else 0.0

    @property
    def sparsity_all(self) -> float:
        """Zeros over entries of every tensor, excluded ones included."""
        n = sum(p[0] for p in self.layers.values())
        return sum(p[1] for p in self.layers.values()) / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "sparsity_all": self.sparsity_all,
                "excluded": list(self.excluded),
                "layers": {k: {"entries": n, "zeros": z, "sparsity": z / n if n else 0.0}
                           for k, (n, z) in self.layers.items()}}

    def __str__(self) -> str:
        width = max([len(k) for k in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'entries':>10}  {'zeros':>10}  sparsity"]
        for k, (n, z) in self.layers.items():
            note = "  (excluded)" if k in self.excluded else ""
            lines.append(f"{k:<{width}}  {n:>10,}  {z:>10,}  {z / n if n else 0:8.2%}{note}")
        lines.append(f"{'total':<{width}}  {'':>10}  {'':>10}  {self.sparsity:8.2%} (pruned tensors)")
        return "\n".join(lines)
