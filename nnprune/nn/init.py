"""Weight and bias initialisation from an explicit seed or random generator.

A layer draws its weight, then its bias, from one generator, in PyTorch's order: the same
seed gives the same bits. A layer's ``bias_init=None`` means ``"torch"`` after a ``"torch"``
weight and ``"zeros"`` after ``"kaiming"``/``"glorot"``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

import numpy as np

from nnprune.autograd.tensor import float_dtype
from nnprune.checks import check_choice

_skipping = threading.local()


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Layers built inside the block get uninitialised weights (``np.empty``), nothing drawn.

    For loading, where every value is overwritten from a file (PyTorch's ``skip_init``
    idea): building costs no random draws and touches no memory until the values arrive.
    """
    before = getattr(_skipping, "on", False)
    _skipping.on = True
    try:
        yield
    finally:
        _skipping.on = before


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """``rng`` itself if it is a Generator, else ``np.random.default_rng(rng)`` (None means 0).

    Passing one shared Generator to several layers gives each its own draws; an int seeds a
    fresh generator, so two layers built with the same int start identical.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise TypeError(f"rng must be a non-negative int seed or a np.random.Generator, got {rng!r}")
    return np.random.default_rng(int(rng))


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` (out, in, *kernel).

    >>> fans((16, 3, 5, 5))
    (75, 400)
    """
    if (not isinstance(shape, (tuple, list)) or len(shape) < 2
            or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
                   for n in shape)):
        raise ValueError(f"shape must be a tuple of at least 2 positive ints (out, in, *kernel), "
                         f"got {shape!r}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def kaiming_normal(shape: tuple[int, ...], rng: int | np.random.Generator,
                   dtype: Any = np.float32) -> np.ndarray:
    """He initialisation for ReLU layers (He et al. 2015, "Delving Deep into Rectifiers",
    eq. 10): w ~ N(0, 2 / fan_in), which preserves the variance of the activations, drawn as
    ``rng.standard_normal(shape) * √(2 / fan_in)``.  shape -> array of ``shape``."""
    fan_in, _ = fans(shape)
    dt, rng = float_dtype(dtype), as_generator(rng)
    return (rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / fan_in)).astype(dt)


def glorot_uniform(shape: tuple[int, ...], rng: int | np.random.Generator,
                   dtype: Any = np.float32) -> np.ndarray:
    """Glorot/Xavier uniform (Glorot & Bengio 2010, eq. 16): w ~ U(−a, a) with
    a = √(6 / (fan_in + fan_out)), variance 2 / (fan_in + fan_out), drawn as
    ``rng.uniform(-a, a, shape)``.  shape -> array of ``shape``."""
    fan_in, fan_out = fans(shape)
    dt, rng = float_dtype(dtype), as_generator(rng)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=tuple(shape)).astype(dt)


def torch_uniform(shape: tuple[int, ...], rng: int | np.random.Generator,
                  dtype: Any = np.float32) -> np.ndarray:
    """PyTorch's default weight (``torch.nn.Linear.reset_parameters``): kaiming-uniform with
    a = √5, i.e. w ~ U(−b, b) with b = √(6 / ((1 + a²)·fan_in)) = 1/√fan_in, drawn as
    ``rng.uniform(-b, b, shape)``.  shape -> array of ``shape``; variance 1 / (3·fan_in).

    >>> w = torch_uniform((300, 784), 0)
    >>> bool(abs(w).max() <= 1 / 784 ** 0.5)
    True
    """
    fan_in, _ = fans(shape)
    dt, rng = float_dtype(dtype), as_generator(rng)
    b = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-b, b, size=tuple(shape)).astype(dt)


INITIALIZERS = {"torch": torch_uniform, "kaiming": kaiming_normal, "glorot": glorot_uniform}
BIAS_INITS = ("torch", "zeros")


def init_weight(shape: tuple[int, ...], init: str, rng: int | np.random.Generator,
                dtype: Any = np.float32) -> np.ndarray:
    """Draw a weight with the initialiser named ``init`` ("torch", "kaiming" or "glorot")."""
    check_init(init)
    if getattr(_skipping, "on", False):
        return np.empty(tuple(shape), float_dtype(dtype))
    return INITIALIZERS[init](shape, rng, dtype)


def check_init(init: Any) -> str:
    """``init`` if it names a weight initialiser, else a ValueError listing them."""
    return check_choice(init, "init", sorted(INITIALIZERS))


def resolve_bias_init(init: str, bias_init: Any) -> str:
    """The bias scheme a layer uses: ``bias_init`` itself, or for None "torch" after a
    "torch" weight and "zeros" after any other (a ValueError for an unknown name)."""
    if bias_init is None:
        return "torch" if check_init(init) == "torch" else "zeros"
    return check_choice(bias_init, "bias_init", BIAS_INITS)


def init_bias(size: int, fan_in: int, bias_init: str, rng: int | np.random.Generator,
              dtype: Any = np.float32) -> np.ndarray:
    """A bias of ``size`` entries: U(−1/√fan_in, 1/√fan_in) for "torch" (``fan_in`` is the
    weight's), zeros for "zeros".  -> array (size,)."""
    dt = float_dtype(dtype)
    if check_choice(bias_init, "bias_init", BIAS_INITS) == "zeros":
        return np.zeros(size, dt)
    if getattr(_skipping, "on", False):
        return np.empty(int(size), dt)
    b = 1.0 / np.sqrt(fan_in)
    return as_generator(rng).uniform(-b, b, size=int(size)).astype(dt)
