"""Grad mode: whether ops record the graph. ``no_grad()`` switches it off for a block."""
from __future__ import annotations

import contextlib
from typing import Iterator

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
