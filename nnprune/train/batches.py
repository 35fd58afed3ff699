"""What ``fit``, ``evaluate``, ``predict`` and ``gradients`` share: checking the data,
cutting a pass into batches and the forward pass with its shape checks."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from nnprune.autograd import Tensor
from nnprune.data import DataLoader
from nnprune.foreign import reject_foreign
from nnprune.nn import Module


def check_pair(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as (x, y) arrays, with a clear error for every way it can be wrong."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (x, y) pair of arrays or a DataLoader, "
                        f"got {type(data).__name__}")
    reject_foreign(data[0], f"{name}[0]", "array")
    reject_foreign(data[1], f"{name}[1]", "array")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 1 or y.ndim != 1:
        raise ValueError(f"{name}: x must be (N, ...) and y (N,), got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{name}: x has {len(x)} samples but y has {len(y)} labels")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: it has no samples")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: x must be numeric, got dtype {x.dtype}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels y must be integers (class indices), got dtype {y.dtype}")
    return x, y


def check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def batches(data: Any, name: str, batch_size: int,
            rng: np.random.Generator | None) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int]:
    """(an iterator over (xb, yb) batches, the number of batches) for one pass over ``data``.

    A pair is cut into ``batch_size`` slices (the last may be smaller), in an order drawn
    from ``rng`` (in order when ``rng`` is None); a DataLoader batches itself.
    """
    if isinstance(data, DataLoader):
        if len(data) == 0:
            raise ValueError(f"{name} is an empty DataLoader: it yields no batch")
        return iter(data), len(data)
    x, y = check_pair(data, name)
    order = np.arange(len(x)) if rng is None else rng.permutation(len(x))
    starts = range(0, len(x), batch_size)
    return ((x[order[s:s + batch_size]], y[order[s:s + batch_size]]) for s in starts), len(starts)


def model_dtype(model: Module) -> np.dtype:
    for p in model.parameters():
        return p.dtype
    return np.dtype(np.float32)


def forward(model: Module, xb: np.ndarray, yb: np.ndarray, dtype: np.dtype) -> Tensor:
    """Logits (N, K) of a batch, after checking the output shape and the labels against K."""
    yb = np.asarray(yb)
    if yb.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {yb.dtype}")
    logits = model(Tensor(np.asarray(xb), dtype=dtype))
    if logits.ndim != 2 or logits.shape[0] != len(yb):
        raise ValueError(f"the model must output logits of shape (N, K) = ({len(yb)}, K), "
                         f"got shape {logits.shape}")
    k = logits.shape[1]
    if yb.size and (yb.min() < 0 or yb.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k}) for a model with {k} "
                         f"outputs, got labels in [{yb.min()}, {yb.max()}]")
    return logits
