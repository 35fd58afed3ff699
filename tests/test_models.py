"""The model zoo: exact parameter counts at the papers' settings, shapes on digits-sized input."""
import numpy as np
import pytest

from nnprune import Tensor, models, no_grad

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


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_runs_on_8x8_digits_shape(name):
    """Each architecture adapts to 1×8×8 input and returns (N, num_classes) logits."""
    width = 0.125 if name == "vgg16" else 1.0
    model = models.build_model(name, in_channels=1, num_classes=10, input_size=8, width=width)
    model.eval()
    with no_grad():
        out = model(Tensor(np.random.default_rng(0).random((3, 1, 8, 8))))
    assert out.shape == (3, 10) and np.all(np.isfinite(out.data))


def test_same_seed_same_model_and_width_scales():
    a, b = models.lenet5(seed=4), models.lenet5(seed=4)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert n_params(models.lenet_300_100(width=0.5)) < n_params(models.lenet_300_100())


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "resnet50"}, "unknown model"),
    ({"name": "lenet5", "input_size": 0}, "input_size"),
    ({"name": "lenet5", "width": -1.0}, "width"),
    ({"name": "simple_cnn", "input_size": 2}, "at least 4"),
    ({"name": "lenet5", "input_size": 8, "padding": 0}, "too small"),
])
def test_build_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build_model(**kwargs)
