"""Saving and loading models and masks: exact round trips, atomic writes, foreign files."""
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import io, nn
from nnprune.models import lenet_300_100, simple_cnn
from nnprune.train import predict

pytestmark = pytest.mark.io


def bn_model(seed=0):
    """A small CNN with every kind of state: weights, biases, BatchNorm buffers."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, (3, 2), padding=1, rng=seed), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=seed + 1))
    rng = np.random.default_rng(seed)
    bn = model[1]
    bn.running_mean[...] = rng.standard_normal(4)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 4)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, 4)
    return model


def batch(seed=0, shape=(5, 1, 8, 8)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    masks_a = {n: p.mask for n, p in a.named_parameters()}
    masks_b = {n: p.mask for n, p in b.named_parameters()}
    for name in masks_a:
        assert (masks_a[name] is None) == (masks_b[name] is None), name
        if masks_a[name] is not None:
            np.testing.assert_array_equal(masks_a[name], masks_b[name], err_msg=name)
    assert a.config() == b.config()


@pytest.mark.parametrize("build", [
    lambda: lenet_300_100(in_channels=1, input_size=8, seed=3),
    lambda: simple_cnn(in_channels=1, input_size=8, seed=4),
    bn_model,
])
def test_round_trip_gives_identical_outputs_and_state(tmp_path, build):
    """save → load rebuilds the architecture with the very same weights, buffers and logits."""
    model = build()
    path = tmp_path / "model.npz"
    io.save(path, model, {"accuracy": 0.97, "sparsity": [0.5, 0.9], "name": "digits"})
    loaded, metadata = io.load(path)
    assert metadata == {"accuracy": 0.97, "sparsity": [0.5, 0.9], "name": "digits"}
    assert_same_model(model, loaded)
    x = batch()
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))


def test_masks_are_saved_and_reattached(tmp_path):
    """A masked weight comes back with the same mask, zeros in place, and stays masked."""
    model = lenet_300_100(in_channels=1, input_size=8, seed=1)
    rng = np.random.default_rng(0)
    mask = (rng.random(model[1].weight.shape) > 0.7).astype(np.float32)
    model[1].weight.set_mask(mask)
    model[5].weight.set_mask(np.ones(model[5].weight.shape))
    io.save(tmp_path / "pruned.npz", model)
    loaded, metadata = io.load(tmp_path / "pruned.npz")
    assert metadata == {}
    assert_same_model(model, loaded)
    np.testing.assert_array_equal(loaded[1].weight.mask, mask)
    assert np.all(loaded[1].weight.data[mask == 0] == 0)
    assert loaded[3].weight.mask is None
    x = batch(1)
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))


def test_file_loads_without_pickle_and_has_the_documented_layout(tmp_path):
    """Every entry is a plain (non-object) array; keys follow param/, buffer/, mask/."""
    model = bn_model()
    model[0].weight.set_mask(np.ones(model[0].weight.shape))
    io.save(tmp_path / "m.npz", model, {"k": 1})
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    assert all(a.dtype != object for a in arrays.values())
    assert str(arrays["format"]) == "nnprune.model" and int(arrays["version"]) == 1
    assert json.loads(str(arrays["spec"])) == model.config()
    assert json.loads(str(arrays["metadata"])) == {"k": 1}
    expected = ({f"param/{n}" for n, _ in model.named_parameters()}
                | {f"buffer/{n}" for n, _ in model.named_buffers()} | {"mask/0.weight"}
                | {"format", "version", "spec", "metadata"})
    assert set(arrays) == expected
    np.testing.assert_array_equal(arrays["buffer/1.running_mean"], model[1].running_mean)


def test_float64_model_keeps_its_dtype(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64))
    io.save(tmp_path / "m.npz", model)
    loaded, _ = io.load(tmp_path / "m.npz")
    assert loaded[0].weight.dtype == np.float64
    assert_same_model(model, loaded)


# ---------------------------------------------------------------------- atomic writes
def test_error_mid_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    """A save that fails half-way leaves the old file byte-identical and no temporary file."""
    path = tmp_path / "model.npz"
    old = lenet_300_100(in_channels=1, input_size=8, seed=0)
    io.save(path, old, {"version": "old"})
    before = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save(path, lenet_300_100(in_channels=1, input_size=8, seed=1), {"version": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    loaded, metadata = io.load(path)
    assert metadata == {"version": "old"}
    assert_same_model(old, loaded)


def test_bad_metadata_writes_nothing(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="metadata must be JSON"):
        io.save(path, bn_model(), {"array": np.zeros(3)})
    assert os.listdir(tmp_path) == []


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    io.save(path, bn_model(0), {"run": 1})
    second = bn_model(5)
    io.save(path, second, {"run": 2})
    loaded, metadata = io.load(path)
    assert metadata == {"run": 2}
    assert_same_model(second, loaded)
    assert os.listdir(tmp_path) == ["m.npz"]


# ---------------------------------------------------------------------- foreign and broken files
def rewrite(src, dst, change):
    """Copy the arrays of ``src`` into a new .npz at ``dst`` after ``change(arrays)``."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    change(arrays)
    np.savez(dst, **arrays)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    io.save(path, bn_model(), {"ok": True})
    return path


def test_non_npz_files_are_rejected(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello, not an archive\n")
    with pytest.raises(ValueError, match="notes.npz.*not a readable .npz"):
        io.load(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz"):
        io.load(empty)
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(4))
    with pytest.raises(ValueError, match="array.npy.*single .npy array"):
        io.load(npy)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        io.load(tmp_path / "missing.npz")


def test_foreign_npz_without_the_format_tag_is_rejected(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weight=np.ones((2, 2)))
    with pytest.raises(ValueError, match="foreign.npz.*no format tag"):
        io.load(path)
    tagged = tmp_path / "other.npz"
    np.savez(tagged, format=np.array("someone.else"), version=np.array(1))
    with pytest.raises(ValueError, match="other.npz.*'someone.else'"):
        io.load(tagged)


UNPICKLED = []


class Trap:
    """An object whose unpickling would leave a trace in UNPICKLED."""

    def __reduce__(self):
        return UNPICKLED.append, ("unpickled",)


@pytest.mark.parametrize("loader", [io.load, io.load_masks])
def test_a_file_holding_a_pickle_is_refused_without_unpickling_it(tmp_path, saved, loader):
    """An object array in the archive (a pickle) is a clear ValueError naming the file, and
    nothing is unpickled: files are read with allow_pickle=False."""
    bad = tmp_path / "pickled.npz"
    rewrite(saved, bad, lambda a: a.update({"metadata": np.array([Trap()], dtype=object)}))
    with pytest.raises(ValueError, match="pickled.npz"):
        loader(bad)
    assert UNPICKLED == []


def test_masks_file_is_not_a_model_and_vice_versa(tmp_path, saved):
    masks = tmp_path / "masks.npz"
    io.save_masks(masks, {"w": np.ones(3)})
    with pytest.raises(ValueError, match="masks.npz.*nnprune.model"):
        io.load(masks)
    with pytest.raises(ValueError, match="good.npz.*nnprune.masks"):
        io.load_masks(saved)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_truncated_files_are_rejected(tmp_path, saved, keep):
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="cut.npz"):
        io.load(cut)


def test_corrupted_bytes_are_rejected(tmp_path, saved):
    """Flipping bytes inside the stored arrays fails the zip CRC check: a clear ValueError."""
    data = bytearray(saved.read_bytes())
    for i in range(200, len(data) // 2, 97):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.npz"):
        io.load(bad)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("param/5.weight"), "missing.*5.weight"),
    (lambda a: a.update({"param/5.weight": np.zeros((3, 3), np.float32)}), "shape"),
    (lambda a: a.update({"param/9.weight": np.zeros(3, np.float32)}), "unexpected.*9.weight"),
    (lambda a: a.update({"mask/7.weight": np.ones(3)}), "mask/7.weight names no parameter"),
    (lambda a: a.update({"mask/0.weight": np.ones(3)}), "mask/0.weight is invalid"),
    (lambda a: a.update({"mask/5.bias": np.full(10, 0.5)}), "mask/5.bias is invalid"),
    (lambda a: a.update({"spec": np.array('{"type": "Nope"}')}), "spec cannot be rebuilt"),
    (lambda a: a.update({"spec": np.array("{not json")}), "'spec' entry is not valid JSON"),
    (lambda a: a.pop("spec"), "'spec' entry is missing"),
    (lambda a: a.update({"metadata": np.array("[1, 2]")}), "metadata is not a JSON object"),
    (lambda a: a.update({"version": np.array(99)}), "version 99 is newer"),
    (lambda a: a.pop("version"), "version is missing"),
    (lambda a: a.update({"extra": np.zeros(1)}), "unexpected entry 'extra'"),
])
def test_spec_and_arrays_that_disagree_are_rejected(tmp_path, saved, change, message):
    bad = tmp_path / "edited.npz"
    rewrite(saved, bad, change)
    with pytest.raises(ValueError, match=f"edited.npz.*{message}"):
        io.load(bad)


def test_save_rejects_bad_arguments(tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="model must be an nnprune.nn.Module"):
        io.save(tmp_path / "m.npz", {"w": np.ones(2)})
    with pytest.raises(TypeError, match="cannot be saved.*config"):
        io.save(tmp_path / "m.npz", Custom())
    with pytest.raises(TypeError, match="metadata must be a dict"):
        io.save(tmp_path / "m.npz", bn_model(), metadata=[1, 2])
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- plain masks
@settings(max_examples=20)
@given(st.dictionaries(
    st.text(st.characters(codec="ascii", exclude_characters="/\x00"), min_size=1, max_size=12),
    st.tuples(st.lists(st.integers(1, 5), min_size=1, max_size=4),
              st.sampled_from([np.float32, np.float64, np.uint8, np.bool_]),
              st.integers(0, 2**16)),
    min_size=0, max_size=4))
def test_mask_dict_round_trip(spec):
    """load_masks(save_masks(m)) == m: same names, shapes, dtypes and values."""
    masks = {name: (np.random.default_rng(seed).random(shape) > 0.5).astype(dtype)
             for name, (shape, dtype, seed) in spec.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "masks.npz")
        io.save_masks(path, masks)
        back = io.load_masks(path)
    assert back.keys() == masks.keys()
    for name, mask in masks.items():
        assert back[name].dtype == mask.dtype and back[name].shape == mask.shape
        np.testing.assert_array_equal(back[name], mask)


def test_save_masks_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="masks must be a dict"):
        io.save_masks(tmp_path / "m.npz", [np.ones(2)])
    with pytest.raises(ValueError, match=r"masks\['w'\] must contain only 0 and 1"):
        io.save_masks(tmp_path / "m.npz", {"w": np.array([0.0, 0.5])})
    with pytest.raises(ValueError, match=r"masks\['s'\] must contain only 0 and 1"):
        io.save_masks(tmp_path / "m.npz", {"s": np.array(["a"])})
    with pytest.raises(TypeError, match="mask names must be non-empty strings"):
        io.save_masks(tmp_path / "m.npz", {3: np.ones(2)})
    assert os.listdir(tmp_path) == []
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, w=np.ones(2))
    with pytest.raises(ValueError, match="foreign.npz.*no format tag"):
        io.load_masks(foreign)


@pytest.mark.parametrize("call", [
    lambda: io.load(3),
    lambda: io.save(3.5, lenet_300_100(seed=0)),
    lambda: io.load_masks(None),
    lambda: io.save_masks(1, {"w": np.ones(2, dtype=bool)}),
])
def test_a_path_that_is_not_a_file_name_is_refused_by_name(call):
    with pytest.raises(TypeError, match="path must be a file name"):
        call()
