"""Nothing a user saved is lost to a command's outputs, and an output that cannot be written
is refused before any work.

An output that is the same file as an input or as another output (through another spelling,
``..``, or a symbolic link) is refused with one line naming the option; ``--overwrite-input``
lets ``prune --out`` replace its input on purpose. Empty names, names ending in ``/`` and
folders that refuse new files are refused before data is loaded or a model trained."""
import os

import pytest

from nnprune import io, nn

pytestmark = pytest.mark.cli


@pytest.fixture
def no_work(monkeypatch):
    """Loading data or running the demo fails the test: refusals must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the output paths were checked")

    for target in ("nnprune.cli.inputs.load_data", "nnprune.experiment.demo.run_demo"):
        monkeypatch.setattr(target, refuse)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.npz"
    io.save(path, nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0)), {"model": "tiny"})
    return path


@pytest.mark.parametrize("argv, option", [
    (("summary", "{m}", "--json", "{m}"), "--json"),
    (("summary", "{m}", "--json", "{dir}/../{dirname}/m.npz"), "--json"),
    (("prune", "{m}", "--out", "{m}"), "--out"),
    (("prune", "{m}", "--out", "{link}"), "--out"),
    (("prune", "{m}", "--out", "{dir}/p.npz", "--json", "{m}"), "--json"),
    (("prune", "{m}", "--out", "{dir}/p.npz", "--json", "{dir}/./p.npz"), "--json"),
    (("export", "{m}", "--state-dict", "{m}"), "--state-dict"),
    (("export", "{m}", "--onnx", "{dir}/p.npz", "--state-dict", "{dir}/p.npz"), "--state-dict"),
])
def test_an_output_that_is_an_input_or_another_output_is_refused(cli, tmp_path, no_work,
                                                                  model_file, argv, option):
    link = tmp_path / "link.npz"
    link.symlink_to(model_file)
    before = model_file.read_bytes()
    argv = [a.format(m=model_file, dir=tmp_path, dirname=tmp_path.name, link=link)
            for a in argv]
    status, out, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 2 and out == ""
    assert f"argument {option}" in line
    assert "input" in line or "also given to" in line
    assert model_file.read_bytes() == before
    assert not (tmp_path / "p.npz").exists()


def test_overwrite_input_lets_prune_replace_its_input(cli, tmp_path, model_file):
    before = model_file.read_bytes()
    status, _, err = cli("prune", model_file, "--out", model_file, "--overwrite-input",
                         "--finetune-epochs", "0", "--sparsity", "0.5", "--quiet")
    assert status == 0, err
    assert model_file.read_bytes() != before
    model, _ = io.load(model_file)
    assert model[1].weight.mask is not None
    status, _, err = cli("prune", model_file, "--out", model_file, "--json", model_file,
                         "--overwrite-input")
    assert status == 2 and "also given to --out" in cli.one_line(err)


@pytest.mark.parametrize("argv, fragment", [
    (("train", "--model", "lenet_300_100", "--out", ""), "empty"),
    (("prune", "{m}", "--out", ""), "empty"),
    (("prune", "{m}", "--out", "{dir}/newdir/"), "path separator"),
    (("train", "--model", "lenet_300_100", "--out", "{dir}/newdir/"), "path separator"),
    (("summary", "{m}", "--json", "{m}/x.json"), "is a file"),
    (("sweep", "--model", "lenet_300_100", "--out", ""), "empty"),
])
def test_an_output_name_that_cannot_be_a_file_is_refused_first(cli, tmp_path, no_work,
                                                               model_file, argv, fragment):
    argv = [a.format(m=model_file, dir=tmp_path) for a in argv]
    status, _, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 2 and "argument --" in line and fragment in line
    assert not (tmp_path / "newdir").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder that refuses new files: read-only bits for a normal user; for root (who
    ignores them) /proc, where no process can create a file."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    elif os.path.isdir("/proc/self"):
        yield type(tmp_path)("/proc")
    else:
        pytest.skip("no folder refuses root here")


@pytest.mark.parametrize("argv", [
    ("train", "--model", "lenet_300_100", "--out", "{ro}/m.npz"),
    ("prune", "{m}", "--out", "{ro}/p.npz"),
    ("prune", "{m}", "--out", "{dir}/p.npz", "--json", "{ro}/sub/r.json"),
    ("summary", "{m}", "--json", "{ro}/s.json"),
    ("sweep", "--model", "{m}", "--out", "{ro}/sweep"),
    ("demo", "--quick", "--out", "{ro}/demo"),
    ("sensitivity", "{m}", "--out", "{ro}/sens"),
    ("export", "{m}", "--state-dict", "{ro}/s.npz"),
])
def test_a_read_only_folder_is_refused_before_any_work(cli, tmp_path, no_work, model_file,
                                                       read_only_folder, argv):
    argv = [a.format(m=model_file, dir=tmp_path, ro=read_only_folder) for a in argv]
    status, out, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 2 and "argument --" in line
    assert str(read_only_folder) in line and ".tmp" not in line
    assert not (tmp_path / "p.npz").exists()
