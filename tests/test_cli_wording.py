"""What the commands say and read: a saved model's metadata is checked into one line
naming the field; a folder given as a model is called a folder; --verify checks files on
disk; a failed --download is not answered with "pass --download"."""
import numpy as np
import pytest

from nnprune import io, nn

pytestmark = pytest.mark.cli


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
def test_bad_metadata_is_one_line_naming_the_field(cli, tmp_path, field, value, command):
    path = tiny(tmp_path / "m.npz", **{field: value})
    argv = [command, path] + (["--out", tmp_path / "p.npz"] if command == "prune" else [])
    status, _, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 1 and f"'{field}'" in line and str(path) in line


@pytest.mark.parametrize("command", ["prune", "summary"])
def test_a_folder_given_as_a_model_is_called_a_folder(cli, tmp_path, command):
    folder = tmp_path / "models.npz"
    folder.mkdir()
    argv = [command, folder] + (["--out", tmp_path / "p.npz"] if command == "prune" else [])
    status, _, err = cli(*argv)
    line = cli.one_line(err)
    assert status == 1 and "is a folder" in line and "no such file" not in line


def test_verify_is_passed_to_the_dataset(cli, tmp_path, monkeypatch):
    seen = {}

    def mnist(**kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")
    monkeypatch.setattr("nnprune.data.DATASETS", {"mnist": mnist})
    status, _, err = cli("train", "--model", "lenet5", "--data", "mnist", "--verify",
                         "--out", tmp_path / "m.npz")
    assert status == 1 and "stop here" in err
    assert seen["verify"] is True


def test_a_failed_download_does_not_say_pass_download(cli, tmp_path, monkeypatch):
    import importlib

    from nnprune.data.download import DatasetNotFoundError
    mnist_module = importlib.import_module("nnprune.data.mnist")

    def fail(urls, dest, sha256, advice=""):
        raise DatasetNotFoundError(f"could not download {dest.name} into "
                                   f"{dest.parent}:\n  {urls[0]}: no network")
    monkeypatch.setattr(mnist_module, "fetch", fail)
    argv = ["train", "--model", "lenet5", "--data", "mnist", "--data-dir", tmp_path,
            "--out", tmp_path / "m.npz"]
    status, _, err = cli(*argv, "--download")
    assert status == 1 and "no network" in err and "pass --download" not in err
    assert "download failed" in err and "mnist(" not in err
    status, _, err = cli(*argv)
    assert status == 1 and "pass --download" in err and "mnist(" not in err
    assert "download=True" not in err


@pytest.mark.parametrize("argv, option", [
    (("--schedule", "gradual", "--finetune-epochs", "0"), "--finetune-epochs"),
    (("--schedule", "lottery", "--finetune-epochs", "0"), "--finetune-epochs"),
    (("--granularity", "2:4", "--sparsity", "0.9"), "--sparsity"),
    (("--granularity", "kernel"), "--granularity"),
])
def test_schedule_and_granularity_conflicts_are_worded_for_the_command_line(
        cli, tmp_path, argv, option):
    path = tiny(tmp_path / "m.npz")
    status, _, err = cli("prune", path, "--out", tmp_path / "p.npz", *argv)
    line = cli.one_line(err)
    assert status == 2 and f"argument {option}" in line
    for python_word in ("finetune_epochs", "None", "sparsity=", "use granularity"):
        assert python_word not in line


def test_prune_and_sweep_share_the_default_scope_and_finetune_lr(cli, monkeypatch):
    parsed = []
    for command in ("prune", "sweep"):  # each command's handler, replaced: the parsed options
        monkeypatch.setattr(f"nnprune.cli.{command}_command.run",
                            lambda args: parsed.append(args) or 0)
    assert cli("prune", "m.npz", "--out", "p.npz")[0] == 0
    assert cli("sweep", "--model", "m.npz", "--out", "d")[0] == 0
    assert cli("prune", "m.npz", "--out", "p", "--finetune-lr", "0.3")[0] == 0
    prune, sweep, faster = parsed
    assert [prune.scope] == sweep.scope
    assert prune.lr == sweep.finetune_lr
    assert faster.lr == 0.3


@pytest.mark.parametrize("option", [["--epochs", "3"], ["--lr", "0.5"], ["--lr=0.5"]])
def test_sweep_of_a_saved_model_refuses_training_options(cli, tmp_path, option):
    path = tiny(tmp_path / "m.npz")
    status, _, err = cli("sweep", "--model", path, "--out", tmp_path / "s", *option)
    line = cli.one_line(err)
    assert status == 2 and option[0].split("=")[0] in line and "--finetune-epochs" in line
    assert not (tmp_path / "s").exists()


def test_repeated_sparsities_and_criteria_run_once(cli, tmp_path, monkeypatch):
    from types import SimpleNamespace

    seen = {}
    monkeypatch.setattr("nnprune.cli.inputs.load_data",
                        lambda name, **kwargs: SimpleNamespace(name=name, input_shape=(1, 8, 8)))

    def sweep(trained, data, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")
    monkeypatch.setattr("nnprune.experiment.sweep.sweep", sweep)
    path = tiny(tmp_path / "m.npz")
    status, _, err = cli("sweep", "--model", path, "--out", tmp_path / "s",
                         "--sparsities", "0.5,0.9,0.5", "--criteria", "random,magnitude,random",
                         "--scope", "layer,layer")
    assert status == 1 and "stop here" in err
    assert seen["sparsities"] == [0.5, 0.9] and seen["criteria"] == ["random", "magnitude"]
    assert seen["scopes"] == ["layer"]


@pytest.mark.report
def test_a_reused_output_folder_keeps_only_this_runs_figures(tmp_path, monkeypatch):
    from nnprune.experiment.sweep import write_outputs
    from strategies import pruning_records
    from hypothesis import find

    def fake_plot(rows, path, **kwargs):  # the figures' content does not matter here
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
        return path
    monkeypatch.setattr("nnprune.experiment.plots.accuracy_vs_sparsity", fake_plot)
    monkeypatch.setattr("nnprune.experiment.plots.layer_sparsity_bars", fake_plot)
    first = find(pruning_records(models=("mlp",)), lambda r: len(r) > 0)
    second = [{**r, "model": "cnn"} for r in first]
    mine = tmp_path / "figures" / "my_notes.png"
    write_outputs(tmp_path, first)
    old = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert old and all("mlp" in name for name in old)
    mine.write_bytes(b"not nnprune's")
    paths = write_outputs(tmp_path, second)
    left = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert left == sorted([p.name for k, p in paths.items() if k.startswith("figures/")]
                          + ["my_notes.png"])
    assert not any("mlp" in name for name in left)


@pytest.mark.masks
def test_global_scope_keeps_one_weight_per_layer_unless_min_keep_is_0(cli, tmp_path):
    """The README's statement: sparsity 1.0 in global scope leaves one weight per layer;
    --min-keep 0 prunes them all."""
    path = tmp_path / "mlp.npz"
    io.save(path, nn.Sequential(nn.Flatten(), nn.Linear(64, 12, rng=0), nn.ReLU(),
                                nn.Linear(12, 10, rng=1)), {"dataset": "digits"})
    for min_keep, zeros in (("1", 64 * 12 + 12 * 10 - 2), ("0", 64 * 12 + 12 * 10)):
        out = tmp_path / f"p{min_keep}.npz"
        status, _, err = cli("prune", path, "--scope", "global", "--sparsity", "1",
                             "--finetune-epochs", "0", "--min-keep", min_keep, "--quiet",
                             "--out", out)
        assert status == 0, err
        model, _ = io.load(out)
        assert sum(int((p.mask == 0).sum()) for p in model.parameters()
                   if p.mask is not None) == zeros
