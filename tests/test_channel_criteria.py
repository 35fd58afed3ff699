"""Filter criteria (FPGM, norms, BatchNorm γ, group Taylor, APoZ) and their model-level ranking."""
import doctest

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnprune import functional as F
from nnprune import nn, train
from nnprune.autograd import Tensor
from nnprune.prune import apply, channel_criteria, channel_scores
from nnprune.prune.channel_scores import (apoz_scores, bn_gamma_scores, filter_norm_scores,
                                          fpgm_scores, gate_gradient, mean_activation_scores,
                                          normalise_layer, taylor_group_scores)
from strategies import arrays, filter_banks

pytestmark = pytest.mark.structured


# ---------------------------------------------------------------------- FPGM and the norms
@settings(max_examples=40, deadline=None)
@given(filter_banks(), st.data())
def test_fpgm_is_invariant_to_a_common_shift(w, data):
    """Adding one vector v to every filter leaves every FPGM score unchanged."""
    v = data.draw(arrays(w.shape[1:], low=-5, high=5))
    np.testing.assert_allclose(fpgm_scores(w + v), fpgm_scores(w), rtol=1e-9, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(filter_banks(), st.integers(0, 2**32 - 1))
def test_fpgm_is_invariant_to_an_orthogonal_map(w, seed):
    """An orthogonal Q applied to every flattened filter leaves every FPGM score unchanged."""
    rows = w.reshape(len(w), -1)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(rows.shape[1],) * 2))
    np.testing.assert_allclose(fpgm_scores(rows @ q.T), fpgm_scores(w), rtol=1e-9, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(filter_banks(min_filters=3), st.integers(0, 100))
def test_identical_filters_get_identical_scores(w, pick):
    """Two copies of one filter score the same under FPGM and both norms."""
    i, j = pick % len(w), (pick + 1) % len(w)
    w = w.copy()
    w[j] = w[i]
    for scores in (fpgm_scores(w), filter_norm_scores(w, "l1"), filter_norm_scores(w, "l2")):
        assert scores[i] == pytest.approx(scores[j], rel=1e-12, abs=1e-12)


def test_fpgm_matches_the_definition():
    """S_f = Σ_j ‖w_f − w_j‖₂, computed here with plain loops."""
    w = np.random.default_rng(0).normal(size=(5, 2, 3, 3))
    rows = w.reshape(5, -1)
    expected = [sum(np.linalg.norm(rows[f] - rows[j]) for j in range(5)) for f in range(5)]
    np.testing.assert_allclose(fpgm_scores(w), expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(filter_banks(min_filters=2, conv=False))
def test_l1_is_not_shift_invariant(w):
    """A drawn counterexample: make filter 0 the strict L1 maximum, then subtract it from every
    filter. L1 now ranks it strictly last (norm 0); FPGM's scores do not move."""
    w = w.copy()
    others = np.abs(w[1:]).sum(axis=1)
    assume(np.abs(w[0]).sum() > 1e-3)
    w[0] *= (others.max() + 1.0) / np.abs(w[0]).sum()  # strict maximum
    assume(np.all(np.abs(w[1:] - w[0]).sum(axis=1) > 1e-6))
    l1, shifted = filter_norm_scores(w, "l1"), filter_norm_scores(w - w[0], "l1")
    assert np.argmax(l1) == 0 and l1[0] > l1[1:].max()
    assert shifted[0] == 0 and shifted[1:].min() > 0  # from first to last
    np.testing.assert_allclose(fpgm_scores(w - w[0]), fpgm_scores(w), rtol=1e-9, atol=1e-8)


def test_norms_bn_gamma_and_activations_on_small_examples():
    w = np.array([[3.0, -4.0], [1.0, 0.0]])
    np.testing.assert_array_equal(filter_norm_scores(w, "l1"), [7.0, 1.0])
    np.testing.assert_array_equal(filter_norm_scores(w, "l2"), [5.0, 1.0])
    np.testing.assert_array_equal(bn_gamma_scores(np.array([-2.0, 0.5])), [2.0, 0.5])
    a = np.zeros((2, 2, 1, 2))
    a[:, 0] = [[1.0, 0.0]]  # channel 0 is zero half the time, channel 1 always
    np.testing.assert_array_equal(apoz_scores(a), [0.5, 0.0])
    np.testing.assert_array_equal(mean_activation_scores(a), [0.5, 0.0])


# ---------------------------------------------------------------------- group Taylor
@settings(max_examples=30, deadline=None)
@given(filter_banks(), st.data())
def test_taylor_group_is_the_square_of_the_summed_products(w, data):
    """With one batch S_f = (Σ_{j∈f} w_j g_j)²; with B batches the mean of those squares."""
    gs = [data.draw(arrays(w.shape)) for _ in range(data.draw(st.integers(1, 3)))]
    per_weight = [(w * g).reshape(len(w), -1).sum(axis=1) ** 2 for g in gs]
    np.testing.assert_allclose(taylor_group_scores(w, gs[:1]), per_weight[0], rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(taylor_group_scores(w, gs), np.mean(per_weight, axis=0),
                               rtol=1e-12, atol=1e-12)


def _loss(model, x, y):
    return float(F.cross_entropy(model(Tensor(x)), y).data)


@pytest.mark.parametrize("layer", [0, 3])
def test_gate_gradient_matches_finite_differences(layer):
    """Σ_f w·g = ∂L/∂c · c at c = 1 for a gate c scaling filter f (central differences)."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0, dtype=np.float64), nn.Tanh(),
                          nn.Flatten(), nn.Linear(3 * 16, 4, rng=1, dtype=np.float64),
                          nn.Tanh(), nn.Linear(4, 3, rng=2, dtype=np.float64))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 2, 4, 4)), rng.integers(0, 3, 5)
    g = train.gradients(model, (x, y), batch_size=5)[f"{layer}.weight"]
    w = model[layer].weight
    gates = gate_gradient(w.data, g)
    h = 1e-6
    for f in range(w.shape[0]):
        base = w.data.copy()
        losses = []
        for c in (1 + h, 1 - h):
            w.data[...] = base
            w.data[f] *= c
            losses.append(_loss(model, x, y))
        w.data[...] = base
        assert gates[f] == pytest.approx((losses[0] - losses[1]) / (2 * h), rel=1e-5, abs=1e-9)


# ---------------------------------------------------------------------- layer normalisation
@given(arrays(st.integers(1, 6).map(lambda n: (n,)), low=0, high=5), st.floats(0.1, 100))
def test_normalise_layer_removes_the_layer_scale(s, c):
    """normalise_layer(c·s) = normalise_layer(s) for c > 0 ("l2", "max"); "none" keeps s.

    Subnormal scores are set to 0 first: c·s would round them, so the identity is not exact.
    """
    s = np.where(s < 1e-300, 0.0, s)
    for how in ("l2", "max"):
        np.testing.assert_allclose(normalise_layer(c * s, how), normalise_layer(s, how),
                                   rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(normalise_layer(s, "none"), s)


def _two_layer_cnn(seed=0):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=seed, dtype=np.float64),
                         nn.BatchNorm2d(8, dtype=np.float64), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, rng=seed + 1, dtype=np.float64),
                         nn.BatchNorm2d(8, dtype=np.float64), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 16, 3, rng=seed + 2, dtype=np.float64))


def test_global_ranking_needs_a_layer_norm_when_scales_differ():
    """Scaling one layer's weights by 1000 makes unnormalised global L1 prune only the other
    layer (down to min_keep); with layer_norm the masks do not change at all."""
    masks = {}
    for norm in ("none", "l2", "max"):
        for scale in (1.0, 1000.0):
            model = _two_layer_cnn()
            model[3].weight.data *= scale
            apply.prune_model(model, "l1_norm", 0.5, "global", "filter", layer_norm=norm)
            masks[norm, scale] = apply.model_masks(model)
    alive = masks["none", 1000.0]["0.weight"].reshape(8, -1).any(axis=1)
    assert alive.sum() == 1  # the small-scale layer lost all but min_keep
    for norm in ("l2", "max"):
        for name in ("0.weight", "3.weight"):
            np.testing.assert_array_equal(masks[norm, 1.0][name], masks[norm, 1000.0][name])


# ---------------------------------------------------------------------- on a model
DATA = (np.random.default_rng(1).normal(size=(40, 1, 4, 4)), np.arange(40) % 3)


@pytest.mark.parametrize("criterion", channel_criteria.CHANNEL_CRITERIA)
def test_prune_model_removes_exactly_k_filters_per_layer(criterion):
    """Layer scope, 8 filters at 0.5: 4 whole filters of each hidden layer go, the output
    layer stays dense, and the scores are the array functions' on the model's arrays."""
    model = _two_layer_cnn()
    report = apply.prune_model(model, criterion, 0.5, "layer", "filter", data=DATA)
    for name in ("0.weight", "3.weight"):
        mask = model.state_dict()[name] != 0
        assert mask.reshape(8, -1).all(axis=1).sum() == 4
        assert (~mask).reshape(8, -1).all(axis=1).sum() == 4
    assert "7.weight" in report.excluded


def test_unit_scores_read_the_right_arrays():
    model = _two_layer_cnn()
    model[1].weight.data[...] = np.arange(8.0) - 3.5
    got = channel_criteria.unit_scores(model, "bn_gamma", ["0.weight"])
    np.testing.assert_array_equal(got["0.weight"], np.abs(np.arange(8.0) - 3.5))
    got = channel_criteria.unit_scores(model, "fpgm", ["3.weight"])
    np.testing.assert_array_equal(got["3.weight"], fpgm_scores(model[3].weight.data))
    batches = channel_criteria.sample_batches(DATA, 64, 8, 0)
    grads = [train.gradients(model, b, batch_size=len(b[1])) for b in batches]
    got = channel_criteria.unit_scores(model, "taylor_group", ["0.weight"], DATA)
    np.testing.assert_allclose(got["0.weight"], taylor_group_scores(
        model[0].weight.data, [g["0.weight"] for g in grads]), rtol=1e-12)
    # APoZ after the ReLU (layer 2), in eval mode
    model.eval()
    relu = model[2](model[1](model[0](Tensor(DATA[0])))).data
    got = channel_criteria.unit_scores(model, "apoz", ["0.weight"], DATA)
    np.testing.assert_array_equal(got["0.weight"], apoz_scores(relu))


def test_reduce_l2_reaches_prune_model():
    """prune_model(..., reduce="l2") ranks filters by their L2 norm (it used to be a TypeError)."""
    w = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.1, 0.1, 0.0]])  # L1 3, 3, .2; L2 3, 1.7
    for reduce, kept in (("l1", [1, 1, 0]), ("l2", [1, 0, 0])):
        model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
        model[0].weight.data[...] = w
        apply.prune_model(model, "magnitude", 1 / 3 if reduce == "l1" else 2 / 3, "layer",
                          "neuron", reduce=reduce)
        assert model[0].weight.mask.any(axis=1).astype(int).tolist() == kept


@pytest.mark.parametrize("kwargs, message", [
    (dict(criterion="fpgm", granularity="weight"), "granularity"),
    (dict(criterion="fpgm", granularity="channel"), "filter"),
    (dict(criterion="apoz", granularity="filter"), "data"),
    (dict(criterion="bn_gamma", granularity="filter", exclude=["3.weight"]), None),
    (dict(criterion="l1_norm", granularity="filter", layer_norm="l3"), "layer_norm"),
    (dict(criterion="magnitude", granularity="filter", reduce="l3"), "reduce"),
    (dict(criterion="magnitude", granularity="2:4", layer_norm="l2"), "granularity"),
])
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    model = _two_layer_cnn()
    if message is None:  # bn_gamma on a model without BatchNorm names the layer
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
        with pytest.raises(ValueError, match="0.weight"):
            apply.prune_model(model, "bn_gamma", 0.5, granularity="filter")
        return
    with pytest.raises(ValueError, match=message):
        apply.prune_model(model, sparsity=0.5, **kwargs)


def test_array_functions_refuse_bad_input():
    with pytest.raises(ValueError, match="dims"):
        fpgm_scores(np.ones(3))
    with pytest.raises(ValueError, match="norm"):
        filter_norm_scores(np.ones((2, 2)), "l3")
    with pytest.raises(ValueError, match="empty"):
        taylor_group_scores(np.ones((2, 2)), [])
    with pytest.raises(TypeError, match="list"):
        taylor_group_scores(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        gate_gradient(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="activations"):
        apoz_scores(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="gamma"):
        bn_gamma_scores(np.ones((2, 2)))
    with pytest.raises(ValueError, match="layer_norm"):
        normalise_layer(np.ones(2), "l1")


def test_docstring_examples():
    assert doctest.testmod(channel_scores, extraglobs={"np": np}).failed == 0


@pytest.mark.parametrize("rounding, pruned", [("half_up", 3), ("half_even", 2)])
def test_filter_criteria_follow_the_rounding_rule(rounding, pruned):
    """0.3125 of 8 filters is 2.5: nnprune's half up prunes 3, PyTorch's half to even 2."""
    model = _two_layer_cnn()
    apply.prune_model(model, "fpgm", 0.3125, "layer", "filter", rounding=rounding)
    assert (~model[0].weight.mask.reshape(8, -1).any(axis=1)).sum() == pruned
