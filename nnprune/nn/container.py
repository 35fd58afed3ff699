"""The containers ``Sequential`` and ``Residual``, and the spec round trip ``config()`` /
``from_config``."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np

from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.foreign import reject_foreign
from nnprune.nn import layers
from nnprune.nn.module import Module
from nnprune.nn.spec import CONTAINERS, KNOWN


class Sequential(Module):
    """Layers applied in order; child names are "0", "1", ... as in PyTorch.

    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            reject_foreign(m, f"argument {i}", "model")
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is {type(m).__name__}")
            setattr(self, str(i), m)

    def forward(self, x: Tensor) -> Tensor:
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, i: int | slice) -> Module:
        items = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*items[i])
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Sequential indices must be ints or slices, got {type(i).__name__}")
        if not -len(items) <= i < len(items):
            raise IndexError(f"index {i} is out of range for a Sequential of {len(items)} layers")
        return items[i]

    def config(self) -> dict[str, Any]:
        return {"type": "Sequential", "layers": [m.config() for m in self]}


class Residual(Module):
    """y = body(x) + shortcut(x), the building block of ResNets (He et al. 2016).  (N, ...) ->
    (N, ...). The shortcut is the identity (None) or a projection where the body changes the
    width or the map size ("option B"); the ReLU after the sum is the enclosing Sequential's
    next layer. Backward: ∂L/∂x = body'ᵀ ∂L/∂y + shortcut'ᵀ ∂L/∂y, the two paths summed.

    >>> from nnprune import nn
    >>> block = Residual(nn.Sequential(nn.Linear(4, 4, rng=0), nn.ReLU(), nn.Linear(4, 4, rng=1)))
    >>> [name for name, _ in block.named_parameters()]
    ['body.0.weight', 'body.0.bias', 'body.2.weight', 'body.2.bias']
    """

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


BUILDERS = {name: getattr(layers, name) for name in KNOWN if name not in CONTAINERS}


def from_config(config: Mapping[str, Any]) -> Module:
    """Rebuild a module (fresh weights) from a ``config()`` dict, e.g. one read from JSON."""
    if not isinstance(config, Mapping) or "type" not in config:
        raise ValueError(f"config must be a mapping with a 'type' key, got {config!r}")
    kind = config["type"]
    args = {k: v for k, v in config.items() if k != "type"}
    if kind == "Sequential":
        return Sequential(*(from_config(c) for c in args.get("layers", [])))
    if kind == "Residual":
        if not isinstance(args.get("body"), Mapping):
            raise ValueError(f"a Residual config needs a 'body' config, got {config!r}")
        shortcut = args.get("shortcut")
        return Residual(from_config(args["body"]),
                        None if shortcut is None else from_config(shortcut))
    if kind not in BUILDERS:
        raise ValueError(f"unknown layer type {kind!r}; known: {sorted(KNOWN)}")
    try:
        return BUILDERS[kind](**args)
    except TypeError as err:
        raise ValueError(f"bad arguments for {kind}: {err}") from None
