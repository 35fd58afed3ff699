"""The reports ``count`` and ``count_arrays`` return: rows per layer (or array) and totals."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

from nnprune.ratios import json_ratio, ratio

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerCost:
    """One layer's costs per image; ``density`` is None for a layer without a weight."""

    name: str
    kind: str
    output_shape: Shape
    params: int
    nonzero_params: int
    macs: int
    effective_macs: int
    density: float | None


@dataclass(frozen=True)
class TensorCost:
    """One array's size, non-zero entries and density nnz / size."""

    name: str
    shape: Shape
    params: int
    nonzero_params: int
    density: float


class _ParamTotals:
    """Totals over the rows of a report (``_rows``): params, nonzero_params and their ratio."""

    def _rows(self) -> Iterable[LayerCost | TensorCost]:
        raise NotImplementedError

    @property
    def params(self) -> int:
        return sum(row.params for row in self._rows())

    @property
    def nonzero_params(self) -> int:
        return sum(row.nonzero_params for row in self._rows())

    @property
    def compression_ratio(self) -> float:
        """params / nonzero_params (inf when every parameter is zero)."""
        return ratio(self.params, self.nonzero_params)


@dataclass(frozen=True)
class CostReport(_ParamTotals):
    """Per-layer costs (``layers``, in forward order) and their totals, per image."""

    input_shape: Shape
    layers: tuple[LayerCost, ...]

    def _rows(self) -> tuple[LayerCost, ...]:
        return self.layers

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def flops(self) -> int:
        """2 · macs: a multiply-accumulate is one multiplication and one addition."""
        return 2 * self.macs

    @property
    def effective_macs(self) -> int:
        return sum(row.effective_macs for row in self.layers)

    @property
    def effective_flops(self) -> int:
        return 2 * self.effective_macs

    @property
    def speedup(self) -> float:
        """Theoretical speed-up macs / effective_macs (inf when every weight is pruned)."""
        return ratio(self.macs, self.effective_macs)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats, lists and None: ready for ``json.dumps``."""
        layers = [{**asdict(row), "output_shape": list(row.output_shape)} for row in self.layers]
        totals = {"params": self.params, "nonzero_params": self.nonzero_params,
                  "macs": self.macs, "flops": self.flops,
                  "effective_macs": self.effective_macs, "effective_flops": self.effective_flops,
                  "compression_ratio": json_ratio(self.compression_ratio),
                  "speedup": json_ratio(self.speedup)}
        return {"input_shape": list(self.input_shape), "per": "image",
                "layers": layers, "totals": totals}

    def __str__(self) -> str:
        header = ("name", "kind", "output shape", "params", "nonzero", "MACs", "eff. MACs",
                  "density")
        rows = [(row.name or "(model)", row.kind, _shape(row.output_shape), f"{row.params:,}",
                 f"{row.nonzero_params:,}", f"{row.macs:,}", f"{row.effective_macs:,}",
                 "-" if row.density is None else f"{row.density:.3f}") for row in self.layers]
        total = ("total", "", "", f"{self.params:,}", f"{self.nonzero_params:,}",
                 f"{self.macs:,}", f"{self.effective_macs:,}", "")
        lines = _table(header, rows, total, numeric_from=3)
        lines += [f"per image of shape {_shape(self.input_shape)}; MACs of conv and linear "
                  "layers, bias excluded; FLOPs = 2·MACs",
                  f"FLOPs {self.flops:,}   effective FLOPs {self.effective_flops:,}",
                  f"compression ratio {self.compression_ratio:.2f}×   "
                  f"theoretical speed-up {self.speedup:.2f}×"]
        return "\n".join(lines)


@dataclass(frozen=True)
class ArrayCostReport(_ParamTotals):
    """Per-array counts (``tensors``) of a name → array mapping and their totals; no MACs."""

    tensors: tuple[TensorCost, ...]

    def _rows(self) -> tuple[TensorCost, ...]:
        return self.tensors

    @property
    def density(self) -> float:
        """nonzero_params / params over all arrays."""
        return ratio(self.nonzero_params, self.params)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats, lists and None: ready for ``json.dumps``."""
        tensors = [{**asdict(t), "shape": list(t.shape)} for t in self.tensors]
        return {"tensors": tensors, "totals": {
            "params": self.params, "nonzero_params": self.nonzero_params,
            "density": self.density, "compression_ratio": json_ratio(self.compression_ratio)}}

    def __str__(self) -> str:
        header = ("name", "shape", "params", "nonzero", "density")
        rows = [(t.name, _shape(t.shape), f"{t.params:,}", f"{t.nonzero_params:,}",
                 f"{t.density:.3f}") for t in self.tensors]
        total = ("total", "", f"{self.params:,}", f"{self.nonzero_params:,}",
                 f"{self.density:.3f}")
        lines = _table(header, rows, total, numeric_from=2)
        lines.append(f"compression ratio {self.compression_ratio:.2f}×")
        return "\n".join(lines)


def _shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], total: tuple[str, ...],
           numeric_from: int) -> list[str]:
    """Aligned columns: text left-aligned, columns from ``numeric_from`` on right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i >= numeric_from else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(tuple("-" * w for w in widths)))
    return [line(header), rule, *map(line, rows), rule, line(total)]
