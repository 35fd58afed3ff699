"""``Tensor``: an ndarray that remembers how it was computed, so gradients can flow back.

The whole reverse pass is ``Tensor.backward``: sort the graph topologically, then apply the
chain rule from the output back to the leaves, *accumulating* (``+=``) every gradient — a
value used twice (``x * x``, a diamond) receives the sum of both contributions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.checks import check_bool
from nnprune.foreign import reject_foreign
from nnprune.heap import keep_freed_memory

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as np.float32 or np.float64, or a TypeError saying what it got."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Float ndarray from ``data``: float32 by default; a float32/float64 ndarray keeps its dtype."""
    if isinstance(data, Tensor):
        data = data.data
    elif not isinstance(data, np.ndarray):
        reject_foreign(data, "data", "array")
    if dtype is not None:
        dtype = float_dtype(dtype)
    try:
        arr = np.asarray(data)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"data must be rectangular (one shape), got {err}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"data must be numeric (float, int or bool), got dtype {arr.dtype}")
    if dtype is None:  # as torch.tensor: a float64 array stays float64, lists become float32
        keep = isinstance(data, (np.ndarray, np.generic)) and arr.dtype in FLOAT_DTYPES
        dtype = arr.dtype if keep else np.dtype(np.float32)
    return arr.astype(dtype, copy=False)


class Tensor:
    """A float32 (default) or float64 array with reverse-mode autograd.

    Python numbers, lists and integer/bool arrays become float32; a float32 or float64
    ndarray keeps its dtype (as ``torch.tensor`` does); ``dtype=np.float64`` asks for float64.
    ``data`` is the ndarray; ``grad`` is None until ``backward`` reaches this tensor, then an
    ndarray of the same shape. Only tensors created with ``requires_grad=True`` (leaves) and
    results computed from them take part in the graph.

    >>> from nnprune import Tensor
    >>> x = Tensor([2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # make ndarray + Tensor call Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 _copy: bool = True) -> None:
        self.requires_grad = check_bool(requires_grad, "requires_grad")
        arr = _to_array(data, dtype)
        self.data: np.ndarray = arr.copy() if _copy and arr is data else arr
        self.grad: np.ndarray | None = None
        self._ctx = None  # the Function that produced this tensor (None for a leaf)

    # ------------------------------------------------------------------ array-like facts
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4)}{flag})"

    def numpy(self) -> np.ndarray:
        """The underlying array (no copy)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return float(self.data.reshape(()))

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data, _copy=False)

    # ------------------------------------------------------------------ the reverse pass
    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the upstream gradient; it may be omitted only for a one-element tensor
        (a loss), where it is 1.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"grad must be given for a non-scalar tensor of shape {self.shape}")
            grad = np.ones_like(self.data)
        try:
            grad = np.asarray(grad, dtype=self.dtype)
        except (TypeError, ValueError):
            raise TypeError(f"grad must be a numeric array of shape {self.shape}, "
                            f"got {grad!r}") from None
        if grad.shape != self.shape:
            raise ValueError(f"grad must have shape {self.shape}, got {grad.shape}")

        keep_freed_memory()  # the graph's arrays are freed together: keep them for the next step
        order = _topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(order):  # output first, leaves last
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:
                node._accumulate_grad(g)
                continue
            for parent, pg in zip(node._ctx.parents, node._ctx.backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                # a parent used twice gets the sum of both paths
                grads[key] = grads[key] + pg if key in grads else pg

    def _accumulate_grad(self, g: np.ndarray) -> None:
        """Add ``g`` into ``self.grad`` (a leaf's gradients are summed, never overwritten)."""
        g = np.asarray(g, dtype=self.dtype)
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        return Add.apply(self, _like(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return Add.apply(_like(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return Sub.apply(self, _like(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return Sub.apply(_like(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return Mul.apply(self, _like(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return Mul.apply(_like(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return Div.apply(self, _like(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return Div.apply(_like(other, self), self)

    def __neg__(self) -> Tensor:
        return Neg.apply(self)

    def __pow__(self, exponent: float) -> Tensor:
        return Pow.apply(self, exponent=exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return MatMul.apply(self, _like(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return MatMul.apply(_like(other, self), self)

    def __getitem__(self, index: Any) -> Tensor:
        return GetItem.apply(self, index=index)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Max.apply(self, axis=axis, keepdims=keepdims)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 1) -> Tensor:
        """Merge the axes from ``start_dim`` on: (N, C, H, W) -> (N, C*H*W) by default."""
        if (isinstance(start_dim, bool) or not isinstance(start_dim, (int, np.integer))
                or not 0 <= start_dim < max(self.ndim, 1)):
            raise ValueError(f"start_dim must be an int in [0, {max(self.ndim, 1)}) for a "
                             f"tensor of shape {self.shape}, got {start_dim!r}")
        return self.reshape(self.shape[:start_dim] + (-1,))

    def transpose(self, *axes: int) -> Tensor:
        return Transpose.apply(self, axes=axes or None)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    # ------------------------------------------------------------------ elementwise
    def exp(self) -> Tensor:
        return Exp.apply(self)

    def log(self) -> Tensor:
        return Log.apply(self)

    def relu(self) -> Tensor:
        return ReLU.apply(self)

    def tanh(self) -> Tensor:
        return Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return Sigmoid.apply(self)


def as_tensor(x: Any) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor (no grad) holding it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _like(x: Any, ref: Tensor) -> Tensor:
    """A constant operand gets the dtype of the tensor it meets (2.0 * float32 stays float32)."""
    return x if isinstance(x, Tensor) else Tensor(x, dtype=ref.dtype)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on, each after all of its inputs (iterative DFS)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            stack.extend((p, False) for p in node._ctx.parents
                         if p.requires_grad and id(p) not in seen)
    return order


# the ops need Tensor defined first
from nnprune.autograd.arithmetic import (Add, Div, Exp, Log, MatMul, Mul, Neg, Pow,  # noqa: E402
                                         ReLU, Sigmoid, Sub, Tanh)
from nnprune.autograd.shape import GetItem, Max, Mean, Reshape, Sum, Transpose  # noqa: E402
