"""scikit-learn's bundled 8×8 handwritten digits: 1,797 real images, no network needed.

The images ship inside scikit-learn (``sklearn.datasets.load_digits``): 8×8 pixels with
values 0..16, ten classes of about 180 images each. They are the project's default data:
small enough for tests and CI, real enough for accuracy to mean something.
"""
from __future__ import annotations

import numpy as np

from nnprune.data.dataset import Dataset, build_dataset, stratified_split

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def digits(test_fraction: float = 0.2, seed: int = 0, dtype=np.float32,
           standardize: bool = True) -> Dataset:
    """The digits as a seeded, stratified train/test split.

    Shapes: x_train (N_train, 1, 8, 8), x_test (N_test, 1, 8, 8) of ``dtype``; y int64;
    N_test = round(test_fraction × 1797), each class within one sample of its share
    (see ``stratified_split``).

    Pixels are scaled x / 16 to [0, 1]; with ``standardize`` they then become
    (x − mean) / std with the mean and std of the *training* split (one channel), applied to
    both splits, so nothing about the test images leaks into preprocessing. The same seed
    gives the same bits.

    >>> data = digits(seed=0)
    >>> data.x_train.shape, data.x_test.shape, data.y_train.dtype
    ((1438, 1, 8, 8), (359, 1, 8, 8), dtype('int64'))
    >>> x_train, y_train, x_test, y_test = data
    """
    from sklearn.datasets import load_digits  # imported here: only this dataset needs it

    raw = load_digits()
    x = raw.images[:, None, :, :]  # (1797, 1, 8, 8), float64 values 0..16
    y = raw.target.astype(np.int64)
    train, test = stratified_split(y, test_fraction, seed)
    description = (f"scikit-learn digits (1,797 images 8x8), stratified split "
                   f"{len(train)}/{len(test)} with test_fraction={test_fraction}, seed={seed}")
    return build_dataset("digits", x[train], y[train], x[test], y[test], scale=16.0,
                         classes=DIGIT_CLASSES, standardize=standardize, dtype=dtype,
                         description=description)
