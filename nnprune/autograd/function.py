"""The unit of autograd: a ``Function`` is one op with a ``forward`` and a ``backward``;
grad mode says whether ops record the graph (``no_grad()`` switches it off for a block)."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from nnprune.autograd import tensor as _tensor

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run a block without recording the graph (evaluation, weight updates).

    Blocks nest: leaving an inner block restores the state it found (still off inside an
    outer block), and an exception inside a block restores it too.

    >>> from nnprune import Tensor, no_grad
    >>> w = Tensor([1.0, 2.0], requires_grad=True)
    >>> with no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Function:
    """Base class of every differentiable op.

    ``forward`` works on plain arrays and keeps what ``backward`` needs on ``self`` (the
    cs231n "cache"); ``backward(dout)`` returns one gradient per positional input, in order
    (``None`` for one that needs none). Keyword arguments are options (stride, axis, ...)
    passed to ``forward`` unchanged. An op object runs once: ``Op.apply(x, ...)`` is
    ``Op()(x, ...)``.
    """

    parents: tuple[_tensor.Tensor, ...] = ()

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> _tensor.Tensor:
        return cls()(*inputs, **options)

    def __call__(self, *inputs: Any, **options: Any) -> _tensor.Tensor:
        """Run the op on ``inputs`` and return a Tensor that remembers how it was made."""
        tensors = tuple(_tensor.as_tensor(x) for x in inputs)
        out = self.forward(*(t.data for t in tensors), **options)
        needs_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        result = _tensor.Tensor(out, requires_grad=needs_grad, _copy=False)
        if needs_grad:
            self.parents = tensors
            result._ctx = self
        return result


class Kernel(Function):
    """The op of a kernel pair in the cs231n convention: ``out, cache = forward_kernel(*arrays,
    **options)`` and ``grads = backward_kernel(dout, cache)`` (one array, or a tuple of one
    per input).  ``Kernel(log_softmax_forward, log_softmax_backward)(x, axis=1)``."""

    def __init__(self, forward_kernel: Callable[..., tuple[np.ndarray, Any]],
                 backward_kernel: Callable[..., Any]) -> None:
        self.forward_kernel, self.backward_kernel = forward_kernel, backward_kernel

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        out, self.cache = self.forward_kernel(*arrays, **options)
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grads = self.backward_kernel(dout, self.cache)
        return grads if isinstance(grads, tuple) else (grads,)


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
