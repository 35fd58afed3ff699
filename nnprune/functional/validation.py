"""Argument checks shared by the kernels: float arrays, per-channel vectors, (h, w) pairs,
upstream gradients."""
from __future__ import annotations

from typing import Any

import numpy as np

Pair = tuple[int, int]


def pair(name: str, value: Any, minimum: int) -> Pair:
    """``value`` as an (h, w) pair of ints ≥ ``minimum``; an int means the same for both.

    >>> pair("stride", 2, 1), pair("padding", (0, 1), 0)
    ((2, 2), (0, 1))
    """
    p = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                          or v < minimum for v in p):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(p[0]), int(p[1])


def check_float(name: str, a: Any) -> None:
    """Raise TypeError unless ``a`` is a float32 or float64 ndarray."""
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{name} must be a float32 or float64 ndarray, got {got}")


def check_vector(name: str, a: Any, length: int, of: str) -> None:
    """Raise unless ``a`` is None or a float vector of ``length`` entries, one per ``of``
    (a bias per filter, a running mean per channel, ...)."""
    if a is None:
        return
    check_float(name, a)
    if a.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), one entry per {of}, "
                         f"got {a.shape}")


def check_dout(dout: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``dout`` as an array of the forward output's ``shape``, else a ValueError."""
    dout = np.asarray(dout)
    if dout.shape != tuple(shape):
        raise ValueError(f"dout must have the output's shape {tuple(shape)}, got {dout.shape}")
    return dout
