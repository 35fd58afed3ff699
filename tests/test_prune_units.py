"""Whole units: a dead filter masked with its bias and BatchNorm outputs exactly 0, so the
shrunk model equals the masked one, padded convolutions included, in eval and train mode."""
import doctest

import numpy as np
import pytest
from hypothesis import given, settings

from nnprune import io, models, nn, optim, train
from nnprune.prune import apply, attach_masks, model_masks, prune_count, prune_model
from nnprune.prune.surgery import dead_units, mask_units, shrink, units
from nnprune.prune.surgery.routes import columns
from strategies import dead_unit_nets, randomize

pytestmark = pytest.mark.structured

TOL = dict(rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------- helpers
def copy_of(model):
    """An independent copy: same spec, arrays, masks and mode."""
    twin = nn.from_config(model.config())
    twin.load_state_dict(model.state_dict())
    params = dict(twin.named_parameters())
    for name, mask in model_masks(model).items():
        params[name].set_mask(mask)
    return twin.train(model.training)


def outputs(model, x, training):
    """The logits of a copy of ``model`` in train (batch statistics) or eval mode."""
    twin = copy_of(model).train(training)
    return twin(x).data


def has_dropout(model):
    return any(isinstance(layer, nn.Dropout) for layer in model)


def assert_shrunk_equals_masked(model, input_shape, seed=1):
    """shrink with and without fold equals the masked model, eval and (without Dropout)
    train mode; returns the folded small model and its report."""
    x = np.random.default_rng(seed).standard_normal((5, *input_shape))
    small, report = shrink(model, input_shape)
    unfolded, _ = shrink(model, input_shape, fold=False)
    modes = (False,) if has_dropout(model) else (False, True)
    for training in modes:
        expected = outputs(model, x, training)
        np.testing.assert_allclose(outputs(small, x, training), expected, **TOL)
        np.testing.assert_allclose(outputs(unfolded, x, training), expected, **TOL)
    return small, report


def producers(model):
    return [i for i, layer in enumerate(model) if isinstance(layer, (nn.Conv2d, nn.Linear))]


# ---------------------------------------------------------------------- properties on drawn nets
def consumer_of(model, p):
    return next(j for j in range(p + 1, len(model)) if isinstance(model[j], (nn.Conv2d,
                                                                             nn.Linear)))


@given(dead_unit_nets())
def test_dead_units_are_the_zero_groups_and_the_unread_channels(case):
    """Property: the dead units of every layer but the output one are its all-zero filter
    (neuron) groups and the channels none of whose consumer columns the consumer's mask keeps."""
    model, _ = case
    masks = model_masks(model)
    expected = {}
    for i in producers(model)[:-1]:
        w, read = masks[f"{i}.weight"], masks[f"{consumer_of(model, i)}.weight"]
        f = w.shape[0]
        spatial = read.shape[1] // f  # H'·W' columns per channel through a Flatten, else 1
        unread = [not read[:, columns(np.array([k]), spatial)].any() for k in range(f)]
        dead = np.flatnonzero(~w.any(axis=tuple(range(1, w.ndim))) | np.array(unread))
        if dead.size:
            expected[str(i)] = dead
    found = dead_units(model)
    assert list(found) == list(expected)
    assert all(np.array_equal(found[k], expected[k]) for k in expected)


@given(dead_unit_nets())
def test_masked_units_equal_the_shrunk_model(case):
    """Property: after ``mask_units``, shrinking (with or without fold, never refused) gives
    the masked model's outputs in eval mode and, without Dropout, in train mode too; the dead
    units' biases and affine BatchNorm γ, β are masked zeros, the output layer's bias is not
    masked, and the widths are the live counts (one kept if none live)."""
    model, input_shape = case
    dead = mask_units(model)
    small, report = assert_shrunk_equals_masked(model, input_shape)
    masks = model_masks(model)
    for layer, drop in dead.items():
        i = int(layer)
        if model[i].bias is not None:
            assert np.all(masks[f"{i}.bias"][drop] == 0) and np.all(model[i].bias.data[drop] == 0)
        f = model[i].weight.shape[0]
        assert report.widths[layer] == (f, max(f - drop.size, 1))
    last = producers(model)[-1]
    assert f"{last}.bias" not in masks
    assert all(np.all(p.data[p.mask == 0] == 0) for p in small.parameters() if p.mask is not None)


@given(dead_unit_nets())
@settings(max_examples=20)
def test_mask_units_twice_changes_nothing(case):
    """Property: a second ``mask_units`` finds the same dead units and leaves every mask,
    parameter and buffer as it was."""
    model, _ = case
    first = mask_units(model)
    state, masks = model.state_dict(), model_masks(model)
    second = mask_units(model)
    assert list(first) == list(second)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert model_masks(model).keys() == masks.keys()
    assert all(np.array_equal(model_masks(model)[k], v) for k, v in masks.items())
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in state.items())


# ---------------------------------------------------------------------- the benchmark models
MODELS = {
    "lenet5": (lambda: models.lenet5(1, input_size=8, dtype=np.float64), (1, 8, 8)),
    "simple_cnn": (lambda: models.simple_cnn(1, input_size=8, dtype=np.float64), (1, 8, 8)),
    "vgg16": (lambda: models.vgg16(3, input_size=8, width=1 / 16, dtype=np.float64), (3, 8, 8)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_benchmark_models_shrink_exactly_through_padded_convs(name):
    """Half the filters and neurons of every layer but the output one masked: shrink refuses
    to fold the dead constants into a padded conv; masked whole, shrink folds nothing and
    equals the masked model, eval and train mode; each layer keeps F − ⌊F/2 + ½⌋ units."""
    make, input_shape = MODELS[name]
    model = randomize(make(), seed=3)
    weights = list(apply.prunable_weights(model))
    prune_model(model, "magnitude", 0.5, granularity="filter", exclude=[weights[-1]])
    with pytest.raises(ValueError, match="cannot fold"):
        shrink(model, input_shape)  # dead biases (vgg16: β) read by a padded conv
    mask_units(model)
    _, report = assert_shrunk_equals_masked(model, input_shape)
    for layer, (f, after) in report.widths.items():
        assert after == (f if f"{layer}.weight" == weights[-1] else f - prune_count(f, 0.5))


def test_channel_pruned_consumer_kills_its_producers_units():
    """Channel pruning of conv2 leaves conv1 filters nobody reads: ``mask_units`` masks them
    whole (weight rows and bias), and shrink equals the masked model."""
    model = randomize(models.lenet5(1, input_size=8, dtype=np.float64), seed=4)
    prune_model(model, "magnitude", {"2.weight": 0.5}, granularity="channel")
    unread = np.flatnonzero(~model_masks(model)["2.weight"].any(axis=(0, 2, 3)))
    dead = mask_units(model)
    assert list(dead) == ["0"] and np.array_equal(dead["0"], unread)
    assert np.all(model[0].weight.data[unread] == 0) and np.all(model[0].bias.data[unread] == 0)
    assert_shrunk_equals_masked(model, (1, 8, 8))


# ---------------------------------------------------------------------- training, saving
def bn_net():
    """Padded convs, an affine BatchNorm2d, one without γ, β, and a per-column BatchNorm1d."""
    return randomize(nn.Sequential(
        nn.Conv2d(2, 4, (3, 2), padding=1, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=(1, 0), dtype=np.float64),
        nn.BatchNorm2d(5, affine=False, dtype=np.float64), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.BatchNorm1d(5 * 3 * 2, dtype=np.float64),
        nn.Linear(30, 6, dtype=np.float64), nn.ReLU(), nn.Linear(6, 3, dtype=np.float64)),
        seed=9)


def unit_pruned_bn_net():
    model = bn_net()
    prune_model(model, "magnitude", {"0.weight": 0.5, "3.weight": 0.4, "9.weight": 0.5},
                granularity="filter")
    return model, mask_units(model)


def test_masked_units_survive_sgd_with_momentum_and_weight_decay():
    """Three epochs of SGD (momentum, weight decay) in train mode leave the dead units'
    weights, biases and γ, β exactly 0 and the running means of the BatchNorm without γ, β
    exactly 0 there, while the live ones move; shrink still equals the masked model."""
    model, dead = unit_pruned_bn_net()
    assert list(dead) == ["0", "3", "9"]
    assert np.all(model[4].running_mean[dead["3"]] == 0)
    before = model.state_dict()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 2, 6, 6)), rng.integers(0, 3, 32)
    sgd = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2)
    train.fit(model, (x, y), sgd, 3, batch_size=8, quiet=True)
    silenced = [model[0].weight.data[dead["0"]], model[0].bias.data[dead["0"]],
                model[1].weight.data[dead["0"]], model[1].bias.data[dead["0"]],
                model[3].bias.data[dead["3"]], model[4].running_mean[dead["3"]],
                model[8].weight.data[columns(dead["3"], 6)], model[9].bias.data[dead["9"]]]
    assert all(np.all(a == 0) for a in silenced)
    live = np.setdiff1d(np.arange(4), dead["0"])
    assert not np.array_equal(model[1].bias.data[live], before["1.bias"][live])
    assert_shrunk_equals_masked(model, (2, 6, 6))


def test_save_and_load_keep_the_unit_masks(tmp_path):
    """save -> load keeps every mask (biases and γ, β included) and the zeroed running means;
    the loaded model shrinks to the same outputs."""
    model, _ = unit_pruned_bn_net()
    io.save(tmp_path / "units.npz", model)
    loaded, _ = io.load(tmp_path / "units.npz")
    masks = model_masks(model)
    assert {"0.bias", "1.weight", "1.bias", "8.weight", "9.bias"} <= masks.keys()
    assert model_masks(loaded).keys() == masks.keys()
    assert all(np.array_equal(model_masks(loaded)[k], v) for k, v in masks.items())
    assert np.array_equal(loaded[4].running_mean, model[4].running_mean)
    assert_shrunk_equals_masked(loaded, (2, 6, 6))


# ---------------------------------------------------------------------- bad input
def lenet():
    return models.lenet5(1, input_size=8)


def behind_unknown_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Conv2d(2, 1, 1))
    attach_masks(model, {"0.weight": np.array([1, 0]).reshape(2, 1, 1, 1)})
    return model


@pytest.mark.parametrize("call, error, match", [
    (lambda: mask_units(nn.Linear(2, 2)), TypeError, "Sequential"),
    (lambda: dead_units("model"), TypeError, "Sequential"),
    (lambda: mask_units(nn.Sequential(nn.Sequential(nn.Linear(2, 2)))), ValueError, "nested"),
    (lambda: mask_units(nn.Sequential(nn.Linear(2, 2), nn.Module(), nn.Linear(2, 2))),
     ValueError, "layer 1 is a Module"),
    (lambda: mask_units(behind_unknown_layer()), ValueError, "layer 2 is a Conv2d"),
    (lambda: dead_units(lenet(), [np.ones(2)]), TypeError, "mapping"),
    (lambda: dead_units(lenet(), {"9.weight": np.ones(2)}), ValueError, "9.weight"),
    (lambda: dead_units(lenet(), {"0.weight": np.ones(2)}), ValueError, "shape"),
    (lambda: dead_units(lenet(), {"0.bias": np.full(20, 2.0)}), ValueError, "0 and 1"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_failed_call_attaches_nothing():
    """A model whose dead unit cannot be followed keeps its masks as they were."""
    model = behind_unknown_layer()
    with pytest.raises(ValueError):
        mask_units(model)
    assert list(model_masks(model)) == ["0.weight"]


def test_doctests():
    result = doctest.testmod(units, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
