"""``nnprune prune --shrink``: structured pruning, dead units masked whole before fine-tuning,
then the smaller dense model saved. The saved file must compute what the masked fine-tuned
model computes, and every granularity or schedule it cannot serve is refused in one line."""
import json

import numpy as np
import pytest

from nnprune import io, train
from nnprune.experiment.pruning import OptionError, check_schedule, run_schedule
from nnprune.prune.granularity import Granularity
from nnprune.prune.spec import PruneSpec
from nnprune.train import TrainSpec
from nnprune.count import count
from nnprune.data import digits

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def cnn(trained_file):
    """simple_cnn at width 0.5 (padded convs 0: 8 filters, 3: 16 filters; linears 7: 64, 9: 10)
    trained one epoch on the digits, split seed 1."""
    return trained_file("simple_cnn", seed=1)


def masked_twin(path, **options):
    """The unit-masked, fine-tuned model the CLI shrank, rebuilt through the API with the
    CLI's defaults, and the data it was evaluated on."""
    model, metadata = io.load(path)
    data = digits(seed=metadata["data_seed"])
    spec = PruneSpec("magnitude", options["sparsity"], "layer", "filter", options["exclude"],
                     seed=1)
    train = TrainSpec(epochs=options["finetune_epochs"], lr=0.02, seed=1)
    record = run_schedule(model, data, "oneshot", spec, train, shrink=True,
                          model_name=metadata["model"])
    return model, data, record


def test_shrunk_file_is_smaller_dense_and_computes_what_the_masked_model_does(
        cli, cnn, tmp_path):
    """Filter pruning at 50 %: the saved model has the widths and parameter count of the
    report, no masks, and its logits on the test split equal the masked fine-tuned model's up
    to float32 rounding, so the accuracies agree; summary shows the smaller layers."""
    out_path, json_path = tmp_path / "small.npz", tmp_path / "small.json"
    status, out, err = cli("prune", cnn, "--granularity", "filter", "--sparsity", "0.5",
                           "--finetune-epochs", "1", "--seed", "1", "--quiet", "--shrink",
                           "--out", out_path, "--json", json_path)
    assert status == 0, err
    result = json.loads(json_path.read_text())
    assert "9.weight is not pruned" in out
    assert f"params {result['params']:,} -> {result['shrunk_params']:,}" in out
    small, metadata = io.load(out_path)
    assert metadata["pruning"] == result
    assert all(p.mask is None for p in small.parameters())
    params = sum(p.size for p in small.parameters())
    assert params == result["shrunk_params"] == count(small, (1, 8, 8)).params
    assert params < result["params"] == count(io.load(cnn)[0], (1, 8, 8)).params
    assert result["shrunk_macs"] == count(small, (1, 8, 8)).macs < result["macs"]
    assert result["widths"] == {"0": [8, 4], "3": [16, 8], "7": [64, 32], "9": [10, 10]}
    assert (small[0].weight.shape, small[3].weight.shape) == ((4, 1, 3, 3), (8, 4, 3, 3))
    assert small[7].weight.shape == (32, 8 * 2 * 2) and small[9].weight.shape == (10, 32)
    assert result["exclude"] == ["9.weight"]
    assert abs(result["accuracy_shrunk"] - result["accuracy_after_finetune"]) < 1e-9

    masked, data, record = masked_twin(cnn, sparsity=0.5, exclude=("9.weight",),
                                       finetune_epochs=1)
    assert record["accuracy_after_finetune"] == result["accuracy_after_finetune"]
    z_masked, z_small = train.predict(masked, data.x_test), train.predict(small, data.x_test)
    np.testing.assert_allclose(z_small, z_masked, rtol=1e-4, atol=1e-5)
    top2 = np.sort(z_masked, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4  # no float32 near-tie: the same class wins
    np.testing.assert_array_equal(z_small.argmax(1)[clear], z_masked.argmax(1)[clear])
    accuracy = train.evaluate(small, (data.x_test, data.y_test))["accuracy"]
    assert abs(accuracy - result["accuracy_shrunk"]) < 1e-9

    status, out, _ = cli("summary", out_path)
    assert status == 0
    assert "4×8×8" in out and f"{params:,}" in out


def test_iterative_neuron_pruning_masks_units_every_round(cli, cnn, tmp_path):
    """Two rounds to 75 % of the units: the dead units grow round by round to ⌊0.75·F + ½⌋
    per layer, and the shrunk model keeps the rest."""
    json_path = tmp_path / "it.json"
    status, _, err = cli("prune", cnn, "--granularity", "neuron", "--schedule",
                         "iterative", "--rounds", "2", "--sparsity", "0.75",
                         "--finetune-epochs", "1", "--quiet", "--shrink", "--out",
                         tmp_path / "it.npz", "--json", json_path)
    assert status == 0, err
    result = json.loads(json_path.read_text())
    rounds = result["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and rounds[-1]["target"] == 0.75
    assert rounds[0]["dead_units"] == {"0": 4, "3": 8, "7": 32}  # 50 % after round 1
    assert rounds[1]["dead_units"] == {"0": 6, "3": 12, "7": 48}
    assert result["widths"] == {"0": [8, 2], "3": [16, 4], "7": [64, 16], "9": [10, 10]}
    small, _ = io.load(tmp_path / "it.npz")
    assert sum(p.size for p in small.parameters()) == result["shrunk_params"]
    assert abs(result["accuracy_shrunk"] - result["accuracy_after_finetune"]) < 1e-9


def test_channel_pruning_keeps_the_image_channels_and_partly_read_columns(
        cli, cnn, tmp_path):
    """Channel granularity leaves the first layer alone (its inputs are the image's); a conv
    channel goes only when all its columns after the Flatten are pruned, the other pruned
    columns stay masked in the saved model, and it still computes what the masked one does."""
    json_path = tmp_path / "ch.json"
    status, out, err = cli("prune", cnn, "--granularity", "channel", "--sparsity", "0.5",
                           "--finetune-epochs", "0", "--quiet", "--shrink", "--out",
                           tmp_path / "ch.npz", "--json", json_path)
    assert status == 0, err
    assert "0.weight is not pruned at channel granularity (its input channels are the image's)" in out
    result = json.loads(json_path.read_text())
    assert result["exclude"] == ["0.weight"]
    assert result["widths"]["0"] == [8, 4] and result["widths"]["7"] == [64, 32]
    small, _ = io.load(tmp_path / "ch.npz")
    w = small[7].weight
    alive_columns = w.mask.any(axis=0).reshape(-1, 2 * 2)  # (channels of conv 3, OH·OW)
    assert alive_columns.any(axis=1).all()  # every channel left is read somewhere
    assert not alive_columns.all()  # some conv-3 channels lost only some of their columns
    left = sum(int(np.count_nonzero(p.mask == 0)) for p in small.parameters()
               if p.mask is not None)
    assert left == int(np.count_nonzero(~alive_columns)) * w.shape[0]
    assert f"{left:,} weights stay masked" in out
    assert result["accuracy_after_finetune"] is None
    assert abs(result["accuracy_shrunk"] - result["accuracy_before_finetune"]) < 1e-9


@pytest.mark.parametrize("granularity", ["weight", "kernel", "2:4"])
def test_shrink_refuses_unstructured_granularity(cli, cnn, tmp_path, granularity):
    status, _, err = cli("prune", cnn, "--granularity", granularity, "--shrink",
                         "--out", tmp_path / "x.npz")
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert "--shrink" in lines[0] and "unstructured zeros cannot be cut out" in lines[0]
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("schedule", ["gradual", "init", "lottery"])
def test_shrink_refuses_the_schedules_it_cannot_mask_between(cli, cnn, tmp_path, schedule):
    status, _, err = cli("prune", cnn, "--granularity", "filter", "--schedule",
                         schedule, "--shrink", "--out", tmp_path / "x.npz")
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert f"not with {schedule}" in err and "oneshot and iterative" in err


def test_help_shows_a_shrink_example(cli):
    status, out, _ = cli("prune", "--help")
    assert status == 0
    assert "--shrink" in out.split("examples:")[1]


def test_the_schedule_check_refuses_what_shrink_cannot_serve():
    """The library check names the option it refuses (the command line reports it as
    ``argument --shrink``); a fitting pair passes."""
    options = dict(criterion="magnitude", sparsity=None, scope="layer", layer_norm="none",
                   epochs=1, shrink=True)
    with pytest.raises(OptionError, match="2 of every 4") as refused:
        check_schedule("oneshot", granularity=Granularity("2:4"), **options)
    assert refused.value.option == "shrink"
    check_schedule("iterative", granularity=Granularity("channel"), **options)
    with pytest.raises(OptionError, match="not with gradual"):
        check_schedule("gradual", granularity=Granularity("filter"), **options)
