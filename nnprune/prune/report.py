"""``PruneReport``: the sparsity a pruning call actually reached, per layer and overall.

A target is a wish; the report is what happened, counted on the masks in weights (never in
groups). They differ when the zeros already masked exceed the target (nothing is revived),
when global scope keeps ``min_keep`` entries of a layer, when whole groups are pruned, or
when a layer is excluded. Nothing counted is nothing pruned (``nnprune.ratios``): an empty
tensor, or a call that excluded every tensor, reports sparsity 0.

>>> import numpy as np
>>> report = PruneReport.from_masks({"fc1": np.array([0., 0., 1., 1.]),
...                                  "fc2": np.array([1., 1.])}, excluded=["fc2"], target=0.5)
>>> report.layers["fc1"], report.sparsity, report.sparsity_all
((4, 2), 0.5, 0.3333333333333333)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from nnprune.checks import check_mapping
from nnprune.ratios import pruned_fraction


@dataclass(frozen=True)
class PruneReport:
    """What a pruning call reached.

    - ``layers[name] = (n, zeros)``: entries and zeros of each tensor's mask, in call order;
    - ``excluded``: names left untouched (their zeros are those of their existing mask);
    - ``target``: the requested overall sparsity, or None (e.g. a per-layer dict of targets).
    """

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    target: float | None = None

    @classmethod
    def from_masks(cls, masks: Mapping[str, np.ndarray], excluded: Iterable[str] = (),
                   target: float | None = None) -> PruneReport:
        """Count the zeros of every mask (any array: a zero entry is a pruned entry)."""
        check_mapping(masks, "masks", "name -> array")
        excluded = (excluded,) if isinstance(excluded, str) else tuple(excluded)
        unknown = [name for name in excluded if name not in masks]
        if unknown:
            raise ValueError(f"excluded names {unknown} are not in masks {list(masks)}")
        layers = {}
        for name, mask in masks.items():
            mask = np.asarray(mask)
            layers[name] = (int(mask.size), int(mask.size - np.count_nonzero(mask)))
        return cls(layers, excluded, None if target is None else float(target))

    def sparsity_of(self, name: str) -> float:
        """zeros / entries of one tensor."""
        if name not in self.layers:
            raise KeyError(f"no layer {name!r} in this report; it has {list(self.layers)}")
        n, zeros = self.layers[name]
        return pruned_fraction(zeros, n)

    @property
    def per_layer(self) -> dict[str, float]:
        """{name: sparsity} for every tensor, excluded ones included."""
        return {name: self.sparsity_of(name) for name in self.layers}

    @property
    def n(self) -> int:
        """Entries of the pruned (non-excluded) tensors."""
        return sum(n for name, (n, _) in self.layers.items() if name not in self.excluded)

    @property
    def zeros(self) -> int:
        """Zeros of the pruned (non-excluded) tensors."""
        return sum(z for name, (_, z) in self.layers.items() if name not in self.excluded)

    @property
    def sparsity(self) -> float:
        """zeros / entries over the pruned (non-excluded) tensors: what the target aimed at."""
        return pruned_fraction(self.zeros, self.n)

    @property
    def sparsity_all(self) -> float:
        """zeros / entries over every tensor, excluded ones included."""
        n = sum(n for n, _ in self.layers.values())
        return pruned_fraction(sum(z for _, z in self.layers.values()), n)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: overall figures and, per layer, n / zeros / sparsity / excluded."""
        return {
            "target": self.target,
            "sparsity": self.sparsity,
            "sparsity_all": self.sparsity_all,
            "n": self.n,
            "zeros": self.zeros,
            "excluded": list(self.excluded),
            "layers": {name: {"n": n, "zeros": z, "sparsity": pruned_fraction(z, n),
                              "excluded": name in self.excluded}
                       for name, (n, z) in self.layers.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PruneReport:
        """The inverse of ``to_dict`` (the derived figures are recomputed, not read)."""
        try:
            layers = {name: (int(row["n"]), int(row["zeros"]))
                      for name, row in data["layers"].items()}
            return cls(layers, tuple(data["excluded"]), data["target"])
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a PruneReport dict (keys target, excluded, layers with n "
                             f"and zeros): {err!r}") from None

    def __str__(self) -> str:
        """A fixed-width table: one row per tensor, then the overall figures."""
        width = max([len(name) for name in self.layers] + [len("pruned tensors")])
        header = f"{'layer':<{width}}  {'entries':>12}  {'zeros':>12}  {'sparsity':>8}"
        lines = [header, "-" * len(header)]
        for name, (n, z) in self.layers.items():
            note = "  excluded" if name in self.excluded else ""
            lines.append(f"{name:<{width}}  {n:>12,}  {z:>12,}  {self.sparsity_of(name):>8.2%}{note}")
        lines.append("-" * len(header))
        lines.append(f"{'pruned tensors':<{width}}  {self.n:>12,}  {self.zeros:>12,}  "
                     f"{self.sparsity:>8.2%}")
        if self.excluded:
            n_all = sum(n for n, _ in self.layers.values())
            z_all = sum(z for _, z in self.layers.values())
            lines.append(f"{'all tensors':<{width}}  {n_all:>12,}  {z_all:>12,}  "
                         f"{self.sparsity_all:>8.2%}")
        if self.target is not None:
            lines.append(f"{'target':<{width}}  {'':>12}  {'':>12}  {self.target:>8.2%}")
        return "\n".join(lines)
