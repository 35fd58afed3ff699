"""DataLoader (coverage, determinism, drop_last, errors) and per-channel standardisation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.data import DataLoader, channel_stats, standardize
from strategies import arrays, shapes

pytestmark = pytest.mark.data


def dataset(n, features=3):
    """x row i holds i in every feature, so a batch's x can be checked against its y."""
    x = np.repeat(np.arange(n, dtype=np.float64)[:, None], features, axis=1)
    return x, np.arange(n, dtype=np.int64)


def epoch_labels(loader):
    return np.concatenate([yb for _, yb in loader])


@given(st.integers(1, 60), st.integers(1, 70), st.booleans(), st.integers(0, 2**32 - 1))
def test_every_sample_exactly_once_per_epoch(n, batch_size, shuffle, seed):
    """Without drop_last, one epoch yields each sample exactly once, in len(loader) batches of
    batch_size (the last one possibly smaller), with x rows matching their labels."""
    x, y = dataset(n)
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader) == -(-n // batch_size)
        assert all(len(yb) == batch_size for _, yb in batches[:-1])
        labels = np.concatenate([yb for _, yb in batches])
        assert np.array_equal(np.sort(labels), np.arange(n))
        for xb, yb in batches:
            assert np.array_equal(xb[:, 0], yb)


@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 100))
def test_drop_last_yields_only_full_batches(n, batch_size, seed):
    """With drop_last, floor(N/B) full batches of distinct samples; N < B is an error."""
    x, y = dataset(n)
    if n < batch_size:
        with pytest.raises(ValueError, match="drop_last"):
            DataLoader(x, y, batch_size=batch_size, drop_last=True)
        return
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=seed, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader) == n // batch_size
    assert all(len(yb) == batch_size for _, yb in batches)
    labels = np.concatenate([yb for _, yb in batches])
    assert len(np.unique(labels)) == len(labels) == (n // batch_size) * batch_size


def test_without_shuffle_the_order_is_the_dataset_order():
    x, y = dataset(10)
    loader = DataLoader(x, y, batch_size=4)
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffles_are_deterministic_per_seed_and_epoch():
    """Same seed: the same orders epoch after epoch; epochs differ; other seeds differ."""
    x, y = dataset(50)
    a = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    b = DataLoader(x, y, batch_size=8, shuffle=True, seed=7)
    epochs_a = [epoch_labels(a) for _ in range(3)]
    epochs_b = [epoch_labels(b) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        assert np.array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    assert not np.array_equal(epochs_a[0], np.arange(50))
    other = DataLoader(x, y, batch_size=8, shuffle=True, seed=8)
    assert not np.array_equal(epoch_labels(other), epochs_a[0])
    expected = np.random.default_rng([7, 2]).permutation(50)
    assert np.array_equal(epochs_a[2], expected)


def test_set_epoch_resumes_the_order_of_that_epoch():
    x, y = dataset(30)
    fresh = DataLoader(x, y, batch_size=7, shuffle=True, seed=1)
    orders = [epoch_labels(fresh) for _ in range(3)]
    resumed = DataLoader(x, y, batch_size=7, shuffle=True, seed=1)
    resumed.set_epoch(2)
    assert np.array_equal(epoch_labels(resumed), orders[2])
    assert resumed.epoch == 3
    assert np.array_equal(resumed.order(1), orders[1])


def test_batches_are_copies():
    x, y = dataset(6)
    loader = DataLoader(x, y, batch_size=3)
    xb, yb = next(iter(loader))
    xb[...] = -1
    yb[...] = -1
    assert loader.x.min() == 0 and loader.y.min() == 0


def test_images_keep_their_shape_and_dtype():
    x = np.zeros((5, 1, 8, 8), dtype=np.float32)
    xb, yb = next(iter(DataLoader(x, np.zeros(5, dtype=np.int32), batch_size=2)))
    assert xb.shape == (2, 1, 8, 8) and xb.dtype == np.float32 and yb.dtype == np.int32


@pytest.mark.parametrize("kwargs, error, match", [
    ({"x": np.zeros((4, 2)), "y": np.zeros(3, dtype=int)}, ValueError, "same number of samples"),
    ({"x": np.zeros((0, 2)), "y": np.zeros(0, dtype=int)}, ValueError, "empty"),
    ({"x": np.float64(1.0), "y": np.int64(1)}, ValueError, "sample axis"),
    ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
    ({"batch_size": -3}, ValueError, "batch_size"),
    ({"batch_size": 2.0}, ValueError, "batch_size must be an int"),
    ({"batch_size": True}, ValueError, "batch_size must be an int"),
    ({"batch_size": "8"}, ValueError, "batch_size"),
    ({"y": np.array([0.0, 1.0, 0.0, 1.0])}, TypeError, "integer class labels"),
    ({"y": np.array([True, False, True, False])}, TypeError, "integer class labels"),
    ({"shuffle": True}, ValueError, "needs an explicit seed"),
    ({"shuffle": True, "seed": -1}, ValueError, "seed must be an int >= 0"),
    ({"shuffle": "yes", "seed": 0}, TypeError, "shuffle must be a bool"),
    ({"drop_last": 1}, TypeError, "drop_last must be a bool"),
    ({"batch_size": 5, "drop_last": True}, ValueError, "no batch"),
])
def test_bad_input_raises_clear_errors(kwargs, error, match):
    args = {"x": np.zeros((4, 2)), "y": np.zeros(4, dtype=int), **kwargs}
    with pytest.raises(error, match=match):
        DataLoader(**args)


def test_set_epoch_rejects_negative_epochs():
    loader = DataLoader(np.zeros((4, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="epoch"):
        loader.set_epoch(-1)


# ---------------------------------------------------------------- standardize / channel_stats


@given(arrays(shapes(min_dims=2, max_dims=4, min_side=1, max_side=4)))
def test_channel_stats_match_numpy_over_all_axes_but_one(x):
    """mean and std per channel equal np.mean / np.std over every axis except axis 1."""
    axes = (0,) + tuple(range(2, x.ndim))
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.mean(axis=axes), atol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=axes), atol=1e-9)


def test_channel_stats_are_exact_across_chunks():
    """More samples than one chunk: the chunked sums equal the one-shot float64 statistics."""
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(9000, 2, 3)).astype(np.float32)
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=(0, 2)), rtol=1e-10)


@given(arrays(shapes(min_dims=2, max_dims=4, min_side=2, max_side=4)))
def test_standardized_channels_have_zero_mean_and_unit_std(x):
    """After standardize(x), each non-constant channel has mean 0 and std 1, and a constant
    channel is only centred (all zeros)."""
    out = standardize(x)
    axes = (0,) + tuple(range(2, x.ndim))
    _, std = channel_stats(x)
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-9)
    varying = std > 1e-6
    np.testing.assert_allclose(out.std(axis=axes)[varying], 1, rtol=1e-6)
    per_channel = x.swapaxes(0, 1).reshape(x.shape[1], -1)
    constant = np.all(per_channel == per_channel[:, :1], axis=1)
    assert np.all(out.swapaxes(0, 1)[constant] == 0)


def test_standardize_applies_given_statistics_and_keeps_the_input():
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    before = x.copy()
    out = standardize(x, mean=[1.0, 2.0], std=[2.0, 4.0])
    expected = (x - np.array([1.0, 2.0])[None, :, None]) / np.array([2.0, 4.0])[None, :, None]
    np.testing.assert_allclose(out, expected)
    assert out.dtype == np.float32 and np.array_equal(x, before)
    np.testing.assert_allclose(standardize(x, mean=1.0, std=2.0), (x - 1) / 2)
    assert standardize(x.astype(np.uint8)).dtype == np.float64


@pytest.mark.parametrize("call, error, match", [
    (lambda: standardize(np.zeros(5)), ValueError, "channel axis"),
    (lambda: standardize(np.zeros((0, 2))), ValueError, "empty"),
    (lambda: standardize(np.ones((3, 2)), mean=[0.0, 0.0, 0.0], std=1.0), ValueError, "mean"),
    (lambda: standardize(np.ones((3, 2)), mean=0.0, std=[1.0, -1.0]), ValueError, "std must"),
    (lambda: standardize(np.ones((3, 2)), mean=np.nan, std=1.0), ValueError, "finite"),
    (lambda: channel_stats(np.zeros((3, 2), dtype=bool)), TypeError, "numbers"),
    (lambda: channel_stats(np.zeros((3, 0, 2))), ValueError, "empty"),
])
def test_standardize_and_channel_stats_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
