"""What the commands say and read: a saved model's metadata is checked into one line
naming the field; a folder given as a model is called a folder; --verify checks files on
disk; a failed --download is not answered with "pass --download"."""
import numpy as np
import pytest

from nnprune import io, nn
from nnprune.cli import main

pytestmark = pytest.mark.cli


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, f"expected one line, got {err!r}"
    return lines[0]


def tiny(path, **metadata):
    io.save(path, nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0)),
            {"model": "tiny", "dataset": "digits", **metadata})
    return path


@pytest.mark.parametrize("field, value", [
    ("data_seed", [1]), ("data_seed", -1), ("data_seed", True), ("input_shape", [1, 8]),
    ("input_shape", [1, 8, 10**9]), ("dataset", 3), ("train", {"seed": "x"}),
    ("num_classes", 0), ("width", "wide"), ("data_dir", 7),
])
@pytest.mark.parametrize("command", ["prune", "summary"])
def test_bad_metadata_is_one_line_naming_the_field(capsys, tmp_path, field, value, command):
    path = tiny(tmp_path / "m.npz", **{field: value})
    argv = [command, path] + (["--out", tmp_path / "p.npz"] if command == "prune" else [])
    status, _, err = run(capsys, *argv)
    line = one_line(err)
    assert status == 1 and f"'{field}'" in line and str(path) in line


@pytest.mark.parametrize("command", ["prune", "summary"])
def test_a_folder_given_as_a_model_is_called_a_folder(capsys, tmp_path, command):
    folder = tmp_path / "models.npz"
    folder.mkdir()
    argv = [command, folder] + (["--out", tmp_path / "p.npz"] if command == "prune" else [])
    status, _, err = run(capsys, *argv)
    line = one_line(err)
    assert status == 1 and "is a folder" in line and "no such file" not in line


def test_verify_is_passed_to_the_dataset(capsys, tmp_path, monkeypatch):
    seen = {}

    def mnist(**kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")
    monkeypatch.setattr("nnprune.data.DATASETS", {"mnist": mnist})
    status, _, err = run(capsys, "train", "--model", "lenet5", "--data", "mnist", "--verify",
                         "--out", tmp_path / "m.npz")
    assert status == 1 and "stop here" in err
    assert seen["verify"] is True


def test_a_failed_download_does_not_say_pass_download(capsys, tmp_path, monkeypatch):
    import importlib

    from nnprune.data.download import DatasetNotFoundError
    mnist_module = importlib.import_module("nnprune.data.mnist")

    def fail(urls, dest, sha256):
        raise DatasetNotFoundError(f"could not download {dest.name} into "
                                   f"{dest.parent}:\n  {urls[0]}: no network")
    monkeypatch.setattr(mnist_module, "fetch", fail)
    argv = ["train", "--model", "lenet5", "--data", "mnist", "--data-dir", tmp_path,
            "--out", tmp_path / "m.npz"]
    status, _, err = run(capsys, *argv, "--download")
    assert status == 1 and "no network" in err and "pass --download" not in err
    assert "download failed" in err and "mnist(" not in err
    status, _, err = run(capsys, *argv)
    assert status == 1 and "pass --download" in err and "mnist(" not in err
    assert "download=True" not in err
