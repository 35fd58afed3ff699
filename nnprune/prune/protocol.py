"""What pruning needs from a model: the one contract between ``nnprune.prune`` and a model.

The pruning functions never look inside a model's layers: they reach it through
``named_parameters()`` and each parameter's mask methods, so any model that keeps this
contract can be pruned, whatever computes its forward pass. ``isinstance(model,
PrunableModel)`` checks the names are there (``typing.runtime_checkable``), not signatures.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PrunableParameter(Protocol):
    """One parameter as pruning sees it: ``data`` (written in place by layer-wise OBS),
    ``grad`` (dL/d data, or None) and ``mask`` (None or a 0/1 array of ``data``'s shape)."""

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


@contextmanager
def eval_mode(model: LayeredModel) -> Iterator[None]:
    """The model in eval mode inside the block; every module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
