"""``Residual``: y = body(x) + shortcut(x), the building block of ResNets (He et al. 2016).

The shortcut is the identity (``shortcut=None``) or a projection where the body changes the
width or the map size ("option B"); the ReLU after the sum is the enclosing Sequential's next
layer. Backward: ∂L/∂x = body'ᵀ ∂L/∂y + shortcut'ᵀ ∂L/∂y — autograd sums the two paths.

>>> from nnprune import nn
>>> block = Residual(nn.Sequential(nn.Linear(4, 4, rng=0), nn.ReLU(), nn.Linear(4, 4, rng=1)))
>>> [name for name, _ in block.named_parameters()]
['body.0.weight', 'body.0.bias', 'body.2.weight', 'body.2.bias']
"""
from __future__ import annotations

from typing import Any

from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.nn.module import Module


class Residual(Module):
    """y = body(x) + shortcut(x); shortcut None is the identity.  (N, ...) -> (N, ...)."""

    def __init__(self, body: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        for name, part in (("body", body), ("shortcut", shortcut)):
            if part is not None and not isinstance(part, Module):
                raise TypeError(f"Residual {name} must be a Module"
                                f"{' or None' if name == 'shortcut' else ''}, got "
                                f"{type(part).__name__}")
        self.body, self.shortcut = body, shortcut

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if out.shape != skip.shape:
            raise ValueError(f"Residual: the body outputs shape {out.shape} but the shortcut "
                             f"{'(identity) ' if self.shortcut is None else ''}outputs "
                             f"{skip.shape}; they must match to be added")
        return out + skip

    def config(self) -> dict[str, Any]:
        return {"type": "Residual", "body": self.body.config(),
                "shortcut": None if self.shortcut is None else self.shortcut.config()}
