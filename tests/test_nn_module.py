"""Module, Parameter and the layer constructors: registration, state, masks, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import Tensor, nn
from nnprune.nn import init
from strategies import arrays

pytestmark = pytest.mark.nn


def small_model():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.BatchNorm2d(2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=1))


def test_parameters_are_registered_in_order_with_dotted_names():
    names = [n for n, _ in small_model().named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]


def test_buffers_are_state_but_not_parameters():
    model = small_model()
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var"]
    state = model.state_dict()
    assert "1.running_mean" in state and "1.running_mean" not in dict(model.named_parameters())


def test_state_dict_round_trip_copies_values():
    """load_state_dict(state_dict()) of another model makes the two identical."""
    a, b = small_model(), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=5), nn.BatchNorm2d(2),
                                        nn.ReLU(), nn.Flatten(), nn.Linear(32, 3, rng=6))
    assert not np.array_equal(a[0].weight.data, b[0].weight.data)
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data)
    # the state is a copy: changing it later does not touch the model
    state = a.state_dict()
    state["0.weight"][...] = 7
    assert not np.any(a[0].weight.data == 7)


def test_load_state_dict_rejects_missing_unexpected_and_misshapen():
    model = small_model()
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "0.weight"})
    with pytest.raises(ValueError, match="unexpected"):
        model.load_state_dict({**state, "9.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({**state, "0.weight": np.zeros((2, 1, 2, 2))})


def test_a_rejected_state_leaves_the_model_unchanged():
    """Every entry is checked before any is copied: a bad last entry changes nothing."""
    model = small_model()
    before = model.state_dict()
    state = {name: value + 1 for name, value in before.items()}
    state["4.bias"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"state\['4.bias'\] has shape \(7,\)"):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_non_strict_loading_takes_the_matching_names_only():
    model = small_model()
    new_weight = np.full(model[4].weight.shape, 0.5)
    model.load_state_dict({"4.weight": new_weight, "extra": np.zeros(2)}, strict=False)
    assert np.all(model[4].weight.data == 0.5) and model[4].weight.dtype == np.float32


@pytest.mark.parametrize("state, strict, error, match", [
    ([("0.weight", np.zeros(1))], True, TypeError, "state must be a mapping"),
    ({"4.bias": np.array(["a", "b", "c"])}, False, TypeError, r"state\['4.bias'\] must be numeric"),
    ({}, "yes", TypeError, "strict must be a bool"),
])
def test_load_state_dict_rejects_bad_types(state, strict, error, match):
    with pytest.raises(error, match=match):
        small_model().load_state_dict(state, strict=strict)


def test_sequential_indexing():
    model = small_model()
    assert model[-1] is model[4] and isinstance(model[1:3], nn.Sequential) and len(model[1:3]) == 2
    with pytest.raises(IndexError, match="index 5 is out of range for a Sequential of 5"):
        model[5]
    with pytest.raises(TypeError, match="indices must be ints or slices, got str"):
        model["0"]


def test_train_and_eval_reach_every_submodule():
    model = small_model()
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError, match="mode"):
        model.train("yes")


def test_config_round_trip_rebuilds_the_same_architecture():
    model = nn.Sequential(nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=2),
                          nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(1),
                          nn.Dropout(0.25), nn.Flatten(), nn.Linear(8, 5, bias=False),
                          nn.BatchNorm1d(5), nn.Tanh())
    rebuilt = nn.from_config(model.config())
    assert rebuilt.config() == model.config()
    shapes = [(n, p.shape) for n, p in model.named_parameters()]
    assert shapes == [(n, p.shape) for n, p in rebuilt.named_parameters()]


def test_from_config_rejects_unknown_layers_and_arguments():
    with pytest.raises(ValueError, match="unknown layer type"):
        nn.from_config({"type": "Conv3d"})
    with pytest.raises(ValueError, match="bad arguments for Linear"):
        nn.from_config({"type": "Linear", "in_features": 2})
    with pytest.raises(ValueError, match="'type'"):
        nn.from_config([1, 2])


def test_same_rng_seed_gives_identical_layers_and_shared_generator_differs():
    a, b = nn.Linear(5, 4, rng=3), nn.Linear(5, 4, rng=3)
    assert np.array_equal(a.weight.data, b.weight.data)
    g = np.random.default_rng(3)
    c, d = nn.Linear(5, 4, rng=g), nn.Linear(5, 4, rng=g)
    assert not np.array_equal(c.weight.data, d.weight.data)


def test_fans_of_linear_and_conv_weights():
    """fan_in = in·kh·kw, fan_out = out·kh·kw; a linear weight has a 1×1 receptive field."""
    assert init.fans((300, 784)) == (784, 300)
    assert init.fans((20, 3, 5, 3)) == (3 * 15, 20 * 15)


@pytest.mark.parametrize("shape", [(128, 64, 3, 3), (200, 300)])
def test_kaiming_is_the_documented_draw_and_has_the_he_variance(shape):
    """w = rng.standard_normal(shape)·√(2 / fan_in) bit for bit, from the seed alone; its
    sample variance is 2 / fan_in (He et al. 2015) within sampling error."""
    fan_in, _ = init.fans(shape)
    w = init.kaiming_normal(shape, 7, dtype=np.float64)
    expected = np.random.default_rng(7).standard_normal(shape) * np.sqrt(2.0 / fan_in)
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(init.kaiming_normal(shape, np.random.default_rng(7),
                                                      dtype=np.float64), w)
    assert abs(w.var() * fan_in / 2 - 1) < 0.03 and abs(w.mean()) < 0.01
    assert init.kaiming_normal(shape, 7).dtype == np.float32


@pytest.mark.parametrize("shape", [(128, 64, 3, 3), (200, 300)])
def test_glorot_is_the_documented_draw_and_has_the_glorot_variance(shape):
    """w = rng.uniform(−a, a, shape), a = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010):
    every entry within ±a and the variance a²/3 = 2 / (fan_in + fan_out)."""
    fan_in, fan_out = init.fans(shape)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    w = init.glorot_uniform(shape, 3, dtype=np.float64)
    np.testing.assert_array_equal(w, np.random.default_rng(3).uniform(-a, a, shape))
    assert np.abs(w).max() <= a
    assert abs(w.var() * (fan_in + fan_out) / 2 - 1) < 0.03


def test_layers_draw_their_weights_from_the_seed():
    """nn.Linear(rng=s) and nn.Conv2d(rng=s) hold exactly init_weight(shape, init, s); with
    "glorot" and "kaiming" the biases start at zero."""
    lin = nn.Linear(5, 4, init="glorot", rng=11)
    np.testing.assert_array_equal(lin.weight.data, init.glorot_uniform((4, 5), 11))
    conv = nn.Conv2d(3, 6, (3, 2), init="kaiming", rng=12, dtype=np.float64)
    np.testing.assert_array_equal(conv.weight.data,
                                  init.kaiming_normal((6, 3, 3, 2), 12, dtype=np.float64))
    assert np.all(lin.bias.data == 0) and np.all(conv.bias.data == 0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: init.fans((3,)), ValueError, "at least 2 positive ints"),
    (lambda: init.fans((3, 0)), ValueError, "at least 2 positive ints"),
    (lambda: init.kaiming_normal((3, 2), "seed"), TypeError, "rng must be"),
    (lambda: init.glorot_uniform((3, 2), -1), TypeError, "rng must be"),
    (lambda: init.kaiming_normal((3, 2), 0, dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: init.glorot_uniform((3, 2), 0, dtype="float33"), TypeError, "float32 or float64"),
    (lambda: init.init_weight((3, 2), "he", 0), ValueError, "init must be one of"),
])
def test_initialisers_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Linear(0, 3), "in_features"),
    (lambda: nn.Linear(3, 2.5), "out_features"),
    (lambda: nn.Conv2d(1, 2, 0), "kernel_size"),
    (lambda: nn.Conv2d(1, 2, 3, stride=-1), "stride"),
    (lambda: nn.Conv2d(1, 2, 3, padding=-1), "padding"),
    (lambda: nn.Conv2d(1, 2, 3, dilation=0), "dilation"),
    (lambda: nn.Conv2d(1, 2, (3, 3, 3)), "kernel_size"),
    (lambda: nn.Linear(2, 2, dtype=np.int32), "dtype"),
    (lambda: nn.Linear(2, 2, init="orthogonal"), "init"),
    (lambda: nn.Linear(2, 2, rng="seed"), "rng"),
    (lambda: nn.Dropout(1.0), "p"),
    (lambda: nn.BatchNorm2d(4, momentum=2.0), "momentum"),
    (lambda: nn.BatchNorm2d(4, eps=0), "eps"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), "Modules"),
])
def test_constructors_reject_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ---------------------------------------------------------------------- the mask protocol


@pytest.mark.apply
@given(arrays((4, 5)), st.integers(0, 2**20))
def test_set_mask_zeroes_pruned_entries_and_masks_gradients(w, seed):
    """After set_mask, data and accumulated gradients are zero wherever the mask is zero."""
    p = nn.Parameter(w, dtype=np.float64)
    mask = np.random.default_rng(seed).random((4, 5)) < 0.5
    p.set_mask(mask)
    assert np.all(p.data[~mask] == 0) and np.array_equal(p.data[mask], w[mask])
    (Tensor(np.ones((4, 5))) * p * p).sum().backward()
    assert np.all(p.grad[~mask] == 0) and np.allclose(p.grad[mask], 2 * w[mask])


@pytest.mark.apply
def test_remove_mask_keeps_the_zeros():
    """make-permanent: the mask is gone, the pruned values stay exactly zero."""
    p = nn.Parameter(np.arange(1.0, 7.0).reshape(2, 3))
    p.set_mask(np.array([[1, 0, 1], [0, 1, 1]]))
    p.remove_mask()
    assert p.mask is None
    assert np.array_equal(p.data, np.array([[1, 0, 3], [0, 5, 6]], dtype=np.float32))


@pytest.mark.apply
def test_set_mask_rejects_wrong_shape_and_values():
    p = nn.Parameter(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        p.set_mask(np.ones((3, 2)))
    with pytest.raises(ValueError, match="0 and 1"):
        p.set_mask(np.full((2, 3), 0.5))


@pytest.mark.apply
def test_load_state_dict_keeps_pruned_weights_zero():
    """Loading dense values into a masked model re-applies the masks."""
    model = small_model()
    state = model.state_dict()
    mask = np.zeros_like(model[4].weight.data)
    mask[:, :5] = 1
    model[4].weight.set_mask(mask)
    model.load_state_dict(state)
    assert np.all(model[4].weight.data[:, 5:] == 0)


# ---------------------------------------------------------------------- pooling layers
def test_avg_pool_is_not_a_max_pool():
    """Both pooling layers share a private base; neither is an instance of the other, so
    code that dispatches on the layer type cannot mistake one for the other."""
    avg, mx = nn.AvgPool2d(2), nn.MaxPool2d(2)
    assert not isinstance(avg, nn.MaxPool2d) and not isinstance(mx, nn.AvgPool2d)
    assert avg.config()["type"] == "AvgPool2d" and mx.config()["type"] == "MaxPool2d"


@pytest.mark.parametrize("cls, reduce", [(nn.MaxPool2d, np.max), (nn.AvgPool2d, np.mean)])
def test_pooling_layers_reduce_their_windows(cls, reduce):
    """2×2 windows, stride 2: out[n, c, i, j] = reduce(x[n, c, 2i:2i+2, 2j:2j+2])."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6))
    out = cls(2)(Tensor(x, dtype=np.float64)).data
    expected = reduce(x.reshape(2, 3, 2, 2, 3, 2), axis=(3, 5))
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    layer = cls((3, 2), stride=(1, 2), padding=(1, 0))
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 2), (1, 2), (1, 0))
    assert cls(3).stride == (3, 3)  # the stride defaults to the kernel


@pytest.mark.parametrize("layer, shape, match", [
    (nn.Conv2d(1, 2, 3), (2, 3, 8, 8), "3 channels but weight expects 1"),
    (nn.Conv2d(3, 2, (9, 3), padding=0), (2, 3, 8, 8), "larger than the padded input"),
    (nn.Conv2d(3, 2, 3), (3, 8, 8), "4-D"),
    (nn.Conv2d(3, 2, 3), (0, 3, 8, 8), "empty"),
    (nn.Linear(4, 2), (2, 5), "in_features = 4"),
    (nn.MaxPool2d(9), (1, 1, 8, 8), "larger than the padded input"),
    (nn.AvgPool2d(2, padding=2), (1, 1, 8, 8), "at most half the kernel"),
    (nn.BatchNorm2d(4), (2, 3, 5, 5), r"shape \(3,\)"),
    (nn.BatchNorm2d(3), (2, 3), "4-D input"),
    (nn.BatchNorm1d(3), (1, 3), "more than 1 value per channel"),
])
def test_layers_reject_input_that_does_not_fit(layer, shape, match):
    """Wrong channel count, a kernel larger than the padded input, a missing axis, an empty
    batch: each a ValueError that says what was expected."""
    with pytest.raises(ValueError, match=match):
        layer(Tensor(np.ones(shape)))


def test_register_buffer_takes_only_arrays():
    layer = nn.Linear(2, 2)
    layer.register_buffer("scale", np.ones(2))
    assert "scale" in dict(layer.named_buffers()) and "scale" in layer.state_dict()
    with pytest.raises(TypeError, match="buffer 'bad' must be an ndarray, got list"):
        layer.register_buffer("bad", [1.0])


def test_batch_norm_layer_updates_its_buffers_in_training_and_uses_them_in_eval():
    """train: running_mean ← (1 − m)·running_mean + m·μ_batch (PyTorch's momentum), output
    normalised by batch statistics; eval: (x − running_mean)/√(running_var + eps)·γ + β."""
    x = np.random.default_rng(0).standard_normal((8, 3, 4, 5)) * 2 + 1
    bn = nn.BatchNorm2d(3, momentum=0.25, dtype=np.float64)
    out = bn(Tensor(x)).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.25 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    bn.eval()
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + bn.eps)
    np.testing.assert_allclose(bn(Tensor(x)).data, expected, rtol=1e-12)
    assert np.array_equal(bn.running_mean, rm)  # eval leaves the statistics alone


def test_dropout_layer_is_seeded_in_training_and_the_identity_in_eval():
    """Same rng seed, same mask; kept entries scaled by 1/(1 − p); eval returns x as it is."""
    x = Tensor(np.ones((50, 40)))
    a, b = nn.Dropout(0.3, rng=5)(x).data, nn.Dropout(0.3, rng=5)(x).data
    assert np.array_equal(a, b) and np.allclose(a[a != 0], 1 / 0.7, rtol=1e-12)
    assert 0.2 < np.mean(a == 0) < 0.4
    layer = nn.Dropout(0.3, rng=5)
    layer.eval()
    assert np.array_equal(layer(x).data, x.data)
