"""Datasets as NCHW arrays with a seeded train/test split, file readers, and a seeded DataLoader.

Every dataset function (``DATASETS``, or the user's own arrays: ``from_arrays``,
``load_arrays``) returns a ``Dataset``.
"""
from __future__ import annotations

from typing import Callable

from nnprune.data.arrays import (from_arrays, load_arrays, load_split_indices, random_split,
                                 split_pool)
from nnprune.data.cifar import cifar10, read_cifar_bin
from nnprune.data.dataset import Dataset, stratified_split
from nnprune.data.digits import digits
from nnprune.data.download import ChecksumError, DatasetNotFoundError, download
from nnprune.data.idx import read_idx, write_idx
from nnprune.data.loader import DataLoader, channel_stats, standardize
from nnprune.data.mnist import fashion_mnist, mnist

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": digits, "mnist": mnist, "fashion_mnist": fashion_mnist, "cifar10": cifar10}

__all__ = [
    "Dataset", "DATASETS", "load_dataset", "digits", "mnist", "fashion_mnist", "cifar10",
    "read_idx", "write_idx", "read_cifar_bin", "download", "DatasetNotFoundError",
    "ChecksumError", "DataLoader", "standardize", "channel_stats", "stratified_split",
    "from_arrays", "load_arrays", "load_split_indices", "random_split", "split_pool",
]


def load_dataset(name: str, **kwargs) -> Dataset:
    """The dataset called ``name`` (one of ``DATASETS``), built with ``kwargs``.

    >>> load_dataset("digits", seed=1).input_shape
    (1, 8, 8)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](**kwargs)
