"""PyTorch's default initialisation: bounds, moments and bits of Linear and Conv2d; the
``init=``/``bias_init=`` options on layers and model builders; files saved before the option."""
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import io, nn
from nnprune.models import MODELS, build_model
from nnprune.nn import init
from nnprune.train import predict

from strategies import layer_weight_shapes, seeds

pytestmark = pytest.mark.nn

OLD_FILE = os.path.join(os.path.dirname(__file__), "data", "model_before_init_option.npz")


def layer_of(shape, seed, **kwargs):
    """The Linear or Conv2d whose weight has ``shape``, built in float64 from ``seed``."""
    if len(shape) == 2:
        return nn.Linear(shape[1], shape[0], rng=seed, dtype=np.float64, **kwargs)
    return nn.Conv2d(shape[1], shape[0], shape[2:], rng=seed, dtype=np.float64, **kwargs)


def assert_uniform_moments(values, bound, what):
    """Entries of U(−b, b) lie within ±b; their mean is 0 and their mean square b²/3, each
    within 6 standard errors for the sample size n: sd(mean) = b/√(3n) and
    sd(mean of w²) = b²·√(1/5 − 1/9)/√n (the fourth moment of U(−b, b) is b⁴/5)."""
    n = values.size
    assert np.abs(values).max() <= bound, f"{what}: an entry exceeds ±{bound}"
    assert abs(values.mean()) <= 6 * bound / np.sqrt(3 * n), f"{what}: mean {values.mean()}"
    second = np.mean(values ** 2)
    tolerance = 6 * bound ** 2 * np.sqrt(1 / 5 - 1 / 9) / np.sqrt(n)
    assert abs(second - bound ** 2 / 3) <= tolerance, \
        f"{what}: mean square {second}, expected {bound ** 2 / 3} ± {tolerance}"


@settings(max_examples=40, deadline=None)
@given(shape=layer_weight_shapes(), seed=seeds)
def test_default_layers_start_from_pytorchs_uniform(shape, seed):
    """Weight and bias of a default Linear/Conv2d lie within ±1/√fan_in, with mean 0 and
    variance 1/(3·fan_in) (within a tolerance that follows the sample size)."""
    layer = layer_of(shape, seed)
    fan_in, _ = init.fans(shape)
    bound = 1 / np.sqrt(fan_in)
    assert layer.weight.shape == shape and layer.bias.shape == (shape[0],)
    assert_uniform_moments(layer.weight.data, bound, "weight")
    assert_uniform_moments(layer.bias.data, bound, "bias")


@settings(max_examples=25, deadline=None)
@given(shape=layer_weight_shapes(max_fan_in=60, max_out=12), seed=seeds)
def test_default_init_is_the_documented_draw_same_seed_same_bits(shape, seed):
    """A layer draws its weight, then its bias, from one generator seeded by ``seed``:
    w = rng.uniform(−b, b, shape), bias = rng.uniform(−b, b, out), b = 1/√fan_in. Built
    twice from the same seed, it holds the same bits; in float32 the float64 draw rounded."""
    fan_in, _ = init.fans(shape)
    b = 1 / np.sqrt(fan_in)
    rng = np.random.default_rng(seed)
    weight, bias = rng.uniform(-b, b, shape), rng.uniform(-b, b, shape[0])
    layer = layer_of(shape, seed)
    np.testing.assert_array_equal(layer.weight.data, weight)
    np.testing.assert_array_equal(layer.bias.data, bias)
    np.testing.assert_array_equal(layer_of(shape, seed).weight.data, layer.weight.data)
    single = (nn.Linear(shape[1], shape[0], rng=seed) if len(shape) == 2
              else nn.Conv2d(shape[1], shape[0], shape[2:], rng=seed))
    assert single.weight.dtype == np.float32
    np.testing.assert_array_equal(single.bias.data, bias.astype(np.float32))


@settings(max_examples=20, deadline=None)
@given(shape=layer_weight_shapes(max_fan_in=60, max_out=12), seed=seeds,
       name=st.sampled_from(["kaiming", "glorot", "torch"]),
       bias_init=st.sampled_from([None, "zeros", "torch"]))
def test_init_option_picks_the_weight_and_bias_scheme(shape, seed, name, bias_init):
    """``init`` names the weight draw (the same bits as the nn.init function of that name);
    ``bias_init`` None means U(±1/√fan_in) after "torch" and zeros otherwise."""
    layer = layer_of(shape, seed, init=name, bias_init=bias_init)
    expected = init.INITIALIZERS[name](shape, np.random.default_rng(seed), dtype=np.float64)
    np.testing.assert_array_equal(layer.weight.data, expected)
    scheme = bias_init or ("torch" if name == "torch" else "zeros")
    if scheme == "zeros":
        assert np.all(layer.bias.data == 0)
    else:
        fan_in, _ = init.fans(shape)
        assert np.abs(layer.bias.data).max() <= 1 / np.sqrt(fan_in)
        assert np.any(layer.bias.data != 0)
    assert layer.config()["init"] == name and layer.config()["bias_init"] == scheme
    rebuilt = nn.from_config(layer.config())
    assert (rebuilt.init, rebuilt.bias_init) == (name, scheme)


def test_kaiming_option_is_the_earlier_default_bit_for_bit():
    """init="kaiming" gives Kaiming-normal weights and zero biases, drawn as before."""
    lin = nn.Linear(7, 3, init="kaiming", rng=5)
    np.testing.assert_array_equal(lin.weight.data, init.kaiming_normal((3, 7), 5))
    assert np.all(lin.bias.data == 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builders_pass_init_to_every_layer(name):
    """Every builder takes ``init``/``bias_init``; its Linear and Conv2d layers use them and
    the default is "torch" with U(±1/√fan_in) biases."""
    small = dict(in_channels=1, input_size=8, width=0.25)
    default = build_model(name, **small)
    kaiming = build_model(name, init="kaiming", **small)
    zeros = build_model(name, bias_init="zeros", **small)
    layers = [m for m in default.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all(m.init == "torch" for m in layers)
    for m in layers:
        fan_in, _ = init.fans(m.weight.shape)
        assert np.abs(m.weight.data).max() <= 1 / np.sqrt(fan_in)
    assert all(m.init == "kaiming" and m.bias_init == "zeros" for m in kaiming.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert all(m.bias is None or np.all(m.bias.data == 0) for m in zeros.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d)))
    again = build_model(name, **small)
    for (n, a), (_, b) in zip(default.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=n)


def test_a_file_saved_before_the_init_option_still_loads():
    """A model file whose spec has no ``init``/``bias_init`` (written by an earlier version,
    with zero biases) loads with the stored arrays and masks, not freshly drawn ones."""
    stored = np.load(OLD_FILE, allow_pickle=False)
    spec = json.loads(str(stored["spec"]))
    assert all("init" not in layer for layer in spec["layers"])
    model, metadata = io.load(OLD_FILE)
    assert "earlier" in metadata["note"] or "before" in metadata["note"]
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, stored[f"param/{name}"], err_msg=name)
    np.testing.assert_array_equal(model[4].weight.mask, stored["mask/4.weight"])
    assert np.all(model[0].bias.data == 0)
    logits = predict(model, np.ones((2, 1, 8, 8), np.float32))
    assert logits.shape == (2, 4) and np.all(np.isfinite(logits))


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Linear(2, 2, init="uniform"), ValueError, "init must be one of"),
    (lambda: nn.Conv2d(1, 2, 3, init=None), ValueError, "init must be one of"),
    (lambda: nn.Linear(2, 2, bias_init="ones"), ValueError, "bias_init must be one of"),
    (lambda: nn.Conv2d(1, 2, 3, bias_init=0), ValueError, "bias_init must be one of"),
    (lambda: build_model("lenet_300_100", init="he"), ValueError, "init must be one of"),
    (lambda: build_model("lenet5", bias_init="random"), ValueError, "bias_init must be one of"),
    (lambda: init.init_bias(3, 4, "ones", 0), ValueError, "bias_init must be one of"),
    (lambda: init.torch_uniform((3,), 0), ValueError, "at least 2 positive ints"),
])
def test_init_options_reject_bad_names(make, error, match):
    with pytest.raises(error, match=match):
        make()
