"""Masks on a model: prunable weights, attach/compose, make permanent, prune_model, Pruner."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import nn
from nnprune.optim import SGD
from nnprune.prune.apply import (attach_masks, exclude_io, make_permanent, model_masks, prunable_parameters,
                                 prunable_weights, prune_model, sparsity_of, sparsity_report)
from nnprune.prune.masks import prune_count
from nnprune.prune.pruner import Pruner
from nnprune.prune.schedules import Gradual
from strategies import sparsities

pytestmark = pytest.mark.apply

PRUNABLE = ["0.weight", "5.weight", "7.weight"]


def small_cnn(seed=0, dtype=np.float32):
    """conv (4,1,3,3) → BN → ReLU → pool → flatten → fc (16, 64) → ReLU → fc (10, 16)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64, 16, rng=rng, dtype=dtype), nn.ReLU(), nn.Linear(16, 10, rng=rng, dtype=dtype))


def random_mask(shape, seed, keep=0.5):
    return (np.random.default_rng(seed).random(shape) < keep).astype(np.float64)


def fake_grads(model, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(p.shape) for name, p in model.named_parameters()}


# ---------------------------------------------------------------- which weights, attach, permanent


def test_prunable_weights_are_conv_and_linear_weights_only():
    """BatchNorm γ (1-D), β and the biases are not prunable; the arrays are the live data."""
    model = small_cnn()
    weights = prunable_weights(model)
    assert list(weights) == PRUNABLE
    assert weights["5.weight"] is model[5].weight.data
    assert list(prunable_weights(model, exclude=["7.weight"])) == PRUNABLE[:2]
    assert list(prunable_parameters(model, "0.weight")) == PRUNABLE[1:]


@given(st.integers(0, 2**20))
def test_attach_composes_and_never_revives(seed):
    """After attach(m1) then attach(m2) the mask is m1 ⊙ m2 and the data is zero where it is 0,
    even where m2 says keep: a pruned weight is never revived."""
    model = small_cnn(seed % 7)
    w0 = model[5].weight.data.copy()
    m1, m2 = random_mask(w0.shape, seed), random_mask(w0.shape, seed + 1)
    attach_masks(model, {"5.weight": m1})
    attach_masks(model, {"5.weight": m2})
    p = model[5].weight
    np.testing.assert_array_equal(p.mask, m1 * m2)
    np.testing.assert_array_equal(p.data, w0 * m1 * m2)
    assert model_masks(model).keys() == {"5.weight"}


def test_model_masks_returns_copies():
    model = small_cnn()
    attach_masks(model, {"0.weight": np.zeros((4, 1, 3, 3))})
    masks = model_masks(model)
    masks["0.weight"][...] = 1
    assert np.all(model[0].weight.mask == 0)


def test_make_permanent_keeps_the_zeros_and_drops_the_masks():
    """Afterwards no parameter has a mask, the data is unchanged (zeros kept), and training may
    move the former zeros again (they are ordinary weights)."""
    model = small_cnn()
    prune_model(model, "magnitude", 0.6)
    before = {k: v.copy() for k, v in prunable_weights(model).items()}
    assert sorted(make_permanent(model)) == PRUNABLE
    assert model_masks(model) == {}
    for name, w in prunable_weights(model).items():
        np.testing.assert_array_equal(w, before[name])
    assert sparsity_of(model) == pytest.approx(0.6, abs=0.01)
    p = model[7].weight
    p.grad = np.ones(p.shape, p.dtype)
    SGD([p], lr=1.0).step()  # no mask: nothing forces the former zeros back to 0
    np.testing.assert_array_equal(p.data[before["7.weight"] == 0], -1.0)


# ---------------------------------------------------------------- prune_model


@given(sparsities, st.sampled_from(["magnitude", "random", "taylor", "snip"]), st.integers(0, 99))
def test_layer_scope_reaches_the_rounding_rule_in_every_layer(sparsity, criterion, seed):
    """Layer scope: each weight of n entries gets exactly ⌊s·n + ½⌋ zeros; the report says
    the same as the values; biases and BN are untouched."""
    model = small_cnn(seed)
    report = prune_model(model, criterion, sparsity, "layer", grads=fake_grads(model, seed),
                         seed=seed)
    for name, w in prunable_weights(model).items():
        zeros = int((w == 0).sum())
        assert zeros == prune_count(w.size, sparsity) == report.layers[name][1]
    assert report.per_layer == sparsity_report(model).per_layer
    assert model[1].weight.mask is None and np.all(model[1].weight.data == 1)


@given(sparsities, st.integers(0, 99), st.integers(1, 3))
def test_global_scope_reaches_the_total_and_never_empties_a_layer(sparsity, seed, min_keep):
    """Global scope: ⌊s·N + ½⌋ zeros over all N weights when min_keep allows it; every layer
    keeps at least min_keep weights whatever the sparsity (1.0 included)."""
    model = small_cnn(seed)
    report = prune_model(model, "magnitude", sparsity, "global", min_keep=min_keep)
    sizes = {name: w.size for name, w in prunable_weights(model).items()}
    kept = {name: int(np.count_nonzero(w)) for name, w in prunable_weights(model).items()}
    assert all(k >= min_keep for k in kept.values())
    n = sum(sizes.values())
    expected = min(prune_count(n, sparsity), n - min_keep * len(sizes))
    assert sum(sizes.values()) - sum(kept.values()) == expected
    assert report.sparsity == pytest.approx(sparsity_of(model))


def test_global_scope_is_one_ranking_across_layers():
    """The weights pruned globally are the smallest |w| of all layers together."""
    model = small_cnn(3)
    all_w = np.concatenate([w.ravel() for w in prunable_weights(model).values()])
    prune_model(model, "magnitude", 0.5, "global")
    kept = np.concatenate([w.ravel() for w in prunable_weights(model).values()])
    threshold = np.sort(np.abs(all_w))[prune_count(all_w.size, 0.5) - 1]
    assert np.all(np.abs(all_w[kept != 0]) >= threshold)


@given(sparsities, st.sampled_from(["layer", "global"]))
def test_excluded_layers_stay_dense(sparsity, scope):
    """Keep the last layer dense: it gets no mask and no zero; the others reach the target."""
    model = small_cnn()
    dense = model[7].weight.data.copy()
    report = prune_model(model, "magnitude", sparsity, scope, exclude=["7.weight"], min_keep=0)
    np.testing.assert_array_equal(model[7].weight.data, dense)
    assert model[7].weight.mask is None
    assert report.excluded == ("7.weight",)
    n = model[0].weight.size + model[5].weight.size
    if scope == "global":
        assert report.zeros == prune_count(n, sparsity)
    assert sparsity_of(model, exclude=["7.weight"]) == pytest.approx(report.sparsity)


def test_pruning_again_counts_the_zeros_already_there():
    """Pruning to 0.5 then to 0.3 keeps 0.5 (no revival); then to 0.8 prunes only survivors."""
    model = small_cnn()
    prune_model(model, "magnitude", 0.5)
    first = model_masks(model)
    prune_model(model, "random", 0.3, seed=1)
    assert all(np.array_equal(first[k], v) for k, v in model_masks(model).items())
    prune_model(model, "random", 0.8, seed=2)
    for name, mask in model_masks(model).items():
        assert np.all(mask <= first[name])
        assert int((mask == 0).sum()) == prune_count(mask.size, 0.8)


def test_structured_granularity_prunes_whole_filters():
    model = small_cnn()
    prune_model(model, "magnitude", 0.5, granularity="filter", exclude=["7.weight"])
    w = model[0].weight.data
    filters_zero = np.all(w.reshape(4, -1) == 0, axis=1)
    assert filters_zero.sum() == 2
    assert np.all(w.reshape(4, -1)[~filters_zero] != 0)


def test_n_m_granularity_fixes_the_sparsity():
    model = nn.Sequential(nn.Linear(8, 4, rng=0))
    report = prune_model(model, "magnitude", None, granularity="2:4")
    assert report.sparsity == 0.5
    assert np.all((model[0].weight.data.reshape(4, 2, 4) != 0).sum(axis=2) == 2)
    with pytest.raises(ValueError, match="fixes sparsity"):
        prune_model(model, "magnitude", 0.9, granularity="2:4")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(criterion="biggest"), ValueError, "unknown criterion"),
    (dict(exclude=["9.weight"]), ValueError, "not a prunable weight"),
    (dict(exclude=["1.weight"]), ValueError, "not a prunable weight"),  # BN γ
    (dict(criterion="taylor"), ValueError, "needs grads"),
    (dict(criterion="snip", grads={"0.weight": np.zeros((4, 1, 3, 3))}), ValueError, "missing"),
    (dict(sparsity=1.5), ValueError, "sparsity"),
    (dict(sparsity=-0.1), ValueError, "sparsity"),
    (dict(sparsity="half"), TypeError, "sparsity"),
    (dict(scope="everywhere"), ValueError, "scope must be one of"),
    (dict(granularity="row"), ValueError, "granularity"),
    (dict(min_keep=-1), ValueError, "min_keep"),
    (dict(grads=[1, 2]), TypeError, "grads must be a mapping"),
    (dict(sparsity={"0.weight": 0.5}, scope="global"), ValueError, "needs scope='layer'"),
    (dict(sparsity={"0.weight": 1.5}), ValueError, r"sparsity\['0.weight'\]"),
    (dict(sparsity={"9.weight": 0.5}), ValueError, "unknown layer name '9.weight'"),
    (dict(sparsity={"0.weight": 0.5}, exclude=["0.weight"]), ValueError, "both excluded"),
    (dict(sparsity={"7.weight": 0.5}, granularity="1:2", exclude=["0.weight"]), ValueError,
     "per-layer sparsity dict"),
])
def test_prune_model_rejects_bad_input(kwargs, error, match):
    args = dict(criterion="magnitude", sparsity=0.5)
    args.update(kwargs)
    model = small_cnn()
    with pytest.raises(error, match=match):
        prune_model(model, **args)
    assert model_masks(model) == {}  # nothing was attached


@given(st.dictionaries(st.sampled_from(["0.weight", "5.weight", "7.weight"]), sparsities,
                       min_size=1), st.integers(0, 99))
def test_per_layer_sparsity_dict_prunes_each_named_weight_to_its_own_target(targets, seed):
    """{name: s}: each named weight gets exactly ⌊s·n + ½⌋ zeros; the weights the dict does
    not name get no mask and are reported as excluded."""
    model = small_cnn(seed)
    report = prune_model(model, "magnitude", targets)
    for name, w in prunable_weights(model).items():
        if name in targets:
            assert int((w == 0).sum()) == prune_count(w.size, targets[name])
            assert report.layers[name] == (w.size, prune_count(w.size, targets[name]))
        else:
            assert name in report.excluded and name not in model_masks(model)


def test_bad_models_and_masks_are_refused():
    for function in (prunable_weights, model_masks, make_permanent, sparsity_of):
        with pytest.raises(TypeError, match="named_parameters"):
            function(object())
    with pytest.raises(ValueError, match="no prunable weights"):
        prune_model(nn.Sequential(nn.ReLU()), "magnitude", 0.5)
    model = small_cnn()
    with pytest.raises(ValueError, match="not a parameter"):
        attach_masks(model, {"3.weight": np.ones(3)})
    with pytest.raises(ValueError, match="shape"):
        attach_masks(model, {"7.weight": np.ones((10, 15))})
    with pytest.raises(ValueError, match="only 0 and 1"):
        attach_masks(model, {"7.weight": np.full((10, 16), 0.5)})
    with pytest.raises(TypeError, match="mapping"):
        attach_masks(model, [np.ones((10, 16))])
    with pytest.raises(ValueError, match="not a prunable weight"):
        sparsity_of(model, exclude=["nope"])


# ---------------------------------------------------------------- Pruner and the gradual schedule


@settings(max_examples=15)
@given(st.floats(0.05, 1.0), st.integers(0, 5), st.integers(1, 4), st.integers(1, 5),
       st.sampled_from(["layer", "global"]))
def test_gradual_pruning_reaches_the_final_sparsity_exactly_at_the_end_step(
        final, begin, frequency, updates, scope):
    """Stepping on_step through 1..end+3: the sparsity never falls, it prunes exactly at the
    schedule's update steps, and at the end step t0 + nΔt each layer (layer scope) or the
    total (global scope) holds exactly ⌊s_f·n + ½⌋ zeros; nothing changes after."""
    model = small_cnn()
    schedule = Gradual(0.0, final, begin, updates, frequency)
    end = schedule.update_steps()[-1]  # t0 + nΔt
    pruner = Pruner(model, "magnitude", scope, schedule=schedule, min_keep=0)
    previous = 0.0
    for step in range(1, end + 4):
        report = pruner.on_step(step)
        assert (report is not None) == (step in schedule.update_steps())
        now = sparsity_of(model)
        assert now >= previous
        previous = now
        if step == end:
            sizes = {k: w.size for k, w in prunable_weights(model).items()}
            if scope == "layer":
                assert report.per_layer == {k: prune_count(n, final) / n for k, n in sizes.items()}
            else:
                assert report.zeros == prune_count(sum(sizes.values()), final)
            at_end = model_masks(model)
    assert all(np.array_equal(at_end[k], m) for k, m in model_masks(model).items())
    assert [h["step"] for h in pruner.history] == [t for t in schedule.update_steps() if t > 0]


def test_pruner_prune_to_and_its_history():
    model = small_cnn()
    calls = []
    pruner = Pruner(model, "taylor", "global", exclude=["7.weight"],
                    grads_fn=lambda: calls.append(1) or fake_grads(model, 0))
    report = pruner.prune_to(0.7)
    assert calls == [1] and report.excluded == ("7.weight",)
    assert report.zeros == prune_count(model[0].weight.size + model[5].weight.size, 0.7)
    assert pruner.history == [{"step": None, "target": 0.7, "sparsity": report.sparsity}]
    assert (pruner.criterion, pruner.scope, pruner.granularity) == ("taylor", "global", "weight")
    assert (pruner.exclude, pruner.min_keep, pruner.seed) == (("7.weight",), 1, 0)


def test_pruner_rejects_bad_input():
    model = small_cnn()
    schedule = Gradual(0.0, 0.9, 0, 10)
    with pytest.raises(ValueError, match="unknown criterion"):
        Pruner(model, "loudest")
    with pytest.raises(ValueError, match="scope"):
        Pruner(model, scope="both")
    with pytest.raises(ValueError, match="not a prunable weight"):
        Pruner(model, exclude=["8.weight"])
    with pytest.raises(TypeError, match="Gradual"):
        Pruner(model, schedule=(0.9, 0, 10))
    with pytest.raises(ValueError, match="needs grads_fn"):
        Pruner(model, "taylor", schedule=schedule)
    with pytest.raises(TypeError, match="grads_fn"):
        Pruner(model, "taylor", grads_fn={"0.weight": 0})
    with pytest.raises(ValueError, match="fixes the sparsity"):
        Pruner(model, granularity="2:4", schedule=Gradual(0.0, 0.5, 0, 10))
    with pytest.raises(ValueError, match="needs a schedule"):
        Pruner(model).on_step(3)
    with pytest.raises(ValueError, match="step must be"):
        Pruner(model, schedule=schedule).on_step(-1)
    with pytest.raises(ValueError, match="needs grads"):
        Pruner(model, "snip").prune_to(0.5)
    assert model_masks(model) == {}


@pytest.mark.parametrize("granularity, end", [("filter", "7.weight"), ("neuron", "7.weight"),
                                              ("channel", "0.weight")])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_pruning_leaves_the_classes_and_the_image_channels_alone(granularity, end,
                                                                             scope):
    """Whole output units of the last weight are classes and whole input channels of the first
    are the image's: by default they stay dense and are reported as excluded; prune_io=True
    prunes them like any other weight."""
    model = small_cnn()
    report = prune_model(model, "magnitude", 0.5, scope=scope, granularity=granularity)
    assert end in report.excluded
    assert dict(model.named_parameters())[end].mask is None
    pruned = [name for name in PRUNABLE if name != end]
    assert all(dict(model.named_parameters())[name].mask is not None for name in pruned)

    model = small_cnn()
    report = prune_model(model, "magnitude", 0.5, scope="layer", granularity=granularity,
                         prune_io=True)
    assert end not in report.excluded
    mask = dict(model.named_parameters())[end].mask
    assert mask is not None and report.layers[end][1] == mask.size - np.count_nonzero(mask) > 0


def test_weight_granularity_prunes_the_output_layer_too():
    """Single weights of the output layer are pruned as in Han et al.; nothing is added to
    the exclusions."""
    report = prune_model(small_cnn(), "magnitude", 0.5, granularity="weight")
    assert report.excluded == ()


def test_prune_io_must_be_a_bool():
    with pytest.raises(TypeError, match="prune_io must be a bool, got int"):
        prune_model(small_cnn(), "magnitude", 0.5, granularity="filter", prune_io=1)


def test_exclude_io_adds_the_class_or_image_layer_once():
    """filter/neuron add the last weight, channel the first, others nothing; a name already
    excluded is not repeated; prune_io=True adds nothing."""
    names = ["0.weight", "2.weight", "4.weight"]
    assert exclude_io(names, "neuron") == ("4.weight",)
    assert exclude_io(names, "channel", ["2.weight"]) == ("2.weight", "0.weight")
    assert exclude_io(names, "filter", ("4.weight",)) == ("4.weight",)
    assert exclude_io(names, "weight") == exclude_io(names, "2:4") == ()
    assert exclude_io(names, "filter", prune_io=True) == ()


def test_workflow_records_count_the_io_exclusion():
    """A neuron-pruned workflow's record lists the output layer as excluded and measures the
    sparsity reached on the layers it prunes (the rounding rule per layer, on whole rows)."""
    from nnprune.data import digits
    from nnprune.experiment import workflows
    from nnprune.models import lenet_300_100

    model = lenet_300_100(in_channels=1, input_size=8, width=0.25, seed=0)
    result = workflows.oneshot(model, digits(seed=0), granularity="neuron", sparsity=0.5,
                               finetune_epochs=0)
    assert result["exclude"] == ["5.weight"]
    # 64-75-25-10: ⌊0.5·75 + ½⌋ rows of 64 and ⌊0.5·25 + ½⌋ rows of 75 over the two layers
    zeros = prune_count(75, 0.5) * 64 + prune_count(25, 0.5) * 75
    assert result["sparsity_reached"] == pytest.approx(zeros / (75 * 64 + 25 * 75), abs=1e-12)
