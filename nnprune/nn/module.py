"""``Module``, the base of every layer and model, and ``Parameter``, the trainable Tensor it
holds, with PyTorch's names.

A module holds Parameters, buffers (ndarrays that are state but not trained, such as
BatchNorm's running statistics) and child modules, registered by plain attribute assignment.
Names are dotted paths: ``"0.weight"``, ``"features.3.running_mean"``.

The mask protocol every part of nnprune relies on:

- ``p.mask`` is ``None`` (dense) or an array of ``p``'s shape with 1 = keep, 0 = pruned;
- while a mask is attached, ``p.data`` is exactly zero where the mask is zero (the forward
  pass therefore uses the masked weight ``w ⊙ m``), and gradients reaching ``p`` are
  multiplied by the mask, so dL/dw is zero for pruned entries;
- optimizers call ``p.apply_mask()`` after every update, so no momentum, weight decay or
  Adam state can make a pruned weight non-zero again;
- ``p.remove_mask()`` ("make permanent") drops the mask and keeps the zeros.

``check_model`` is the door every model enters by (training, saving, export), and
``kept_modes`` puts every submodule's training flag back after a pass.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_bool, check_mapping
from nnprune.foreign import reject_foreign


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


class Module:
    """Base class: subclasses set attributes in ``__init__`` and implement ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` as state that is saved and loaded but not trained."""
        if not isinstance(value, np.ndarray):
            raise TypeError(f"buffer {name!r} must be an ndarray, got {type(value).__name__}")
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every Parameter of this module and its descendants, with dotted names."""
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, m in self.named_modules():
            for name in m._buffers:
                yield (f"{prefix}.{name}" if prefix else name), getattr(m, name)

    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout on); returns self."""
        check_bool(mode, "mode")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (running statistics, dropout off); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name (masks are not included)."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: b.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters and buffers of the same names.

        With ``strict`` every name must match both ways; shapes must always match. Every
        entry is checked before any is copied, so a bad state leaves the model unchanged.
        Values are cast to the model's dtypes; attached pruning masks are re-applied.
        """
        check_mapping(state, "state", "of name -> array")
        check_bool(strict, "strict")
        own = dict(self.named_parameters())
        targets = {name: p.data for name, p in own.items()} | dict(self.named_buffers())
        if strict:
            missing, unexpected = set(targets) - set(state), set(state) - set(targets)
            if missing or unexpected:
                raise ValueError(f"state does not match the model: missing {sorted(missing)}, "
                                 f"unexpected {sorted(unexpected, key=str)}")
        checked = {}
        for name, value in state.items():
            if name not in targets:
                continue
            value = np.asarray(value)
            if value.dtype.kind not in "fiub":
                raise TypeError(f"state[{name!r}] must be numeric, got dtype {value.dtype}")
            if value.shape != targets[name].shape:
                raise ValueError(f"state[{name!r}] has shape {value.shape}, "
                                 f"the model expects {targets[name].shape}")
            checked[name] = value
        for name, value in checked.items():
            targets[name][...] = value
        for p in own.values():
            p.apply_mask()

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def config(self) -> dict[str, Any]:
        """A JSON-able description from which ``nn.from_config`` rebuilds this module."""
        raise NotImplementedError(
            f"{type(self).__name__} has no config(); only built-in layers can be saved by spec")


def check_model(model: Any) -> Module:
    """``model`` if it is an nnprune Module, else a TypeError (a PyTorch module is named)."""
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    return model


@contextlib.contextmanager
def kept_modes(model: Module) -> Iterator[None]:
    """Run the block, then put every submodule's training flag back as it was."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, training in saved:
            object.__setattr__(m, "training", training)
