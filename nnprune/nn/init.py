"""Weight initialisation from an explicit random generator.

fan_in of a weight (out, in, *k) is ``in * prod(k)``; fan_out is ``out * prod(k)``.

- Kaiming (He et al. 2015), for ReLU nets: w ~ N(0, 2 / fan_in).
- Glorot / Xavier (Glorot & Bengio 2010): w ~ U(-a, a), a = √(6 / (fan_in + fan_out)).
"""
from __future__ import annotations

import numpy as np


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
    """(fan_in, fan_out) of a weight of ``shape`` (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_normal(shape: tuple[int, ...], rng: np.random.Generator,
                   dtype=np.float32) -> np.ndarray:
    """He initialisation for ReLU layers: N(0, 2 / fan_in)."""
    fan_in, _ = fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator,
                   dtype=np.float32) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


INITIALIZERS = {"kaiming": kaiming_normal, "glorot": glorot_uniform}


def init_weight(shape: tuple[int, ...], init: str, rng: np.random.Generator,
                dtype=np.float32) -> np.ndarray:
    """Draw a weight with the initialiser named ``init`` ("kaiming" or "glorot")."""
    if init not in INITIALIZERS:
        raise ValueError(f"init must be one of {sorted(INITIALIZERS)}, got {init!r}")
    return INITIALIZERS[init](shape, rng, dtype)
