"""The unit of autograd: a ``Function`` is one op with a ``forward`` and a ``backward``.

``forward`` works on plain NumPy arrays and keeps what ``backward`` needs on ``self`` (the
cs231n "cache"). ``backward(dout)`` receives the gradient of the loss with respect to the
op's output and returns one gradient per tensor input, in the same order (``None`` for an
input that needs none). ``Function.apply`` glues the two to ``Tensor``: it unwraps the
inputs, runs ``forward``, and, when a gradient is wanted, records the op on the output so
that ``Tensor.backward`` can later walk the graph.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.autograd import tensor as _tensor
from nnprune.autograd.grad_mode import is_grad_enabled


class Function:
    """Base class of every differentiable op.

    Subclasses implement::

        def forward(self, *arrays, **options) -> np.ndarray
        def backward(self, dout) -> tuple[np.ndarray | None, ...]   # one per array input

    Positional arguments of ``apply`` are the differentiable inputs (Tensors, or anything
    ``np.asarray`` accepts); keyword arguments are options (stride, axis, ...) passed to
    ``forward`` unchanged.
    """

    parents: tuple[_tensor.Tensor, ...] = ()

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> _tensor.Tensor:
        """Run the op on ``inputs`` and return a Tensor that remembers how it was made."""
        tensors = tuple(_tensor.as_tensor(x) for x in inputs)
        fn = cls()
        out = fn.forward(*(t.data for t in tensors), **options)
        needs_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        result = _tensor.Tensor(out, requires_grad=needs_grad, _copy=False)
        if needs_grad:
            fn.parents = tensors
            result._ctx = fn
        return result


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    A (3, 1) input broadcast to (2, 3, 4) was used 2 * 4 times per entry, so its gradient is
    the sum over the leading axis and over the axis it was stretched along.
    """
    if grad.shape == shape:
        return grad
    tail = grad.shape[grad.ndim - len(shape):] if len(shape) <= grad.ndim else None
    if tail is None or any(n not in (1, g) for n, g in zip(shape, tail)):
        raise ValueError(f"shape {shape} does not broadcast to the gradient's shape {grad.shape}")
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)
