"""The model zoo: exact parameter counts at the papers' settings, shapes on digits-sized input."""
import numpy as np
import pytest

from nnprune import Tensor, models, nn, no_grad
from nnprune import functional as F

pytestmark = pytest.mark.models


def n_params(model):
    return sum(p.size for p in model.parameters())


def test_lenet_300_100_has_han_et_al_count():
    """784-300-100-10: 266,200 weights + 410 biases = 266,610 (Han et al. 2015)."""
    model = models.lenet_300_100()
    weights = sum(p.size for n, p in model.named_parameters() if n.endswith("weight"))
    assert (weights, n_params(model) - weights) == (266_200, 410)


def test_lenet5_caffe_has_431080_parameters():
    assert n_params(models.lenet5()) == 431_080


def test_vgg16_cifar_has_li_et_al_count():
    """13 bias-free convs + BN(γ, β) + 512-512-10 classifier: 14,986,698 parameters."""
    model = models.vgg16()
    assert n_params(model) == 14_986_698
    convs = [m for m in model.modules() if type(m).__name__ == "Conv2d"]
    assert len(convs) == 13 and all(c.bias is None for c in convs)


def test_simple_cnn_count_from_its_layer_formula():
    """conv 3→16, conv 16→32 (3×3 with bias), fc 32·8·8→128→10 on 3×32×32."""
    expected = (3 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 8 * 8 * 128 + 128) + (128 * 10 + 10)
    assert n_params(models.simple_cnn()) == expected


@pytest.fixture(scope="module")
def digits_batch(digits):
    return digits.x_test[:16], digits.y_test[:16]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_runs_forward_and_backward_on_real_digits(name, digits_batch):
    """Each architecture, built for 1×8×8 input, maps a batch of real digits to (16, 10)
    finite logits in eval and in training mode, and every parameter gets a gradient."""
    x, y = digits_batch
    width = 0.125 if name == "vgg16" else 1.0
    model = models.build_model(name, in_channels=1, num_classes=10, input_size=8, width=width)
    model.eval()
    with no_grad():
        out = model(Tensor(x))
    assert out.shape == (16, 10) and out.dtype == np.float32 and np.all(np.isfinite(out.data))
    model.train()
    F.cross_entropy(model(Tensor(x)), y).backward()
    assert all(p.grad is not None and np.all(np.isfinite(p.grad)) for p in model.parameters())


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_takes_channels_classes_and_a_non_square_size(name):
    """in_channels, num_classes and an (H, W) input size shape the model: a (2, 3, 12, 10)
    batch gives (2, 7) logits, and the first layer reads 3 channels."""
    width = 0.125 if name == "vgg16" else 0.5
    model = models.build_model(name, in_channels=3, num_classes=7, input_size=(12, 10),
                               width=width, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 10))
    model.eval()
    with no_grad():
        out = model(Tensor(x))
    assert out.shape == (2, 7) and out.dtype == np.float64
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert first.weight.shape[1] == (3 if isinstance(first, nn.Conv2d) else 3 * 12 * 10)


@pytest.mark.parametrize("width", [0.25, 0.5, 2.0])
def test_width_scales_every_hidden_size(width):
    """Hidden sizes are max(1, round(width·c)); the input and output sizes do not change."""
    mlp = models.lenet_300_100(input_size=8, width=width)
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == \
        [round(300 * width), round(100 * width), 10]
    cnn = models.lenet5(input_size=8, width=width)
    assert [m.out_channels for m in cnn if isinstance(m, nn.Conv2d)] == \
        [round(20 * width), round(50 * width)]
    assert models.simple_cnn(input_size=8, width=0.01)[0].out_channels == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "resnet50"}, "unknown model"),
    ({"name": "lenet5", "input_size": 0}, "input_size"),
    ({"name": "lenet5", "width": -1.0}, "width"),
    ({"name": "simple_cnn", "input_size": 2}, "at least 4"),
    ({"name": "lenet5", "input_size": 8, "padding": 0}, "too small"),
    ({"name": "lenet5", "padding": -1}, "padding must be None or an int >= 0"),
    ({"name": "lenet_300_100", "in_channels": 0}, "in_channels must be an int >= 1"),
    ({"name": "simple_cnn", "num_classes": 2.5}, "num_classes must be an int >= 1"),
    ({"name": "vgg16", "seed": "a"}, "seed must be an int >= 0"),
    ({"name": "lenet5", "dtype": np.int64}, "dtype must be float32 or float64"),
    ({"name": "simple_cnn", "depth": 3}, r"simple_cnn\(\) does not take \['depth'\]"),
    ({"name": 5}, "unknown model 5"),
])
def test_build_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        models.build_model(**kwargs)
