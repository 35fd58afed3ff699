"""Files that are not what the loader expects get an error naming the file and what it holds
(never NumPy's advice to unpickle it), and a save into a folder fails before writing."""
import numpy as np
import pytest

from nnprune import io, nn
from nnprune.files import atomic_open, atomic_write_text

pytestmark = pytest.mark.io


@pytest.mark.parametrize("load", [io.load, io.load_masks])
@pytest.mark.parametrize("content, found", [(b"hello\n", "it starts with b'hello"),
                                            (b"", "it is empty"),
                                            (b"\x80\x04K\x01.", "it starts with b'\\x80")],
                         ids=["text", "empty", "pickle"])
def test_a_file_that_is_not_a_zip_is_named_without_pickle_advice(tmp_path, load, content,
                                                                   found):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "not a readable .npz file" in message and found in message
    assert "pickle" not in message


def test_a_single_npy_array_is_still_told_apart(tmp_path):
    path = tmp_path / "weights.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        io.load(path)


def test_saving_onto_a_folder_names_the_folder_and_leaves_nothing(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        io.save(folder, nn.Sequential(nn.Linear(2, 1, rng=0)))
    assert str(folder) in str(info.value) and "is a folder" in str(info.value)
    assert ".tmp" not in str(info.value)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write_text(folder, "text")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        with atomic_open(folder):
            pass
