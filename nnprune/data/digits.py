"""The 8×8 handwritten digits: 1,797 real images (pixels 0..16, ten classes of about 180)
shipped inside nnprune, no network needed.

Provenance and licence. The images are the test set (``optdigits.tes``) of the UCI Machine
Learning Repository's "Optical Recognition of Handwritten Digits" (E. Alpaydin and C. Kaynak,
1998; https://archive.ics.uci.edu/dataset/80), distributed by the UCI repository under the
Creative Commons Attribution 4.0 licence (CC BY 4.0). nnprune ships them exactly as
scikit-learn bundles them (``sklearn.datasets.load_digits``, scikit-learn 1.9.1, same order):
``digits.npz`` beside this file holds ``images`` (1797, 8, 8) uint8 and ``target`` (1797,)
uint8, 45 KB compressed. ``DIGITS_SHA256`` is the SHA-256 of the two arrays' bytes (images,
then target); every load checks it, so a damaged file is an error, never other digits.
"""
from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np

from nnprune.data.dataset import Dataset, build_dataset, stratified_split

DIGIT_CLASSES = tuple(str(d) for d in range(10))
DIGITS_FILE = "digits.npz"
DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw digits as shipped: images (1797, 8, 8) uint8 in 0..16, labels (1797,) int64;
    a ValueError naming the file when they do not match ``DIGITS_SHA256``."""
    source = resources.files(__package__).joinpath(DIGITS_FILE)
    with source.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        images, target = npz["images"], npz["target"]
    digest = hashlib.sha256(images.tobytes() + target.tobytes()).hexdigest()
    if (images.shape, images.dtype, target.shape) != ((1797, 8, 8), np.uint8, (1797,)) \
            or digest != DIGITS_SHA256:
        raise ValueError(f"{source}: the bundled digits are damaged (sha256 {digest}, expected "
                         f"{DIGITS_SHA256}); reinstall nnprune")
    return images, target.astype(np.int64)


def digits(test_fraction: float = 0.2, seed: int = 0, dtype=np.float32,
           standardize: bool = True) -> Dataset:
    """The digits as a seeded, stratified train/test split.

    Shapes: x_train (N_train, 1, 8, 8), x_test (N_test, 1, 8, 8) of ``dtype``; y int64;
    N_test = round(test_fraction × 1797), each class within one sample of its share
    (``stratified_split``). Pixels are scaled x / 16; with ``standardize`` they then become
    (x − mean) / std with the *training* split's mean and std, so nothing about the test
    images leaks into preprocessing.

    >>> data = digits(seed=0)
    >>> data.x_train.shape, data.x_test.shape, data.y_train.dtype
    ((1438, 1, 8, 8), (359, 1, 8, 8), dtype('int64'))
    >>> x_train, y_train, x_test, y_test = data
    """
    images, y = digits_arrays()
    x = images[:, None, :, :]  # (1797, 1, 8, 8), uint8 values 0..16
    train, test = stratified_split(y, test_fraction, seed)
    description = (f"UCI optdigits (1,797 images 8x8, bundled), stratified split "
                   f"{len(train)}/{len(test)} with test_fraction={test_fraction}, seed={seed}")
    return build_dataset("digits", x[train], y[train], x[test], y[test], scale=16.0,
                         classes=DIGIT_CLASSES, standardize=standardize, dtype=dtype,
                         description=description)
