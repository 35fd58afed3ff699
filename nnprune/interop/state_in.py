"""Another framework's weights into an nnprune model: by name, by explicit key map, or by
shape and order, with a report of what went where.

The source is a dict of arrays named as its framework names them (a PyTorch ``state_dict``
converted with ``{k: v.numpy() for k, v in sd.items()}``, Keras variable paths such as
``"dense/kernel:0"``) or a list of arrays in Keras's ``model.get_weights()`` order. Nothing here
imports a framework. An entry name is split at its last ``.`` or ``/`` into a *module* and a
*leaf*; the leaves of other frameworks are renamed to PyTorch's (``kernel``/``gamma`` →
``weight``, ``beta`` → ``bias``, ``moving_mean`` → ``running_mean``, ``moving_variance`` →
``running_var``), and ``layout="keras"`` transposes kernels to PyTorch's layout: conv
(kh, kw, in, out) → (out, in, kh, kw), dense (in, out) → (out, in).

Each nnprune module that holds state (a Linear, Conv2d or BatchNorm) is then given one source
module whose leaves and shapes are exactly its own:

1. ``key_map`` renames first: ``{"features.0": "0"}`` (a module) or
   ``{"features.0.weight": "0.weight"}`` (an entry);
2. a source module named like an nnprune module is that module;
3. ``match="shape"`` (default): the rest pair up when exactly one source module and one
   nnprune module have a given signature (leaf names and shapes). Several with the same
   signature are ambiguous: refused, naming the candidates. ``match="order"``: the rest pair
   up in order (source order against model order), each pair's signature checked.

Bookkeeping is skipped and reported: ``num_batches_tracked`` (PyTorch's BatchNorm counter;
nnprune uses the momentum, as PyTorch does by default). Masks come along:
``torch.nn.utils.prune`` stores ``weight_orig`` and ``weight_mask`` instead of ``weight``;
the weight loaded is weight_orig ⊙ weight_mask and the mask is attached to the parameter.
Everything is checked before anything is copied: a refused source leaves the model unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.autograd import no_grad
from nnprune.foreign import reject_foreign
from nnprune.nn import Module, Sequential
from nnprune.prune.masks import check_mask

LEAF_ALIASES = {"kernel": "weight", "gamma": "weight", "beta": "bias",
                "moving_mean": "running_mean", "moving_variance": "running_var"}
BOOKKEEPING = ("num_batches_tracked",)
LAYOUTS = ("torch", "keras")
MATCHES = ("shape", "order")


@dataclass(frozen=True)
class LoadReport:
    """What ``load_state`` did: ``placed`` (source key, nnprune name, shape) per entry,
    ``masks`` (nnprune names given a mask), ``ignored`` (bookkeeping keys skipped)."""

    placed: tuple[tuple[str, str, tuple[int, ...]], ...]
    masks: tuple[str, ...]
    ignored: tuple[str, ...]

    @property
    def mapping(self) -> dict[str, str]:
        """{source key: nnprune name}."""
        return {source: target for source, target, _ in self.placed}

    def __str__(self) -> str:
        width = max([len(s) for s, _, _ in self.placed] + [6])
        lines = [f"{'source':<{width}}  ->  nnprune (shape)"]
        lines += [f"{s:<{width}}  ->  {t} {shape}" + ("  + mask" if t in self.masks else "")
                  for s, t, shape in self.placed]
        if self.ignored:
            lines.append(f"ignored (bookkeeping): {', '.join(self.ignored)}")
        return "\n".join(lines)


@dataclass
class _Unit:
    """One module's entries: {leaf: (source key, array)} and {leaf: (source key, mask)}."""

    name: str
    leaves: dict[str, tuple[str, np.ndarray]]
    masks: dict[str, tuple[str, np.ndarray]]

    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple(sorted((leaf, a.shape) for leaf, (_, a) in self.leaves.items()))


def _split(key: str) -> tuple[str, str]:
    """"features.0.weight" -> ("features.0", "weight"); "dense/kernel:0" -> ("dense", "kernel")."""
    key = re.sub(r":\d+$", "", key)
    cut = max(key.rfind("."), key.rfind("/"))
    return (key[:cut], key[cut + 1:]) if cut >= 0 else ("", key)


def _to_torch_layout(leaf: str, value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "keras" and leaf == "weight" and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    if layout == "keras" and leaf == "weight" and value.ndim == 2:
        return value.T  # (in, out) -> (out, in)
    return value


def _array(key: str, value: Any) -> np.ndarray:
    reject_foreign(value, f"state[{key!r}]", "array")
    value = np.asarray(value)
    if value.dtype.kind not in "fiub":
        raise TypeError(f"state[{key!r}] must be a numeric array, got dtype {value.dtype}")
    return value


def _units_from_dict(state: Mapping[str, Any], key_map: Mapping[str, str], layout: str):
    """Source modules in first-appearance order, and the bookkeeping keys skipped."""
    known = set(state) | {_split(k)[0] for k in state}
    unknown = [k for k in key_map if k not in known]
    if unknown:
        raise ValueError(f"key_map names {unknown}, which are neither keys nor module names of "
                         f"the state; its keys are {list(state)}")
    units: dict[str, _Unit] = {}
    ignored = []
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str names, got {key!r}")
        module, leaf = _split(key_map.get(key, key))
        if key not in key_map and module in key_map:
            module = key_map[module]
        if leaf in BOOKKEEPING:
            ignored.append(key)
            continue
        unit = units.setdefault(module, _Unit(module, {}, {}))
        value = _array(key, value)
        table, leaf = ((unit.masks, leaf[:-5]) if leaf.endswith("_mask") else
                       (unit.leaves, leaf[:-5] if leaf.endswith("_orig") else leaf))
        leaf = LEAF_ALIASES.get(leaf, leaf)
        if leaf in table:
            raise ValueError(f"state[{key!r}] and state[{table[leaf][0]!r}] both give "
                             f"{module or '(top)'}'s {leaf}")
        table[leaf] = (key, _to_torch_layout(leaf, value, layout))
    for unit in units.values():
        for leaf, (key, _) in unit.masks.items():
            if leaf not in unit.leaves:
                raise ValueError(f"state[{key!r}] is a mask for {leaf!r}, which the state does "
                                 f"not hold (expected {key[:-5]}_orig)")
    return list(units.values()), tuple(ignored)


def _units_from_list(state: Sequence[Any], targets: list[_Unit], layout: str):
    """Keras's get_weights() order: each stateful module's leaves in turn."""
    arrays = [_array(f"[{i}]", v) for i, v in enumerate(state)]
    ignored = tuple(f"[{i}]" for i, a in enumerate(arrays) if a.ndim == 0 and a.dtype.kind in "iu")
    order = [(f"[{i}]", a) for i, a in enumerate(arrays) if f"[{i}]" not in ignored]
    needed = sum(len(t.leaves) for t in targets)
    if len(order) != needed:
        raise ValueError(f"state holds {len(order)} arrays, the model needs {needed} "
                         f"({', '.join(f'{t.name}: {len(t.leaves)}' for t in targets)})")
    units, i = [], 0
    for target in targets:
        leaves = {}
        for leaf in target.leaves:
            key, value = order[i]
            leaves[leaf] = (key, _to_torch_layout(leaf, value, layout))
            i += 1
        units.append(_Unit(f"{order[i - len(leaves)][0]}..{order[i - 1][0]}", leaves, {}))
    return units, ignored


def _targets(model: Any) -> list[_Unit]:
    """The nnprune modules that hold state, in model order, with their own arrays."""
    units = []
    for name, module in model.named_modules():
        leaves = {leaf: (leaf, p.data) for leaf, p in module._parameters.items()}
        leaves.update({leaf: (leaf, getattr(module, leaf)) for leaf in module._buffers})
        if leaves:
            units.append(_Unit(name, leaves, {}))
    return units


def _describe(unit: _Unit) -> str:
    return f"{unit.name or '(top)'} {{{', '.join(f'{l}: {s}' for l, s in unit.signature())}}}"


def _pair(sources: list[_Unit], targets: list[_Unit], match: str, by_list: bool):
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
                f"{[s.name for s in same]} all have the signature {_describe(t)}; pass "
                f"key_map={{source module: nnprune module}} or match='order'")
        if same:
            pairs.append((same[0], t))
            left_sources.remove(same[0])
    return pairs, left_sources


def _keras_flatten_order(model: Any, pairs: list, input_shape: Any) -> None:
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
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with no_grad():
                c, h, w = model[:i](np.zeros((1, *input_shape), np.float64)).shape[1:]
        finally:
            for m, mode in modes:
                object.__setattr__(m, "training", mode)
        for source, target in pairs:
            if target.name == str(after):
                key, weight = source.leaves["weight"]
                out = weight.shape[0]
                weight = weight.reshape(out, h, w, c).transpose(0, 3, 1, 2).reshape(out, -1)
                source.leaves["weight"] = (key, weight)


def load_state(model: Module, state: Mapping[str, Any] | Sequence[Any],
               key_map: Mapping[str, str] | None = None, *, match: str = "shape",
               layout: str = "torch", input_shape: tuple[int, int, int] | None = None,
               strict: bool = True) -> LoadReport:
    """Copy another framework's arrays (and pruning masks) into ``model``; what went where.

    {source key: array} or [arrays in get_weights() order] -> the model's parameters and
    buffers, shapes in PyTorch's layout (see the module docstring for the matching rules).

    - ``key_map``: {source module or key: nnprune module or name}, applied first.
    - ``match``: "shape" (unique signatures pair up; ambiguity refused) or "order".
    - ``layout``: "torch" (as stored) or "keras" (kernels transposed; a list is read in
      ``get_weights()`` order). ``input_shape`` (C, H, W) is needed by "keras" when a Linear
      follows flattened feature maps.
    - ``strict``: every parameter and buffer of the model must be filled and every source
      entry used; with False the unmatched are left as they are (see the report).

    Masks already attached to the model stay attached, except where the source brings one.

    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(3, 2, rng=0))
    >>> state = {"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)}
    >>> print(load_state(model, state))
    source     ->  nnprune (shape)
    fc.weight  ->  0.weight (2, 3)
    fc.bias    ->  0.bias (2,)
    """
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    reject_foreign(state, "state", "array")
    by_list = isinstance(state, (list, tuple))
    if not by_list and not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict name -> array or a list of arrays, got "
                        f"{type(state).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if match not in MATCHES:
        raise ValueError(f"match must be one of {MATCHES}, got {match!r}")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {strict!r}")
    key_map = {} if key_map is None else key_map
    if not isinstance(key_map, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in key_map.items()):
        raise TypeError(f"key_map must be a dict of str -> str, got {key_map!r}")
    if by_list and key_map:
        raise ValueError("a list of arrays has no names: key_map applies to a dict state only")
    targets = _targets(model)
    sources, ignored = (_units_from_list(state, targets, layout) if by_list
                        else _units_from_dict(state, key_map, layout))
    pairs, unused = _pair(sources, targets, match, by_list)
    if layout == "keras":
        _keras_flatten_order(model, pairs, input_shape)
    for source, target in pairs:
        if source.signature() != target.signature():
            raise ValueError(f"source module {_describe(source)} does not fit nnprune module "
                             f"{_describe(target)}")
    matched = {target.name for _, target in pairs}
    if strict and (unused or len(matched) < len(targets)):
        raise ValueError(f"state does not fill the model: nnprune modules without a source "
                         f"{[_describe(t) for t in targets if t.name not in matched]}; source "
                         f"modules left over {[_describe(s) for s in unused]}; pass key_map, "
                         f"match='order' or strict=False")
    arrays, masks, placed = {}, {}, []
    for source, target in pairs:
        for leaf, (key, value) in source.leaves.items():
            name = f"{target.name}.{leaf}" if target.name else leaf
            if leaf in source.masks:
                mask_key, mask = source.masks[leaf]
                masks[name] = check_mask(mask, value.shape, f"state[{mask_key!r}]")
                value = value * masks[name]
            arrays[name] = value
            placed.append((key, name, tuple(value.shape)))
    params = dict(model.named_parameters())
    for name in masks:
        if name not in params:
            raise ValueError(f"state holds a mask for {name!r}, which is a buffer of the model, "
                             f"not a parameter: only parameters are pruned")
    for name in masks:
        params[name].mask = None  # replaced below, after the new weight is in
    model.load_state_dict(arrays, strict=False)
    for name, mask in masks.items():
        params[name].set_mask(mask)
    return LoadReport(tuple(placed), tuple(masks), ignored)
