"""What a first-time user of the ``nnprune`` command types wrong: an output file that is a
folder, an output folder that is a file, a model file that is not an .npz, an unknown model
name to sweep. Each is refused with one line naming the argument, before any data is loaded
or any model trained."""
import pytest


pytestmark = pytest.mark.cli


@pytest.fixture
def no_data(monkeypatch):
    """Loading data fails the test: a refused output path must be refused before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the output path was checked")

    monkeypatch.setattr("nnprune.cli.inputs.load_data", refuse)


@pytest.mark.parametrize("argv, option", [
    (("train", "--model", "lenet_300_100", "--out", "{dir}", "--epochs", "1"), "--out"),
    (("prune", "{file}", "--out", "{dir}"), "--out"),
    (("prune", "{file}", "--out", "{file}.out", "--json", "{dir}"), "--json"),
    (("summary", "--model", "lenet5", "--json", "{dir}"), "--json"),
])
def test_an_output_file_that_is_a_folder_is_refused_first(cli, tmp_path, no_data, argv,
                                                          option):
    folder, model = tmp_path / "results", tmp_path / "model.npz"
    folder.mkdir()
    model.write_bytes(b"never read")
    argv = [a.format(dir=folder, file=model) for a in argv]
    status, out, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 2 and out == ""
    assert f"argument {option}" in line and str(folder) in line and "is a folder" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ("sweep", "--model", "lenet_300_100", "--out", "{file}"),
    ("demo", "--quick", "--out", "{file}"),
])
def test_an_output_folder_that_is_a_file_is_refused_first(cli, tmp_path, no_data, argv,
                                                          monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo ran before its output folder was checked")

    monkeypatch.setattr("nnprune.experiment.demo.run_demo", refuse)
    existing = tmp_path / "model.npz"
    existing.write_bytes(b"kept")
    status, _, err = cli(*[a.format(file=existing) for a in argv])
    line = cli.one_line(err)
    assert status == 2
    assert "argument --out" in line and str(existing) in line and "is a file" in line
    assert existing.read_bytes() == b"kept"


@pytest.mark.parametrize("command", ["prune", "summary"])
def test_a_text_file_given_as_a_model_gets_no_pickle_advice(cli, tmp_path, command):
    text = tmp_path / "notes.npz"
    text.write_text("hello\n")
    argv = [command, text] + (["--out", tmp_path / "x.npz"] if command == "prune" else [])
    status, _, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 1
    assert str(text) in line and "not a readable .npz file" in line and "b'hello" in line
    assert "pickle" not in line


def test_help_names_the_default_data_folder(cli):
    status, out, _ = cli("train", "--help")
    assert status == 0
    data_dir = out.split("--data-dir DIR", 2)[2].split("--download")[0]
    assert "~/.cache/nnprune/<dataset>" in " ".join(data_dir.split())


def test_an_unknown_model_to_sweep_is_a_usage_error(cli, tmp_path, no_data):
    status, _, err = cli("sweep", "--model", "resnet", "--out", tmp_path / "sweep")
    line = cli.one_line(err)
    assert status == 2
    assert "argument --model" in line and "'resnet'" in line and "lenet_300_100" in line
    assert not (tmp_path / "sweep").exists()
