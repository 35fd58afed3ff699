"""obd and obs on models: prune_model, layer-wise OBS with calibration, workflows, sweep, CLI."""
import json

import numpy as np
import pytest

from nnprune import Tensor, nn
from nnprune.cli import main
from nnprune.curvature_diag import gauss_newton_diagonal
from nnprune.data import Dataset
from nnprune.experiment import workflows
from nnprune.experiment.second_order import SecondOrder, split_variant
from nnprune.experiment.sweep import sweep
from nnprune.prune import compute_scores, granularity_mask, prune_model
from nnprune.prune.layerwise import ObsSettings, layer_hessian, obs_prune_model
from nnprune.prune.obc import damp, refit_rows

pytestmark = pytest.mark.hessian


def mlp(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8, rng=rng, dtype=dtype), nn.ReLU(),
                          nn.Linear(8, 6, rng=rng, dtype=dtype), nn.Tanh(),
                          nn.Linear(6, 3, rng=rng, dtype=dtype))
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.data[...] = rng.uniform(-0.3, 0.3, p.shape)
    return model


def cnn(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(4, 4, (2, 3), padding=1, rng=rng, dtype=np.float64),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 2, 8, rng=rng, dtype=np.float64), nn.ReLU(),
                         nn.Linear(8, 3, rng=rng, dtype=np.float64))


def samples(shape, n=64, seed=0, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), rng.integers(0, k, n)


def test_obd_scores_group_saliency_as_the_sum_at_every_granularity():
    """prune_model('obd') prunes what ½ h w² summed over each group ranks lowest."""
    model = cnn()
    x, y = samples((4, 5, 4))
    diag = gauss_newton_diagonal(model, x, y)
    for granularity in ("weight", "kernel", "filter", "channel"):
        copy = cnn()
        name = "0.weight"
        saliency = compute_scores("obd", {name: copy[0].weight.data}, hessian_diag=diag)[name]
        expected = granularity_mask(saliency, 0.5, granularity)
        prune_model(copy, "obd", {name: 0.5}, granularity=granularity, hessian_diag=diag,
                    prune_io=True)
        np.testing.assert_array_equal(copy[0].weight.mask, expected)
    report = prune_model(cnn(), "obd", 0.7, scope="global", hessian_diag=diag)
    assert report.sparsity == pytest.approx(0.7, abs=1 / report.n)


def test_obs_on_the_first_layer_is_the_least_squares_refit_on_its_hessian():
    """Layer scope: the first Linear gets its target exactly, its kept weights are the
    compensated rows for its own damped H = 2XXᵀ/N, and the mask is attached."""
    model, before = mlp(), mlp()
    x, y = samples((3, 4))
    report = obs_prune_model(model, x, 0.5, scope="layer")
    p = model[1].weight
    assert report.per_layer["1.weight"] == 0.5
    h = damp(layer_hessian(before[1], x), 0.01)
    np.testing.assert_allclose(p.data, refit_rows(before[1].weight.data, h, p.mask),
                               rtol=1e-10, atol=1e-12)
    assert np.all(p.data[p.mask == 0] == 0)


def test_obs_calibrates_each_layer_on_the_pruned_layers_before_it():
    """The second Linear's H is measured on the outputs of the pruned first layer."""
    model, x = mlp(), samples((3, 4))[0]
    original = mlp()[3].weight.data.copy()
    obs_prune_model(model, x, 0.5, scope="layer")
    hidden = model[2](model[1](model[0](Tensor(x)))).data
    h = damp(layer_hessian(model[3], hidden), 0.01)
    np.testing.assert_allclose(model[3].weight.data, refit_rows(original, h, model[3].weight.mask),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "sparsegpt"])
def test_obs_global_target_keeps_every_layer_and_masks_survive_training(method):
    """A global target is met exactly over the pruned weights, no layer is emptied, and the
    zeros stay through a training step."""
    from nnprune import optim
    from nnprune import functional as F

    model = cnn()
    x, y = samples((4, 5, 4))
    report = prune_model(model, "obs", 0.9, scope="global", calibration=(x, y),
                         obs=ObsSettings(method=method))
    assert report.sparsity == pytest.approx(0.9, abs=1 / report.n)
    assert all(s < 1.0 for s in report.per_layer.values())
    opt = optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(Tensor(x)), y).backward()
    opt.step()
    for _, p in model.named_parameters():
        if p.mask is not None:
            assert np.all(p.data[p.mask == 0] == 0)


@pytest.mark.parametrize("method", ["exact", "sparsegpt"])
def test_obs_nm_keeps_n_of_every_m_inputs(method):
    """2:4 on a Linear and on a conv (m consecutive channels at each kernel position)."""
    model = cnn()
    x, y = samples((4, 5, 4))
    prune_model(model, "obs", None, granularity="2:4", exclude=["6.weight"], calibration=(x, y),
                obs=ObsSettings(method=method))
    fc = model[4].weight.mask.reshape(8, -1, 4)
    np.testing.assert_array_equal(fc.sum(axis=2), 2)
    conv = model[0].weight.mask  # (F, C, kh, kw): groups along C
    np.testing.assert_array_equal(conv.sum(axis=1), 2)


def test_obs_channel_granularity_prunes_whole_input_channels():
    """channel: k = ⌊s·C + ½⌋ input channels of each layer deleted from every row (the first
    conv's image channels left alone), the kept columns refitted; SparseGPT refuses it."""
    model, before = cnn(), cnn()
    x, y = samples((4, 5, 4))
    report = prune_model(model, "obs", 0.5, granularity="channel", calibration=(x, y))
    assert report.per_layer["0.weight"] == 0.0
    for i, channels in ((4, 24), (6, 8)):
        dead = np.all(model[i].weight.mask == 0, axis=0)
        assert dead.sum() == channels // 2 and np.all(model[i].weight.mask[:, ~dead] == 1)
    hidden = model[3](model[2](model[1](model[0](Tensor(x))))).data
    h = damp(layer_hessian(model[4], hidden), 0.01)
    np.testing.assert_allclose(model[4].weight.data, refit_rows(before[4].weight.data, h,
                                                                model[4].weight.mask),
                               rtol=1e-9, atol=1e-12)
    report = prune_model(cnn(), "obs", 0.5, scope="global", granularity="channel",
                         calibration=(x, y))
    assert report.sparsity > 0.3
    with pytest.raises(ValueError, match="method='exact'"):
        prune_model(cnn(), "obs", 0.5, granularity="channel", calibration=(x, y),
                    obs=ObsSettings(method="sparsegpt"))


def test_existing_zeros_stay_pruned():
    """A mask already attached is never revived and counts toward the target."""
    model = mlp()
    x, y = samples((3, 4))
    prune_model(model, "magnitude", 0.3)
    old = model[1].weight.mask.copy()
    prune_model(model, "obs", 0.6, calibration=(x, y))
    assert np.all(model[1].weight.mask <= old)
    assert np.mean(model[1].weight.mask == 0) == pytest.approx(0.6, abs=1 / 96)


class Scale(nn.Module):
    """A layer with a parameter that layer-wise OBS does not know."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(np.ones(1))

    def forward(self, x):
        return x * self.gain


def test_bad_input_to_obs_is_refused_clearly():
    x, y = samples((3, 4))
    with pytest.raises(ValueError, match="calibration=\\(x, y\\)"):
        prune_model(mlp(), "obs", 0.5)
    with pytest.raises(ValueError, match="needs labels"):
        obs_prune_model(mlp(), x, 0.5, scope="global")
    with pytest.raises(ValueError, match="cannot compensate"):
        prune_model(mlp(), "obs", 0.5, granularity="neuron", calibration=(x, y))
    with pytest.raises(ValueError, match="calibration samples.*damping"):
        prune_model(mlp(), "obs", 0.5, calibration=(x[:5], y[:5]),
                    obs=ObsSettings(damping=0.0))
    bad = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), Scale(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="layer 2 \\(Scale\\).*cannot prune or pass"):
        prune_model(bad, "obs", 0.5, calibration=(x, y))
    with pytest.raises(TypeError, match="Sequential"):
        obs_prune_model(nn.Linear(3, 2), x, 0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        ObsSettings(method="fast")
    with pytest.raises(ValueError, match="needs hessian_diag"):
        prune_model(mlp(), "obd", 0.5)
    with pytest.raises(ValueError, match="not a score"):
        compute_scores("obs", {"a": np.ones(2)})


def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((90, 1, 3, 4))
    y = (x.reshape(90, -1)[:, :3].argmax(axis=1)).astype(np.int64)
    return Dataset("tiny", x[:60], y[:60], x[60:], y[60:], num_classes=3)


@pytest.mark.parametrize("criterion, field, value", [
    ("obd", "hessian", "fisher"), ("obs", "obs_method", "sparsegpt")])
def test_workflows_run_second_order_criteria_and_record_them(criterion, field, value):
    data = tiny_data()
    settings = split_variant(f"{criterion}:{value}")[1]
    result = workflows.oneshot(mlp(), data, criterion=criterion, sparsity=0.8, scope="global",
                               finetune_epochs=1, second_order=settings)
    assert result[field] == value and result["prune_seconds"] > 0
    assert result["sparsity_reached"] == pytest.approx(0.8, abs=0.01)
    rounds = workflows.iterative(mlp(), data, criterion=criterion, sparsity=0.8, rounds=2,
                                 finetune_epochs=1, second_order=settings)
    assert rounds["sparsity_reached"] == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError, match="oneshot or iterative"):
        workflows.gradual(mlp(), data, criterion=criterion, sparsity=0.5)


def test_sweep_labels_the_variants():
    records = sweep(mlp(), tiny_data(), criteria=["magnitude", "obd:lecun", "obs"],
                    sparsities=[0.5], finetune_epochs=0, progress=False)
    assert [r["criterion"] for r in records] == ["magnitude", "obd:lecun", "obs"]
    assert records[1]["hessian"] == "lecun" and records[2]["obs_method"] == "exact"
    with pytest.raises(ValueError, match="unknown criterion variant"):
        split_variant("obs:quick")
    assert SecondOrder().hessian == "gauss-newton"


def test_cli_prunes_with_obs_and_obd(tmp_path, capsys):
    model_path = tmp_path / "mlp.npz"
    assert main(["train", "--model", "lenet_300_100", "--width", "0.5", "--epochs", "1",
                 "--out", str(model_path), "--quiet"]) == 0
    out, result = tmp_path / "obs.npz", tmp_path / "obs.json"
    assert main(["prune", str(model_path), "--criterion", "obs", "--scope", "global",
                 "--sparsity", "0.8", "--finetune-epochs", "0", "--calibration-batches", "2",
                 "--obs-method", "sparsegpt", "--out", str(out), "--json", str(result),
                 "--quiet"]) == 0
    record = json.loads(result.read_text())
    assert record["obs_method"] == "sparsegpt" and record["calibration_batches"] == 2
    assert record["sparsity_reached"] == pytest.approx(0.8, abs=0.01)
    capsys.readouterr()
    assert main(["prune", str(model_path), "--criterion", "obd", "--hessian", "exact",
                 "--out", str(tmp_path / "x.npz"), "--quiet"]) == 1
    assert "limited to 4096 weights per layer" in capsys.readouterr().err
    assert main(["prune", str(model_path), "--criterion", "obs", "--schedule", "gradual",
                 "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
