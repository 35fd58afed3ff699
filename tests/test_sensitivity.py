"""Sensitivity analysis: each layer pruned alone, the ratios each tolerates, and the CLI."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import models, train
from nnprune.experiment.runs import clone_model, fit_model
from nnprune.experiment.plots import sensitivity_plot
from nnprune.experiment.sensitivity import (layer_sensitivity, read_ratios, sensitivity_layers,
                                            tolerated_ratios, write_sensitivity)
from nnprune.prune import prune_model

pytestmark = pytest.mark.structured


@pytest.fixture(scope="module")
def trained(digits):
    model = models.simple_cnn(1, 10, 8, width=0.5, seed=0)
    fit_model(model, digits, epochs=2, lr=0.05)
    return model, digits


def test_ratio_zero_leaves_accuracy_unchanged_and_ratios_respect_the_tolerance(trained, tmp_path):
    """acc(0) is the dense accuracy for every layer; pruning a layer alone at its derived
    ratio keeps the accuracy within the tolerance on the same data."""
    model, data = trained
    test = (data.x_test, data.y_test)
    result = layer_sensitivity(model, test, ratios=[0.25, 0.5, 0.75], criterion="l1_norm")
    dense = train.evaluate(model, test)["accuracy"]
    assert list(result["curves"]) == ["0.weight", "3.weight", "7.weight"]
    for curve in result["curves"].values():
        assert [r for r, _ in curve] == [0.0, 0.25, 0.5, 0.75]
        assert curve[0][1] == dense
    for name in result["curves"]:  # ratio 0 through prune_model too: nothing changes
        copy = clone_model(model)
        prune_model(copy, "l1_norm", {name: 0.0}, "layer", "filter")
        assert train.evaluate(copy, test)["accuracy"] == dense
    tolerance = 0.05
    ratios = tolerated_ratios(result["curves"], result["accuracy_dense"], tolerance)
    for name, r in ratios.items():
        copy = clone_model(model)
        prune_model(copy, "l1_norm", {name: r}, "layer", "filter")
        assert train.evaluate(copy, test)["accuracy"] >= dense - tolerance - 1e-12
    path = write_sensitivity(tmp_path / "s.json", result, tolerance)
    assert read_ratios(path) == ratios
    assert sensitivity_plot(result, tmp_path / "s.png", tolerance=tolerance).stat().st_size > 0


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.lists(st.floats(0, 1), min_size=1, max_size=6), min_size=1),
       st.floats(0, 1), st.floats(0, 0.5))
def test_tolerated_ratio_is_the_last_ratio_of_the_first_run_within_tolerance(accs, dense, tol):
    """r = the largest grid ratio with every ratio up to it at ≥ dense − tol (0 if none)."""
    curves = {k: [[i / 10, a] for i, a in enumerate(v)] for k, v in accs.items()}
    got = tolerated_ratios(curves, dense, tol)
    for k, curve in curves.items():
        ok = [a >= dense - tol - 1e-12 for _, a in curve]
        n = ok.index(False) if False in ok else len(ok)
        assert got[k] == (curve[n - 1][0] if n else 0.0)


def test_residual_models_are_analysed_by_channel_group():
    model = models.resnet20(1, 10, 8, width=0.25)
    names = sensitivity_layers(model)
    assert names[0] == "0.weight" and "3.body.3.weight" not in names and len(names) == 12


def test_bad_input_is_refused(trained, tmp_path):
    model, data = trained
    test = (data.x_test, data.y_test)
    with pytest.raises(ValueError, match="ratios"):
        layer_sensitivity(model, test, ratios=[])
    with pytest.raises(ValueError, match="ratios"):
        layer_sensitivity(model, test, ratios=[1.5])
    with pytest.raises(ValueError, match="layers"):
        layer_sensitivity(model, test, layers=["9.weight"])
    with pytest.raises(ValueError, match="tolerance"):
        tolerated_ratios({"a": [[0.0, 1.0]]}, 1.0, -0.1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ratios": {}}))
    with pytest.raises(ValueError, match="sensitivity file"):
        read_ratios(bad)


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def saved(trained_file):
    return trained_file("simple_cnn")


def test_cli_sensitivity_then_prune_with_its_ratios(cli, saved, tmp_path):
    status, out, err = cli("sensitivity", saved, "--ratios", "0.25,0.5",
                           "--tolerance", "0.1", "--out", tmp_path / "s")
    assert status == 0, err
    content = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert (tmp_path / "s" / "sensitivity.png").exists()
    assert set(content["ratios"]) == {"0.weight", "3.weight", "7.weight"}
    status, out, err = cli("prune", saved, "--granularity", "filter", "--sparsity",
                           tmp_path / "s" / "sensitivity.json", "--finetune-epochs", "0",
                           "--quiet", "--out", tmp_path / "p.npz", "--json", tmp_path / "p.json")
    assert status == 0, err
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["layer_targets"] == content["ratios"]
    status, out, err = cli("prune", saved, "--granularity", "filter", "--sparsity",
                           "0.weight=0.5,3.weight=0.25", "--finetune-epochs", "0", "--quiet",
                           "--out", tmp_path / "q.npz", "--json", tmp_path / "q.json")
    assert status == 0, err
    layers = json.loads((tmp_path / "q.json").read_text())["layer_sparsity"]
    assert layers["0.weight"] == 0.5 and layers["3.weight"] == 0.25 and layers["7.weight"] == 0


@pytest.mark.parametrize("argv, message", [
    (["prune", "--sparsity", "0.weight=2"], "fraction"),
    (["prune", "--sparsity", "=0.5"], "layer=fraction"),
    (["prune", "--sparsity", "missing.json"], "sensitivity file"),
    (["prune", "--sparsity", "0.weight=0.5", "--schedule", "iterative"], "per-layer"),
    (["prune", "--sparsity", "0.weight=0.5", "--scope", "global"], "per-layer"),
    (["sensitivity", "--criterion", "taylor"], "gradients"),
    (["sensitivity", "--criterion", "fpgm", "--granularity", "weight"], "filter"),
    (["sensitivity", "--tolerance", "2"], "fraction"),
])
def test_cli_refuses_bad_options(cli, saved, tmp_path, argv, message):
    status, _, err = cli(argv[0], saved, *argv[1:], "--out", tmp_path / "o")
    assert status == 2 and message in err, err


def test_a_residual_group_is_pruned_alone_at_each_ratio():
    """The stem group of a ResNet (stem conv and every first-stage block's last conv) is
    pruned alone: at ratio 0 the accuracy is the dense one, and the curve has every ratio."""
    model = models.resnet20(1, 10, 8, width=0.25, seed=0).eval()
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(32, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 32))
    result = layer_sensitivity(model, data, ratios=[0.5, 1.0], layers=["0.weight"])
    curve = result["curves"]["0.weight"]
    assert [r for r, _ in curve] == [0.0, 0.5, 1.0]
    assert curve[0][1] == train.evaluate(model, data)["accuracy"]
