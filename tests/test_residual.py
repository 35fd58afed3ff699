"""Residual blocks: the layer, ResNet-20, channel groups tied by skips, and exact surgery."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import io, models, nn
from nnprune.autograd import Tensor
from nnprune.count import count
from nnprune.prune import attach_masks, mask_units, model_masks, prune_model, shrink
from nnprune.prune.surgery import channel_groups, group_alive_of
from strategies import binary_masks, randomize, residual_config, residual_nets

pytestmark = pytest.mark.structured
TOL = dict(rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------- the layer
@pytest.mark.nn
def test_residual_adds_body_and_shortcut_and_sums_the_input_gradient():
    """y = body(x) + x; ∂L/∂x = Wᵀ dout + dout (the input is used twice)."""
    body = nn.Linear(3, 3, bias=False, rng=0, dtype=np.float64)
    block = nn.Residual(body)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    y = block(x)
    np.testing.assert_allclose(y.data, x.data @ body.weight.data.T + x.data, **TOL)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.ones((2, 3)) @ body.weight.data + 1, **TOL)


@pytest.mark.nn
def test_residual_round_trips_through_config_and_a_file(tmp_path):
    model = models.resnet20(in_channels=1, input_size=8, seed=3)
    path = tmp_path / "r.npz"
    io.save(path, model)
    loaded, _ = io.load(path)
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)
    assert loaded.config() == model.config()


@pytest.mark.nn
def test_residual_refuses_bad_parts_and_mismatched_shapes():
    with pytest.raises(TypeError, match="body"):
        nn.Residual("conv")
    with pytest.raises(TypeError, match="shortcut"):
        nn.Residual(nn.ReLU(), 3)
    with pytest.raises(ValueError, match="must match"):
        nn.Residual(nn.Linear(3, 2))(np.ones((1, 3)))
    with pytest.raises(ValueError, match="body"):
        nn.from_config({"type": "Residual", "shortcut": None})


@pytest.mark.models
def test_resnet20_counts_and_shapes():
    """He et al.'s ResNet-20 with 1×1 projections: 272,474 parameters (269,722 + 2 × (1×1
    conv + BN)), 19 convolutions + 2 projections + 1 fc; it runs on 8×8 and 28×28 too."""
    model = models.resnet20()
    cost = count(model, (3, 32, 32))
    assert cost.params == 272_474
    convs = [m for _, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 21
    for size in (8, 28):
        small = models.resnet20(in_channels=1, input_size=size, width=0.5)
        assert small(np.zeros((2, 1, size, size), np.float32)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n"):
        models.resnet(depth=21)


# ---------------------------------------------------------------------- groups and surgery
def build(net, seed):
    model = nn.from_config(residual_config(net))
    return randomize(model, seed)


def closed_form(net, small):
    """Params and MACs of the drawn architecture at the widths of ``small``, by hand."""
    convs = [m for _, m in small.named_modules() if isinstance(m, nn.Conv2d)]
    c_in, (h, w) = net["input_shape"][0], net["maps"][0]
    stem, k = convs.pop(0), net["stem"]["k"]
    c = stem.out_channels
    params = c_in * c * k * k + c * net["stem"]["bias"] + 2 * c * net["stem"]["bn"]
    macs = h * w * c * c_in * k * k
    for block, (h, w) in zip(net["blocks"], net["maps"][1:]):
        conv1, conv2 = convs.pop(0), convs.pop(0)
        mid, out = conv1.out_channels, conv2.out_channels
        params += (c * mid + mid * out) * 9 + (mid + out) * (block["bias"] + 2 * block["bn"])
        macs += h * w * (c * mid + mid * out) * 9
        if block["proj"]:
            assert convs.pop(0).out_channels == out
            params += c * out + out * (block["bias"] + 2 * block["bn"])
            macs += h * w * c * out
        c = out
    feats = c * (1 if net["pool"] else h * w)
    return params + feats * 3 + 3, macs + feats * 3


def outputs(model, x, training):
    model.train(training)
    return model(Tensor(x)).data


@settings(max_examples=30, deadline=None)
@given(residual_nets(), st.floats(0.0, 1.0), st.sampled_from(["layer", "global"]),
       st.sampled_from(["l1_norm", "random", "fpgm", "magnitude"]), st.integers(0, 2**16))
def test_shrunk_residual_net_equals_the_masked_one(net, sparsity, scope, criterion, seed):
    """Pruned by group, unit-masked and shrunk: (1) every producer of a group loses the same
    channels; (2) the shrunk model's outputs equal the masked model's, float64, in eval and in
    train mode; (3) its params and MACs are the closed form at the new widths."""
    model = build(net, seed)
    prune_model(model, criterion, sparsity, scope, "filter", seed=seed)
    groups = channel_groups(model)
    masks = model_masks(model)
    for g in groups:
        dead = [tuple(np.flatnonzero(~(masks[f"{p}.weight"] != 0).reshape(g.width, -1)
                                     .any(axis=1))) if f"{p}.weight" in masks else ()
                for p in g.producers]
        assert len(set(dead)) == 1, f"group {g.producers} lost different channels: {dead}"
    mask_units(model)
    small, report = shrink(model, net["input_shape"])
    x = np.random.default_rng(seed).normal(size=(4, *net["input_shape"]))
    for training in (False, True):
        np.testing.assert_allclose(outputs(small, x, training), outputs(model, x, training),
                                   **TOL)
    for g in groups:  # tied producers end with one width: the channels alive in the group
        alive = int(group_alive_of(model, g).sum()) if g.fixed is None else g.width
        modules = dict(small.named_modules())
        widths = {modules[p].out_channels if hasattr(modules[p], "out_channels")
                  else modules[p].out_features for p in g.producers}
        assert widths == {max(alive, 1)}
    params, macs = closed_form(net, small)
    assert (report.params[1], report.macs[1]) == (params, macs)
    assert (count(small, net["input_shape"]).params, report.macs[0]) == \
        (params, count(model, net["input_shape"]).macs)


@settings(max_examples=30, deadline=None)
@given(residual_nets(), st.data(), st.integers(0, 2**16))
def test_a_residual_net_with_drawn_filter_masks_shrinks_to_the_same_function(net, data, seed):
    """Property: filter masks drawn for every Conv2d and Linear on their own (the producers of
    a group need not agree, the output layer may be masked): ``mask_units`` then ``shrink``
    cut exactly the channels every producer of their group lost (one stays), and the shrunk
    model computes the masked model's function, float64, in eval and train mode."""
    model = build(net, seed)
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith(".weight") and p.data.ndim >= 2:
            rows = data.draw(binary_masks((p.shape[0],)))
            masks[name] = np.broadcast_to(rows.reshape(-1, *[1] * (p.data.ndim - 1)),
                                          p.shape).copy()
    attach_masks(model, masks)
    alive = {g.name: int(group_alive_of(model, g).sum()) for g in channel_groups(model)
             if g.fixed is None}
    mask_units(model)
    small, report = shrink(model, net["input_shape"])
    assert {g: report.widths[g][1] for g in alive} == {g: max(n, 1) for g, n in alive.items()}
    x = np.random.default_rng(seed).normal(size=(4, *net["input_shape"]))
    for training in (False, True):
        np.testing.assert_allclose(outputs(small, x, training), outputs(model, x, training),
                                   **TOL)


def test_resnet20_at_half_width_per_group():
    """Layer scope at 0.5 on ResNet-20: every group keeps half its channels, so every conv
    has half its filters and the shrunk model computes what the masked one does."""
    model = randomize(models.resnet20(in_channels=1, input_size=8, dtype=np.float64), 0)
    prune_model(model, "l1_norm", 0.5, "layer", "filter")
    dead = mask_units(model)
    assert set(dead) == {g.name for g in channel_groups(model) if g.fixed is None}
    small, report = shrink(model, (1, 8, 8))
    assert all(b == a // 2 for name, (a, b) in report.widths.items() if name != "23")
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 8))
    np.testing.assert_allclose(outputs(small, x, False), outputs(model, x, False), **TOL)


class Scale(nn.Module):
    def forward(self, x):
        return x * 2.0


def test_a_model_surgery_cannot_follow_is_refused_naming_the_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Residual(
        nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), Scale())), nn.Flatten(),
        nn.Linear(2 * 16, 2))
    with pytest.raises(ValueError, match=r"'1\.body\.1' \(Scale\)"):
        prune_model(model, "l1_norm", 0.5, granularity="filter")


def test_shrink_refuses_channels_that_are_not_silent():
    """Filters masked without their BatchNorm β: cutting them would change the outputs."""
    model = randomize(models.resnet20(in_channels=1, input_size=8, dtype=np.float64), 0)
    prune_model(model, "l1_norm", 0.5, "layer", "filter")
    with pytest.raises(ValueError, match="mask_units"):
        shrink(model, (1, 8, 8))
    with pytest.raises(TypeError, match="Residual"):
        shrink(model, (1, 8, 8), sparsity=0.5)


def test_group_criteria_refuse_what_they_cannot_score():
    model = models.resnet20(in_channels=1, input_size=8)
    with pytest.raises(ValueError, match="residual"):
        prune_model(model, "apoz", 0.5, granularity="filter",
                    data=(np.zeros((2, 1, 8, 8)), np.zeros(2, int)))
    with pytest.raises(ValueError, match="group"):
        prune_model(model, "l1_norm", {"3.body.3.weight": 0.5}, granularity="filter")


def test_group_functions_refuse_bad_input():
    from nnprune.prune.channel_criteria import unit_scores
    from nnprune.prune.surgery import group_scores_of, prunable_groups

    with pytest.raises(TypeError, match="Sequential"):
        channel_groups(nn.Linear(2, 2))
    model = models.resnet20(in_channels=1, input_size=8, width=0.25)
    with pytest.raises(ValueError, match="criterion"):
        group_scores_of(model, prunable_groups(model), "snip")
    with pytest.raises(ValueError, match="channel criterion"):
        unit_scores(nn.Sequential(nn.Linear(2, 2)), "l3_norm", ["0.weight"])
    bad = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Residual(nn.Sequential(nn.Conv2d(2, 3, 1))),
                        nn.Flatten(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="Residual '1' adds 3 channels"):
        channel_groups(bad)
