"""The digits dataset, the shared stratified split, the Dataset result and load_dataset."""
import hashlib
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.data import DATASETS, Dataset, digits, load_dataset, stratified_split
from nnprune.data.digits import DIGITS_SHA256, digits_arrays
from strategies import label_arrays

pytestmark = pytest.mark.data

digits_module = importlib.import_module("nnprune.data.digits")  # the package exports the function

_images, _target = digits_arrays()
RAW = SimpleNamespace(images=_images.astype(np.float64), target=_target)

# sha256 over (dtype, shape, bytes) of x_train, y_train, x_test, y_test, computed with the
# arrays scikit-learn 1.9.1's load_digits() returned, before the digits were bundled
OUTPUT_SHA256 = {
    "default": "ba5ddf8f8a822f2ee6596bbc0cc029c9944317175f0efa9004f6756359a915a4",
    "seed3_float64": "d81d9ab5719bbfc77ae54d5b0f1dbd038d09bcc1f2cc314121bdcd959e877fbb",
    "raw_pixels": "6f30c9162368019776520f63894201e148ab4d830c4a3c5d96b35e76c64b9a4a",
    "half_seed7": "ec7bead118204a43ef6036bc7a5675589664e110dd2810165fb234f18ec06056",
}
OUTPUT_KWARGS = {"default": {}, "seed3_float64": {"seed": 3, "dtype": np.float64},
                 "raw_pixels": {"standardize": False},
                 "half_seed7": {"test_fraction": 0.5, "seed": 7}}


def _output_digest(data):
    digest = hashlib.sha256()
    for a in data:
        digest.update(str(a.dtype).encode())
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("case", sorted(OUTPUT_SHA256))
def test_bundled_digits_give_the_bits_scikit_learn_gave(case):
    """digits() from the bundled arrays returns exactly what it returned from scikit-learn."""
    assert _output_digest(digits(**OUTPUT_KWARGS[case])) == OUTPUT_SHA256[case]


def test_bundled_arrays_match_their_checksum_and_shapes():
    """images (1797, 8, 8) uint8 in 0..16, ten classes of 174–183, sha256 as stated."""
    images, target = digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert target.shape == (1797,) and target.dtype == np.int64
    assert images.max() == 16 and images.min() == 0
    assert np.bincount(target).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    raw = hashlib.sha256(images.tobytes() + target.astype(np.uint8).tobytes()).hexdigest()
    assert raw == DIGITS_SHA256


def test_a_damaged_bundle_is_refused(tmp_path, monkeypatch):
    """One changed pixel in the shipped file: a ValueError naming the file, not other digits."""
    images, target = digits_arrays()
    images = images.copy()
    images[0, 0, 0] += 1
    np.savez_compressed(tmp_path / "damaged.npz", images=images, target=target.astype(np.uint8))
    monkeypatch.setattr(digits_module.resources, "files", lambda package: tmp_path)
    monkeypatch.setattr(digits_module, "DIGITS_FILE", "damaged.npz")
    with pytest.raises(ValueError, match="damaged.npz.*damaged"):
        digits_arrays()


def test_bundled_digits_equal_scikit_learns_when_installed():
    """Where scikit-learn is installed, its load_digits() holds the same images and labels."""
    datasets = pytest.importorskip("sklearn.datasets")
    raw = datasets.load_digits()
    images, target = digits_arrays()
    np.testing.assert_array_equal(raw.images, images)
    np.testing.assert_array_equal(raw.target, target)


@pytest.fixture(scope="module")
def data():
    return digits()


def test_shapes_dtypes_and_sizes(data):
    """(N, 1, 8, 8) float32 images, int64 labels, 1,797 samples, round(0.2 × 1797) in test."""
    assert data.x_train.shape == (1797 - 359, 1, 8, 8)
    assert data.x_test.shape == (359, 1, 8, 8)
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    assert data.y_train.shape == (1438,) and data.y_test.shape == (359,)
    assert data.num_classes == 10 and data.classes == tuple("0123456789")
    assert data.input_shape == (1, 8, 8) and data.name == "digits"
    assert "seed=0" in data.description and "1438/359" in data.description


def test_unpacks_as_four_arrays_in_order(data):
    x_train, y_train, x_test, y_test = data
    assert x_train is data.x_train and y_train is data.y_train
    assert x_test is data.x_test and y_test is data.y_test


def test_repr_is_short_and_names_the_sizes(data):
    text = repr(data)
    assert "train=1438" in text and "test=359" in text and len(text) < 200


def test_each_class_keeps_its_share_in_test(data):
    """Stratified: each class's test count is within one sample of test_fraction × its size."""
    counts = np.bincount(RAW.target, minlength=10)
    test_counts = np.bincount(data.y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) < 1)
    assert np.array_equal(np.bincount(data.y_train, minlength=10) + test_counts, counts)


def test_images_are_the_raw_digits_scaled_then_standardised_with_train_stats():
    """x = (raw/16 − mean_train) / std_train for both splits, stats from the train part only."""
    train, test = stratified_split(RAW.target, 0.2, seed=3)
    raw_train, raw_test = RAW.images[train] / 16.0, RAW.images[test] / 16.0
    mean, std = raw_train.mean(), raw_train.std()
    data = digits(seed=3, dtype=np.float64)
    np.testing.assert_allclose(data.mean, [mean])
    np.testing.assert_allclose(data.std, [std])
    np.testing.assert_allclose(data.x_train[:, 0], (raw_train - mean) / std, atol=1e-12)
    np.testing.assert_allclose(data.x_test[:, 0], (raw_test - mean) / std, atol=1e-12)
    np.testing.assert_array_equal(data.y_train, RAW.target[train])
    assert abs(data.x_test.mean()) > 1e-6  # the test split was not standardised on its own


def test_without_standardize_pixels_are_sixteenths_in_unit_range():
    data = digits(standardize=False)
    assert data.mean is None and data.std is None
    for x in (data.x_train, data.x_test):
        assert x.min() >= 0 and x.max() <= 1
        np.testing.assert_array_equal(x * 16, np.round(x * 16))


def test_same_seed_same_bits_other_seed_other_split(data):
    again = digits(seed=0)
    for a, b in zip(data, again):
        assert a.tobytes() == b.tobytes()
    _, test0 = stratified_split(RAW.target, 0.2, seed=0)
    _, test1 = stratified_split(RAW.target, 0.2, seed=1)
    assert len(np.setdiff1d(test0, test1)) > 100  # a different choice of test images
    assert not np.array_equal(digits(seed=1).x_test, data.x_test)


def test_test_fraction_sets_the_test_size():
    data = digits(test_fraction=0.5, standardize=False)
    assert len(data.x_test) == 899 and len(data.x_train) == 898  # floor(0.5 × 1797 + 0.5)


@pytest.mark.parametrize("kwargs, error", [
    ({"test_fraction": 0.0}, ValueError),
    ({"test_fraction": 1.0}, ValueError),
    ({"test_fraction": -0.2}, ValueError),
    ({"test_fraction": "0.2"}, TypeError),
    ({"seed": -1}, ValueError),
    ({"seed": 1.5}, ValueError),
    ({"dtype": np.int32}, TypeError),
    ({"dtype": "not a dtype"}, TypeError),
    ({"standardize": "yes"}, TypeError),
])
def test_bad_arguments_raise_clear_errors(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        digits(**kwargs)


@given(label_arrays(), st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_stratified_split_partitions_and_keeps_class_shares(y, fraction, seed):
    """train ∪ test = all indices, disjoint, sorted; |test| = round(f·N); each class within one
    sample of f × its count; the same seed gives the same split."""
    n = len(y)
    n_test = int(np.floor(fraction * n + 0.5))
    if not 1 <= n_test <= n - 1:
        with pytest.raises(ValueError, match="test_fraction"):
            stratified_split(y, fraction, seed)
        return
    train, test = stratified_split(y, fraction, seed)
    assert len(test) == n_test
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    counts = np.bincount(y)
    assert np.all(np.abs(np.bincount(y[test], minlength=len(counts)) - fraction * counts) < 1)
    again_train, again_test = stratified_split(y, fraction, seed)
    assert np.array_equal(again_test, test) and np.array_equal(again_train, train)


def test_stratified_split_rejects_bad_labels():
    with pytest.raises(ValueError, match="1-D integer"):
        stratified_split(np.zeros((4, 2), dtype=int), 0.5, 0)
    with pytest.raises(ValueError, match="1-D integer"):
        stratified_split(np.array([0.0, 1.0, 0.0, 1.0]), 0.5, 0)


def test_load_dataset_by_name(data):
    loaded = load_dataset("digits", seed=0)
    assert isinstance(loaded, Dataset)
    assert loaded.x_test.tobytes() == data.x_test.tobytes()
    assert set(DATASETS) == {"digits", "mnist", "fashion_mnist", "cifar10"}


def test_load_dataset_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*digits"):
        load_dataset("imagenet")
    with pytest.raises(TypeError, match="name must be a str"):
        load_dataset(3)
