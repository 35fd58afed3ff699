"""``Parameter``: a trainable Tensor that can carry a pruning mask.

The mask protocol every part of nnprune relies on:

- ``p.mask`` is ``None`` (dense) or an array of ``p``'s shape with 1 = keep, 0 = pruned;
- while a mask is attached, ``p.data`` is exactly zero where the mask is zero (the forward
  pass therefore uses the masked weight ``w ⊙ m``), and gradients reaching ``p`` are
  multiplied by the mask, so dL/dw is zero for pruned entries;
- optimizers call ``p.apply_mask()`` after every update, so no momentum, weight decay or
  Adam state can make a pruned weight non-zero again;
- ``p.remove_mask()`` ("make permanent") drops the mask and keeps the zeros.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` and an optional pruning ``mask``."""

    def __init__(self, data: Any, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)
        self.mask: np.ndarray | None = None

    def __repr__(self) -> str:
        pruned = "" if self.mask is None else f", sparsity={1 - self.mask.mean():.3f}"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{pruned})"

    def set_mask(self, mask: Any) -> None:
        """Attach ``mask`` (1 = keep, 0 = pruned) and zero the pruned entries now.

        The mask replaces any previous one as given: to prune further without reviving,
        pass a mask that is already the product with the old one (the functions in
        ``nnprune.prune`` do).
        """
        mask = np.asarray(mask)
        if mask.shape != self.shape:
            raise ValueError(f"mask must have the parameter's shape {self.shape}, got {mask.shape}")
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must contain only 0 and 1")
        self.mask = mask.astype(self.dtype)
        self.apply_mask()

    def apply_mask(self) -> None:
        """Zero the pruned entries of the data (and of the gradient, if any)."""
        if self.mask is not None:
            self.data *= self.mask
            if self.grad is not None:
                self.grad *= self.mask

    def remove_mask(self) -> None:
        """Make pruning permanent: keep the zeros, forget the mask (they may now regrow)."""
        self.apply_mask()
        self.mask = None

    def _accumulate_grad(self, g: np.ndarray) -> None:
        # a pruned weight is not part of the model: its gradient is zero
        if self.mask is not None:
            g = g * self.mask
        super()._accumulate_grad(g)
