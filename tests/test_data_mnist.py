"""MNIST / Fashion-MNIST loaders on tiny official-format files written into tmp_path."""
import dataclasses
import gzip
import hashlib
import importlib
import os

import numpy as np
import pytest

from nnprune.data import DatasetNotFoundError, fashion_mnist, load_dataset, mnist, write_idx
from nnprune.data.mnist import MNIST_FILES, MNIST_MIRRORS, IdxFile

pytestmark = pytest.mark.data

# the module, not the function of the same name that nnprune.data exports
mnist_module = importlib.import_module("nnprune.data.mnist")

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def fake_split(n, seed):
    """(images (n, 28, 28) uint8, labels (n,) uint8 cycling 0..9) drawn from seed."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            (np.arange(n) % 10).astype(np.uint8))


def write_set(root, prefix, images, labels, gz=True):
    suffix = ".gz" if gz else ""
    write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


@pytest.fixture
def files(tmp_path):
    """A directory with all four files: 30 training and 20 test images."""
    train, test = fake_split(30, 0), fake_split(20, 1)
    write_set(tmp_path, "train", *train)
    write_set(tmp_path, "t10k", *test)
    return tmp_path, train, test


@pytest.mark.parametrize("gz", [True, False])
def test_official_split_reads_the_four_files(tmp_path, gz):
    """Images become (N, 1, 28, 28) pixels / 255, labels int64, with .gz or plain names."""
    train, test = fake_split(30, 0), fake_split(20, 1)
    write_set(tmp_path, "train", *train, gz=gz)
    write_set(tmp_path, "t10k", *test, gz=gz)
    data = mnist(tmp_path, standardize=False)
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train[:, 0], train[0].astype(np.float32) / 255)
    np.testing.assert_array_equal(data.x_test[:, 0], test[0].astype(np.float32) / 255)
    np.testing.assert_array_equal(data.y_train, train[1])
    np.testing.assert_array_equal(data.y_test, test[1])
    assert data.name == "mnist" and data.num_classes == 10 and data.input_shape == (1, 28, 28)
    assert "official split" in data.description


def test_standardize_uses_the_training_statistics_for_both_splits(files):
    root, train, test = files
    data = mnist(root, dtype=np.float64)
    mean, std = (train[0] / 255).mean(), (train[0] / 255).std()
    np.testing.assert_allclose(data.mean, [mean])
    np.testing.assert_allclose(data.x_train[:, 0], (train[0] / 255 - mean) / std, atol=1e-12)
    np.testing.assert_allclose(data.x_test[:, 0], (test[0] / 255 - mean) / std, atol=1e-12)


def test_t10k_split_needs_only_the_test_files_and_is_stratified(tmp_path):
    """split='t10k': the t10k images split 80/20 per class, seeded, without overlap."""
    images, labels = fake_split(100, 2)
    write_set(tmp_path, "t10k", images, labels)
    data = mnist(tmp_path, split="t10k", seed=5, standardize=False)
    assert len(data.x_train) == 80 and len(data.x_test) == 20
    assert np.array_equal(np.bincount(data.y_test), [2] * 10)
    # every image lands in exactly one split, with its own label
    pixels = {img.tobytes(): lab for img, lab in zip(images, labels)}
    seen = [(np.round(x[0] * 255).astype(np.uint8).tobytes(), y)
            for x, y in zip(np.concatenate([data.x_train, data.x_test]),
                            np.concatenate([data.y_train, data.y_test]))]
    assert len({key for key, _ in seen}) == 100
    assert all(pixels[key] == label for key, label in seen)
    assert "seed=5" in data.description and "80/20" in data.description


def test_t10k_split_is_deterministic_per_seed(tmp_path):
    write_set(tmp_path, "t10k", *fake_split(100, 2))
    a = mnist(tmp_path, split="t10k", seed=0)
    b = mnist(tmp_path, split="t10k", seed=0)
    c = mnist(tmp_path, split="t10k", seed=1, test_fraction=0.3)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert len(c.x_test) == 30 and not np.array_equal(c.x_train[:70], a.x_train[:70])


def test_missing_files_error_names_directory_files_and_mirrors(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(root)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(root) in message and "download=True" in message
    assert all(f"{name}.gz" in message for name in NAMES)
    assert all(url in message for url in MNIST_MIRRORS)
    assert not root.exists()  # nothing was created


def test_missing_training_files_point_to_the_t10k_split(tmp_path):
    write_set(tmp_path, "t10k", *fake_split(10, 0))
    with pytest.raises(DatasetNotFoundError, match="split='t10k'") as info:
        mnist(tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert "t10k-images-idx3-ubyte.gz " not in str(info.value)


def test_default_directory_comes_from_the_environment(tmp_path, monkeypatch):
    """Without root, the files are read from $NNPRUNE_DATA/<dataset name>."""
    (tmp_path / "mnist").mkdir()
    images, labels = fake_split(10, 4)
    write_set(tmp_path / "mnist", "t10k", images, labels)
    monkeypatch.setenv("NNPRUNE_DATA", str(tmp_path))
    data = mnist(split="t10k", standardize=False)
    np.testing.assert_array_equal(np.sort(np.concatenate([data.y_train, data.y_test])),
                                  np.sort(labels))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "fashion_mnist")):
        fashion_mnist(split="t10k")


def test_fashion_mnist_reads_the_same_format_with_its_class_names(files):
    root, _, test = files
    data = fashion_mnist(root, standardize=False)
    assert data.name == "fashion_mnist" and data.classes[0] == "T-shirt/top"
    assert data.classes[9] == "Ankle boot" and data.num_classes == 10
    np.testing.assert_array_equal(data.y_test, test[1])


def test_load_dataset_passes_the_options(tmp_path):
    write_set(tmp_path, "t10k", *fake_split(50, 3))
    data = load_dataset("mnist", root=tmp_path, split="t10k", test_fraction=0.2)
    assert len(data.x_test) == 10


@pytest.mark.parametrize("change, match", [
    (lambda r: write_idx(r / "t10k-labels-idx1-ubyte.gz", np.zeros(19, np.uint8)),
     "holds 20 images but .* holds 19 labels"),
    (lambda r: write_idx(r / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8)),
     "label 10 is outside 0..9"),
    (lambda r: write_idx(r / "t10k-images-idx3-ubyte.gz", np.zeros((20, 27, 28), np.uint8)),
     r"expected uint8 images of shape \(N, 28, 28\)"),
    (lambda r: write_idx(r / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28), np.float32)),
     "expected uint8 images"),
    (lambda r: write_idx(r / "t10k-labels-idx1-ubyte.gz", np.zeros(20, np.int32)),
     "expected uint8 labels"),
    (lambda r: (r / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip"),
     "t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip"),
])
def test_inconsistent_files_raise_errors_naming_them(files, change, match):
    root = files[0]
    change(root)
    with pytest.raises(ValueError, match=match):
        mnist(root)


def test_uncompressed_file_wins_over_gz(files):
    """With both forms present the uncompressed one is read."""
    root, _, test = files
    write_idx(root / "t10k-labels-idx1-ubyte", (9 - test[1]).astype(np.uint8))
    np.testing.assert_array_equal(mnist(root).y_test, 9 - test[1])


def test_verify_rejects_files_that_are_not_the_official_ones(files):
    root = files[0]
    with pytest.raises(ValueError, match="content sha256 .* differs from the official"):
        mnist(root, verify=True)
    write_set(root, "t10k", *fake_split(20, 1), gz=False)
    with pytest.raises(ValueError, match="no published checksum"):
        fashion_mnist(root, split="t10k", verify=True)


def test_verify_accepts_files_matching_the_table(files, monkeypatch):
    """verify=True compares the uncompressed content with the table's sha256."""
    root = files[0]
    table = {}
    for name in NAMES:
        content = gzip.decompress((root / f"{name}.gz").read_bytes())
        table[name] = IdxFile(name, None, hashlib.sha256(content).hexdigest())
    source = dataclasses.replace(mnist_module._MNIST, files=table)
    monkeypatch.setattr(mnist_module, "_MNIST", source)
    assert len(mnist(root, verify=True).x_train) == 30


def test_download_fetches_missing_files_from_a_mirror(files, tmp_path_factory, monkeypatch):
    """download=True fetches each missing .gz from the first working mirror, verified."""
    server = files[0]
    table = {name: IdxFile(name, hashlib.sha256((server / f"{name}.gz").read_bytes()).hexdigest(),
                           None) for name in NAMES}
    mirrors = ((server / "missing").as_uri() + "/", server.as_uri() + "/")
    monkeypatch.setattr(mnist_module, "_MNIST",
                        dataclasses.replace(mnist_module._MNIST, files=table, mirrors=mirrors))
    cache = tmp_path_factory.mktemp("cache") / "mnist"
    data = mnist(cache, download=True, standardize=False)
    assert sorted(os.listdir(cache)) == sorted(f"{name}.gz" for name in NAMES)
    np.testing.assert_array_equal(data.y_train, files[1][1])


def test_download_with_a_wrong_checksum_fails_and_leaves_nothing(files, tmp_path_factory,
                                                                   monkeypatch):
    server = files[0]
    table = {name: IdxFile(name, "0" * 64, None) for name in NAMES}
    monkeypatch.setattr(mnist_module, "_MNIST", dataclasses.replace(
        mnist_module._MNIST, files=table, mirrors=(server.as_uri() + "/",)))
    cache = tmp_path_factory.mktemp("cache")
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as info:
        mnist(cache, download=True)
    assert str(cache) in str(info.value)
    assert os.listdir(cache) == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"split": "train"}, ValueError, "split must be one of"),
    ({"test_fraction": 0.2}, ValueError, "test_fraction applies to split='t10k' only"),
    ({"split": "t10k", "test_fraction": 1.5}, ValueError, "test_fraction"),
    ({"seed": -2}, ValueError, "seed"),
    ({"download": "yes"}, TypeError, "download"),
    ({"verify": 1}, TypeError, "verify"),
    ({"dtype": np.uint8}, TypeError, "dtype"),
    ({"standardize": None}, TypeError, "standardize"),
])
def test_bad_arguments_raise_clear_errors(files, kwargs, error, match):
    with pytest.raises(error, match=match):
        mnist(files[0], **kwargs)


def test_the_checksum_table_lists_the_four_official_files():
    assert sorted(MNIST_FILES) == sorted(NAMES)
    assert all(len(f.sha256_gz) == 64 and len(f.sha256) == 64 for f in MNIST_FILES.values())
