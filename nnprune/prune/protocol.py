"""What pruning needs from a model: the one contract between ``nnprune.prune`` and a model.

The pruning functions (``prune_model``, ``attach_masks``, ``Pruner``, ``sparsity_report``,
...) never look inside a model's layers: they reach it through ``named_parameters()`` and
the mask methods of each parameter. Any model that keeps this contract can be pruned,
whatever framework computes its forward pass:

- ``PrunableModel``: ``named_parameters()`` yields ``(name, parameter)``; a parameter named
  ``*.weight`` with ndim ≥ 2 is prunable (conv (F, C, kh, kw), linear (out, in));
- ``PrunableParameter``: ``data`` (the array, written in place by layer-wise OBS), ``grad``
  (dL/d data after a backward pass, or None), ``mask`` (None or a 0/1 array of ``data``'s
  shape), ``set_mask(mask)`` (attach, and zero the pruned entries now) and ``remove_mask()``
  (drop the mask, keep the zeros);
- ``LayeredModel``: what the structured criteria and surgery need besides: ``modules()``
  (train/eval modes are saved and restored around a calibration pass) and iteration over
  the layers, each with ``config()``, the dict surgery rebuilds a layer from.

``nnprune.nn`` models keep all three; ``isinstance(model, PrunableModel)`` checks the
methods and attributes are there (``typing.runtime_checkable``: names, not signatures).
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PrunableParameter(Protocol):
    """One parameter as pruning sees it: its array, gradient and mask."""

    data: np.ndarray
    grad: np.ndarray | None
    mask: np.ndarray | None

    def set_mask(self, mask: np.ndarray) -> None:
        """Attach ``mask`` (1 = keep, 0 = pruned) and zero the pruned entries of ``data``."""

    def remove_mask(self) -> None:
        """Drop the mask and keep the zeros it left in ``data``."""


@runtime_checkable
class PrunableModel(Protocol):
    """A model as ``prune_model`` sees it: named parameters that keep the mask contract."""

    def named_parameters(self) -> Iterator[tuple[str, PrunableParameter]]:
        """Every parameter with its dotted name ("0.weight", "3.bias", ...), in model order."""


@runtime_checkable
class LayeredModel(PrunableModel, Protocol):
    """A model the structured criteria and surgery can walk: its layers in order, each with
    a ``config()`` dict, and ``modules()`` whose train/eval modes a calibration pass saves."""

    def modules(self) -> Iterator[Any]:
        """The model and every module inside it."""

    def __iter__(self) -> Iterator[Any]:
        """The layers in order, each with ``config() -> dict``."""
