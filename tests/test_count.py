"""Cost accounting: the papers' counts exactly, MACs against naive loops, density scaling,
shapes against a real forward pass, and clear errors for inputs that do not fit."""
import doctest
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnprune.count.model
import nnprune.count.rules
import nnprune.ratios
from nnprune import Tensor, models, nn, no_grad
from nnprune.count import count, count_arrays, leaf_layers
from nnprune.prune import PruneReport
from nnprune.ratios import json_ratio, pruned_fraction, ratio
from strategies import conv_geometries, pool_geometries, seeds, sparsities

pytestmark = pytest.mark.accounting


def rows_by_kind(report, kind):
    return [row for row in report.layers if row.kind == kind]


def prune_exactly(param, sparsity, rng):
    """Mask k = floor(sparsity·n + 0.5) entries of ``param`` chosen at random; returns k."""
    n = param.size
    k = int(np.floor(sparsity * n + 0.5))
    mask = np.ones(n)
    mask[rng.permutation(n)[:k]] = 0
    param.set_mask(mask.reshape(param.shape))
    return k


# ---------------------------------------------------------------- the papers' counts


def test_lenet_300_100_han_et_al_count():
    """784-300-100-10: 266,200 weights (= its MACs) + 410 biases = 266,610 params."""
    report = count(models.lenet_300_100(), (1, 28, 28))
    assert report.params == 266_610
    assert report.macs == 266_200  # one MAC per linear weight
    linears = rows_by_kind(report, "Linear")
    assert [row.output_shape for row in linears] == [(300,), (100,), (10,)]
    assert sum(row.params - row.macs for row in linears) == 410  # the biases


def test_lenet5_caffe_macs():
    """Caffe LeNet-5 on 28×28: conv1 288,000 MACs (576K FLOPs, Han et al.), 2,293,000 in all."""
    report = count(models.lenet5(), (1, 28, 28))
    conv1 = report.layers[0]
    assert (conv1.kind, conv1.output_shape, conv1.macs) == ("Conv2d", (20, 24, 24), 288_000)
    assert [row.macs for row in report.layers if row.macs] == [288_000, 1_600_000, 400_000, 5_000]
    assert (report.macs, report.flops) == (2_293_000, 4_586_000)
    assert report.params == 431_080


def test_vgg16_cifar_li_et_al_counts():
    """CIFAR VGG-16 on 3×32×32: 313,463,808 MACs (Li et al. 2017), 14,986,698 params."""
    report = count(models.vgg16(), (3, 32, 32))
    assert report.macs == 313_463_808
    assert report.params == 14_986_698
    assert len(rows_by_kind(report, "Conv2d")) == 13
    assert report.layers[-1].output_shape == (10,)


# ---------------------------------------------------------------- MACs against naive loops


def naive_conv_multiplications(g):
    """Slide the dilated kernel over the zero-padded input and count every multiplication
    w[f, c, i, j] · x_padded[c, y + d·i, x + d·j], padding positions included (the convention)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (g["kernel_size"], g["stride"], g["padding"],
                                              g["dilation"])
    hp, wp = g["h"] + 2 * ph, g["w"] + 2 * pw
    multiplications = on_padding = 0
    for _f in range(g["f"]):
        for y in range(0, hp - dh * (kh - 1), sh):  # window top rows that keep it inside
            for x in range(0, wp - dw * (kw - 1), sw):
                for _c in range(g["c"]):
                    for i in range(kh):
                        for j in range(kw):
                            multiplications += 1
                            yy, xx = y + dh * i - ph, x + dw * j - pw
                            on_padding += not (0 <= yy < g["h"] and 0 <= xx < g["w"])
    return multiplications, on_padding


@given(conv_geometries())
def test_conv_macs_equal_naive_loop_count(g):
    """Conv2d MACs = the number of multiplications of a naive loop over the padded input,
    for any kernel, stride, padding and dilation (taps on zero padding counted)."""
    layer = nn.Conv2d(g["c"], g["f"], g["kernel_size"], g["stride"], g["padding"], g["dilation"],
                      rng=0)
    row = count(layer, (g["c"], g["h"], g["w"])).layers[0]
    multiplications, on_padding = naive_conv_multiplications(g)
    assert row.macs == multiplications
    assert row.macs == row.output_shape[1] * row.output_shape[2] * layer.weight.size
    assert 0 <= on_padding <= multiplications
    if g["padding"] == (0, 0):
        assert on_padding == 0


@given(st.integers(1, 12), st.integers(1, 12), st.booleans())
def test_linear_macs_equal_naive_loop_count(n_in, n_out, bias):
    """Linear MACs = the multiplications of y[o] += w[o, i]·x[i], bias excluded."""
    multiplications = 0
    for _o in range(n_out):
        for _i in range(n_in):
            multiplications += 1
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out, bias=bias, rng=0))
    report = count(model, (n_in, 1, 1))
    assert report.macs == multiplications
    assert report.params == multiplications + (n_out if bias else 0)


# ---------------------------------------------------------------- density, ratios, totals


def small_cnn():
    return nn.Sequential(nn.Conv2d(2, 4, (3, 2), stride=(1, 2), padding=1, rng=1),
                         nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 2, 5, rng=2), nn.Tanh(), nn.Linear(5, 3, rng=3))


@given(sparsities, sparsities, seeds)
def test_effective_macs_scale_with_density(s_conv, s_fc, seed):
    """Pruning k of n weights leaves density (n − k)/n and effective MACs = MACs × density
    exactly (OH·OW·nnz for a conv, nnz for a linear); dense MACs do not change."""
    model, rng = small_cnn(), np.random.default_rng(seed)
    dense = count(model, (2, 6, 7))
    conv, fc = model[0], model[5]
    k_conv, k_fc = prune_exactly(conv.weight, s_conv, rng), prune_exactly(fc.weight, s_fc, rng)
    report = count(model, (2, 6, 7))
    assert [r.macs for r in report.layers] == [r.macs for r in dense.layers]
    for row, layer, k in ((report.layers[0], conv, k_conv), (report.layers[5], fc, k_fc)):
        n = layer.weight.size
        assert row.density == (n - k) / n
        assert row.effective_macs * n == row.macs * (n - k)  # macs × density, in integers
        assert row.effective_macs == pytest.approx(row.macs * row.density, rel=1e-12)
    oh, ow = report.layers[0].output_shape[1:]
    assert report.layers[0].effective_macs == oh * ow * (conv.weight.size - k_conv)
    assert report.effective_macs == sum(r.effective_macs for r in report.layers)


def test_density_excludes_bias_and_nonzero_counts_all_parameters():
    """Density is of the weight alone; nonzero_params counts weight, bias and BN γ/β entries."""
    model = small_cnn()
    conv, bn = model[0], model[1]
    conv.bias.data[:] = [0.0, 1.0, 0.0, 2.0]
    bn.weight.data[1] = 0.0  # a pruned γ: BN has no MACs but loses a non-zero parameter
    bn.bias.data[:] = 0.5
    row, bn_row = count(model, (2, 6, 7)).layers[:2]
    assert row.density == 1.0
    assert (row.params, row.nonzero_params) == (conv.weight.size + 4, conv.weight.size + 2)
    assert (bn_row.params, bn_row.nonzero_params, bn_row.macs) == (8, 7, 0)
    assert bn_row.density == 3 / 4


@given(sparsities, seeds)
def test_compression_ratio_and_speedup_definitions(sparsity, seed):
    """compression = params / nonzero_params, speedup = macs / effective_macs, flops = 2·macs,
    and each total is the sum of its column."""
    model, rng = small_cnn(), np.random.default_rng(seed)
    for p in (model[0].weight, model[5].weight, model[7].weight):
        prune_exactly(p, sparsity, rng)
    r = count(model, (2, 6, 7))
    assert r.params == sum(row.params for row in r.layers)
    assert r.nonzero_params == sum(row.nonzero_params for row in r.layers)
    assert r.macs == sum(row.macs for row in r.layers)
    assert (r.flops, r.effective_flops) == (2 * r.macs, 2 * r.effective_macs)
    assert r.compression_ratio == r.params / r.nonzero_params
    if r.effective_macs:
        assert r.speedup == r.macs / r.effective_macs
        assert r.speedup >= 1.0
    else:
        assert r.speedup == float("inf")


def test_fully_pruned_model_has_infinite_ratios_and_json_null():
    """Everything zero: compression and speed-up are inf in Python and null in JSON."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2, bias=False, rng=0))
    model[1].weight.set_mask(np.zeros((2, 6)))
    report = count(model, (1, 2, 3))
    assert report.compression_ratio == report.speedup == float("inf")
    totals = json.loads(json.dumps(report.to_dict(), allow_nan=False))["totals"]
    assert totals["compression_ratio"] is None and totals["speedup"] is None


def test_parameter_free_model_has_unit_ratios():
    """No parameters and no MACs: nothing compressed, nothing sped up (0 / 0 is taken as 1)."""
    report = count(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()), (3, 4, 6))
    assert (report.params, report.macs) == (0, 0)
    assert report.compression_ratio == report.speedup == 1.0
    assert report.layers[-1].output_shape == (3 * 2 * 3,)


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_one_rule_for_ratios_of_counts(a, b):
    """nnprune.ratios: nothing counted is dense. For zeros ≤ n: sparsity + density = 1 and
    compression = 1 / density; at n = 0 that reads density 1, compression 1, sparsity 0; a
    count over zero is infinite."""
    zeros, n = min(a, b), max(a, b)
    kept = n - zeros
    assert pruned_fraction(zeros, n) + ratio(kept, n) == pytest.approx(1.0)
    if kept:
        assert ratio(n, kept) == pytest.approx(1 / ratio(kept, n))
    else:
        assert ratio(n, kept) == (float("inf") if n else 1.0)
    assert (ratio(0, 0), pruned_fraction(0, 0), json_ratio(ratio(1, 0))) == (1.0, 0.0, None)


def test_prune_report_and_count_share_the_rule_on_empty_counts():
    """An all-excluded pruning reports sparsity 0 (PruneReport) and a parameter-free model
    compression 1 (count): both say nothing counted, nothing pruned."""
    report = PruneReport.from_masks({"w": np.ones(3), "e": np.zeros(0)}, excluded=["w"])
    assert (report.n, report.sparsity, report.sparsity_of("e")) == (0, 0.0, 0.0)
    cost = count(nn.Sequential(nn.ReLU()), (1, 2, 2))
    assert (cost.params, cost.compression_ratio, cost.speedup) == (0, 1.0, 1.0)
    assert report.sparsity == 1.0 - cost.compression_ratio


# ---------------------------------------------------------------- shapes against forward


def forward_shapes(model, input_shape):
    """The per-image output shape of every leaf layer in an actual forward pass of 2 images."""
    model.eval()
    x = Tensor(np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32))
    shapes = []
    with no_grad():
        for _, layer in leaf_layers(model):
            x = layer(x)
            shapes.append(x.shape[1:])
    return shapes


@pytest.mark.parametrize("name, kwargs, input_shape", [
    ("lenet_300_100", {}, (1, 28, 28)),
    ("lenet5", {}, (1, 28, 28)),
    ("lenet5", {"input_size": 8}, (1, 8, 8)),
    ("simple_cnn", {"input_size": (12, 8)}, (3, 12, 8)),
    ("vgg16", {"in_channels": 1, "input_size": 8, "width": 0.0625}, (1, 8, 8)),
])
def test_output_shapes_match_forward_pass_of_models(name, kwargs, input_shape):
    """count's propagated shapes equal model(x) layer by layer."""
    model = models.build_model(name, **kwargs)
    report = count(model, input_shape)
    assert [row.output_shape for row in report.layers] == forward_shapes(model, input_shape)


@given(conv_geometries(), pool_geometries(), st.booleans())
def test_output_shapes_match_forward_pass_of_random_geometries(g, pg, average):
    """For any conv and pool geometry, the propagated shapes equal those of a forward pass."""
    conv = nn.Conv2d(g["c"], g["f"], g["kernel_size"], g["stride"], g["padding"],
                     g["dilation"], rng=0)
    pool = (nn.AvgPool2d if average else nn.MaxPool2d)(pg["kernel_size"], pg["stride"],
                                                        pg["padding"])
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten())
    shape = (g["c"], g["h"], g["w"])
    assert [r.output_shape for r in count(model, shape).layers] == forward_shapes(model, shape)
    pooled = nn.Sequential(nn.Conv2d(1, 2, 1, rng=0), pool, nn.Flatten(), nn.Dropout(0.5, rng=0))
    shape = (1, pg["h"], pg["w"])
    assert [r.output_shape for r in count(pooled, shape).layers] == forward_shapes(pooled, shape)


def test_nested_sequentials_are_walked_in_forward_order():
    """Leaves of nested Sequentials come in forward order with dotted names."""
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU()), nn.Flatten(),
                          nn.Sequential(), nn.Linear(2 * 3 * 3, 4, rng=0))
    report = count(model, (1, 5, 5))
    assert [(r.name, r.output_shape) for r in report.layers] == [
        ("0.0", (2, 3, 3)), ("0.1", (2, 3, 3)), ("1", (18,)), ("3", (4,))]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("input_shape", [
    (1, 28), (1, 1, 28, 28), (1.0, 28, 28), (0, 28, 28), (1, -28, 28), (True, 28, 28),
    "1x28x28", None, 28])
def test_input_shape_must_be_three_positive_ints(input_shape):
    with pytest.raises(ValueError, match=r"input_shape must be 3 positive ints \(C, H, W\)"):
        count(models.lenet5(), input_shape)


@pytest.mark.parametrize("model, input_shape, match", [
    (models.lenet5(), (3, 28, 28), r"layer '0' \(Conv2d\) expects 1 input channels"),
    (models.lenet5(padding=0), (1, 12, 12), r"layer '2' \(Conv2d\) .*needs a larger input"),
    (models.lenet_300_100(), (1, 27, 28), r"layer '1' \(Linear\) expects flat features \(784,\)"),
    (nn.Sequential(nn.Linear(4, 2)), (4, 1, 1), r"layer '0' \(Linear\) expects flat features"),
    (nn.Sequential(nn.Flatten(), nn.Conv2d(1, 1, 1)), (1, 2, 2),
     r"layer '1' \(Conv2d\) expects a feature map"),
    (nn.Sequential(nn.MaxPool2d(3)), (1, 2, 5), r"layer '0' \(MaxPool2d\) .*needs a larger"),
    (nn.Sequential(nn.AvgPool2d(2, padding=2)), (1, 4, 4), r"'0' \(AvgPool2d\) has padding"),
    (nn.Sequential(nn.BatchNorm2d(3)), (2, 4, 4), r"'0' \(BatchNorm2d\) expects 3 channels"),
    (nn.Sequential(nn.Flatten(), nn.BatchNorm1d(5)), (1, 2, 2),
     r"'1' \(BatchNorm1d\) expects flat features \(5,\)"),
])
def test_shape_that_does_not_fit_names_the_layer(model, input_shape, match):
    with pytest.raises(ValueError, match=match):
        count(model, input_shape)


class Square(nn.Module):
    def forward(self, x):
        return x * x


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.ReLU(), Square()), r"layer '1' is a Square.*known layer types: AvgPool2d"),
    (nn.Sequential(Block()), r"module '0' \(Block\) has child modules and is not a Sequential"),
    ("lenet5", r"model must be an nnprune.nn.Module, got str"),
])
def test_unknown_layer_or_container_is_a_type_error(model, match):
    with pytest.raises(TypeError, match=match):
        count(model, (1, 4, 4))


# ---------------------------------------------------------------- printing and JSON


def test_table_is_aligned_with_thousands_separators():
    """Every row shows its name, and the MACs column ends at the header's right edge."""
    report = count(models.lenet5(), (1, 28, 28))
    text = str(report)
    lines = text.splitlines()
    header = lines[0]
    macs_end = header.index("MACs") + len("MACs")
    for line, row in zip(lines[2:], report.layers):
        assert line.startswith(row.name + " ")
        assert line[:macs_end].endswith(f"{row.macs:,}")
    total = next(line for line in lines if line.startswith("total"))
    assert total[:macs_end].endswith("2,293,000") and "431,080" in total
    assert "FLOPs 4,586,000" in text and "speed-up 1.00×" in text


def test_to_dict_is_json_and_matches_the_report():
    model = small_cnn()
    prune_exactly(model[5].weight, 0.5, np.random.default_rng(0))
    report = count(model, (2, 6, 7))
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["input_shape"] == [2, 6, 7] and d["per"] == "image"
    assert [row["output_shape"] for row in d["layers"]] == [
        list(r.output_shape) for r in report.layers]
    assert d["layers"][2]["density"] is None  # ReLU has no weight
    assert d["totals"] == {"params": report.params, "nonzero_params": report.nonzero_params,
                           "macs": report.macs, "flops": report.flops,
                           "effective_macs": report.effective_macs,
                           "effective_flops": report.effective_flops,
                           "compression_ratio": report.compression_ratio,
                           "speedup": report.speedup}


def test_docstring_examples_run():
    for module in (nnprune.count.model, nnprune.count.rules, nnprune.ratios):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ---------------------------------------------------------------- count_arrays


@settings(max_examples=20)
@given(st.lists(sparsities, min_size=1, max_size=4), seeds)
def test_count_arrays_matches_count_on_model_weights(layer_sparsities, seed):
    """For a model's parameters, count_arrays gives the same params and non-zeros as count."""
    rng = np.random.default_rng(seed)
    sizes = [3, 5, 4, 2, 3][: len(layer_sparsities) + 1]
    layers = [nn.Linear(a, b, rng=rng) for a, b in zip(sizes, sizes[1:])]
    for layer, s in zip(layers, layer_sparsities):
        prune_exactly(layer.weight, s, rng)
    model = nn.Sequential(nn.Flatten(), *layers)
    arrays = count_arrays({n: p.data for n, p in model.named_parameters()})
    report = count(model, (sizes[0], 1, 1))
    assert (arrays.params, arrays.nonzero_params) == (report.params, report.nonzero_params)
    assert arrays.compression_ratio == report.compression_ratio
    weights = {t.name: t for t in arrays.tensors if t.name.endswith("weight")}
    assert [w.density for w in weights.values()] == [r.density for r in report.layers[1:]]


def test_count_arrays_counts_and_prints():
    w = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    report = count_arrays({"fc.weight": w, "fc.bias": nn.Parameter(np.zeros(2))})
    assert [(t.name, t.shape, t.params, t.nonzero_params, t.density) for t in report.tensors] == [
        ("fc.weight", (2, 3), 6, 2, 2 / 6), ("fc.bias", (2,), 2, 0, 0.0)]
    assert (report.params, report.nonzero_params, report.compression_ratio) == (8, 2, 4.0)
    assert report.density == 0.25
    assert json.loads(json.dumps(report.to_dict()))["totals"]["compression_ratio"] == 4.0
    assert "fc.weight" in str(report) and "compression ratio 4.00×" in str(report)


@pytest.mark.parametrize("weights, error, match", [
    ([np.ones(3)], TypeError, "weights must be a mapping"),
    ({}, ValueError, "at least one array"),
    ({"w": np.array(["a", "b"])}, TypeError, r"weights\['w'\] must be a numeric array"),
    ({"w": np.ones((0, 3))}, ValueError, r"weights\['w'\] is empty"),
])
def test_count_arrays_bad_input(weights, error, match):
    with pytest.raises(error, match=match):
        count_arrays(weights)
