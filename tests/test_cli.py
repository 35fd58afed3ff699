"""The ``nnprune`` command: every subcommand's help, a train → summary → prune → summary round
trip through files, a tiny sweep, the bench delegation, and bad arguments answered with one
line and an exit status (2 for argparse, 1 for the library), never a traceback."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from nnprune import io
from nnprune.cli import main

pytestmark = pytest.mark.cli

COMMANDS = ("train", "summary", "prune", "sweep", "demo")


def assert_one_line_error(err, *fragments):
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got {err!r}"
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


# ---------------------------------------------------------------------- help
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(cli, command):
    status, out, _ = cli(command, "--help")
    assert status == 0
    assert out.startswith(f"usage: nnprune {command}")
    assert "examples:" in out and f"nnprune {command}" in out.split("examples:")[1]


def test_top_level_help_lists_the_commands(cli):
    status, out, _ = cli("--help")
    assert status == 0
    for command in (*COMMANDS, "bench"):
        assert command in out


def test_python_m_nnprune_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "nnprune", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("nnprune ")


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("argv, fragment", [
    (("prune", "m.npz", "--out", "x.npz", "--sparsity", "1.5"), "--sparsity"),
    (("prune", "m.npz", "--out", "x.npz", "--granularity", "3:2"), "--granularity"),
    (("prune", "m.npz", "--out", "x.npz", "--criterion", "size"), "--criterion"),
    (("prune", "m.npz"), "--out"),
    (("train", "--model", "resnet", "--out", "x.npz"), "--model"),
    (("train", "--model", "lenet5", "--epochs", "0", "--out", "x.npz"), "--epochs"),
    (("sweep", "--model", "lenet5", "--out", "d", "--sparsities", "0.5,x"), "--sparsities"),
    (("sweep", "--model", "lenet5", "--out", "d", "--criteria", "magnitude,size"), "--criteria"),
    (("summary", "--model", "lenet5", "--input-shape", "1", "28"), "--input-shape"),
    (("demo", "--seed", "-1"), "--seed"),
    (("frobnicate",), "frobnicate"),
    ((), "COMMAND"),
])
def test_bad_arguments_exit_2_with_one_line(cli, argv, fragment):
    status, out, err = cli(*argv)
    assert status == 2
    assert_one_line_error(err, fragment)


def test_summary_needs_a_file_or_a_model(cli, tmp_path):
    status, _, err = cli("summary")
    assert status == 2
    assert_one_line_error(err, "--model")


def test_library_errors_exit_1_with_one_line(cli, tmp_path):
    status, _, err = cli("summary", tmp_path / "missing.npz")
    assert status == 1
    assert_one_line_error(err, "nnprune: error:", "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    status, _, err = cli("prune", tmp_path / "junk.npz", "--out", tmp_path / "o.npz")
    assert status == 1
    assert_one_line_error(err, "nnprune: error:", "junk.npz")
    assert not (tmp_path / "o.npz").exists()


def test_missing_dataset_files_say_how_to_get_them(cli, tmp_path):
    status, _, err = cli("train", "--model", "lenet5", "--data", "mnist", "--data-dir",
                         tmp_path, "--epochs", "1", "--out", tmp_path / "m.npz")
    assert status == 1
    assert "Traceback" not in err
    assert err.startswith("nnprune: error:") and "--download" in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_diverged_training_is_reported_and_not_saved(cli, tmp_path):
    status, _, err = cli("train", "--model", "lenet_300_100", "--epochs", "1", "--lr",
                         "1e4", "--width", "0.2", "--batch-size", "256", "--quiet",
                         "--out", tmp_path / "m.npz")
    assert status == 1
    assert "training diverged" in err and "--lr" in err and "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------- round trip
@pytest.fixture(scope="module")
def trained(trained_file):
    """An MLP trained one epoch on the digits by ``nnprune train``."""
    return trained_file("lenet_300_100", seed=1)


def test_train_saves_the_model_with_its_test_accuracy(trained):
    model, metadata = io.load(trained)
    assert metadata["model"] == "lenet_300_100" and metadata["dataset"] == "digits"
    assert metadata["input_shape"] == [1, 8, 8] and metadata["data_seed"] == 1
    assert 0.5 < metadata["test_accuracy"] <= 1.0
    assert len(metadata["history"]["epochs"]) == 1
    assert model[1].weight.shape == (150, 64)  # width 0.5: 300 → 150 units


def test_summary_of_a_file_prints_the_counts(cli, trained):
    status, out, _ = cli("summary", trained)
    assert status == 0
    weights = 64 * 150 + 150 * 50 + 50 * 10
    params = weights + 150 + 50 + 10
    assert f"{params:,}" in out and f"{weights:,}" in out
    assert "1×8×8" in out


def test_summary_of_a_builtin_model_writes_json(cli, tmp_path):
    status, out, _ = cli("summary", "--model", "lenet5", "--json", tmp_path / "c.json")
    assert status == 0
    counts = json.loads((tmp_path / "c.json").read_text())
    assert counts["totals"]["params"] == 431080 and counts["totals"]["macs"] == 2293000
    assert "431,080" in out


def test_prune_round_trip_through_files(cli, trained, tmp_path):
    """prune writes a model whose masks hold the sparsity asked for, and summary sees it."""
    out_path, json_path = tmp_path / "pruned.npz", tmp_path / "result.json"
    status, out, err = cli("prune", trained, "--criterion", "magnitude", "--sparsity",
                           "0.8", "--scope", "layer", "--finetune-epochs", "1", "--quiet",
                           "--out", out_path, "--json", json_path)
    assert status == 0, err
    model, metadata = io.load(out_path)
    for name in ("1.weight", "3.weight", "5.weight"):
        p = dict(model.named_parameters())[name]
        assert p.mask is not None
        k = int(np.floor(0.8 * p.size + 0.5))
        assert int(np.count_nonzero(p.mask == 0)) == k
        assert np.all(p.data[p.mask == 0] == 0)
    result = json.loads(json_path.read_text())
    # evaluated on the split the model was trained with (seed 1), not the default seed 0's
    assert result["accuracy_dense"] == io.load(trained)[1]["test_accuracy"]
    assert "1.weight" in out and "accuracy" in out
    assert metadata["pruning"] == result
    status, out, _ = cli("summary", out_path)
    assert status == 0
    nonzero = sum(int(np.count_nonzero(p.data)) for p in model.parameters())
    assert f"{nonzero:,}" in out


@pytest.mark.parametrize("schedule, extra", [
    ("iterative", ["--rounds", "2"]), ("gradual", []), ("init", []),
    ("lottery", ["--rounds", "2"]),
])
def test_every_schedule_reaches_its_target(cli, trained, tmp_path, schedule, extra):
    """Each schedule ends with the weights at the target sparsity (layer scope: every layer)
    and records which schedule ran."""
    out_path = tmp_path / f"{schedule}.npz"
    status, out, err = cli("prune", trained, "--schedule", schedule, "--sparsity", "0.6",
                           "--finetune-epochs", "1", "--quiet", "--out", out_path, *extra)
    assert status == 0, err
    model, metadata = io.load(out_path)
    assert metadata["pruning"]["schedule"] == schedule
    for name in ("1.weight", "3.weight", "5.weight"):
        p = dict(model.named_parameters())[name]
        zeros = int(np.count_nonzero(p.data == 0))
        assert zeros == int(np.floor(0.6 * p.size + 0.5)), (schedule, name, zeros, p.size)
    assert f"{schedule} schedule" in out


def test_n_m_granularity_fixes_the_sparsity(cli, trained, tmp_path):
    """1:2 without --sparsity: every 2 consecutive inputs keep exactly 1 weight (the input
    sizes 64, 150 and 50 are even); a sparsity that disagrees with N:M is refused."""
    status, _, err = cli("prune", trained, "--granularity", "1:2", "--finetune-epochs",
                         "0", "--out", tmp_path / "nm.npz")
    assert status == 0, err
    model, metadata = io.load(tmp_path / "nm.npz")
    assert metadata["pruning"]["sparsity"] == 0.5
    for layer in (model[1], model[3], model[5]):
        w = layer.weight.data
        pairs = w.reshape(w.shape[0], -1, 2)
        np.testing.assert_array_equal(np.count_nonzero(pairs, axis=2), 1)
    status, _, err = cli("prune", trained, "--granularity", "1:2", "--sparsity", "0.9",
                         "--out", tmp_path / "x.npz")
    assert status == 2  # an option error, refused before the model is read
    assert_one_line_error(err, "1:2", "argument --sparsity")


def test_sweep_writes_results_report_and_figures(cli, trained, tmp_path):
    status, out, err = cli("sweep", "--model", trained, "--criteria", "magnitude,random",
                           "--sparsities", "0.5,0.9", "--scope", "global,layer",
                           "--finetune-epochs", "1", "--quiet", "--out", tmp_path / "s")
    assert status == 0, err
    data = json.loads((tmp_path / "s" / "results.json").read_text())
    records = data["records"]
    assert len(records) == 2 * 2 * 2
    assert {(r["criterion"], r["scope"], r["sparsity"]) for r in records} == {
        (c, s, p) for c in ("magnitude", "random") for s in ("global", "layer")
        for p in (0.5, 0.9)}
    for r in records:
        assert abs(r["sparsity_reached"] - r["sparsity"]) < 0.01
        assert r["accuracy_after_finetune"] is not None and r["nonzero_params"] < r["params"]
    report = (tmp_path / "s" / "report.md").read_text()
    figures = sorted(p.name for p in (tmp_path / "s" / "figures").iterdir())
    assert figures and all(f"figures/{name}" in report for name in figures)
    assert f"{100 * records[0]['accuracy_before_finetune']:.1f}%" in report


@pytest.fixture(scope="module")
def trained_cnn(trained_file):
    """The small CNN (convs 0.weight (8, 1, 3, 3), 3.weight (16, 8, 3, 3); linears 7.weight,
    9.weight) trained one epoch on the digits."""
    return trained_file("simple_cnn")


def test_prune_fine_tunes_with_a_penalty_and_the_rate_given(cli, trained, tmp_path):
    """--l2 and --lr reach the fine-tuning (the record names them); --l1 and --l2 together
    are refused."""
    json_path = tmp_path / "r.json"
    status, _, err = cli("prune", trained, "--sparsity", "0.7", "--l2", "1e-4",
                         "--lr", "0.005", "--finetune-epochs", "1", "--quiet",
                         "--out", tmp_path / "p.npz",
                         "--json", json_path)
    assert status == 0, err
    result = json.loads(json_path.read_text())
    assert result["regularizer"] == "l2 0.0001"
    assert result["lr"] == 0.005
    status, _, err = cli("prune", trained, "--l1", "1e-4", "--l2", "1e-4", "--out",
                         tmp_path / "x.npz")
    assert status == 2
    assert_one_line_error(err, "--l2", "--l1")


def test_kernel_granularity_prunes_whole_conv_kernels_and_leaves_linears_dense(
        cli, trained_cnn, trained, tmp_path):
    """Every kh×kw kernel of a conv weight is all kept or all pruned, ⌊s·O·I + ½⌋ of them
    pruned; the linear weights, which have no kernels, stay dense and the output says so.
    A model without any conv weight is refused with a one-line error."""
    status, out, err = cli("prune", trained_cnn, "--granularity", "kernel",
                           "--sparsity", "0.5", "--finetune-epochs", "0", "--out",
                           tmp_path / "k.npz")
    assert status == 0, err
    assert "kernel granularity does not fit 7.weight, 9.weight: left dense" in out
    model, metadata = io.load(tmp_path / "k.npz")
    params = dict(model.named_parameters())
    for name in ("0.weight", "3.weight"):
        alive = np.count_nonzero(params[name].mask, axis=(2, 3))  # (O, I) kept taps per kernel
        assert set(np.unique(alive)) <= {0, 9}
        o, i = alive.shape
        assert int(np.count_nonzero(alive == 0)) == int(np.floor(0.5 * o * i + 0.5))
    assert params["7.weight"].mask is None and params["9.weight"].mask is None
    assert metadata["pruning"]["exclude"] == ["7.weight", "9.weight"]
    status, _, err = cli("prune", trained, "--granularity", "kernel", "--out",
                         tmp_path / "x.npz")
    assert status == 2  # a usage error, worded for the command line
    assert_one_line_error(err, "argument --granularity", "'kernel' needs conv weights",
                          "--granularity weight")


def test_n_m_leaves_the_layers_it_cannot_group_dense(cli, trained_cnn, tmp_path):
    """2:4 along the input channels: conv 0 (I = 1) cannot be grouped and stays dense, every
    other weight keeps exactly 2 of each 4 consecutive inputs."""
    status, out, err = cli("prune", trained_cnn, "--granularity", "2:4",
                           "--finetune-epochs", "0", "--out", tmp_path / "nm.npz")
    assert status == 0, err
    assert "2:4 granularity does not fit 0.weight: left dense" in out
    model, _ = io.load(tmp_path / "nm.npz")
    params = dict(model.named_parameters())
    assert params["0.weight"].mask is None
    for name in ("3.weight", "7.weight", "9.weight"):
        groups = np.moveaxis(params[name].mask, 1, -1).reshape(-1, 4)
        np.testing.assert_array_equal(groups.sum(axis=1), 2)


def test_prune_reads_the_data_the_model_was_trained_on(cli, tmp_path, monkeypatch):
    """train records the data folder for information; prune reuses the saved dataset, split
    and split seed, but reads the folder given with --data-dir (or the default cache), never
    the one the file names: a file does not choose which folder is read or created."""
    status, _, err = cli("train", "--model", "lenet_300_100", "--epochs", "1",
                         "--width", "0.2", "--data-dir", tmp_path, "--quiet",
                         "--out", tmp_path / "m.npz")
    assert status == 0, err
    model, metadata = io.load(tmp_path / "m.npz")
    assert metadata["data_dir"] == str(tmp_path.resolve())
    io.save(tmp_path / "mnist.npz", model, {**metadata, "dataset": "mnist", "data_seed": 3,
                                            "data_split": "t10k", "data_dir": "/data/mnist"})

    def load_data(name, *, data_dir, download, split, seed, **options):
        raise ValueError(f"asked for {name} from {data_dir}, split {split}, seed {seed}")
    monkeypatch.setattr("nnprune.cli.inputs.load_data", load_data)
    status, _, err = cli("prune", tmp_path / "mnist.npz", "--out", tmp_path / "p.npz")
    assert status == 1
    assert_one_line_error(err, "asked for mnist from None, split t10k, seed 3")
    status, _, err = cli("prune", tmp_path / "mnist.npz", "--data-dir", "/elsewhere",
                         "--out", tmp_path / "p.npz")
    assert_one_line_error(err, "asked for mnist from /elsewhere, split t10k, seed 3")


def test_sweep_refuses_a_granularity_that_fixes_the_sparsity(cli, trained, tmp_path):
    status, _, err = cli("sweep", "--model", trained, "--granularity", "2:4",
                         "--out", tmp_path / "s")
    assert status == 1
    assert_one_line_error(err, "'2:4' fixes the sparsity")


# ---------------------------------------------------------------------- bench
def test_bench_is_delegated_to_nnprune_bench(cli, monkeypatch):
    """``nnprune bench`` runs nnprune.bench with the parsed args; the other commands (and
    --help) never import the benchmarks."""
    monkeypatch.delitem(sys.modules, "nnprune.bench", raising=False)
    status, out, _ = cli("--help")
    assert status == 0 and "nnprune.bench" not in sys.modules
    seen = {}
    fake = types.ModuleType("nnprune.bench")

    def fake_run(args):
        seen["repeat"], seen["vgg_width"] = args.repeat, args.vgg_width
        return 0
    fake.run = fake_run
    monkeypatch.setitem(sys.modules, "nnprune.bench", fake)
    assert main(["bench", "--repeat", "3", "--vgg-width", "0.5"]) == 0
    assert seen == {"repeat": 3, "vgg_width": 0.5}


def test_bench_help_lists_its_options(cli):
    status, out, _ = cli("bench", "--help")
    assert status == 0 and out.startswith("usage: nnprune bench")
    assert "--repeat" in out


@pytest.mark.parametrize("option, value", [("--repeat", "0"), ("--threads", "-1"),
                                           ("--vgg-width", "0"), ("--vgg-samples", "x"),
                                           ("--epochs", "1.5")])
def test_bench_refuses_bad_options_before_importing_the_benchmarks(cli, monkeypatch, option,
                                                                    value):
    monkeypatch.setitem(sys.modules, "nnprune.bench", None)  # would fail if imported
    status, _, err = cli("bench", option, value)
    assert status == 2 and f"argument {option}" in err and value in err


def test_bench_reports_when_it_is_unavailable(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "nnprune.bench", None)  # import fails
    status, _, err = cli("bench")
    assert status == 1
    assert_one_line_error(err, "bench")
