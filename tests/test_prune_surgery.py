"""Surgery: removing filters and neurons gives a smaller dense model with the masked outputs."""
import doctest
import importlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nnprune import io, models, nn, optim, train
from nnprune.count import count
from nnprune.prune import (apply, granularity_mask, mask_units, model_masks, prune_count,
                           prune_model)
from nnprune.prune.surgery import routes
from nnprune.prune.surgery import (SurgeryReport, filter_keep, remove_filters, remove_neurons,
                                   shrink)
from strategies import arrays, net_and_cut, randomize, sparsities

pytestmark = pytest.mark.structured

TOL = dict(rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------- helpers
def build(layers, seed=0):
    return randomize(nn.from_config({"type": "Sequential", "layers": layers}), seed)


def copy_of(model):
    """An independent copy with the same arrays and masks, in eval mode."""
    twin = nn.from_config(model.config())
    twin.load_state_dict(model.state_dict())
    for name, mask in model_masks(model).items():
        dict(twin.named_parameters())[name].set_mask(mask)
    return twin.eval()


def is_weighted(layer):
    return isinstance(layer, (nn.Conv2d, nn.Linear))


def consumer_of(model, p):
    return next(j for j in range(p + 1, len(model)) if is_weighted(model[j]))


def zeroed(model, p, drop, everything):
    """The original with units ``drop`` of layer p zeroed: their weights, and with
    ``everything`` also their biases and the γ, β of every BatchNorm before the consumer."""
    ref = copy_of(model)
    ref[p].weight.data[drop] = 0
    if everything:
        if ref[p].bias is not None:
            ref[p].bias.data[drop] = 0
        c = consumer_of(model, p)
        spatial = (ref[c].in_features // ref[p].weight.shape[0]
                   if isinstance(ref[c], nn.Linear) else 1)
        for j in range(p + 1, c):
            layer = ref[j]
            if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and layer.weight is not None:
                per_column = layer.num_features != ref[p].weight.shape[0]
                idx = routes.columns(drop, spatial) if per_column else drop
                layer.weight.data[idx] = 0
                layer.bias.data[idx] = 0
    return ref


def inputs(input_shape, n=4, seed=1):
    return np.random.default_rng(seed).standard_normal((n, *input_shape))


def cut(model, p, keep, fold):
    remove = remove_filters if isinstance(model[p], nn.Conv2d) else remove_neurons
    return remove(model, p, keep, fold=fold)


# ---------------------------------------------------------------------- properties on random nets
def unread(model, p, drop):
    """The original with the consumer's inputs from units ``drop`` of layer p zeroed."""
    ref = copy_of(model)
    c = consumer_of(model, p)
    spatial = ref[c].in_features // ref[p].weight.shape[0] if isinstance(ref[c], nn.Linear) else 1
    ref[c].weight.data[:, routes.columns(drop, spatial)] = 0
    return ref


@given(net_and_cut())
def test_cut_equals_zeroing_weights_biases_and_batchnorm(case):
    """Property: without folding, cutting out the units not in ``keep`` gives the outputs of
    the original whose consumer reads nothing from them; when every BatchNorm on the way is
    affine, also those of the original with their weights, biases and BatchNorm γ, β zeroed
    (eval mode). The input model is left unchanged."""
    model, input_shape, p, keep = case
    before = model.state_dict()
    drop = np.setdiff1d(np.arange(model[p].weight.shape[0]), keep)
    small = cut(model, p, keep, fold=False)
    x = inputs(input_shape)
    out = train.predict(small, x)
    np.testing.assert_allclose(out, train.predict(unread(model, p, drop), x), **TOL)
    norms = [layer for layer in list(model)[p + 1:consumer_of(model, p)]
             if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if all(layer.weight is not None for layer in norms):
        np.testing.assert_allclose(out, train.predict(zeroed(model, p, drop, True), x), **TOL)
        # with those already zero, folding has nothing to add
        again = cut(zeroed(model, p, drop, True), p, keep, fold=True)
        np.testing.assert_allclose(train.predict(again, x), out, **TOL)
    assert small[p].weight.shape[0] == len(keep)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


@given(net_and_cut())
def test_fold_equals_zeroing_the_weights_only(case):
    """Property: with ``fold`` the cut model equals (eval mode) the original with only the
    removed units' weights zeroed; it refuses only a padded consumer conv, a padded AvgPool2d
    on the way or a consumer without a bias, the places where no bias can stand for them."""
    model, input_shape, p, keep = case
    drop = np.setdiff1d(np.arange(model[p].weight.shape[0]), keep)
    try:
        small = cut(model, p, keep, fold=True)
    except ValueError as err:
        assert "cannot fold" in str(err)
        c = consumer_of(model, p)
        padded = [j for j in range(p + 1, c + 1) if any(getattr(model[j], "padding", (0, 0)))
                  and isinstance(model[j], (nn.Conv2d, nn.AvgPool2d))]
        assert padded or model[c].bias is None
        return
    x = inputs(input_shape)
    np.testing.assert_allclose(train.predict(small, x),
                               train.predict(zeroed(model, p, drop, False), x), **TOL)


@given(net_and_cut())
def test_cut_costs_match_count_and_the_formula(case):
    """Property: removing d of F units takes away, per image, d·(C·kh·kw + bias) parameters and
    OH·OW·d·C·kh·kw MACs from a conv producer (d·(in + bias) and d·in from a linear one), 2
    per unit of every affine BatchNorm on the way, O·d·kh'·kw' parameters and OH'·OW' times
    as many MACs from a conv consumer, O·d·spatial of both from a linear one; the report's
    totals are ``count``'s."""
    model, input_shape, p, keep = case
    small = cut(model, p, keep, fold=False)
    report = SurgeryReport.compare(model, small, input_shape)
    old, new = count(model, input_shape), count(small, input_shape)
    assert report.params == (old.params, new.params) and report.macs == (old.macs, new.macs)
    producer, c = model[p], consumer_of(model, p)
    f, d = producer.weight.shape[0], producer.weight.shape[0] - len(keep)
    per_unit = producer.weight.size // f  # C·kh·kw or in
    uses = old.layers[p].macs // producer.weight.size  # OH·OW or 1
    params = d * (per_unit + (producer.bias is not None))
    macs = d * per_unit * uses
    spatial = model[c].in_features // f if isinstance(model[c], nn.Linear) else 1
    for j in range(p + 1, c):
        if isinstance(model[j], (nn.BatchNorm1d, nn.BatchNorm2d)) and model[j].weight is not None:
            params += 2 * d * (model[j].num_features // f)
    consumer = model[c].weight
    taps = consumer.shape[0] * d * spatial * int(np.prod(consumer.shape[2:]))
    params += taps
    macs += taps * (old.layers[c].macs // consumer.size)
    assert (old.params - new.params, old.macs - new.macs) == (params, macs)
    assert report.widths[str(p)] == (f, len(keep))


# ---------------------------------------------------------------------- the benchmark models
MODELS = {
    "lenet5": (lambda: models.lenet5(1, input_size=8, dtype=np.float64), (1, 8, 8)),
    "simple_cnn": (lambda: models.simple_cnn(1, input_size=8, dtype=np.float64), (1, 8, 8)),
    "vgg16": (lambda: models.vgg16(3, input_size=8, width=1 / 16, dtype=np.float64), (3, 8, 8)),
    "lenet_300_100": (lambda: models.lenet_300_100(1, input_size=8, width=0.1,
                                                    dtype=np.float64), (1, 8, 8)),
}


def filter_pruned(name, sparsity=0.5):
    """The model with random weights and half its filters (neurons) masked, the output layer
    excepted; returns the model, its input shape and its weight names."""
    make, input_shape = MODELS[name]
    model = randomize(make(), seed=3)
    weights = list(apply.prunable_weights(model))
    prune_model(model, "magnitude", sparsity, granularity="filter", exclude=[weights[-1]])
    return model, input_shape, weights


@pytest.mark.parametrize("name", list(MODELS))
def test_shrink_benchmark_models_equals_masking(name):
    """shrink of a filter-pruned model, without folding, equals the masked model with the dead
    filters' biases and BatchNorm γ, β zeroed too; each layer keeps F − ⌊F/2 + ½⌋ units."""
    model, input_shape, weights = filter_pruned(name)
    ref = copy_of(model)
    for i, layer in enumerate(ref):
        if is_weighted(layer) and f"{i}.weight" != weights[-1]:
            dead = ~model_masks(ref)[f"{i}.weight"].any(axis=tuple(range(1, layer.weight.ndim)))
            ref = zeroed(ref, i, np.flatnonzero(dead), everything=True)
    small, report = shrink(model, input_shape, fold=False)
    x = inputs(input_shape, n=3)
    np.testing.assert_allclose(train.predict(small, x), train.predict(ref, x), **TOL)
    new = count(small, input_shape)
    assert report.params[1] == new.params and report.macs[1] == new.macs
    assert report.macs[0] == count(model, input_shape).macs > new.macs
    for layer_name, (f, after) in report.widths.items():
        cut_layer = f"{layer_name}.weight" != weights[-1]
        assert after == (f - prune_count(f, 0.5) if cut_layer else f)
    assert all(p.mask is None or p.mask.all() for p in small.parameters())


@pytest.mark.parametrize("name", ["lenet5", "lenet_300_100"])
def test_shrink_folds_the_dead_biases(name):
    """Where every consumer reads the dead units through a Linear, shrink's fold makes the
    small model equal the filter-masked one as it is (dead biases still on)."""
    if name == "lenet5":  # conv1's consumer is the padded conv2: cut conv2 and fc1 only
        model, input_shape = randomize(MODELS[name][0](), seed=3), MODELS[name][1]
        prune_model(model, "magnitude", {"2.weight": 0.5, "5.weight": 0.5}, granularity="filter")
    else:
        model, input_shape, _ = filter_pruned(name)
    small, report = shrink(model, input_shape)
    x = inputs(input_shape, n=3)
    np.testing.assert_allclose(train.predict(small, x), train.predict(model, x), **TOL)
    assert report.params[1] < report.params[0]


def test_shrink_follows_channel_pruning_of_the_consumer():
    """Channel pruning of conv2 leaves conv1 filters nobody reads: shrink removes them, and
    the small model equals the masked one."""
    model = randomize(models.lenet5(1, input_size=8, dtype=np.float64), seed=4)
    prune_model(model, "magnitude", {"2.weight": 0.5}, granularity="channel")
    small, report = shrink(model, (1, 8, 8))
    assert report.widths["0"] == (20, 10) and report.widths["2"] == (50, 50)
    assert np.array_equal(report.keep["0"],
                          np.flatnonzero(model_masks(model)["2.weight"].any(axis=(0, 2, 3))))
    x = inputs((1, 8, 8))
    np.testing.assert_allclose(train.predict(small, x), train.predict(model, x), **TOL)


def test_masks_are_carried_along():
    """Unstructured masks of the surviving filters and of the consumer's surviving columns are
    the original masks sliced, and their zeros stay zero."""
    model = randomize(models.lenet5(1, input_size=8, dtype=np.float64), seed=5)
    prune_model(model, "magnitude", 0.3)
    prune_model(model, "magnitude", {"2.weight": 0.5}, granularity="filter")
    masks = model_masks(model)
    small, report = shrink(model, (1, 8, 8))
    keep = report.keep["2"]
    columns = routes.columns(keep, 4)
    new = model_masks(small)
    assert np.array_equal(new["2.weight"], masks["2.weight"][keep])
    assert np.array_equal(new["5.weight"], masks["5.weight"][:, columns])
    assert np.array_equal(new["0.weight"], masks["0.weight"])
    assert np.all(small[5].weight.data[new["5.weight"] == 0] == 0)


def test_shrink_without_dead_groups_is_identical():
    """A model with no all-zero group comes back with the same spec, arrays and outputs."""
    model = randomize(models.simple_cnn(1, input_size=8, dtype=np.float64), seed=6)
    prune_model(model, "magnitude", 0.4)  # unstructured: no filter is all zero
    small, report = shrink(model, (1, 8, 8))
    assert small is not model and small.config() == model.config()
    state = small.state_dict()
    assert all(np.array_equal(state[k], v) for k, v in model.state_dict().items())
    assert report.params[0] == report.params[1] and report.macs[0] == report.macs[1]
    assert report.keep == {}
    x = inputs((1, 8, 8))
    assert np.array_equal(train.predict(small, x), train.predict(model, x))


def test_shrink_by_sparsity_uses_filter_keep():
    """``sparsity`` removes ⌊s·F + ½⌋ filters of lowest L1 norm from every layer it names."""
    model = randomize(models.simple_cnn(1, input_size=8, dtype=np.float64), seed=7)
    small, report = shrink(model, (1, 8, 8), sparsity={"3.weight": 0.25})
    assert np.array_equal(report.keep["3"], filter_keep(model[3].weight.data, 0.25))
    assert report.widths["3"] == (32, 24) and report.widths["0"] == (16, 16)
    everywhere, _ = shrink(model, (1, 8, 8), sparsity=0.5, fold=False)
    assert SurgeryReport.compare(model, everywhere, (1, 8, 8)).widths == {
        "0": (16, 8), "3": (32, 16), "7": (128, 64), "9": (10, 10)}


def test_shrunk_model_saves_loads_and_trains(tmp_path):
    """save -> load of a shrunk model gives identical outputs and masks; one SGD step moves
    its weights, keeps its masked zeros and gives a finite loss."""
    model, input_shape, _ = filter_pruned("simple_cnn")
    prune_model(model, "magnitude", 0.6)
    small, _ = shrink(model, input_shape, fold=False)
    io.save(tmp_path / "small.npz", small)
    loaded, _ = io.load(tmp_path / "small.npz")
    x = inputs(input_shape, n=8)
    assert np.array_equal(train.predict(loaded, x), train.predict(small, x))
    assert all(np.array_equal(model_masks(loaded)[k], v) for k, v in model_masks(small).items())
    before = {k: v.copy() for k, v in small.state_dict().items()}
    y = np.arange(8) % 10
    history = train.fit(small, (x, y), optim.SGD(small.parameters(), lr=0.1, momentum=0.9), 1,
                        batch_size=8, quiet=True)
    assert np.isfinite(history.last["loss"])
    assert not np.array_equal(small[0].weight.data, before["0.weight"])
    for name, p in small.named_parameters():
        if p.mask is not None:
            assert np.all(p.data[p.mask == 0] == 0)


# ---------------------------------------------------------------------- filter_keep
@given(st.data(), sparsities)
def test_filter_keep_removes_the_k_lowest_norms(data, sparsity):
    """Property: k = min(⌊s·F + ½⌋, F − 1) filters go, none with a larger L1 norm than a kept
    one, ties removed lowest index first; the keep is sorted; n_remove=k agrees."""
    shape = data.draw(st.sampled_from([(5, 2, 2, 3), (4, 3), (1, 2), (6, 1, 1, 1)]))
    w = data.draw(arrays(shape, low=-2, high=2).map(lambda a: np.round(a)))  # ties likely
    keep = filter_keep(w, sparsity)
    f = shape[0]
    k = min(prune_count(f, sparsity), f - 1)
    assert len(keep) == f - k and np.all(np.diff(keep) > 0)
    norms = np.abs(w).reshape(f, -1).sum(axis=1)
    drop = np.setdiff1d(np.arange(f), keep)
    for i in drop:
        for j in keep:
            assert norms[i] < norms[j] or (norms[i] == norms[j] and i < j)
    assert np.array_equal(filter_keep(w, n_remove=k), keep)


def test_filter_keep_l2_norm():
    w = np.array([[3.0, 0.0], [2.0, 2.0], [0.1, 0.1]])  # L1 3, 4, 0.2; L2 3, 2.83, 0.14
    assert filter_keep(w, n_remove=1, norm="l1").tolist() == [0, 1]
    assert filter_keep(w, n_remove=2, norm="l2").tolist() == [0]
    assert filter_keep(w, n_remove=2, norm="l1").tolist() == [1]


@given(st.data(), sparsities, st.sampled_from(["l1", "l2"]))
def test_filter_keep_is_the_group_topk_of_every_granularity(data, sparsity, norm):
    """Property: one ranking chooses units. With integer weights (ties likely), whenever a
    filter stays, ``filter_keep`` keeps exactly the filters ``granularity_mask(|w|, s,
    "filter")`` keeps, and ``shrink(sparsity=...)`` keeps the units that
    ``prune_model(granularity="filter")``, ``mask_units`` and ``shrink`` keep."""
    f = data.draw(st.integers(2, 6))
    w = data.draw(arrays((f, 1, 2, 2), low=-2, high=2).map(np.round))
    keep = filter_keep(w, sparsity, norm=norm)
    assume(prune_count(f, sparsity) < f)  # else filter_keep keeps one, the top-k none
    mask = granularity_mask(np.abs(w), sparsity, "filter", reduce=norm)
    assert np.array_equal(keep, np.flatnonzero(mask.reshape(f, -1)[:, 0]))
    model = nn.Sequential(nn.Conv2d(1, f, 2, dtype=np.float64), nn.ReLU(), nn.Flatten(),
                          nn.Linear(f * 4, 2, dtype=np.float64))
    model[0].weight.data[...] = w
    by_norm, _ = shrink(model, (1, 3, 3), sparsity={"0.weight": sparsity}, norm=norm)
    prune_model(model, "magnitude", {"0.weight": sparsity}, "layer", "filter", reduce=norm)
    mask_units(model)
    by_mask, report = shrink(model, (1, 3, 3))
    assert np.array_equal(report.keep.get("0", np.arange(f)), keep)
    assert by_mask[0].weight.shape == by_norm[0].weight.shape


# ---------------------------------------------------------------------- bad input
def lenet():
    return models.lenet5(1, input_size=8)


@pytest.mark.parametrize("call, error, match", [
    (lambda: remove_filters(nn.Linear(2, 2), 0, [0]), TypeError, "Sequential"),
    (lambda: remove_filters(lenet(), 1, [0]), ValueError, "MaxPool2d, not a Conv2d"),
    (lambda: remove_neurons(lenet(), 2, [0]), ValueError, "Conv2d, not a Linear"),
    (lambda: remove_filters(lenet(), 9, [0]), ValueError, "out of range"),
    (lambda: remove_filters(lenet(), 1.0, [0]), TypeError, "index or a layer name"),
    (lambda: remove_filters(lenet(), 0, []), ValueError, "keep is empty"),
    (lambda: remove_filters(lenet(), 0, [3, 1]), ValueError, "sorted"),
    (lambda: remove_filters(lenet(), 0, [1, 1]), ValueError, "duplicates"),
    (lambda: remove_filters(lenet(), 0, [0, 20]), ValueError, r"\[0, 19\]"),
    (lambda: remove_filters(lenet(), 0, [[0, 1]]), ValueError, "1-D"),
    (lambda: remove_filters(lenet(), 0, [0.0, 1.0]), ValueError, "int indices"),
    (lambda: remove_neurons(lenet(), 7, [0]), ValueError, "no consumer"),
    (lambda: remove_filters(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.BatchNorm2d(2),
                                          nn.Linear(2, 1)), 0, [0]),
     ValueError, "layer 2 is a BatchNorm2d"),
    (lambda: remove_filters(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Module(), nn.Conv2d(2, 1, 1)),
                            0, [0]), ValueError, "layer 1 is a Module"),
    (lambda: remove_neurons(nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 1)), 0, [0]),
     ValueError, "reading 4 features"),
    (lambda: remove_filters(nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 1))), 0, [0]),
     ValueError, "nested Sequential"),
    (lambda: filter_keep(np.ones(3), 0.5), ValueError, "weight must be"),
    (lambda: filter_keep(np.ones((3, 2)), 0.5, n_remove=1), TypeError, "exactly one"),
    (lambda: filter_keep(np.ones((3, 2))), TypeError, "exactly one"),
    (lambda: filter_keep(np.ones((3, 2)), n_remove=3), ValueError, r"\[0, 2\]"),
    (lambda: filter_keep(np.ones((3, 2)), n_remove=1.0), TypeError, "n_remove must be an int"),
    (lambda: filter_keep(np.ones((3, 2)), 1.5), ValueError, "sparsity"),
    (lambda: filter_keep(np.ones((3, 2)), 0.5, norm="l0"), ValueError, "reduce"),
    (lambda: shrink(lenet(), (1, 8, 8), {}, sparsity=0.5), TypeError, "not both"),
    (lambda: shrink(lenet(), (1, 8, 8), {"9.weight": np.ones(2)}), ValueError, "9.weight"),
    (lambda: shrink(lenet(), (1, 8, 8), {"0.weight": np.ones(2)}), ValueError, "shape"),
    (lambda: shrink(lenet(), (1, 8, 8), [np.ones(2)]), TypeError, "mapping"),
    (lambda: shrink(lenet(), (1, 8, 8), sparsity={"0.bias": 0.5}), ValueError, "0.bias"),
    (lambda: shrink(lenet(), (1, 8, 8), sparsity={"7.weight": 0.5}), ValueError, "7.weight"),
    (lambda: shrink(lenet(), (8, 8)), ValueError, "input_shape"),
    (lambda: shrink(lenet(), (1, 8, 8), fold="yes"), TypeError, "fold must be a bool"),
    (lambda: remove_filters(lenet(), 0, [0], fold=None), TypeError, "fold must be a bool"),
    (lambda: SurgeryReport.compare(lenet(), models.simple_cnn(1, input_size=8), (1, 8, 8)),
     ValueError, "same places"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_fold_no_bias_can_hold_is_refused():
    """A dead filter with a bias, read by a padded conv, cannot be folded: a ValueError that
    says so; fold=False drops it."""
    model = randomize(nn.Sequential(nn.Conv2d(1, 3, 3, dtype=np.float64), nn.ReLU(),
                                    nn.Conv2d(3, 2, 3, padding=1, dtype=np.float64)), seed=8)
    model[0].bias.data[...] = 1.0
    with pytest.raises(ValueError, match="cannot fold .* padded Conv2d 2"):
        remove_filters(model, 0, [0, 2])
    assert remove_filters(model, 0, [0, 2], fold=False)[2].weight.shape == (2, 2, 3, 3)
    no_bias = randomize(nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.ReLU(),
                                      nn.Linear(3, 1, bias=False, dtype=np.float64)), seed=8)
    no_bias[0].bias.data[...] = 1.0
    with pytest.raises(ValueError, match="no .*bias"):
        remove_neurons(no_bias, 0, [1])


@pytest.mark.parametrize("name", ["", ".cut", ".dependency", ".routes"])
def test_doctests(name):
    module = importlib.import_module("nnprune.prune.surgery" + name)
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
