"""The result every dataset function returns, and the seeded stratified split they share.

``Dataset`` unpacks like a 4-tuple: ``x_train, y_train, x_test, y_test = digits()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from nnprune.checks import check_bool, check_int, check_number
from nnprune.data.loader import channel_stats


@dataclass(frozen=True, repr=False, eq=False)
class Dataset:
    """A train/test split: images (N, C, H, W) float, labels (N,) int64 in [0, num_classes).

    ``classes`` names each label; ``mean``, ``std`` are the (C,) training-split statistics
    that were subtracted and divided (None when not standardised); ``description`` says where
    the data came from and how it was split (quote it in results).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: tuple[str, ...] = ()
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    description: str = field(default="")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, (C, H, W)."""
        return tuple(self.x_train.shape[1:])

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.x_train, self.y_train, self.x_test, self.y_test))

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"dtype={self.x_train.dtype}, standardized={self.mean is not None})")


def check_fraction(test_fraction, name: str = "test_fraction") -> float:
    """test_fraction as a float strictly between 0 and 1."""
    return check_number(test_fraction, name, strict=True, maximum=1.0, high_open=True)


def split_count(n: int, test_fraction: float) -> int:
    """n_test = round(test_fraction × n), half up; a ValueError unless both parts keep one."""
    n_test = int(np.floor(test_fraction * n + 0.5))
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_fraction={test_fraction} of {n} samples leaves {n_test} test and "
                         f"{n - n_test} training samples; both parts need at least one")
    return n_test


def check_float_dtype(dtype) -> np.dtype:
    """dtype as a NumPy floating dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype such as np.float32, got {dtype!r}")
    return dt


def stratified_split(y: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test indices: every class keeps its proportion in both parts.

    Shape: (N,) integer labels -> (train indices, test indices), each sorted ascending.

    The test part has exactly n_test = round(test_fraction × N) samples. Class c with n_c
    samples gets floor(test_fraction × n_c) of them, and the n_test − Σ floor(...) remaining
    places go to the classes with the largest fractional parts (ties to the smaller label) —
    the largest-remainder rule — so each class is within one sample of its exact share.
    Which samples of class c go to test: the first ones of
    ``rng.permutation(indices of c)``, with ``rng = np.random.default_rng(seed)`` drawn
    class by class in increasing label order.

    >>> train, test = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5, seed=0)
    >>> len(train), len(test), np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1])[test]).tolist()
    (4, 4, [2, 2])
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D integer label array, got shape {y.shape} "
                         f"dtype {y.dtype}")
    test_fraction, seed = check_fraction(test_fraction), check_int(seed, "seed", 0)
    n, n_test = len(y), split_count(len(y), test_fraction)
    labels, counts = np.unique(y, return_counts=True)
    exact = test_fraction * counts
    per_class = np.floor(exact).astype(np.int64)
    # largest remainder; a stable sort on −remainder breaks ties by label order
    extra = np.argsort(-(exact - per_class), kind="stable")[: n_test - per_class.sum()]
    per_class[extra] += 1
    rng = np.random.default_rng(seed)
    is_test = np.zeros(n, dtype=bool)
    for label, k in zip(labels, per_class):
        members = rng.permutation(np.flatnonzero(y == label))
        is_test[members[:k]] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def build_dataset(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  y_test: np.ndarray, *, scale: float, classes: tuple[str, ...],
                  standardize: bool, dtype, description: str) -> Dataset:
    """The finished Dataset from raw pixels: x / scale as ``dtype``, then optionally
    standardised per channel with the *training* split's mean and std (applied to both).

    Shapes: x (N, C, H, W) raw pixels (e.g. uint8), y (N,) integers.
    """
    dtype = check_float_dtype(dtype)
    check_bool(standardize, "standardize")
    # convert straight to the target dtype (float32 for CIFAR is 600 MB; float64 would double it)
    xtr = np.asarray(x_train).astype(dtype)
    xte = np.asarray(x_test).astype(dtype)
    xtr /= dtype.type(scale)
    xte /= dtype.type(scale)
    mean = std = None
    if standardize:
        mean, std = channel_stats(xtr)
        bshape = (1, -1) + (1,) * (xtr.ndim - 2)
        safe_std = np.where(std == 0, 1.0, std).reshape(bshape).astype(dtype)
        for x in (xtr, xte):  # in place: the arrays are ours
            x -= mean.reshape(bshape).astype(dtype)
            x /= safe_std
    return Dataset(name=name, x_train=xtr, y_train=np.asarray(y_train, dtype=np.int64),
                   x_test=xte, y_test=np.asarray(y_test, dtype=np.int64),
                   num_classes=len(classes), classes=tuple(classes), mean=mean, std=std,
                   description=description)
