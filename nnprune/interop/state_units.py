"""Units: the arrays of one module, by leaf name, read from a source (named and laid out as
``interop.state`` describes) or from the model, and their pairing (rules 2 and 3 there).
A unit's *signature*, its leaf names and shapes, is what matching compares.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.foreign import reject_foreign
from nnprune.interop.onnx_export import output_shape
from nnprune.nn import Sequential

LEAF_ALIASES = {"kernel": "weight", "gamma": "weight", "beta": "bias",
                "moving_mean": "running_mean", "moving_variance": "running_var"}
BOOKKEEPING = ("num_batches_tracked",)


@dataclass
class Unit:
    """One module's entries: {leaf: (source key, array)} and {leaf: (source key, mask)}."""

    name: str
    leaves: dict[str, tuple[str, np.ndarray]]
    masks: dict[str, tuple[str, np.ndarray]]

    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple(sorted((leaf, a.shape) for leaf, (_, a) in self.leaves.items()))


def split_key(key: str) -> tuple[str, str]:
    """"features.0.weight" -> ("features.0", "weight"); "dense/kernel:0" -> ("dense", "kernel")."""
    key = re.sub(r":\d+$", "", key)
    cut = max(key.rfind("."), key.rfind("/"))
    return (key[:cut], key[cut + 1:]) if cut >= 0 else ("", key)


def to_torch_layout(leaf: str, value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "keras" and leaf == "weight" and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    if layout == "keras" and leaf == "weight" and value.ndim == 2:
        return value.T  # (in, out) -> (out, in)
    return value


def source_array(key: str, value: Any) -> np.ndarray:
    reject_foreign(value, f"state[{key!r}]", "array")
    value = np.asarray(value)
    if value.dtype.kind not in "fiub":
        raise TypeError(f"state[{key!r}] must be a numeric array, got dtype {value.dtype}")
    return value


def units_from_dict(state: Mapping[str, Any], key_map: Mapping[str, str], layout: str):
    """Source modules in first-appearance order, and the bookkeeping keys skipped."""
    known = set(state) | {split_key(k)[0] for k in state}
    unknown = [k for k in key_map if k not in known]
    if unknown:
        raise ValueError(f"key_map names {unknown}, which are neither keys nor module names of "
                         f"the state; its keys are {list(state)}")
    units: dict[str, Unit] = {}
    ignored = []
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str names, got {key!r}")
        module, leaf = split_key(key_map.get(key, key))
        if key not in key_map and module in key_map:
            module = key_map[module]
        if leaf in BOOKKEEPING:
            ignored.append(key)
            continue
        unit = units.setdefault(module, Unit(module, {}, {}))
        value = source_array(key, value)
        table, leaf = ((unit.masks, leaf[:-5]) if leaf.endswith("_mask") else
                       (unit.leaves, leaf[:-5] if leaf.endswith("_orig") else leaf))
        leaf = LEAF_ALIASES.get(leaf, leaf)
        if leaf in table:
            raise ValueError(f"state[{key!r}] and state[{table[leaf][0]!r}] both give "
                             f"{module or '(top)'}'s {leaf}")
        table[leaf] = (key, to_torch_layout(leaf, value, layout))
    for unit in units.values():
        for leaf, (key, _) in unit.masks.items():
            if leaf not in unit.leaves:
                raise ValueError(f"state[{key!r}] is a mask for {leaf!r}, which the state does "
                                 f"not hold (expected {key[:-5]}_orig)")
    return list(units.values()), tuple(ignored)


def units_from_list(state: Sequence[Any], targets: list[Unit], layout: str):
    """Keras's get_weights() order: each stateful module's leaves in turn."""
    arrays = [source_array(f"[{i}]", v) for i, v in enumerate(state)]
    ignored = tuple(f"[{i}]" for i, a in enumerate(arrays) if a.ndim == 0 and a.dtype.kind in "iu")
    order = [(f"[{i}]", a) for i, a in enumerate(arrays) if f"[{i}]" not in ignored]
    needed = sum(len(t.leaves) for t in targets)
    if len(order) != needed:
        raise ValueError(f"state holds {len(order)} arrays, the model needs {needed} "
                         f"({', '.join(f'{t.name}: {len(t.leaves)}' for t in targets)})")
    units, rest = [], iter(order)
    for target in targets:  # each takes the next len(target.leaves) arrays
        leaves = {leaf: (key, to_torch_layout(leaf, value, layout))
                  for leaf, (key, value) in zip(target.leaves, rest)}
        keys = [key for key, _ in leaves.values()]
        units.append(Unit(f"{keys[0]}..{keys[-1]}", leaves, {}))
    return units, ignored


def target_units(model: Any) -> list[Unit]:
    """The nnprune modules that hold state, in model order, with their own arrays."""
    units = []
    for name, module in model.named_modules():
        leaves = {leaf: (leaf, p.data) for leaf, p in module._parameters.items()}
        leaves.update({leaf: (leaf, getattr(module, leaf)) for leaf in module._buffers})
        if leaves:
            units.append(Unit(name, leaves, {}))
    return units


def describe(unit: Unit) -> str:
    return f"{unit.name or '(top)'} {{{', '.join(f'{l}: {s}' for l, s in unit.signature())}}}"


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
