"""CIFAR-10 binary version on tiny batch files: record layout, folders, archive, errors."""
import hashlib
import importlib
import os
import tarfile

import numpy as np
import pytest

from nnprune.data import DatasetNotFoundError, cifar10, read_cifar_bin

pytestmark = pytest.mark.data

# the module, not the function of the same name
cifar_module = importlib.import_module("nnprune.data.cifar")

BATCHES = [f"data_batch_{b}.bin" for b in range(1, 6)] + ["test_batch.bin"]


def record(label, red, green, blue):
    """One 3,073-byte record written the way the format describes it: label, R, G, B planes."""
    return bytes([label]) + red.tobytes() + green.tobytes() + blue.tobytes()


def fake_batch(n, seed):
    """(bytes of n records, images (n, 3, 32, 32) uint8, labels (n,) uint8)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    payload = b"".join(record(lab, *img) for img, lab in zip(images, labels))
    return payload, images, labels


def write_batches(folder, n=4):
    """All six batch files in folder; returns {name: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for i, name in enumerate(BATCHES):
        payload, images, labels = fake_batch(n, i)
        (folder / name).write_bytes(payload)
        content[name] = (images, labels)
    return content


def test_a_record_reads_as_label_then_red_green_blue_planes(tmp_path):
    red, green, blue = (np.full((32, 32), v, np.uint8) for v in (1, 2, 3))
    green[5, 7] = 200
    (tmp_path / "one.bin").write_bytes(record(8, red, green, blue) + record(3, blue, red, green))
    images, labels = read_cifar_bin(tmp_path / "one.bin")
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [8, 3]
    assert images[0, 1, 5, 7] == 200 and images[0, 1, 5, 8] == 2
    assert [int(images[0, c, 0, 0]) for c in range(3)] == [1, 2, 3]
    assert [int(images[1, c, 0, 0]) for c in range(3)] == [3, 1, 2]


def test_cifar10_concatenates_batches_in_order(tmp_path):
    content = write_batches(tmp_path / "cifar-10-batches-bin")
    data = cifar10(tmp_path, standardize=False)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    train_images = np.concatenate([content[name][0] for name in BATCHES[:5]])
    np.testing.assert_array_equal(data.x_train, train_images.astype(np.float32) / 255)
    train_labels = np.concatenate([content[name][1] for name in BATCHES[:5]])
    np.testing.assert_array_equal(data.y_train, train_labels)
    np.testing.assert_array_equal(data.y_test, content["test_batch.bin"][1])
    assert data.classes[0] == "airplane" and data.classes[9] == "truck"
    assert data.input_shape == (3, 32, 32) and data.name == "cifar10"


def test_files_directly_in_root_and_a_subset_of_batches(tmp_path):
    content = write_batches(tmp_path)
    (tmp_path / "data_batch_1.bin").unlink()
    data = cifar10(tmp_path, train_batches=(3, 2), standardize=False)
    expected = np.concatenate([content["data_batch_3.bin"][1], content["data_batch_2.bin"][1]])
    np.testing.assert_array_equal(data.y_train, expected)
    assert "data_batch 3, 2" in data.description


def test_standardize_is_per_channel_with_training_statistics(tmp_path):
    write_batches(tmp_path, n=6)
    data = cifar10(tmp_path, dtype=np.float64)
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2, 3)), 1, rtol=1e-10)
    raw = cifar10(tmp_path, standardize=False, dtype=np.float64)
    expected = (raw.x_test - data.mean[None, :, None, None]) / data.std[None, :, None, None]
    np.testing.assert_allclose(data.x_test, expected, atol=1e-12)


def make_archive(folder, path, members=None):
    """A cifar-10-binary.tar.gz of folder's files under cifar-10-batches-bin/."""
    with tarfile.open(path, "w:gz") as tar:
        for name in members or BATCHES:
            tar.add(folder / name, arcname=f"cifar-10-batches-bin/{name}")
    return path


def test_missing_batches_are_extracted_from_the_archive(tmp_path):
    content = write_batches(tmp_path / "src")
    root = tmp_path / "root"
    root.mkdir()
    make_archive(tmp_path / "src", root / "cifar-10-binary.tar.gz")
    data = cifar10(root, standardize=False)
    np.testing.assert_array_equal(data.y_test, content["test_batch.bin"][1])
    assert sorted(os.listdir(root / "cifar-10-batches-bin")) == sorted(BATCHES)


def test_an_archive_without_a_member_or_a_corrupt_one_is_reported(tmp_path):
    write_batches(tmp_path / "src")
    root = tmp_path / "root"
    root.mkdir()
    make_archive(tmp_path / "src", root / "cifar-10-binary.tar.gz", BATCHES[1:])
    with pytest.raises(ValueError, match="no member cifar-10-batches-bin/data_batch_1.bin"):
        cifar10(root)
    (root / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"x" * 100)
    with pytest.raises(ValueError, match="cifar-10-binary.tar.gz: corrupt or truncated"):
        cifar10(root)


def test_missing_files_error_says_what_to_put_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        cifar10(tmp_path / "none")
    message = str(info.value)
    assert str(tmp_path / "none" / "cifar-10-batches-bin" / "data_batch_1.bin") in message
    assert "test_batch.bin" in message and "cifar-10-binary.tar.gz" in message
    assert cifar_module.CIFAR10_URL in message and "download=True" in message


@pytest.mark.parametrize("payload, match", [
    (b"\x00" * 3072, "3072 bytes is not a positive whole number of 3073-byte records"),
    (b"", "0 bytes"),
    (bytes([10]) + b"\x00" * 3072, "record 0 has label 10"),
])
def test_damaged_batch_files_raise_errors_naming_them(tmp_path, payload, match):
    write_batches(tmp_path)
    (tmp_path / "data_batch_4.bin").write_bytes(payload)
    with pytest.raises(ValueError, match=match) as info:
        cifar10(tmp_path)
    assert "data_batch_4.bin" in str(info.value)


def test_download_fetches_and_extracts_the_archive(tmp_path, monkeypatch):
    content = write_batches(tmp_path / "src")
    archive = make_archive(tmp_path / "src", tmp_path / "served.tar.gz")
    monkeypatch.setattr(cifar_module, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar_module, "CIFAR10_SHA256",
                        hashlib.sha256(archive.read_bytes()).hexdigest())
    data = cifar10(tmp_path / "cache", download=True, standardize=False)
    np.testing.assert_array_equal(data.y_test, content["test_batch.bin"][1])
    assert (tmp_path / "cache" / "cifar-10-binary.tar.gz").read_bytes() == archive.read_bytes()


def test_download_with_a_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    archive = make_archive(tmp_path / "src", tmp_path / "served.tar.gz")
    monkeypatch.setattr(cifar_module, "CIFAR10_URL", archive.as_uri())
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        cifar10(tmp_path / "cache", download=True)
    assert os.listdir(tmp_path / "cache") == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"train_batches": ()}, ValueError, "train_batches"),
    ({"train_batches": (0,)}, ValueError, "train_batches"),
    ({"train_batches": (6,)}, ValueError, "train_batches"),
    ({"train_batches": (1, 1)}, ValueError, "train_batches"),
    ({"train_batches": (1.0,)}, ValueError, "train_batches"),
    ({"train_batches": (True,)}, ValueError, "train_batches"),
    ({"train_batches": 3}, ValueError, "train_batches"),
    ({"download": 1}, TypeError, "download"),
    ({"dtype": np.int16}, TypeError, "dtype"),
])
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, error, match):
    write_batches(tmp_path)
    with pytest.raises(error, match=match):
        cifar10(tmp_path, **kwargs)


def test_read_cifar_bin_round_trips_records_and_reports_missing_files(tmp_path):
    payload, images, labels = fake_batch(3, 9)
    (tmp_path / "b.bin").write_bytes(payload)
    got_images, got_labels = read_cifar_bin(tmp_path / "b.bin")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    with pytest.raises(FileNotFoundError):
        read_cifar_bin(tmp_path / "nope.bin")
