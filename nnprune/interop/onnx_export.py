"""An nnprune model as an ONNX graph (opset 13 or later): dense, masked or shrunk, for any
ONNX runtime.

One node per layer, in order: Linear → Gemm with transB=1 (y = x Wᵀ + b), Conv2d → Conv, the
pools → MaxPool and AveragePool (count_include_pad=1: nnprune counts padded zeros), BatchNorm
→ BatchNormalization with the running statistics, ReLU, Tanh, Dropout and Flatten as
themselves. The weights are initializers (a masked model's zeros included; a shrunk model is
an ordinary, smaller ``Sequential``); the batch dimension is symbolic ("N"). Any other layer
is a ValueError naming it. ``onnx`` is an optional dependency (``pip install
"nnprune[onnx]"``), imported when a function runs.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnprune.autograd import no_grad
from nnprune.checks import check_int
from nnprune.files import atomic_write_bytes
from nnprune.nn import Module, Sequential
from nnprune.nn.module import check_model, kept_modes

DEFAULT_OPSET = 17


def require_onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export and import need the onnx package: "
                          "pip install \"nnprune[onnx]\" (or pip install onnx)") from None
    return onnx


def _leaves(model: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """The layers in forward order, nested Sequentials opened."""
    if isinstance(model, Sequential):
        out = []
        for name, child in model._modules.items():
            out += _leaves(child, f"{prefix}.{name}" if prefix else name)
        return out
    return [(prefix or "(model)", model)]


class _Graph:
    """Nodes and initializers under construction; each layer reads the last output."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.last = "input"

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.array(value, dtype=self.dtype, order="C"), name))  # 0-d stays 0-d
        return name

    def node(self, op: str, layer: str, extra_inputs: list[str], **attributes: Any) -> None:
        output = f"{layer}.out"
        self.nodes.append(self.onnx.helper.make_node(op, [self.last, *extra_inputs], [output],
                                                     name=f"{layer}:{op}", **attributes))
        self.last = output


def _add_layer(graph: _Graph, name: str, layer: Module) -> None:
    kind = type(layer).__name__
    params = {leaf: p.data for leaf, p in layer._parameters.items()}
    # Gemm and Conv read the weight, then the bias if there is one
    inputs = [graph.constant(f"{name}.{leaf}", params[leaf]) for leaf in ("weight", "bias")
              if leaf in params and kind in ("Linear", "Conv2d")]
    if kind == "Linear":
        graph.node("Gemm", name, inputs, transB=1)
    elif kind == "Conv2d":
        (ph, pw) = layer.padding
        graph.node("Conv", name, inputs, kernel_shape=list(layer.kernel_size),
                   strides=list(layer.stride), pads=[ph, pw, ph, pw],
                   dilations=list(layer.dilation))
    elif kind in ("MaxPool2d", "AvgPool2d"):
        (ph, pw) = layer.padding
        extra = {"count_include_pad": 1} if kind == "AvgPool2d" else {}
        graph.node("MaxPool" if kind == "MaxPool2d" else "AveragePool", name, [],
                   kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                   pads=[ph, pw, ph, pw], **extra)
    elif kind in ("BatchNorm1d", "BatchNorm2d"):
        c = layer.num_features  # without affine: γ = 1, β = 0
        inputs = [graph.constant(f"{name}.weight", params.get("weight", np.ones(c))),
                  graph.constant(f"{name}.bias", params.get("bias", np.zeros(c))),
                  graph.constant(f"{name}.running_mean", layer.running_mean),
                  graph.constant(f"{name}.running_var", layer.running_var)]
        graph.node("BatchNormalization", name, inputs, epsilon=layer.eps,
                   momentum=1.0 - layer.momentum)  # ONNX keeps `momentum` of the old value
    elif kind in ("ReLU", "Tanh"):
        graph.node("Relu" if kind == "ReLU" else "Tanh", name, [])
    elif kind == "Dropout":
        graph.node("Dropout", name, [graph.constant(f"{name}.ratio", np.array(layer.p))])
    elif kind == "Flatten":
        graph.node("Flatten", name, [], axis=1)
    else:
        raise ValueError(f"layer {name!r} ({kind}) cannot be exported to ONNX: the exporter "
                         f"knows Linear, Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d/2d, ReLU, "
                         f"Tanh, Dropout and Flatten")


def output_shape(model: Module, input_shape: tuple[int, ...], dtype: Any) -> tuple[int, ...]:
    """The shape of one sample's output: a forward pass of zeros in eval mode (modes restored)."""
    with kept_modes(model), no_grad():
        model.eval()
        return tuple(int(d) for d in model(np.zeros((1, *input_shape), dtype)).shape[1:])


def to_onnx(model: Module, input_shape: tuple[int, ...], path: str | os.PathLike | None = None,
            *, opset: int = DEFAULT_OPSET, dtype: Any = None) -> Any:
    """The ONNX ``ModelProto`` of ``model`` for inputs (N, *input_shape), checked by
    ``onnx.checker``; written atomically to ``path`` when one is given.

    (C, H, W) or (features,) -> a graph with input "input" (N, *input_shape) and output
    "logits" (N, K). The graph computes the model in eval mode, in ``dtype`` (default: the
    model's; onnxruntime's CPU Conv runs float32 only, so a float64 CNN for onnxruntime is
    exported with ``dtype=np.float32``).
    """
    onnx = require_onnx()
    check_model(model)
    if not isinstance(input_shape, (tuple, list)) or not input_shape or any(
            isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
            for d in input_shape):
        raise ValueError(f"input_shape must be a tuple of positive ints such as (1, 28, 28), "
                         f"got {input_shape!r}")
    check_int(opset, "opset", 13)
    dtypes = {p.dtype for p in model.parameters()} | {b.dtype for _, b in model.named_buffers()}
    own = np.dtype(np.float32) if not dtypes else np.dtype(max(dtypes, key=lambda d: d.itemsize))
    if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    dtype = own if dtype is None else np.dtype(dtype)
    graph = _Graph(onnx, dtype)
    for name, layer in _leaves(model):
        _add_layer(graph, name, layer)
    graph.nodes.append(onnx.helper.make_node("Identity", [graph.last], ["logits"], name="logits"))
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    inputs = [onnx.helper.make_tensor_value_info("input", elem, ["N", *map(int, input_shape)])]
    outputs = [onnx.helper.make_tensor_value_info("logits", elem,
                                                  ["N", *output_shape(model, input_shape, own)])]
    onnx_graph = onnx.helper.make_graph(graph.nodes, "nnprune", inputs, outputs,
                                        graph.initializers)
    proto = onnx.helper.make_model(onnx_graph, producer_name="nnprune",
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, 8)  # readable by runtimes of the last years
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        atomic_write_bytes(path, proto.SerializeToString())
    return proto
