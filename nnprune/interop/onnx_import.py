"""An ONNX model into an nnprune ``Sequential``, so a model trained elsewhere is pruned here.

The graph must be a chain: one input, each node reading the previous node's output (and
weights held as initializers or ``Constant`` nodes), one output. Gemm and MatMul (+ Add)
become a Linear, Conv a Conv2d, the pools, BatchNormalization, Relu, Tanh, Flatten and Dropout
their nnprune layers, Identity nothing (``_Reader``'s methods say what each must look like);
anything else is a ValueError naming the node and its operator. Layers are float32 or float64
as the weights are.
"""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import numpy as np

from nnprune import nn
from nnprune.interop.onnx_export import require_onnx


def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decimal(value: float) -> Decimal:
    """A float attribute (ONNX stores them as float32) as the shortest decimal that float32
    reads back, so 1e-5 comes back as 1e-5, not 9.999999747378752e-06."""
    return Decimal(str(np.float32(value)))


def _pads(node: Any, attrs: dict[str, Any]) -> tuple[int, int]:
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"node {node.name!r} ({node.op_type}) uses auto_pad; nnprune reads "
                         f"explicit pads only")
    if len(pads) != 4 or pads[:2] != pads[2:]:
        raise ValueError(f"node {node.name!r} ({node.op_type}) has pads {pads}; nnprune pads "
                         f"both sides alike ([ph, pw, ph, pw])")
    return int(pads[0]), int(pads[1])


class _Reader:
    """Walks the chain, turning nodes into layers; ``rank`` is the rank of the current value."""

    def __init__(self, onnx: Any, graph: Any) -> None:
        self.onnx = onnx
        self.constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.layers: list[nn.Module] = []
        self.rank = 0

    def weight(self, node: Any, name: str) -> np.ndarray:
        if name not in self.constants:
            raise ValueError(f"node {node.name!r} ({node.op_type}) reads {name!r}, which is not "
                             f"a constant: nnprune imports chains whose weights are constants")
        return np.asarray(self.constants[name])

    def add(self, layer: nn.Module, arrays: dict[str, np.ndarray]) -> None:
        for leaf, value in arrays.items():
            target = getattr(layer, leaf)
            target = target.data if isinstance(target, nn.Parameter) else target
            target[...] = value
        self.layers.append(layer)

    def linear(self, node: Any, w: np.ndarray, b: np.ndarray | None) -> None:
        """w: (out, in); b: (out,) or None."""
        if self.rank != 2:
            raise ValueError(f"node {node.name!r} ({node.op_type}) multiplies a {self.rank}-D "
                             f"value; nnprune's Linear takes (N, features): add a Flatten")
        dtype = w.dtype if w.dtype in (np.float32, np.float64) else np.float32
        layer = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=dtype)
        self.add(layer, {"weight": w} | ({} if b is None else {"bias": np.broadcast_to(
            b, (w.shape[0],))}))

    def gemm(self, node: Any, attrs: dict[str, Any]) -> None:
        """Gemm: W = alpha·B (transB=1) or alpha·Bᵀ, b = beta·C."""
        if attrs.get("transA", 0):
            raise ValueError(f"node {node.name!r} (Gemm) has transA=1; nnprune reads x·Bᵀ only")
        b = self.weight(node, node.input[1]) * attrs.get("alpha", 1.0)
        w = b if attrs.get("transB", 0) else b.T
        c = self.weight(node, node.input[2]) * attrs.get("beta", 1.0) \
            if len(node.input) > 2 and node.input[2] else None
        self.linear(node, w, c)

    def matmul(self, node: Any, following: Any) -> bool:
        """MatMul by a constant: W = Bᵀ, with the bias of ``following`` when it is an Add of
        this output; True when it took that Add."""
        w = self.weight(node, node.input[1]).T
        bias = None
        if following is not None and following.op_type == "Add" and node.output[0] in \
                following.input:
            other = [name for name in following.input if name != node.output[0]]
            bias = self.weight(following, other[0]) if other else None
        self.linear(node, w, bias)
        return bias is not None

    def conv(self, node: Any, attrs: dict[str, Any]) -> None:
        """Conv (group 1): kernel (F, C, kh, kw), strides, symmetric pads, dilations."""
        if attrs.get("group", 1) != 1:
            raise ValueError(f"node {node.name!r} (Conv) has group={attrs['group']}; nnprune's "
                             f"Conv2d is not grouped")
        w = self.weight(node, node.input[1])
        b = self.weight(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        layer = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]),
                          stride=tuple(attrs.get("strides", [1, 1])), padding=_pads(node, attrs),
                          dilation=tuple(attrs.get("dilations", [1, 1])), bias=b is not None,
                          dtype=w.dtype)
        self.add(layer, {"weight": w} | ({} if b is None else {"bias": b}))
        self.rank = 4

    def pool(self, node: Any, attrs: dict[str, Any]) -> None:
        """MaxPool or AveragePool: symmetric pads, ceil_mode 0, no dilation."""
        op = node.op_type
        if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ValueError(f"node {node.name!r} ({op}) uses ceil_mode or dilations; nnprune "
                             f"pools floor the size and do not dilate")
        padding = _pads(node, attrs)
        if op == "AveragePool" and any(padding) and not attrs.get("count_include_pad", 0):
            raise ValueError(f"node {node.name!r} (AveragePool) pads without "
                             f"count_include_pad; nnprune's AvgPool2d counts padded zeros")
        kernel = tuple(attrs["kernel_shape"])
        cls = nn.MaxPool2d if op == "MaxPool" else nn.AvgPool2d
        self.layers.append(cls(kernel, tuple(attrs.get("strides", kernel)), padding))

    def batch_norm(self, node: Any, attrs: dict[str, Any]) -> None:
        """BatchNormalization: PyTorch's momentum = 1 − ONNX's."""
        scale, shift, mean, var = (self.weight(node, name) for name in node.input[1:5])
        cls = nn.BatchNorm2d if self.rank == 4 else nn.BatchNorm1d
        layer = cls(len(scale), eps=float(_decimal(attrs.get("epsilon", 1e-5))),
                    momentum=float(1 - _decimal(attrs.get("momentum", 0.9))), dtype=scale.dtype)
        self.add(layer, {"weight": scale, "bias": shift, "running_mean": mean,
                         "running_var": var})

    def flatten(self, node: Any, attrs: dict[str, Any]) -> None:
        if attrs.get("axis", 1) != 1:
            raise ValueError(f"node {node.name!r} (Flatten) has axis={attrs['axis']}; nnprune "
                             f"flattens from axis 1")
        self.layers.append(nn.Flatten())
        self.rank = 2

    def dropout(self, node: Any, attrs: dict[str, Any]) -> None:
        ratio = attrs.get("ratio", 0.5)
        if len(node.input) > 1 and node.input[1]:
            ratio = self.weight(node, node.input[1])
        self.layers.append(nn.Dropout(float(_decimal(ratio))))


def _read_node(reader: _Reader, node: Any, following: Any) -> bool:
    """Append the layer of ``node``; True when it also consumed ``following`` (a bias Add)."""
    op, attrs = node.op_type, _attributes(reader.onnx, node)
    if op == "Gemm":
        reader.gemm(node, attrs)
    elif op == "MatMul":
        return reader.matmul(node, following)
    elif op == "Conv":
        reader.conv(node, attrs)
    elif op in ("MaxPool", "AveragePool"):
        reader.pool(node, attrs)
    elif op == "BatchNormalization":
        reader.batch_norm(node, attrs)
    elif op in ("Relu", "Tanh"):
        reader.layers.append(nn.ReLU() if op == "Relu" else nn.Tanh())
    elif op == "Flatten":
        reader.flatten(node, attrs)
    elif op == "Dropout":
        reader.dropout(node, attrs)
    elif op != "Identity":
        raise ValueError(f"node {node.name!r} is an ONNX {op}, which nnprune cannot import; it "
                         f"reads Gemm, MatMul (+ Add), Conv, MaxPool, AveragePool, "
                         f"BatchNormalization, Relu, Tanh, Flatten, Dropout and Identity")
    return False


def from_onnx(source: Any) -> nn.Sequential:
    """The nnprune ``Sequential`` computing the ONNX model ``source`` (a path or a ModelProto).

    A chain graph -> one nnprune layer per node (see the module docstring), in eval mode.
    """
    onnx = require_onnx()
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source}: no such file")
        try:
            source = onnx.load(os.fspath(source))
        except Exception as err:  # protobuf's DecodeError and kin
            raise ValueError(f"{source}: not a readable ONNX file: {err}") from None
    if not isinstance(source, onnx.ModelProto):
        raise TypeError(f"source must be an ONNX file name or an onnx.ModelProto, got "
                        f"{type(source).__name__}")
    graph = source.graph
    reader = _Reader(onnx, graph)
    nodes = []
    for node in graph.node:  # Constant nodes hold weights, as initializers do
        if node.op_type == "Constant":
            value = _attributes(onnx, node).get("value")
            if value is None:
                raise ValueError(f"node {node.name!r} (Constant) holds no tensor 'value'")
            reader.constants[node.output[0]] = onnx.numpy_helper.to_array(value)
        else:
            nodes.append(node)
    inputs = [i for i in graph.input if i.name not in reader.constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"nnprune imports graphs with one input and one output, got inputs "
                         f"{[i.name for i in inputs]} and outputs {[o.name for o in graph.output]}")
    reader.rank = len(inputs[0].type.tensor_type.shape.dim)
    current, i = inputs[0].name, 0
    while i < len(nodes):
        node = nodes[i]
        if not node.input or node.input[0] != current:
            raise ValueError(f"node {node.name!r} ({node.op_type}) does not read the previous "
                             f"output {current!r}: nnprune imports chains of layers only")
        consumed = _read_node(reader, node, nodes[i + 1] if i + 1 < len(nodes) else None)
        current = nodes[i + 1].output[0] if consumed else node.output[0]
        i += 2 if consumed else 1
    if current != graph.output[0].name:
        raise ValueError(f"the chain ends at {current!r}, not at the graph output "
                         f"{graph.output[0].name!r}")
    return nn.Sequential(*reader.layers).eval()
