"""A ``Dataset`` from the user's own arrays, an ``.npz`` file, or given split indices, and
``split_pool(name)``: the unsplit pool of a bundled dataset, for a split of one's own.

Images are taken as (N, C, H, W), (N, H, W) (one channel) or (N, D) features (as
(N, 1, 1, D)); labels as integers in [0, K).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnprune.checks import check_bool, check_int, check_number
from nnprune.data.dataset import (Dataset, build_dataset, check_fraction, split_count,
                                  stratified_split)


def random_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test indices without stratification: n_test = round(test_fraction · n)
    samples drawn by ``np.random.default_rng(seed).permutation(n)``; both sorted ascending.

    >>> train, test = random_split(10, 0.3, seed=0)
    >>> len(train), len(test)
    (7, 3)
    """
    test_fraction, seed = check_fraction(test_fraction), check_int(seed, "seed", 0)
    n_test = split_count(n, test_fraction)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _images(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
    if x.ndim == 2:
        return x[:, None, None, :]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x
    raise ValueError(f"{name} must be (N, C, H, W), (N, H, W) or (N, D), got shape {x.shape}")


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a 1-D array of integer class labels, got "
                        f"{y.dtype} of shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{name} holds {len(y)} labels for {n} samples")
    if n and y.min() < 0:
        raise ValueError(f"{name}: labels must be >= 0, got {y.min()}")
    return y.astype(np.int64)


def _indices(index: Any, n: int, name: str) -> np.ndarray:
    index = np.asarray(index)
    if index.ndim != 1 or index.dtype.kind not in "iu" or len(index) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of integer sample indices, "
                         f"got {index.dtype} of shape {index.shape}")
    if index.min() < 0 or index.max() >= n:
        raise ValueError(f"{name} must index the {n} samples (0..{n - 1}), got indices in "
                         f"[{index.min()}, {index.max()}]")
    if len(np.unique(index)) != len(index):
        raise ValueError(f"{name} repeats a sample index")
    return index.astype(np.int64)


def from_arrays(x: Any, y: Any, x_test: Any = None, y_test: Any = None, *,
                test_fraction: float = 0.2, seed: int = 0, stratify: bool = True,
                train_index: Any = None, test_index: Any = None, standardize: bool = True,
                scale: float = 1.0, name: str = "arrays", classes: Any = None,
                dtype: Any = np.float32) -> Dataset:
    """A ``Dataset`` from arrays: a given train/test split, or one pool split here.

    Shapes: x (N, C, H, W) | (N, H, W) | (N, D), y (N,) ints -> Dataset with x (N, C, H, W).

    With ``x_test``/``y_test`` the split is taken as given. Otherwise ``train_index`` and
    ``test_index`` (disjoint, both given) pick the split, or it is drawn from ``seed``:
    ``stratified_split`` (every class keeps its share) with ``stratify``, ``random_split``
    without. ``num_classes`` is 1 + the largest label of either split. Pixels are divided by
    ``scale``, then, with ``standardize``, by the training split's per-channel statistics.

    >>> data = from_arrays(np.arange(40.0).reshape(10, 4), np.arange(10) % 2, seed=1)
    >>> data.input_shape, len(data.y_train), len(data.y_test)
    ((1, 1, 4), 8, 2)
    """
    check_bool(stratify, "stratify")
    check_number(scale, "scale", strict=True)
    x = _images(x, "x")
    y = _labels(y, len(x), "y")
    if (x_test is None) != (y_test is None):
        raise ValueError("give both x_test and y_test, or neither")
    if (train_index is None) != (test_index is None):
        raise ValueError("give both train_index and test_index, or neither")
    if x_test is not None:
        if train_index is not None:
            raise ValueError("split indices pick a split of one pool: give them with x and y "
                             "only, not with x_test and y_test")
        x_train, y_train = x, y
        x_test = _images(x_test, "x_test")
        y_test = _labels(y_test, len(x_test), "y_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"x_test samples have shape {x_test.shape[1:]}, the training "
                             f"samples {x_train.shape[1:]}")
        how = f"given split {len(x_train)}/{len(x_test)}"
    else:
        train, test, how = _pool_split(y, test_fraction, seed, stratify, train_index,
                                       test_index)
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    k = int(max(y_train.max(), y_test.max())) + 1
    classes = tuple(str(c) for c in range(k)) if classes is None else tuple(classes)
    if len(classes) < k:
        raise ValueError(f"classes names {len(classes)} classes but the labels reach {k - 1}")
    return build_dataset(name, x_train, y_train, x_test, y_test, scale=float(scale),
                         classes=classes, standardize=standardize, dtype=dtype,
                         description=f"{name} ({len(x_train) + len(x_test)} samples), {how}")


def _pool_split(y: np.ndarray, test_fraction: float, seed: int, stratify: bool,
                train_index: Any, test_index: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(train, test, how): the split of one pool of labels ``y`` at the indices given, or
    drawn from ``seed`` (stratified or not), and the words that say how."""
    if train_index is not None:
        train = _indices(train_index, len(y), "train_index")
        test = _indices(test_index, len(y), "test_index")
        if np.intersect1d(train, test).size:
            raise ValueError("train_index and test_index share samples, e.g. "
                             f"{np.intersect1d(train, test)[0]}")
        return train, test, f"given indices {len(train)}/{len(test)}"
    if stratify:
        train, test = stratified_split(y, test_fraction, seed)
        kind = "stratified"
    else:
        train, test = random_split(len(y), test_fraction, seed)
        kind = "random"
    return train, test, (f"{kind} split {len(train)}/{len(test)} with "
                         f"test_fraction={test_fraction}, seed={seed}")


def _read_numbers(path: str, what: str) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, real numbers only, checked before it is read
    (``nnprune.archive``; at most 1 GiB, or 64 times the file's size, declared)."""
    from nnprune.archive import read_npz

    def numbers(key: str, dtype: np.dtype, shape: tuple) -> str | None:
        return None if dtype.kind in "biuf" else f"{key} holds {dtype}, not real numbers"
    try:
        return read_npz(path, numbers, max(2**30, 64 * os.path.getsize(path)))
    except (OSError, ValueError) as err:
        reason = str(err).removeprefix(f"{path}: ")
        raise ValueError(f"{path}: cannot be read as an .npz of {what}: {reason}") from None


def load_arrays(path: str | os.PathLike, **options: Any) -> Dataset:
    """``from_arrays`` on the arrays of an ``.npz`` file: ``x`` and ``y`` (one pool, split by
    ``options``) or ``x_train, y_train, x_test, y_test`` (a given split). Loaded without
    pickle; the dataset is named after the file unless ``name`` is given."""
    path = os.fspath(path)
    arrays = _read_numbers(path, "arrays")
    options.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return from_arrays(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                           arrays["y_test"], **options)
    if {"x", "y"} <= arrays.keys():
        return from_arrays(arrays["x"], arrays["y"], **options)
    raise ValueError(f"{path}: expected arrays x and y, or x_train, y_train, x_test and "
                     f"y_test; found {sorted(arrays)}")


def split_pool(name: str, root: Any = None, *, download: bool = False
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """(x, y, scale) of a bundled dataset's unsplit pool, in a fixed order: the 1,797 digits
    (scale 16) or the 10,000 MNIST / Fashion-MNIST t10k images (scale 255)."""
    if name == "digits":
        from nnprune.data.digits import digits_arrays
        images, y = digits_arrays()
        return images[:, None], y, 16.0
    if name in ("mnist", "fashion_mnist"):
        from nnprune.data.mnist import t10k_arrays
        x, y = t10k_arrays(name, root, download=download)
        return x, y, 255.0
    raise ValueError(f"split indices apply to the digits and to the MNIST/Fashion-MNIST t10k "
                     f"files, got {name!r}")


def load_split_indices(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, test_index) from an ``.npz`` holding ``train`` and ``test`` (or
    ``train_index`` and ``test_index``) integer arrays; loaded without pickle."""
    path = os.fspath(path)
    arrays = _read_numbers(path, "split indices")
    for train, test in (("train", "test"), ("train_index", "test_index")):
        if {train, test} <= arrays.keys():
            return arrays[train], arrays[test]
    raise ValueError(f"{path}: expected index arrays 'train' and 'test' (or 'train_index' and "
                     f"'test_index'); found {sorted(arrays)}")
