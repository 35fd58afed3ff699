"""What a model spec (``config()`` as JSON) will hold, known before anything is built.

``state_shapes(spec)`` walks a spec without building a layer, so that a loader can compare
the shapes with the arrays a file holds (and refuse a 200 KB file whose spec says
Linear(200000, 200000)) before a single weight is allocated. The shapes (PyTorch's):

    Linear(in, out, bias)            weight (out, in); bias (out,)
    Conv2d(in, out, (kh, kw), bias)  weight (out, in, kh, kw); bias (out,)
    BatchNorm1d/2d(n, affine)        weight, bias (n,) if affine; running_mean, _var (n,)
    Residual(body, shortcut)         body.<its state>; shortcut.<its state>
    pools, ReLU, Tanh, Dropout, Flatten   none
"""
from __future__ import annotations

from typing import Any

import numpy as np

MAX_DEPTH = 32
MAX_LAYERS = 10_000
STATELESS = ("MaxPool2d", "AvgPool2d", "ReLU", "Tanh", "Dropout", "Flatten")
CONTAINERS = ("Sequential", "Residual")
KNOWN = STATELESS + CONTAINERS + ("Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d")


class SpecError(ValueError):
    """A spec that is not a model nnprune can rebuild, said in one line."""


def state_shapes(spec: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{dotted name: ("param" or "buffer", shape)} of everything ``spec`` declares.

    Raises SpecError for a spec nested deeper than ``MAX_DEPTH``, longer than
    ``MAX_LAYERS`` layers, of an unknown layer type, or with sizes that are not positive
    ints. The layers' own checks (strides, dtypes, ...) run later, when it is built.
    """
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    stack = [("", spec, 0)]
    layers = 0
    while stack:
        prefix, node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecError(f"the spec is nested more than {MAX_DEPTH} Sequentials deep")
        layers += 1
        if layers > MAX_LAYERS:
            raise SpecError(f"the spec has more than {MAX_LAYERS} layers")
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise SpecError(f"layer {prefix or '(top)'} must be an object with a 'type' "
                            f"string, got {_short(node)}")
        kind = node["type"]
        if kind == "Sequential":
            children = node.get("layers", [])
            if not isinstance(children, list):
                raise SpecError(f"the 'layers' of Sequential {prefix or '(top)'} must be a "
                                f"list, got {_short(children)}")
            for i in reversed(range(len(children))):
                stack.append((f"{prefix}.{i}" if prefix else str(i), children[i], depth + 1))
            continue
        if kind == "Residual":  # body(x) + shortcut(x); no shortcut is the identity
            if node.get("shortcut") is not None:
                stack.append((f"{prefix}.shortcut" if prefix else "shortcut",
                              node["shortcut"], depth + 1))
            stack.append((f"{prefix}.body" if prefix else "body", node.get("body"), depth + 1))
            continue
        for name, (role, shape) in _leaf(kind, node, prefix or "(top)").items():
            shapes[f"{prefix}.{name}" if prefix else name] = (role, shape)
    return shapes


def _leaf(kind: str, node: dict, where: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The state of one layer of type ``kind`` described by ``node``."""
    if kind == "Linear":
        n_in, n_out = _size(node, "in_features", where), _size(node, "out_features", where)
        return _with_bias(node, where, (n_out, n_in), n_out)
    if kind == "Conv2d":
        c_in, c_out = _size(node, "in_channels", where), _size(node, "out_channels", where)
        kh, kw = _pair(node, "kernel_size", where)
        return _with_bias(node, where, (c_out, c_in, kh, kw), c_out)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        n = _size(node, "num_features", where)
        affine = node.get("affine", True)
        if not isinstance(affine, bool):
            raise SpecError(f"layer {where}: affine must be true or false, got {_short(affine)}")
        state = {"running_mean": ("buffer", (n,)), "running_var": ("buffer", (n,))}
        if affine:
            state = {"weight": ("param", (n,)), "bias": ("param", (n,)), **state}
        return state
    if kind in STATELESS:
        return {}
    raise SpecError(f"layer {where}: unknown layer type {_short(kind)}; known: {sorted(KNOWN)}")


def _with_bias(node: dict, where: str, weight: tuple[int, ...], n_out: int) -> dict:
    bias = node.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError(f"layer {where}: bias must be true or false, got {_short(bias)}")
    state = {"weight": ("param", weight)}
    if bias:
        state["bias"] = ("param", (n_out,))
    return state


def _size(node: dict, key: str, where: str) -> int:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecError(f"layer {where}: {key} must be a positive int, got {_short(value)}")
    return int(value)


def _pair(node: dict, key: str, where: str) -> tuple[int, int]:
    value = node.get(key)
    pair = value if isinstance(value, list) else [value, value]
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                             for v in pair):
        raise SpecError(f"layer {where}: {key} must be a positive int or a pair of them, got "
                        f"{_short(value)}")
    return int(pair[0]), int(pair[1])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
