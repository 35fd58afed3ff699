"""``nnprune prune`` and ``nnprune sweep`` with the filter criteria and --layer-norm."""
import json

import pytest

from nnprune import io

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def cnn(trained_file):
    return trained_file("simple_cnn", seed=1)


@pytest.mark.parametrize("criterion", ["fpgm", "apoz", "taylor_group"])
def test_prune_with_a_filter_criterion_and_shrink(cli, cnn, tmp_path, criterion):
    """Half the filters of each hidden layer go by the criterion, globally with L2-normalised
    layer scores; the shrunk file has half the widths and the record names the criterion."""
    out, js = tmp_path / "small.npz", tmp_path / "r.json"
    status, text, err = cli("prune", cnn, "--criterion", criterion, "--granularity",
                            "filter", "--scope", "global", "--layer-norm", "l2",
                            "--sparsity", "0.5", "--finetune-epochs", "0", "--quiet",
                            "--shrink", "--out", out, "--json", js)
    assert status == 0, err
    result = json.loads(js.read_text())
    assert result["criterion"] == criterion and result["layer_norm"] == "l2"
    small, _ = io.load(out)
    widths = sum(result["widths"][k][1] for k in ("0", "3", "7"))
    assert widths == (8 + 16 + 64) // 2  # global: half of all the hidden units
    assert sum(v[1] for v in result["widths"].values()) == widths + 10


@pytest.mark.parametrize("argv, message", [
    (["--criterion", "fpgm"], "--granularity filter"),
    (["--criterion", "bn_gamma", "--granularity", "kernel"], "--granularity filter"),
    (["--layer-norm", "l2"], "--layer-norm"),
    (["--criterion", "fpgm", "--granularity", "filter", "--schedule", "gradual"], "oneshot"),
    (["--layer-norm", "l9", "--granularity", "filter"], "invalid choice"),
])
def test_prune_refuses_options_that_do_not_fit(cli, cnn, tmp_path, argv, message):
    status, _, err = cli("prune", cnn, *argv, "--out", tmp_path / "x.npz")
    assert status == 2 and message in err


def test_prune_says_which_layer_has_no_batchnorm(cli, cnn, tmp_path):
    status, _, err = cli("prune", cnn, "--criterion", "bn_gamma", "--granularity",
                         "filter", "--quiet", "--out", tmp_path / "x.npz")
    assert status == 1 and "0.weight" in err and "BatchNorm" in err


def test_sweep_runs_filter_criteria(cli, cnn, tmp_path):
    status, out, err = cli("sweep", "--model", cnn, "--criteria", "l1_norm,fpgm",
                           "--granularity", "filter", "--sparsities", "0.5",
                           "--finetune-epochs", "0", "--quiet", "--out", tmp_path / "s")
    assert status == 0, err
    records = json.loads((tmp_path / "s" / "results.json").read_text())["records"]
    assert sorted(r["criterion"] for r in records) == ["fpgm", "l1_norm"]
    status, _, err = cli("sweep", "--model", cnn, "--criteria", "fpgm",
                         "--out", tmp_path / "t")
    assert status == 2 and "--granularity filter" in err
