"""Pairing source units with the model's (rules 2 and 3 of ``state_in``): by name, then by
unique signature or in order; ``keras_flatten_order`` reorders the inputs of a Linear after
Keras's (H, W, C) flatten to nnprune's (C, H, W).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune.interop.onnx_export import output_shape
from nnprune.interop.state_units import Unit, describe
from nnprune.nn import Sequential


def pair_units(sources: list[Unit], targets: list[Unit], match: str, by_list: bool):
    """[(source unit, target unit)] for every target that finds its source, and the unused."""
    pairs = []
    if by_list:
        return list(zip(sources, targets)), []
    by_name = {s.name: s for s in sources}
    left_targets = []
    for t in targets:
        if t.name in by_name:
            pairs.append((by_name.pop(t.name), t))
        else:
            left_targets.append(t)
    left_sources = list(by_name.values())
    if match == "order":
        pairs += list(zip(left_sources, left_targets))
        return pairs, left_sources[len(left_targets):]
    for t in left_targets:
        same = [s for s in left_sources if s.signature() == t.signature()]
        rivals = [u for u in left_targets if u.signature() == t.signature()]
        if len(same) > 1 or (same and len(rivals) > 1):
            raise ValueError(
                f"ambiguous: nnprune modules {[u.name for u in rivals]} and source modules "
                f"{[s.name for s in same]} all have the signature {describe(t)}; pass "
                f"key_map={{source module: nnprune module}} or match='order'")
        if same:
            pairs.append((same[0], t))
            left_sources.remove(same[0])
    return pairs, left_sources


def keras_flatten_order(model: Any, pairs: list, input_shape: Any) -> None:
    """Keras flattens (H, W, C) feature maps, nnprune (C, H, W): reorder the inputs of the
    Linear right after a Flatten that follows convolutions (in place, in ``pairs``)."""
    layers = list(model) if isinstance(model, Sequential) else []
    flat = [i for i, m in enumerate(layers) if type(m).__name__ == "Flatten"
            and any(type(p).__name__ in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d")
                    for p in layers[:i])]
    for i in flat:
        after = next((j for j in range(i + 1, len(layers)) if layers[j]._parameters), None)
        if after is None or type(layers[after]).__name__ != "Linear":
            continue
        if input_shape is None:
            raise ValueError("layout='keras' with a Linear after flattened feature maps needs "
                             "input_shape=(C, H, W): Keras flattens (H, W, C), nnprune (C, H, W)")
        c, h, w = output_shape(model[:i], input_shape, np.float64)
        for source, target in pairs:
            if target.name == str(after):
                key, weight = source.leaves["weight"]
                out = weight.shape[0]
                weight = weight.reshape(out, h, w, c).transpose(0, 3, 1, 2).reshape(out, -1)
                source.leaves["weight"] = (key, weight)
