"""``count_arrays``: size, non-zero entries and density of named arrays, any framework's."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.count.report import ArrayCostReport, TensorCost
from nnprune.ratios import ratio


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
                               nonzero_params=nnz, density=ratio(nnz, array.size)))
    return ArrayCostReport(tensors=tuple(rows))
