"""Datasets from the user's arrays and from given split indices, with standardisation and
stratification optional: in Python (``data.from_arrays``, ``load_arrays``), through the
workflows, and round trips through ``nnprune train`` → ``nnprune prune``."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import data, io
from nnprune.experiment import workflows
from nnprune.models import lenet_300_100

pytestmark = pytest.mark.data


def toy(n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.standard_normal((n, 1, 4, 4)) + y[:, None, None, None]
    return x.astype(np.float32), y


def test_the_digits_pool_split_here_is_digits():
    """split_pool + from_arrays (stratified, standardised) gives digits(seed) bit for bit."""
    x, y, scale = data.split_pool("digits")
    mine, theirs = data.from_arrays(x, y, scale=scale, seed=3), data.digits(seed=3)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 200), frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_random_split_partitions_the_samples(n, frac, seed):
    """Without stratification: round(f·n) test samples, the rest train, disjoint, all used,
    the same seed the same split."""
    n_test = int(np.floor(frac * n + 0.5))
    if not 1 <= n_test <= n - 1:
        with pytest.raises(ValueError, match="both parts"):
            data.random_split(n, frac, seed)
        return
    train, test = data.random_split(n, frac, seed)
    assert len(test) == n_test and np.array_equal(np.sort(np.r_[train, test]), np.arange(n))
    assert np.array_equal(data.random_split(n, frac, seed)[1], test)


def test_given_indices_and_no_standardisation_keep_the_values():
    """train_index/test_index pick exactly those samples; without standardisation x/scale."""
    x, y = toy()
    train, test = np.arange(0, 60, 2), np.array([1, 7, 9])
    d = data.from_arrays(x, y, train_index=train, test_index=test, standardize=False,
                         scale=2.0)
    np.testing.assert_array_equal(d.x_train, x[train] / 2)
    np.testing.assert_array_equal(d.y_test, y[test])
    assert d.mean is None and d.num_classes == 3 and "given indices 30/3" in d.description


def test_unstratified_split_is_the_random_split_and_standardises_on_train():
    x, y = toy()
    d = data.from_arrays(x, y, stratify=False, seed=5)
    train, test = data.random_split(60, 0.2, 5)
    np.testing.assert_array_equal(d.y_train, y[train])
    np.testing.assert_allclose(d.x_train.mean(), 0.0, atol=1e-5)


@pytest.mark.parametrize("layout", ["pool", "split", "features"])
def test_npz_files_load_without_pickle(tmp_path, layout):
    x, y = toy()
    path = tmp_path / "mine.npz"
    if layout == "pool":
        np.savez(path, x=x, y=y)
    elif layout == "split":
        np.savez(path, x_train=x[:50], y_train=y[:50], x_test=x[50:], y_test=y[50:])
    else:
        np.savez(path, x=x.reshape(60, 16), y=y)
    d = data.load_arrays(path, seed=1)
    assert d.name == "mine" and len(d.y_train) + len(d.y_test) == 60
    assert d.input_shape == ((1, 1, 16) if layout == "features" else (1, 4, 4))
    if layout == "split":
        np.testing.assert_array_equal(d.y_test, y[50:])


@pytest.mark.parametrize("call, error, match", [
    (lambda x, y: data.from_arrays(x, y, train_index=[0, 1], test_index=[1, 2]), ValueError,
     "share samples"),
    (lambda x, y: data.from_arrays(x, y, train_index=[0, 60], test_index=[1]), ValueError,
     "must index the 60 samples"),
    (lambda x, y: data.from_arrays(x, y, train_index=[0, 0], test_index=[1]), ValueError,
     "repeats"),
    (lambda x, y: data.from_arrays(x, y, train_index=[0]), ValueError, "give both"),
    (lambda x, y: data.from_arrays(x, y, x[:5]), ValueError, "give both"),
    (lambda x, y: data.from_arrays(x, y, x[:5, :, :2], y[:5]), ValueError, "x_test samples"),
    (lambda x, y: data.from_arrays(x, y.astype(float)), TypeError, "integer class labels"),
    (lambda x, y: data.from_arrays(x, y[:10]), ValueError, "10 labels for 60"),
    (lambda x, y: data.from_arrays(x[:, 0, 0, 0], y), ValueError, "must be"),
    (lambda x, y: data.from_arrays(x, y, stratify="no"), TypeError, "stratify"),
    (lambda x, y: data.from_arrays(x, y, scale=0), ValueError, "scale"),
    (lambda x, y: data.split_pool("cifar10"), ValueError, "split indices apply"),
])
def test_bad_arrays_and_indices_are_refused(call, error, match):
    x, y = toy()
    with pytest.raises(error, match=match):
        call(x, y)


def test_npz_without_the_arrays_or_with_objects_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="expected arrays x and y"):
        data.load_arrays(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(ValueError, match="cannot be read"):
        data.load_arrays(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="'train' and 'test'"):
        data.load_split_indices(tmp_path / "c.npz")


def test_workflows_run_on_the_users_arrays():
    x, y = toy(n=90)
    d = data.from_arrays(x, y, name="toy", stratify=False, seed=2)
    model = lenet_300_100(in_channels=1, input_size=4, num_classes=3, width=0.1)
    record = workflows.oneshot(model, d, sparsity=0.5, finetune_epochs=1)
    assert record["dataset"] == "toy" and record["sparsity_reached"] == pytest.approx(0.5, abs=0.01)


# ---------------------------------------------------------------------- command line
QUICK = ("--model", "lenet_300_100", "--width", "0.1", "--epochs", "1", "--quiet")


def pruned_record(cli, tmp_path, model, *extra):
    status, _, err = cli("prune", model, "--sparsity", "0.5", "--finetune-epochs", "0",
                         "--quiet", "--out", tmp_path / "p.npz", "--json", tmp_path / "p.json",
                         *extra)
    assert status == 0, err
    return json.loads((tmp_path / "p.json").read_text())


def test_users_npz_round_trips_through_train_and_prune(cli, tmp_path):
    """train --data FILE.npz --no-stratify --no-standardize saves where the data came from;
    prune without --data loads the same split: its dense accuracy is train's."""
    x, y = toy(n=120)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    model = tmp_path / "m.npz"
    status, _, err = cli("train", *QUICK, "--data", tmp_path / "mine.npz",
                         "--no-stratify", "--no-standardize", "--out", model)
    assert status == 0, err
    _, metadata = io.load(model)
    assert metadata["data_file"] == str((tmp_path / "mine.npz").resolve())
    assert metadata["standardize"] is False and metadata["stratify"] is False
    record = pruned_record(cli, tmp_path, model)
    assert record["dataset"] == "mine"
    assert record["accuracy_dense"] == pytest.approx(metadata["test_accuracy"])


def test_split_indices_round_trip_through_train_and_prune(cli, tmp_path):
    """--split-indices picks the digits split; prune reuses it from the metadata."""
    rng = np.random.default_rng(0)
    order = rng.permutation(1797)
    np.savez(tmp_path / "split.npz", train=order[:1000], test=order[1000:1300])
    model = tmp_path / "m.npz"
    status, _, err = cli("train", *QUICK, "--split-indices", tmp_path / "split.npz",
                         "--out", model)
    assert status == 0, err
    _, metadata = io.load(model)
    assert metadata["split_indices"] == str((tmp_path / "split.npz").resolve())
    assert "given indices 1000/300" in metadata["data_description"]
    record = pruned_record(cli, tmp_path, model)
    assert record["accuracy_dense"] == pytest.approx(metadata["test_accuracy"])


def test_bad_data_options_are_one_line_errors(cli, tmp_path):
    status, _, err = cli("train", *QUICK, "--data", tmp_path / "none.npz",
                         "--out", tmp_path / "m.npz")
    assert status == 2 and "no such file" in err
    np.savez(tmp_path / "split.npz", train=np.arange(5), test=np.arange(5, 9))
    status, _, err = cli("train", *QUICK, "--data", "mnist", "--split-indices",
                         tmp_path / "split.npz", "--out", tmp_path / "m.npz")
    assert status == 1 and "--split t10k" in err and "Traceback" not in err
