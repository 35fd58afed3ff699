"""MNIST and Fashion-MNIST from their four official IDX files (``.gz`` or not)::

    train-images-idx3-ubyte.gz   60,000 images 28×28 uint8      t10k-images-idx3-ubyte.gz
    train-labels-idx1-ubyte.gz   60,000 labels 0..9 uint8       t10k-labels-idx1-ubyte.gz

``sha256_gz`` is the SHA-256 of the ``.gz`` file as the mirrors serve it (the values
torchvision publishes); ``sha256`` that of the uncompressed IDX bytes, which survives
re-compression (published for MNIST only: None for Fashion-MNIST).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnprune.checks import check_bool, check_choice, check_int
from nnprune.data.dataset import Dataset, build_dataset, check_fraction, stratified_split
from nnprune.data.download import DatasetNotFoundError, data_root, fetch
from nnprune.data.idx import parse_idx, read_decompressed


@dataclass(frozen=True)
class IdxFile:
    """One official file: its name without ``.gz`` and its SHA-256 digests (None: unknown)."""

    name: str
    sha256_gz: str | None
    sha256: str | None


MNIST_FILES = {f.name: f for f in (
    IdxFile("train-images-idx3-ubyte",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    IdxFile("train-labels-idx1-ubyte",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    IdxFile("t10k-images-idx3-ubyte",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    IdxFile("t10k-labels-idx1-ubyte",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"))}
FASHION_MNIST_FILES = {f.name: f for f in (
    IdxFile("train-images-idx3-ubyte",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", None),
    IdxFile("train-labels-idx1-ubyte",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", None),
    IdxFile("t10k-images-idx3-ubyte",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", None),
    IdxFile("t10k-labels-idx1-ubyte",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", None))}
MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
FASHION_MNIST_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
SPLITS = ("official", "t10k")
T10K = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@dataclass(frozen=True)
class _Source:
    """Everything that differs between MNIST and Fashion-MNIST."""

    name: str
    title: str
    files: dict[str, IdxFile]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]


_MNIST = _Source("mnist", "MNIST", MNIST_FILES, MNIST_MIRRORS, tuple(str(d) for d in range(10)))
_FASHION = _Source("fashion_mnist", "Fashion-MNIST", FASHION_MNIST_FILES, FASHION_MNIST_MIRRORS,
                   FASHION_MNIST_CLASSES)


def _find(root: Path, name: str) -> Path | None:
    """The file ``name`` or ``name.gz`` in root (the uncompressed one first), or None."""
    return next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), None)


def _missing_files(source: _Source, root: Path, missing: list[str]) -> str:
    files = "\n".join(f"  {name}.gz   (or uncompressed: {name})" for name in missing)
    return f"{source.title} files are missing from {root}:\n{files}"


def _missing_message(source: _Source, root: Path, missing: list[str], call: str) -> str:
    mirrors = "\n".join(f"  {url}" for url in source.mirrors)
    return (f"{_missing_files(source, root, missing)}\n"
            f"Put them in that directory, or call {call}(root={str(root)!r}, download=True) "
            f"to fetch and verify them (network needed). Official downloads:\n{mirrors}")


def _locate(source: _Source, root: Path, names: list[str], download: bool) -> dict[str, Path]:
    """The path of every file in ``names``, downloading the missing ones if allowed."""
    found = {name: _find(root, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing and download:
        root.mkdir(parents=True, exist_ok=True)
        for name in missing:
            urls = [f"{mirror}{name}.gz" for mirror in source.mirrors]
            try:
                found[name] = fetch(urls, root / f"{name}.gz", source.files[name].sha256_gz)
            except DatasetNotFoundError as error:
                raise DatasetNotFoundError(
                    f"{error}\n" + _missing_message(source, root, missing, source.name),
                    missing=f"{error}") from error
    elif missing:
        message = _missing_message(source, root, missing, source.name)
        if all(name.startswith("train") for name in missing):
            message += (f"\nThe t10k files are there: {source.name}(root, split='t10k') splits "
                        f"their 10,000 images into train and test.")
        raise DatasetNotFoundError(message, missing=_missing_files(source, root, missing))
    return found


def _read(path: Path, spec: IdxFile, verify: bool) -> np.ndarray:
    """The array in ``path``; with ``verify``, its content checked against ``spec``."""
    data, name = read_decompressed(path)
    if verify:
        if spec.sha256 is not None:
            expected, got, what = spec.sha256, hashlib.sha256(data).hexdigest(), "content"
        elif path.name.endswith(".gz") and spec.sha256_gz is not None:
            expected, got = spec.sha256_gz, hashlib.sha256(path.read_bytes()).hexdigest()
            what = "archive"
        else:
            raise ValueError(f"{name}: no published checksum to verify this file against; "
                             f"use the .gz file or pass verify=False")
        if got != expected:
            raise ValueError(f"{name}: {what} sha256 {got} differs from the official {expected}; "
                             f"the file is not the official {spec.name}")
    return parse_idx(data, name)


def _read_pair(source: _Source, paths: dict[str, Path], prefix: str,
               verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 1, 28, 28) uint8, labels (N,) uint8) of the ``prefix`` (train/t10k) files."""
    image_name, label_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    images = _read(paths[image_name], source.files[image_name], verify)
    labels = _read(paths[label_name], source.files[label_name], verify)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[image_name]}: expected uint8 images of shape (N, 28, 28), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{paths[label_name]}: expected uint8 labels of shape (N,), got "
                         f"{labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{paths[image_name]} holds {len(images)} images but "
                         f"{paths[label_name]} holds {len(labels)} labels")
    if labels.size and labels.max() >= len(source.classes):
        raise ValueError(f"{paths[label_name]}: label {labels.max()} is outside 0.."
                         f"{len(source.classes) - 1}")
    return images[:, None], labels


def _load(source: _Source, root, split: str, test_fraction, seed, download: bool,
          standardize: bool, dtype, verify: bool) -> Dataset:
    check_choice(split, "split", SPLITS)
    check_bool(download, "download")
    check_bool(verify, "verify")
    seed = check_int(seed, "seed", 0)
    root = data_root(source.name, root)
    if split == "official":
        if test_fraction is not None:
            raise ValueError("test_fraction applies to split='t10k' only; the official split "
                             "is fixed (60,000 train, 10,000 test)")
        paths = _locate(source, root, list(source.files), download)
        x_train, y_train = _read_pair(source, paths, "train", verify)
        x_test, y_test = _read_pair(source, paths, "t10k", verify)
        description = (f"{source.title} official split: {len(x_train)} train, {len(x_test)} "
                       f"test images from {root}")
    else:
        test_fraction = check_fraction(0.2 if test_fraction is None else test_fraction)
        x, y = _read_pair(source, _locate(source, root, T10K, download), "t10k", verify)
        train, test = stratified_split(y, test_fraction, seed)
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
        description = (f"{source.title} t10k files only ({len(y)} official test images from "
                       f"{root}), stratified split {len(train)}/{len(test)} with "
                       f"test_fraction={test_fraction}, seed={seed}")
    return build_dataset(source.name, x_train, y_train, x_test, y_test, scale=255.0,
                         classes=source.classes, standardize=standardize, dtype=dtype,
                         description=description)


def mnist(root: str | os.PathLike | None = None, *, split: str = "official",
          test_fraction: float | None = None, seed: int = 0, download: bool = False,
          standardize: bool = True, dtype=np.float32, verify: bool = False) -> Dataset:
    """MNIST handwritten digits from the official IDX files in ``root``.

    Shapes: x (N, 1, 28, 28) of ``dtype``, y (N,) int64 in 0..9.

    ``split="official"``: the 60,000 training and 10,000 test images as published;
    ``split="t10k"``: only the two t10k files, their 10,000 images split with
    ``stratified_split(y, test_fraction, seed)`` (``test_fraction`` 0.2: 8,000 / 2,000).

    Pixels are scaled x / 255, then standardised with the training split's statistics.
    Missing files raise ``DatasetNotFoundError`` naming the directory, the files and where
    to get them, unless ``download=True`` fetches and checks them. ``verify=True`` also
    checks files already on disk (their uncompressed content).
    """
    return _load(_MNIST, root, split, test_fraction, seed, download, standardize, dtype, verify)


def fashion_mnist(root: str | os.PathLike | None = None, *, split: str = "official",
                  test_fraction: float | None = None, seed: int = 0, download: bool = False,
                  standardize: bool = True, dtype=np.float32, verify: bool = False) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): ten kinds of clothing, same files, shapes
    and options as ``mnist``. With ``verify=True`` a file on disk must be the official
    ``.gz`` (no digest of the uncompressed content is published)."""
    return _load(_FASHION, root, split, test_fraction, seed, download, standardize, dtype, verify)


def t10k_arrays(name: str = "mnist", root: str | os.PathLike | None = None, *,
                download: bool = False, verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 images and labels of the t10k files of ``name`` ("mnist" or
    "fashion_mnist"), unsplit and unscaled, in file order: (N, 1, 28, 28) uint8, (N,) uint8.
    For a split of one's own (``data.from_arrays(x, y, train_index=..., test_index=...)``)."""
    sources = {"mnist": _MNIST, "fashion_mnist": _FASHION}
    source = sources[check_choice(name, "name", tuple(sorted(sources)))]
    paths = _locate(source, data_root(source.name, root), T10K, download)
    return _read_pair(source, paths, "t10k", verify)
