"""CIFAR-10 from the official *binary* version: fixed-size records, no pickle anywhere.

``cifar-10-binary.tar.gz`` (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html)
holds ``cifar-10-batches-bin/``: ``data_batch_1.bin`` .. ``data_batch_5.bin`` (10,000 training
images each) and ``test_batch.bin`` (10,000). Each record is 3,073 bytes::

    byte 0          the label, 0..9
    bytes 1..1024   the red plane, 32×32, row by row
    then            the green plane, then the blue plane

so a record's pixels reshape straight to (3, 32, 32): channels first, as NCHW wants.

The archive's SHA-256 below is the value listed for it by several independent projects; the
dataset page itself publishes its MD5, c32a1d4ab5d03f1284b67883e8d87530.
"""
from __future__ import annotations

import numbers
import os
import tarfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from nnprune.checks import check_bool
from nnprune.data.dataset import Dataset, build_dataset
from nnprune.data.download import (ChecksumError, DatasetNotFoundError, data_root, fetch,
                                   file_sha256)
from nnprune.files import atomic_write_bytes

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
RECORD_BYTES = 1 + 3 * 32 * 32


def read_cifar_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one CIFAR-10 binary batch file.

    Shape: a file of N records of 3,073 bytes -> images (N, 3, 32, 32) uint8, labels (N,) uint8.
    A size that is not a positive multiple of 3,073 bytes, or a label above 9, raises
    ValueError naming the file.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise ValueError(f"{path}: {raw.size} bytes is not a positive whole number of "
                         f"{RECORD_BYTES}-byte records (1 label byte + 3,072 pixel bytes); "
                         f"is it a CIFAR-10 binary batch, complete?")
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() >= len(CIFAR10_CLASSES):
        bad = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
        raise ValueError(f"{path}: record {bad} has label {labels[bad]}; CIFAR-10 labels are 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _find(root: Path, name: str) -> Path | None:
    """``name`` in root/cifar-10-batches-bin or directly in root, or None."""
    return next((p for p in (root / CIFAR10_DIR / name, root / name) if p.is_file()), None)


def _extract(archive: Path, root: Path, names: list[str]) -> None:
    """Copy the members ``cifar-10-batches-bin/<name>`` of ``archive`` to that folder in root.

    Only those regular-file members are read (never ``extractall``: no path from the archive
    decides where a file is written); each file is written atomically.
    """
    (root / CIFAR10_DIR).mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in names:
                try:
                    member = tar.getmember(f"{CIFAR10_DIR}/{name}")
                except KeyError:
                    raise ValueError(f"{archive}: no member {CIFAR10_DIR}/{name}; is it the "
                                     f"CIFAR-10 binary version?") from None
                if not member.isfile():
                    raise ValueError(f"{archive}: {member.name} is not a regular file")
                if member.size > 10_000 * RECORD_BYTES:  # every batch holds 10,000 images
                    raise ValueError(f"{archive}: {member.name} declares {member.size:,} "
                                     f"bytes; a CIFAR-10 batch has {10_000 * RECORD_BYTES:,}")
                atomic_write_bytes(root / CIFAR10_DIR / name, tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise ValueError(f"{archive}: corrupt or truncated archive ({error})") from error


def _missing_message(root: Path, missing: list[str]) -> str:
    files = "\n".join(f"  {root / CIFAR10_DIR / name}" for name in missing)
    return (f"CIFAR-10 binary files are missing:\n{files}\n"
            f"Put {CIFAR10_ARCHIVE} (the binary version, not the python one) in {root}, or its "
            f"extracted {CIFAR10_DIR}/ folder, or call cifar10(root={str(root)!r}, "
            f"download=True) to fetch and verify it (162 MB, network needed). Official "
            f"download:\n  {CIFAR10_URL}")


def _locate(root: Path, names: list[str], download: bool) -> dict[str, Path]:
    """The path of every batch file in ``names``: found, extracted, or downloaded."""
    found = {name: _find(root, name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return found
    archive = root / CIFAR10_ARCHIVE
    if not archive.is_file():
        if not download:
            raise DatasetNotFoundError(_missing_message(root, missing),
                                       missing=_missing_message(root, missing).split("\nPut")[0])
        root.mkdir(parents=True, exist_ok=True)
        try:
            fetch([CIFAR10_URL], archive, CIFAR10_SHA256)
        except DatasetNotFoundError as error:
            raise DatasetNotFoundError(f"{error}\n{_missing_message(root, missing)}",
                                       missing=str(error)) from error
    _extract(archive, root, missing)
    return {name: _find(root, name) for name in names}


def _verified(root: Path, names: list[str]) -> dict[str, Path]:
    """The batch files extracted afresh from an archive whose SHA-256 was checked."""
    archive = root / CIFAR10_ARCHIVE
    if not archive.is_file():
        raise ValueError(f"cannot verify CIFAR-10 in {root}: only {CIFAR10_ARCHIVE} has a "
                         f"published SHA-256, and it is not there")
    got = file_sha256(archive)
    if got != CIFAR10_SHA256:
        raise ChecksumError(f"{archive}: sha256 {got} differs from the official "
                            f"{CIFAR10_SHA256}; delete it and download it again")
    _extract(archive, root, names)
    return {name: root / CIFAR10_DIR / name for name in names}


def cifar10(root: str | os.PathLike | None = None, *, download: bool = False,
            standardize: bool = True, dtype=np.float32,
            train_batches: Sequence[int] = (1, 2, 3, 4, 5), verify: bool = False) -> Dataset:
    """CIFAR-10 from the official binary files in ``root`` (default ``$NNPRUNE_DATA/cifar10``
    or ``~/.cache/nnprune/cifar10``).

    Shapes: x_train (10,000 × len(train_batches), 3, 32, 32), x_test (10,000, 3, 32, 32) of
    ``dtype``; y int64 in 0..9 (names in ``classes``).

    The batch files are read from ``root/cifar-10-batches-bin/`` or ``root/``, else extracted
    from ``root/cifar-10-binary.tar.gz``, downloaded and checked first with ``download=True``
    (otherwise a ``DatasetNotFoundError`` says which files to put where). ``train_batches``
    picks some of data_batch_1..5. Pixels are scaled x / 255, then standardised per channel
    with the training split's statistics. ``verify=True`` checks the archive's SHA-256 and
    reads the batches from it (the extracted files have no published checksum).
    """
    check_bool(download, "download")
    check_bool(verify, "verify")
    try:
        batches = [int(b) if isinstance(b, numbers.Integral) and not isinstance(b, bool) else None
                   for b in train_batches]
    except TypeError:
        batches = []
    if (not batches or len(set(batches)) != len(batches)
            or any(b not in range(1, 6) for b in batches)):
        raise ValueError(f"train_batches must be distinct ints from 1..5, got {train_batches!r}")
    root = data_root("cifar10", root)
    names = [f"data_batch_{b}.bin" for b in batches] + ["test_batch.bin"]
    paths = _verified(root, names) if verify else _locate(root, names, download)
    parts = [read_cifar_bin(paths[name]) for name in names[:-1]]
    x_train = np.concatenate([images for images, _ in parts])
    y_train = np.concatenate([labels for _, labels in parts])
    x_test, y_test = read_cifar_bin(paths["test_batch.bin"])
    description = (f"CIFAR-10 binary version from {root}: {len(x_train)} train images "
                   f"(data_batch {', '.join(map(str, batches))}), {len(x_test)} test images")
    return build_dataset("cifar10", x_train, y_train, x_test, y_test, scale=255.0,
                         classes=CIFAR10_CLASSES, standardize=standardize, dtype=dtype,
                         description=description)
