"""State dicts in and out: export with PyTorch's names, load by name, key map, shape or order,
masks and bookkeeping, Keras's layout, refusals; and, where PyTorch is installed, the torch
model built from the exported arrays computing nnprune's logits in float64."""
import numpy as np
import pytest
from hypothesis import given

from nnprune import nn, prune
from nnprune.autograd import no_grad
from nnprune.interop import export_state, load_state, torch_module
from nnprune.train import predict
from strategies import BENCHMARK_CASES, benchmark_model as build, renamed_mlp_states

pytestmark = pytest.mark.interop

CASES = BENCHMARK_CASES  # name: (builder kwargs, input shape)


def images(name, n=3, seed=1):
    return np.random.default_rng(seed).standard_normal((n, *CASES[name][1]))


def shrunk_cnn():
    """simple_cnn with half its filters masked whole, then cut out: a smaller Sequential."""
    model = build("simple_cnn")
    prune.prune_model(model, "magnitude", 0.5, granularity="filter")
    prune.mask_units(model)
    small, _ = prune.shrink(model, CASES["simple_cnn"][1])
    return model, small.eval()


# ------------------------------------------------------------------ round trips in nnprune

@pytest.mark.parametrize("name", sorted(CASES))
def test_export_then_load_gives_the_same_outputs(name):
    """nnprune -> PyTorch-named arrays -> a fresh nnprune model: identical logits."""
    model = build(name)
    state, spec = export_state(model)
    fresh = nn.from_config(spec).eval()
    report = load_state(fresh, state)
    assert report.mapping == {k: k for k in state if not k.endswith("num_batches_tracked")}
    np.testing.assert_array_equal(predict(fresh, images(name)), predict(model, images(name)))


def test_masked_model_round_trips_with_torch_mask_names():
    """masks="torch": weight_orig / weight_mask, loaded back as the same weights and masks."""
    model = build("lenet5")
    prune.prune_model(model, "magnitude", 0.7, scope="global")
    state, spec = export_state(model, masks="torch")
    assert "0.weight_orig" in state and "0.weight_mask" in state and "0.weight" not in state
    fresh = nn.from_config(spec).eval()
    report = load_state(fresh, state)
    assert set(report.masks) == set(prune.model_masks(model))
    for name, mask in prune.model_masks(model).items():
        np.testing.assert_array_equal(dict(fresh.named_parameters())[name].mask, mask)
    np.testing.assert_array_equal(predict(fresh, images("lenet5")), predict(model, images("lenet5")))
    applied, _ = export_state(model)  # masks="apply": plain weights holding the zeros
    assert not prune.model_masks(nn.from_config(spec)) and "0.weight" in applied
    assert np.count_nonzero(applied["0.weight"]) == np.count_nonzero(model[0].weight.mask)


def test_shrunk_model_round_trips():
    masked, small = shrunk_cnn()
    state, spec = export_state(small)
    fresh = nn.from_config(spec).eval()
    load_state(fresh, state)
    x = images("simple_cnn")
    np.testing.assert_array_equal(predict(fresh, x), predict(small, x))
    np.testing.assert_allclose(predict(fresh, x), predict(masked, x), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ matching

@given(renamed_mlp_states())
def test_distinct_shapes_are_matched_whatever_the_names_and_order(drawn):
    """Foreign names in a drawn order: every Linear finds its own weight and bias by shape."""
    widths, names, order = drawn
    layers = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1], rng=i, dtype=np.float64), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    rng = np.random.default_rng(0)
    arrays = {i: (rng.standard_normal((widths[i + 1], widths[i])),
                  rng.standard_normal(widths[i + 1])) for i in range(len(widths) - 1)}
    state = {}
    for i in order:
        state[f"{names[i]}.weight"], state[f"{names[i]}.bias"] = arrays[i]
    report = load_state(model, state)
    for i in range(len(widths) - 1):
        layer = model[2 * i]
        np.testing.assert_array_equal(layer.weight.data, arrays[i][0])
        np.testing.assert_array_equal(layer.bias.data, arrays[i][1])
        assert report.mapping[f"{names[i]}.weight"] == f"{2 * i}.weight"


def torch_like_vgg_state(model):
    """The model's state renamed as a torchvision-style 'features.N' / 'classifier.N' dict."""
    state, _ = export_state(model)
    flatten = next(i for i, m in enumerate(model) if type(m).__name__ == "Flatten")
    renamed = {}
    for key, value in state.items():
        index, leaf = key.split(".", 1)
        part = "features" if int(index) < flatten else "classifier"
        offset = 0 if part == "features" else flatten + 1
        renamed[f"{part}.{int(index) - offset}.{leaf}"] = value
    return renamed


def test_repeated_shapes_are_refused_naming_the_candidates_then_matched_by_order():
    """VGG repeats layer shapes (BatchNorms of 8, convolutions 8→8): by shape it is ambiguous,
    by order it loads."""
    model = build("vgg16")
    state = torch_like_vgg_state(model)
    fresh = nn.from_config(model.config()).eval()
    before = {k: v.copy() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError, match=r"ambiguous: nnprune modules \['1', '4'\] and source "
                                         r"modules \['features.1', 'features.4'\] all have "
                                         r"the signature 1 \{bias: \(8,\)"):
        load_state(fresh, state)
    for key, value in fresh.state_dict().items():  # refused: nothing was copied
        np.testing.assert_array_equal(value, before[key])
    report = load_state(fresh, state, match="order")
    assert report.mapping["features.7.weight"] == "7.weight"
    assert report.mapping["classifier.0.weight"] == f"{len(model) - 3}.weight"
    assert "features.1.num_batches_tracked" in report.ignored
    np.testing.assert_array_equal(predict(fresh, images("vgg16")), predict(model, images("vgg16")))


def test_key_map_renames_modules_and_entries():
    model = nn.Sequential(nn.Linear(3, 3, rng=0), nn.ReLU(), nn.Linear(3, 3, rng=1))
    state = {"a.weight": np.eye(3), "a.bias": np.ones(3), "b.w": 2 * np.eye(3), "b.b": np.zeros(3)}
    report = load_state(model, state, key_map={"a": "2", "b.w": "0.weight", "b.b": "0.bias"})
    assert report.mapping == {"a.weight": "2.weight", "a.bias": "2.bias", "b.w": "0.weight",
                              "b.b": "0.bias"}
    np.testing.assert_array_equal(model[0].weight.data, 2 * np.eye(3))
    np.testing.assert_array_equal(model[2].bias.data, np.ones(3))
    assert "a.weight  ->  2.weight (3, 3)" in str(report)


def test_strict_refuses_gaps_and_leftovers_and_lax_reports_them():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 4, rng=1))
    state = {"fc1.weight": np.ones((2, 3)), "fc1.bias": np.ones(2), "extra.weight": np.ones(7)}
    with pytest.raises(ValueError, match=r"without a source.*'2 \{bias: \(4,\).*left over.*extra"):
        load_state(model, state)
    report = load_state(model, state, strict=False)
    assert report.mapping == {"fc1.weight": "0.weight", "fc1.bias": "0.bias"}


# ------------------------------------------------------------------ Keras's layout

def test_keras_get_weights_order_and_layout_load_a_cnn():
    """A CNN's weights in Keras's layout and get_weights() order: conv (kh, kw, in, out), dense
    (in, out) with (H, W, C) flattening. The dense kernel is checked against an NHWC forward."""
    model = build("simple_cnn")
    x = images("simple_cnn")
    flatten = 6
    with no_grad():
        maps = model[:flatten](x).data  # (N, C, H, W) before Flatten
    n, c, h, w = maps.shape
    weights = []
    for m in model:
        if type(m).__name__ == "Conv2d":
            weights += [m.weight.data.transpose(2, 3, 1, 0), m.bias.data]
        elif type(m).__name__ == "Linear" and m is model[flatten + 1]:
            kernel = m.weight.data.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
            # the Keras kernel reads NHWC-flattened maps: the same first dense layer output
            np.testing.assert_allclose(maps.transpose(0, 2, 3, 1).reshape(n, -1) @ kernel,
                                       maps.reshape(n, -1) @ m.weight.data.T, rtol=1e-12)
            weights += [kernel, m.bias.data]
        elif type(m).__name__ == "Linear":
            weights += [m.weight.data.T, m.bias.data]
    fresh = nn.from_config(model.config()).eval()
    with pytest.raises(ValueError, match="input_shape"):
        load_state(fresh, weights, layout="keras")
    report = load_state(fresh, weights, layout="keras", input_shape=(1, 8, 8))
    assert report.mapping["[0]"] == "0.weight" and len(report.placed) == 8
    np.testing.assert_allclose(predict(fresh, x), predict(model, x), rtol=1e-12)


def test_keras_names_and_batchnorm_leaves():
    """Keras variable paths: kernel / gamma / beta / moving_mean / moving_variance."""
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2))
    state = {"dense/kernel:0": np.arange(6.0).reshape(3, 2), "dense/bias:0": np.ones(2),
             "bn/gamma:0": np.full(2, 2.0), "bn/beta:0": np.full(2, 3.0),
             "bn/moving_mean:0": np.full(2, 4.0), "bn/moving_variance:0": np.full(2, 5.0)}
    report = load_state(model, state, layout="keras")
    np.testing.assert_array_equal(model[0].weight.data, np.arange(6.0).reshape(3, 2).T)
    assert model[1].running_var.tolist() == [5.0, 5.0] and model[1].bias.data.tolist() == [3, 3]
    assert report.mapping["bn/moving_variance:0"] == "1.running_var"


# ------------------------------------------------------------------ refusals

class _TorchTensor:  # stands in for torch.Tensor: recognised by its module name
    __module__ = "torch"


@pytest.mark.parametrize("call, error, match", [
    (lambda m: load_state(m, {"0.weight": np.ones((2, 3))}, layout="jax"), ValueError, "layout"),
    (lambda m: load_state(m, {"0.weight": np.ones((2, 3))}, match="name"), ValueError, "match"),
    (lambda m: load_state(m, {"0.weight": np.ones((2, 3))}, key_map={"x": "0"}), ValueError,
     "key_map names"),
    (lambda m: load_state(m, "weights.npz"), TypeError, "state must be a dict"),
    (lambda m: load_state(m, {"0.weight": _TorchTensor()}), TypeError, r"detach\(\).cpu"),
    (lambda m: load_state(m, {"0.weight": np.ones((3, 2)), "0.bias": np.ones(2)}), ValueError,
     "does not fit"),
    (lambda m: load_state(m, [np.ones((2, 3))]), ValueError, "holds 1 arrays, the model needs 2"),
    (lambda m: load_state(m, {"0.weight_orig": np.ones((2, 3)), "0.weight_mask": np.full((2, 3), 2),
                              "0.bias": np.ones(2)}), ValueError, "only 0 and 1"),
    (lambda m: load_state(m, {"0.weight_mask": np.ones((2, 3)), "0.bias": np.ones(2)}),
     ValueError, "weight_orig"),
    (lambda m: load_state(m, {"0.weight": np.ones((2, 3)), "0.kernel": np.ones((2, 3)),
                              "0.bias": np.ones(2)}), ValueError, "both give"),
    (lambda m: export_state(m, masks="keep"), ValueError, "masks must be one of"),
    (lambda m: export_state(_TorchTensor()), TypeError, "PyTorch"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    before = model[0].weight.data.copy()
    with pytest.raises(error, match=match):
        call(model)
    np.testing.assert_array_equal(model[0].weight.data, before)


# ------------------------------------------------------------------ against PyTorch

@pytest.mark.parametrize("name", ["lenet_300_100", "lenet5", "vgg16", "shrunk"])
def test_torch_model_from_exported_arrays_matches_nnprune_logits(name):
    """torch.nn.Sequential built from the spec, load_state_dict(strict=True) of the exported
    arrays: logits equal nnprune's in float64 to 1e-12 relative (summation order aside)."""
    torch = pytest.importorskip("torch")
    model = shrunk_cnn()[1] if name == "shrunk" else build(name)
    x = images("simple_cnn" if name == "shrunk" else name)
    state, spec = export_state(model)
    with torch.no_grad():
        logits = torch_module(spec, torch, state)(torch.from_numpy(x)).numpy()
    expected = predict(model, x)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_torch_pruned_model_state_loads_with_its_masks_and_masks_agree():
    """torch.nn.utils.prune.l1_unstructured on the exported model: its weight_orig/weight_mask
    state loads into nnprune with the masks attached, and they equal nnprune's half_even masks."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils import prune as torch_prune
    model = build("lenet5")
    state, spec = export_state(model)
    torch_model = torch_module(spec, torch, state)
    for index in ("0", "2", "5", "7"):
        torch_prune.l1_unstructured(torch_model.get_submodule(index), "weight", amount=0.25)
    torch_state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    fresh = nn.from_config(spec).eval()
    report = load_state(fresh, torch_state)
    assert set(report.masks) == {"0.weight", "2.weight", "5.weight", "7.weight"}
    prune.prune_model(model, "magnitude", 0.25, rounding="half_even")
    for name, mask in prune.model_masks(model).items():
        np.testing.assert_array_equal(dict(fresh.named_parameters())[name].mask, mask)
    x = images("lenet5")
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(predict(fresh, x), logits, rtol=0, atol=1e-12 * np.abs(logits).max())
    masked_state, _ = export_state(model, masks="torch")
    again = torch_module(spec, torch, masked_state)
    np.testing.assert_array_equal(again.get_submodule("0").weight_mask.numpy(), model[0].weight.mask)


def test_custom_torch_module_state_dict_loads_by_shape():
    """A hand-written torch module (attributes conv, bn, head; registered head first) with
    BatchNorm's num_batches_tracked: matched by shape, logits equal."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4 * 4 * 4, 3)
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return self.head(x.flatten(1))

    torch.manual_seed(0)
    net = Net().double().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
    ours = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=np.float64),
                         nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 3, dtype=np.float64)).eval()
    report = load_state(ours, {k: v.numpy() for k, v in net.state_dict().items()})
    assert report.mapping["head.weight"] == "5.weight" and report.ignored == ("bn.num_batches_tracked",)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(predict(ours, x), expected, rtol=0, atol=1e-12)


def test_onnx_functions_without_the_onnx_package_say_how_to_install_it(monkeypatch):
    import sys

    from nnprune.interop import from_onnx, to_onnx
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    for call in (lambda: to_onnx(nn.Sequential(nn.Linear(2, 2, rng=0)), (2,)),
                 lambda: from_onnx("model.onnx")):
        with pytest.raises(ImportError, match=r'pip install "nnprune\[onnx\]"'):
            call()
