"""Cost accounting: parameters, non-zero parameters, MACs and FLOPs of a (pruned) model.

Conventions, stated once:

- Counts are **per image**: ``input_shape`` is ``(C, H, W)`` without a batch axis; a batch of
  N images costs N times the MACs (the parameters do not change).
- ``macs`` are the multiply-accumulates of Conv2d and Linear layers only, **bias excluded**:
  Conv2d ``OH·OW·F·C·kh·kw`` (every kernel tap at every output position, taps on zero padding
  included, as PyTorch-side counters count), Linear ``in_features·out_features``.
  BatchNorm, pooling, activations and dropout count 0 MACs by this convention.
- ``flops = 2 · macs`` (one multiply and one add per MAC). FLOPs are never stored under the name
  of MACs or the other way round.
- ``density`` of a layer = nnz(weight) / |weight|, the bias excluded (for BatchNorm the weight
  is γ; a layer without a weight has density None); ``effective_macs = macs ×
  density`` (Blalock et al. 2020, "What is the State of Neural Network Pruning?"), which is
  the exact integer ``weight uses × nnz(weight)`` (see ``nnprune.count_layers``).
- ``nonzero_params`` counts entries ``!= 0`` in the parameters' data; a masked Parameter is
  zero where pruned, so pruned weights are not counted (nor is a bias still at its zero
  initialisation: the count is of the values, whatever made them zero).
- Dead units: a Conv2d/Linear weight that reads a channel which is 0 for every input (a
  filter or neuron pruned whole, with its bias; see ``nnprune.count_alive``) counts as zero
  in ``nonzero_params``, ``density`` and ``effective_macs``: it multiplies zeros. So a
  unit-masked model and its shrunk twin (``prune.shrink``) report the same effective figures.
- ``compression_ratio = params / nonzero_params``; ``speedup = macs / effective_macs``, the
  theoretical speed-up of a sparse kernel that skips every zero weight.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from nnprune import nn
from nnprune.autograd.tensor import Tensor
from nnprune.count_alive import alive_after, input_alive, live_weight
from nnprune.count_layers import Shape, rule_for
from nnprune.foreign import reject_foreign


def _ratio(num: int, den: int) -> float:
    """num / den, with x / 0 = inf for x > 0 and 0 / 0 = 1 (nothing there, nothing saved)."""
    if den == 0:
        return float("inf") if num > 0 else 1.0
    return num / den


def _json_float(x: float) -> float | None:
    """JSON has no infinity: an infinite ratio (everything pruned) is written as null."""
    return None if np.isinf(x) else float(x)


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
class CostReport:
    """Per-layer costs (``layers``, in forward order) and their totals, per image."""

    input_shape: Shape
    layers: tuple[LayerCost, ...]

    @property
    def params(self) -> int:
        return sum(row.params for row in self.layers)

    @property
    def nonzero_params(self) -> int:
        return sum(row.nonzero_params for row in self.layers)

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
    def compression_ratio(self) -> float:
        """params / nonzero_params (inf when every parameter is zero)."""
        return _ratio(self.params, self.nonzero_params)

    @property
    def speedup(self) -> float:
        """Theoretical speed-up macs / effective_macs (inf when every weight is pruned)."""
        return _ratio(self.macs, self.effective_macs)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats, lists and None: ready for ``json.dumps``."""
        layers = [{**asdict(row), "output_shape": list(row.output_shape)} for row in self.layers]
        totals = {"params": self.params, "nonzero_params": self.nonzero_params,
                  "macs": self.macs, "flops": self.flops,
                  "effective_macs": self.effective_macs, "effective_flops": self.effective_flops,
                  "compression_ratio": _json_float(self.compression_ratio),
                  "speedup": _json_float(self.speedup)}
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


def _input_shape(input_shape: Any) -> Shape:
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 3 or any(
            isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 1
            for d in dims):
        raise ValueError(f"input_shape must be 3 positive ints (C, H, W) for one image, "
                         f"without the batch axis; got {input_shape!r}")
    return tuple(int(d) for d in dims)


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers ``model`` applies, in order: the leaves of (nested) Sequentials.

    A module with children that is not a Sequential is refused: its forward order is its own.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    leaves = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Sequential, nn.Residual)):
            continue  # its children follow, depth first (a Residual: body, then shortcut)
        if next(module.children(), None) is not None:
            raise TypeError(f"module {name!r} ({type(module).__name__}) has child modules and "
                            "is not a Sequential, so count() cannot know their order")
        leaves.append((name, module))
    return leaves


def _layer_cost(name: str, layer: nn.Module, shape: Shape,
                alive: np.ndarray) -> tuple[LayerCost, np.ndarray]:
    """The layer's costs, its input's ``alive`` channels applied; the output's alive ones."""
    out_shape, weight_uses = rule_for(name, layer)(name, layer, shape)
    params = [p.data for p in layer.parameters()]
    nonzero = sum(int(np.count_nonzero(p)) for p in params)
    weight = getattr(layer, "weight", None)
    density, nnz_weight, macs = None, 0, 0
    if isinstance(weight, nn.Parameter):
        live = live_weight(layer, alive)  # weights reading dead channels multiply zeros
        nnz_weight = int(np.count_nonzero(weight.data if live is None else live))
        nonzero -= int(np.count_nonzero(weight.data)) - nnz_weight
        density = nnz_weight / weight.size
        # task 4.1: MAC counting (output sizes and dense MACs)
        macs = weight_uses * weight.size  # conv: OH·OW·F·C·kh·kw, linear: out·in, else 0
        # end task
    row = LayerCost(name=name, kind=type(layer).__name__, output_shape=out_shape,
                    params=sum(int(p.size) for p in params), nonzero_params=nonzero,
                    macs=macs, effective_macs=weight_uses * nnz_weight, density=density)
    return row, alive_after(layer, alive, out_shape)


def count(model: nn.Module, input_shape: tuple[int, int, int]) -> CostReport:
    """Parameters, non-zero parameters, MACs and effective MACs of ``model`` per image.

    (C, H, W) -> one ``LayerCost`` per layer, with the shape propagated layer by layer by each
    layer's own arithmetic (no forward pass). Conventions in the module docstring:
    macs = Σ conv OH·OW·F·C·kh·kw + Σ linear in·out (bias excluded), flops = 2·macs,
    effective_macs = Σ macs × density (Blalock et al. 2020).

    >>> from nnprune import models
    >>> report = count(models.lenet5(), (1, 28, 28))
    >>> report.params, report.macs, report.flops, report.layers[0].output_shape
    (431080, 2293000, 4586000, (20, 24, 24))
    """
    reject_foreign(model, "model", "model")
    shape = _input_shape(input_shape)
    leaf_layers(model)  # refuses containers whose order is unknown
    rows: list[LayerCost] = []
    _walk(model, "", shape, input_alive(shape), rows)
    return CostReport(input_shape=shape, layers=tuple(rows))


def _walk(module: nn.Module, name: str, shape: Shape, alive: np.ndarray,
          rows: list[LayerCost]) -> tuple[Shape, np.ndarray]:
    """Append the costs of ``module``'s layers to ``rows``; returns its output shape and
    alive channels. A Residual's body and shortcut both start from the block's input shape
    and must agree; a channel of their sum is alive when either side's is."""
    if isinstance(module, nn.Sequential):
        for child, sub in module._modules.items():
            shape, alive = _walk(sub, f"{name}.{child}" if name else child, shape, alive, rows)
        return shape, alive
    if isinstance(module, nn.Residual):
        out, out_alive = _walk(module.body, f"{name}.body", shape, alive, rows)
        skip, skip_alive = (shape, alive) if module.shortcut is None else _walk(
            module.shortcut, f"{name}.shortcut", shape, alive, rows)
        if out != skip:
            raise ValueError(f"Residual {name!r}: the body outputs {out} but the shortcut "
                             f"{skip} per image; they must match to be added")
        return out, out_alive | skip_alive
    row, alive = _layer_cost(name, module, shape, alive)
    rows.append(row)
    return row.output_shape, alive


@dataclass(frozen=True)
class TensorCost:
    """One array's size, non-zero entries and density nnz / size."""

    name: str
    shape: Shape
    params: int
    nonzero_params: int
    density: float


@dataclass(frozen=True)
class ArrayCostReport:
    """Per-array counts (``tensors``) of a name → array mapping and their totals; no MACs."""

    tensors: tuple[TensorCost, ...]

    @property
    def params(self) -> int:
        return sum(t.params for t in self.tensors)

    @property
    def nonzero_params(self) -> int:
        return sum(t.nonzero_params for t in self.tensors)

    @property
    def density(self) -> float:
        """nonzero_params / params over all arrays."""
        return self.nonzero_params / self.params

    @property
    def compression_ratio(self) -> float:
        """params / nonzero_params (inf when every entry is zero)."""
        return _ratio(self.params, self.nonzero_params)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, floats, lists and None: ready for ``json.dumps``."""
        tensors = [{**asdict(t), "shape": list(t.shape)} for t in self.tensors]
        return {"tensors": tensors, "totals": {
            "params": self.params, "nonzero_params": self.nonzero_params,
            "density": self.density, "compression_ratio": _json_float(self.compression_ratio)}}

    def __str__(self) -> str:
        header = ("name", "shape", "params", "nonzero", "density")
        rows = [(t.name, _shape(t.shape), f"{t.params:,}", f"{t.nonzero_params:,}",
                 f"{t.density:.3f}") for t in self.tensors]
        total = ("total", "", f"{self.params:,}", f"{self.nonzero_params:,}",
                 f"{self.density:.3f}")
        lines = _table(header, rows, total, numeric_from=2)
        lines.append(f"compression ratio {self.compression_ratio:.2f}×")
        return "\n".join(lines)


def count_arrays(weights: Mapping[str, Any]) -> ArrayCostReport:
    """Size, non-zero entries and density of each array in ``weights`` (any framework's arrays).

    {name: array of any shape} -> one ``TensorCost`` per name, in the mapping's order;
    density = nnz / size. No MACs: arrays alone carry no geometry.

    >>> report = count_arrays({"fc.weight": np.array([[0.0, 1.5], [0.0, -2.0]])})
    >>> report.params, report.nonzero_params, report.compression_ratio
    (4, 2, 2.0)
    """
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of name -> array, got {type(weights).__name__}")
    if not weights:
        raise ValueError("weights must hold at least one array, got an empty mapping")
    rows = []
    for name, value in weights.items():
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"weights[{name!r}] must be a numeric array, got dtype {array.dtype}")
        if array.size == 0:
            raise ValueError(f"weights[{name!r}] is empty (shape {array.shape}); "
                             "its density is undefined")
        nnz = int(np.count_nonzero(array))
        rows.append(TensorCost(name=str(name), shape=tuple(array.shape), params=int(array.size),
                               nonzero_params=nnz, density=nnz / array.size))
    return ArrayCostReport(tensors=tuple(rows))
