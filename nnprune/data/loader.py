"""Mini-batches of (x, y) with seeded shuffling (PyTorch's DataLoader on NumPy arrays), and
per-channel standardisation."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from nnprune.checks import check_bool, check_int

_CHUNK = 4096  # samples summed at a time: a CIFAR-sized array never gets a float64 copy


def _channel_axes(x: np.ndarray, name: str) -> tuple[int, ...]:
    """The axes reduced for per-channel statistics: all but axis 1 of (N, C, ...)."""
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (N, C, ...) with a channel axis 1, "
                         f"got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): there is nothing to average")
    return (0,) + tuple(range(2, x.ndim))


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of x, in float64.

    Shape: (N, C, *spatial) -> (C,), (C,)

    mean_c = (1/M) Σ x[n, c, ...],  std_c = sqrt((1/M) Σ (x[n, c, ...] − mean_c)²)
    with M = N × prod(spatial) (the population std, ``np.std`` with ddof=0), computed in two
    passes over chunks of samples. A constant channel gets exactly its value and std 0.

    >>> x = np.arange(8.0).reshape(2, 2, 2)        # N=2, C=2, W=2
    >>> mean, std = channel_stats(x)
    >>> mean.tolist(), std.tolist()
    ([2.5, 4.5], [2.0615528128088303, 2.0615528128088303])
    """
    x = np.asarray(x)
    axes = _channel_axes(x, "x")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}): there is nothing to average")
    count = x.size // x.shape[1]
    spatial = count // len(x)  # H*W, or 1 for (N, C)
    total = np.zeros(x.shape[1])
    low, high = np.full(x.shape[1], np.inf), np.full(x.shape[1], -np.inf)
    for s in range(0, len(x), _CHUNK):
        chunk = x[s:s + _CHUNK]
        total += chunk.sum(axis=axes, dtype=np.float64)
        low = np.minimum(low, chunk.min(axis=axes))
        high = np.maximum(high, chunk.max(axis=axes))
    # a constant channel gets its value and std 0 exactly: total / count can be off by an
    # ulp, and dividing by that rounding residue would blow the channel up to ±1
    constant = low == high
    mean = np.where(constant, low, total / count)
    # second pass on centred values: no cancellation, unlike E[x²] − E[x]²
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    squares = np.zeros(x.shape[1])
    for s in range(0, len(x), _CHUNK):
        # centred: (chunk, C, H*W); the einsum sums squares per channel without another copy
        centred = (x[s:s + _CHUNK] - mean.reshape(bshape)).reshape(-1, x.shape[1], spatial)
        squares += np.einsum("ncm,ncm->c", centred, centred)
    return mean, np.where(constant, 0.0, np.sqrt(squares / count))


def _as_channel_vector(value, channels: int, name: str) -> np.ndarray:
    """A scalar or a (C,) array as a float64 (C,) vector."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(channels, float(v))
    if v.shape != (channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({channels},) for {channels} "
                         f"channels, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v.tolist()}")
    return v


def standardize(x: np.ndarray, mean=None, std=None) -> np.ndarray:
    """(x − mean) / std per channel (axis 1); the statistics of x itself unless given.

    Shape: (N, C, *spatial) -> (N, C, *spatial); mean, std: scalars or (C,)

    out[n, c, ...] = (x[n, c, ...] − mean_c) / std_c. A channel with std_c = 0 (constant) is
    only centred, so no division by zero appears. Pass the *training* split's statistics
    (``channel_stats(x_train)``) to standardise a test split the same way. A floating x keeps
    its dtype; an integer x becomes float64. x itself is never modified.

    >>> standardize(np.array([[1.0, 3.0], [3.0, 5.0]])).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """
    x = np.asarray(x)
    _channel_axes(x, "x")
    if mean is None or std is None:
        own_mean, own_std = channel_stats(x)
        mean = own_mean if mean is None else mean
        std = own_std if std is None else std
    channels = x.shape[1]
    mean = _as_channel_vector(mean, channels, "mean")
    std = _as_channel_vector(std, channels, "std")
    if np.any(std < 0):
        raise ValueError(f"std must be >= 0 in every channel, got {std.tolist()}")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    out = x.astype(dtype, copy=True)
    out -= mean.reshape(bshape).astype(dtype)
    out /= np.where(std == 0, 1.0, std).reshape(bshape).astype(dtype)
    return out


class DataLoader:
    """Iterate over (x_batch, y_batch) mini-batches of NumPy arrays.

    Shapes: x (N, ...), y (N, ...) integer labels -> batches (B, ...), (B, ...) with
    B = batch_size (the last batch may be smaller unless ``drop_last``).

    ``len(loader)`` is the number of batches per epoch: ceil(N / B), or floor(N / B) with
    ``drop_last``. Every epoch visits each sample exactly once (the dropped tail excepted).
    With ``shuffle=True`` a ``seed`` is required; epoch e uses the order
    ``np.random.default_rng([seed, e]).permutation(N)``, so the same seed gives the same
    batches in every run. The epoch counter starts at 0 and advances each time iteration
    starts; ``set_epoch(e)`` sets it explicitly (to resume a run).
    Batches are copies, so changing one never changes the dataset.

    >>> loader = DataLoader(np.arange(5.0), np.arange(5), batch_size=2)
    >>> len(loader), [yb.tolist() for _, yb in loader]
    (3, [[0, 1], [2, 3], [4]])
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int = 64, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False) -> None:
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(f"x and y must be arrays with a sample axis 0, got shapes "
                             f"{x.shape} and {y.shape}")
        if len(x) != len(y):
            raise ValueError(f"x and y must hold the same number of samples, got {len(x)} "
                             f"(x shape {x.shape}) and {len(y)} (y shape {y.shape})")
        if len(x) == 0:
            raise ValueError("the dataset is empty: x and y hold 0 samples")
        if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        self.batch_size = check_int(batch_size, "batch_size", 1)
        check_bool(shuffle, "shuffle")
        check_bool(drop_last, "drop_last")
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        if shuffle and seed is None:
            raise ValueError("shuffle=True needs an explicit seed (an int >= 0), so that the "
                             "batches are reproducible; pass seed=0 for example")
        if drop_last and len(x) < self.batch_size:
            raise ValueError(f"drop_last=True with batch_size={self.batch_size} larger than the "
                             f"{len(x)} samples would yield no batch at all")
        self.x, self.y = x, y
        self.shuffle, self.seed, self.drop_last = bool(shuffle), seed, bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (an int >= 0)."""
        self.epoch = check_int(epoch, "epoch", 0)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch`` in visiting order: (N,) int64."""
        epoch = check_int(epoch, "epoch", 0)
        n = len(self.x)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def __repr__(self) -> str:
        return (f"DataLoader(N={len(self.x)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
