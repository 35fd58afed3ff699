"""ONNX out and in: every model nnprune builds (dense, masked, shrunk) passes onnx.checker and
onnxruntime computes its logits; imported graphs equal their source; refusals name the layer
or node. Skips cleanly without onnx (and the runtime comparisons without onnxruntime)."""
import numpy as np
import pytest

from nnprune import nn, prune
from nnprune.cli import main
from nnprune.interop import from_onnx, to_onnx
from nnprune.io import save
from nnprune.train import predict
from strategies import BENCHMARK_CASES, benchmark_model, randomize

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.interop

CASES = BENCHMARK_CASES  # name: (builder kwargs, input shape)


def build(name):
    return benchmark_model(name, dtype=np.float32)


def masked(name):
    model = build(name)
    prune.prune_model(model, "magnitude", 0.8, scope="global")
    return model


def shrunk(name="simple_cnn"):
    model = build(name)
    prune.prune_model(model, "magnitude", 0.5, granularity="filter")
    prune.mask_units(model)
    return prune.shrink(model, CASES[name][1])[0].eval()


VARIANTS = [(name, kind) for name in CASES for kind in ("dense", "masked")] + \
    [("simple_cnn", "shrunk"), ("vgg16", "shrunk")]


def variant(name, kind):
    return {"dense": build, "masked": masked, "shrunk": shrunk}[kind](name)


def images(name, n=3):
    return np.random.default_rng(1).standard_normal((n, *CASES[name][1])).astype(np.float32)


def run_onnxruntime(proto, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("name, kind", VARIANTS)
def test_exported_graph_passes_the_checker_and_onnxruntime_computes_the_logits(name, kind):
    """float32: onnxruntime's logits equal nnprune's to 1e-5 of their largest magnitude."""
    model = variant(name, kind)
    proto = to_onnx(model, CASES[name][1])
    onnx.checker.check_model(proto, full_check=True)
    x = images(name)
    expected = predict(model, x)
    np.testing.assert_allclose(run_onnxruntime(proto, x), expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name, kind", VARIANTS)
def test_imported_graph_equals_its_source(name, kind):
    """to_onnx then from_onnx: the same spec, the same arrays, the same logits bit for bit."""
    model = variant(name, kind)
    back = from_onnx(to_onnx(model, CASES[name][1]))
    assert back.config() == model.config()
    for (key, value), (other, mine) in zip(back.state_dict().items(),
                                           model.state_dict().items()):
        assert key == other
        np.testing.assert_array_equal(value, mine)
    np.testing.assert_array_equal(predict(back, images(name)), predict(model, images(name)))


def test_every_layer_kind_and_geometry_round_trips_through_onnxruntime():
    """Non-square kernels, strides, padding, dilation, average pooling with padding, BatchNorm1d,
    Dropout, Tanh; float64 through the graph where onnxruntime has the kernels."""
    cnn = randomize(nn.Sequential(
        nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        nn.AvgPool2d(3, stride=2, padding=1), nn.MaxPool2d((2, 1), padding=(1, 0)),
        nn.Flatten(), nn.Linear(18, 4, bias=False)), 2)
    x = np.random.default_rng(0).standard_normal((3, 2, 9, 7)).astype(np.float32)
    proto = to_onnx(cnn, (2, 9, 7))
    np.testing.assert_allclose(run_onnxruntime(proto, x), predict(cnn, x), rtol=1e-5, atol=1e-5)
    assert from_onnx(proto).config() == cnn.config()
    mlp = randomize(nn.Sequential(nn.Linear(4, 3, dtype=np.float64),
                                  nn.BatchNorm1d(3, eps=1e-3, momentum=0.3, dtype=np.float64),
                                  nn.Dropout(0.3), nn.Tanh(),
                                  nn.Linear(3, 2, dtype=np.float64)), 1)
    x = np.random.default_rng(0).standard_normal((5, 4))
    proto = to_onnx(mlp, (4,))
    np.testing.assert_allclose(run_onnxruntime(proto, x), predict(mlp, x), rtol=1e-10)  # ~4e-12
    assert from_onnx(proto).config() == mlp.config()


def test_a_layer_without_an_onnx_form_is_named():
    class Scale(nn.Module):
        def forward(self, x):
            return x * 2.0

    model = nn.Sequential(nn.Linear(3, 3, rng=0), nn.Sequential(nn.ReLU(), Scale()))
    with pytest.raises(ValueError, match=r"layer '1.1' \(Scale\) cannot be exported to ONNX"):
        to_onnx(model, (3,))


@pytest.mark.parametrize("call, error, match", [
    (lambda m: to_onnx(m, (1, 0, 8)), ValueError, "input_shape"),
    (lambda m: to_onnx(m, 8), ValueError, "input_shape"),
    (lambda m: to_onnx(m, (1, 8, 8), opset=9), ValueError, "opset"),
    (lambda m: to_onnx(m, (1, 8, 8), dtype=np.int32), ValueError, "dtype"),
    (lambda m: from_onnx(3), TypeError, "ONNX file name or an onnx.ModelProto"),
    (lambda m: from_onnx("no-such-file.onnx"), FileNotFoundError, "no such file"),
])
def test_bad_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(build("lenet5"))


def graph(nodes, initializers, input_shape=(None, 4), output="y"):
    """A hand-built ONNX model with input "x" and output ``output``."""
    helper = onnx.helper
    float_ = onnx.TensorProto.FLOAT
    inits = [onnx.numpy_helper.from_array(np.asarray(v, np.float32), k)
             for k, v in initializers.items()]
    return helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", float_, list(input_shape))],
        [helper.make_tensor_value_info(output, float_, None)], inits),
        opset_imports=[helper.make_opsetid("", 17)])


def test_matmul_add_gemm_with_alpha_beta_and_constant_nodes_import_as_linears():
    """MatMul by a constant + Add is a Linear with bias; Gemm's alpha, beta and transB=0 are
    folded in; a Constant node's tensor serves as a weight. Checked against onnxruntime."""
    rng = np.random.default_rng(0)
    b1, c1 = rng.standard_normal((4, 3)), rng.standard_normal(3)
    b2, c2 = rng.standard_normal((3, 2)), rng.standard_normal(2)
    helper = onnx.helper
    nodes = [helper.make_node("MatMul", ["x", "B1"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "C1"], ["h2"], name="add"),
             helper.make_node("Relu", ["h2"], ["h3"], name="relu"),
             helper.make_node("Constant", [], ["B2"], name="const",
                              value=onnx.numpy_helper.from_array(b2.astype(np.float32))),
             helper.make_node("Gemm", ["h3", "B2", "C2"], ["y"], name="gemm", alpha=0.5,
                              beta=2.0)]
    proto = graph(nodes, {"B1": b1, "C1": c1, "C2": c2})
    model = from_onnx(proto)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    x = rng.standard_normal((5, 4)).astype(np.float32)
    expected = np.maximum(x @ b1 + c1, 0) @ (0.5 * b2) + 2.0 * c2
    np.testing.assert_allclose(predict(model, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_onnxruntime_named(proto, x), expected, rtol=1e-5, atol=1e-5)


def run_onnxruntime_named(proto, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("node, inits, shape, match", [
    (("Softmax", ["x"], ["y"], {}), {}, (None, 4), "'n' is an ONNX Softmax"),
    (("Conv", ["x", "W"], ["y"], {"group": 2}), {"W": np.ones((2, 1, 3, 3))}, (None, 2, 5, 5),
     "group=2"),
    (("Conv", ["x", "W"], ["y"], {"pads": [1, 0, 0, 1]}), {"W": np.ones((2, 2, 3, 3))},
     (None, 2, 5, 5), r"pads \[1, 0, 0, 1\]"),
    (("AveragePool", ["x"], ["y"], {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}), {},
     (None, 2, 5, 5), "count_include_pad"),
    (("MaxPool", ["x"], ["y"], {"kernel_shape": [2, 2], "ceil_mode": 1}), {}, (None, 2, 5, 5),
     "ceil_mode"),
    (("Flatten", ["x"], ["y"], {"axis": 2}), {}, (None, 2, 5, 5), "axis=2"),
    (("Gemm", ["x", "x"], ["y"], {}), {}, (None, 4), "not a constant"),
    (("Gemm", ["x", "W"], ["y"], {}), {"W": np.ones((4, 3))}, (None, 2, 2), "4-D value|3-D value"),
])
def test_graphs_nnprune_cannot_read_are_refused_naming_the_node(node, inits, shape, match):
    op, inputs, outputs, attrs = node
    proto = graph([onnx.helper.make_node(op, inputs, outputs, name="n", **attrs)], inits, shape)
    with pytest.raises(ValueError, match=match):
        from_onnx(proto)


def test_a_branching_graph_is_refused():
    helper = onnx.helper
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Relu", ["x"], ["y"], name="r2")]
    with pytest.raises(ValueError, match="does not read the previous output 'a'"):
        from_onnx(graph(nodes, {}))


def test_a_graph_exported_by_pytorch_imports():
    """torch.onnx.export of the equivalent torch LeNet-5 imports with nnprune's logits."""
    torch = pytest.importorskip("torch")
    import io

    from nnprune.interop import export_state, torch_module
    model = build("lenet5")
    state, spec = export_state(model)
    buffer = io.BytesIO()
    torch.onnx.export(torch_module(spec, torch, state), torch.zeros(1, 1, 8, 8), buffer,
                      dynamo=False)
    back = from_onnx(onnx.load_from_string(buffer.getvalue()))
    assert back.config() == model.config()
    np.testing.assert_array_equal(predict(back, images("lenet5")), predict(model, images("lenet5")))


def test_cli_export_writes_onnx_and_a_torch_state_dict(tmp_path, capsys):
    model = masked("lenet5")
    save(tmp_path / "m.npz", model, {"input_shape": [1, 8, 8]})
    status = main(["export", str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx"),
                   "--state-dict", str(tmp_path / "t.npz"), "--masks", "torch"])
    assert status == 0 and "wrote" in capsys.readouterr().out
    back = from_onnx(str(tmp_path / "m.onnx"))
    np.testing.assert_array_equal(predict(back, images("lenet5")), predict(model, images("lenet5")))
    with np.load(tmp_path / "t.npz", allow_pickle=False) as state:
        np.testing.assert_array_equal(state["0.weight_mask"], model[0].weight.mask)
    assert (tmp_path / "t.spec.json").read_text().startswith("{")
    assert main(["export", str(tmp_path / "m.npz")]) == 2
    assert "--onnx" in capsys.readouterr().err
