"""``count`` and ``count_arrays``: the costs of a model per image, layer by layer, without a
forward pass (each layer's rule and alive channels in ``rules.py``), and of named arrays
alone. The conventions are those of the package docstring (``nnprune.count``).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from nnprune import nn
from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_mapping
from nnprune.count.report import ArrayCostReport, CostReport, LayerCost, TensorCost
from nnprune.count.rules import Shape, alive_after, input_alive, live_weight, rule_for
from nnprune.foreign import reject_foreign
from nnprune.ratios import ratio


def _input_shape(input_shape: Any) -> Shape:
    dims = tuple(input_shape) if isinstance(input_shape, Iterable) else ()
    if len(dims) != 3 or any(
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
        density = ratio(nnz_weight, weight.size)
        # task 4.1: MAC counting (output sizes and dense MACs)
        macs = weight_uses * weight.size  # conv: OH·OW·F·C·kh·kw, linear: out·in, else 0
        # end task
    row = LayerCost(name=name, kind=type(layer).__name__, output_shape=out_shape,
                    params=sum(int(p.size) for p in params), nonzero_params=nonzero,
                    macs=macs, effective_macs=weight_uses * nnz_weight, density=density)
    return row, alive_after(layer, alive, out_shape)


def count(model: nn.Module, input_shape: tuple[int, int, int]) -> CostReport:
    """Parameters, non-zero parameters, MACs and effective MACs of ``model`` per image.

    (C, H, W) -> one ``LayerCost`` per layer, the shape propagated by each layer's arithmetic
    (no forward pass): macs = Σ conv OH·OW·F·C·kh·kw + Σ linear in·out (bias excluded),
    flops = 2·macs, effective_macs = Σ macs × density (Blalock et al. 2020).

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


def count_arrays(weights: Mapping[str, Any]) -> ArrayCostReport:
    """Size, non-zero entries and density of each array in ``weights`` (any framework's arrays).

    {name: array of any shape} -> one ``TensorCost`` per name, in the mapping's order;
    density = nnz / size. No MACs: arrays alone carry no geometry.

    >>> report = count_arrays({"fc.weight": np.array([[0.0, 1.5], [0.0, -2.0]])})
    >>> report.params, report.nonzero_params, report.compression_ratio
    (4, 2, 2.0)
    """
    check_mapping(weights, "weights", "of name -> array")
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
                               nonzero_params=nnz, density=ratio(nnz, array.size)))
    return ArrayCostReport(tensors=tuple(rows))
