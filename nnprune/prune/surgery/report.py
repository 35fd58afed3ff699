"""``SurgeryReport``: what removing filters and neurons bought, counted by ``nnprune.count``.

After surgery the dense MACs are real: no sparse kernel is needed to skip anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from nnprune.count import count
from nnprune.ratios import ratio


@dataclass(frozen=True)
class SurgeryReport:
    """Costs before and after surgery, per image of ``input_shape`` (C, H, W).

    - ``params``, ``macs``: ``(before, after)`` totals, as ``nnprune.count`` counts them;
    - ``widths[name] = (before, after)``: output channels / features of each Conv2d, Linear;
    - ``keep[name]``: the sorted indices each cut layer kept (in its old numbering).
    """

    input_shape: tuple[int, ...]
    params: tuple[int, int]
    macs: tuple[int, int]
    widths: dict[str, tuple[int, int]]
    keep: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def compare(cls, before: Any, after: Any, input_shape: tuple[int, ...],
                keep: Mapping[str, np.ndarray] | None = None) -> SurgeryReport:
        """Count both models on ``input_shape`` (C, H, W) and pair their widths by layer name
        (flat or nested models: Residual blocks' layers by their dotted names)."""
        old, new = count(before, input_shape), count(after, input_shape)
        w_old, w_new = ({row.name: row.output_shape[0] for row in report.layers
                         if row.kind in ("Conv2d", "Linear")} for report in (old, new))
        if list(w_old) != list(w_new):
            raise ValueError(f"before and after must have their Conv2d / Linear layers at the "
                             f"same places, got {list(w_old)} and {list(w_new)}")
        return cls(input_shape=old.input_shape, params=(old.params, new.params),
                   macs=(old.macs, new.macs),
                   widths={name: (w_old[name], w_new[name]) for name in w_old},
                   keep={name: np.asarray(k) for name, k in (keep or {}).items()})

    @property
    def macs_ratio(self) -> float:
        """Dense MACs after / before: the real cost left, 1.0 when nothing was removed."""
        return ratio(self.macs[1], self.macs[0])

    @property
    def params_ratio(self) -> float:
        """Parameters after / before."""
        return ratio(self.params[1], self.params[0])

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats and lists: ready for ``json.dumps``."""
        return {"input_shape": list(self.input_shape), "params": list(self.params),
                "macs": list(self.macs), "widths": {k: list(v) for k, v in self.widths.items()},
                "keep": {k: v.tolist() for k, v in self.keep.items()},
                "params_ratio": self.params_ratio, "macs_ratio": self.macs_ratio}

    def __str__(self) -> str:
        widths = ", ".join(f"{name}: {a}->{b}" if a != b else f"{name}: {a}"
                           for name, (a, b) in self.widths.items())
        return (f"params {self.params[0]:,} -> {self.params[1]:,} ({self.params_ratio:.1%}); "
                f"dense MACs {self.macs[0]:,} -> {self.macs[1]:,} ({self.macs_ratio:.1%}) "
                f"per image of shape {'×'.join(map(str, self.input_shape))}\n"
                f"widths (layer: out channels / features) {widths}")
