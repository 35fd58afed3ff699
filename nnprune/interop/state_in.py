"""Another framework's weights into an nnprune model: by name, by explicit key map, or by
shape and order, with a report of what went where.

The source is a dict of arrays named as its framework names them (a PyTorch ``state_dict``
as NumPy, Keras variable paths such as ``"dense/kernel:0"``) or a list of arrays in Keras's
``model.get_weights()`` order. An entry name is split at its last ``.`` or ``/`` into a
*module* and a *leaf*; other frameworks' leaves get PyTorch's names (``kernel``/``gamma`` →
``weight``, ``beta`` → ``bias``, ``moving_mean``/``moving_variance`` → ``running_mean``/
``running_var``), and ``layout="keras"`` transposes kernels to PyTorch's layout.

Each nnprune module that holds state is then given one source module whose leaves and
shapes are exactly its own:

1. ``key_map`` renames first: ``{"features.0": "0"}`` (a module) or
   ``{"features.0.weight": "0.weight"}`` (an entry);
2. a source module named like an nnprune module is that module;
3. ``match="shape"`` (default): the rest pair up when exactly one source module and one
   nnprune module have a given signature (leaf names and shapes); several with the same
   signature are refused, naming the candidates. ``match="order"``: the rest pair up in
   order (source order against model order), each pair's signature checked.

``num_batches_tracked`` is skipped and reported. ``torch.nn.utils.prune``'s ``weight_orig``
and ``weight_mask`` load as weight_orig ⊙ weight_mask, the mask attached to the parameter.
Everything is checked before anything is copied: a refused source leaves the model unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nnprune.checks import check_bool, check_choice
from nnprune.foreign import reject_foreign
from nnprune.interop.state_units import (Unit, describe, keras_flatten_order, pair_units,
                                         target_units, units_from_dict, units_from_list)
from nnprune.nn import Module
from nnprune.prune.masks import check_mask

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

    >>> import numpy as np
    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(3, 2, rng=0))
    >>> state = {"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)}
    >>> print(load_state(model, state))
    source     ->  nnprune (shape)
    fc.weight  ->  0.weight (2, 3)
    fc.bias    ->  0.bias (2,)
    """
    _check_arguments(model, state, key_map, match, layout, strict)
    by_list = isinstance(state, (list, tuple))
    targets = target_units(model)
    sources, ignored = (units_from_list(state, targets, layout) if by_list
                        else units_from_dict(state, key_map or {}, layout))
    pairs, unused = pair_units(sources, targets, match, by_list)
    if layout == "keras":
        keras_flatten_order(model, pairs, input_shape)
    for source, target in pairs:
        if source.signature() != target.signature():
            raise ValueError(f"source module {describe(source)} does not fit nnprune module "
                             f"{describe(target)}")
    matched = {target.name for _, target in pairs}
    if strict and (unused or len(matched) < len(targets)):
        raise ValueError(f"state does not fill the model: nnprune modules without a source "
                         f"{[describe(t) for t in targets if t.name not in matched]}; source "
                         f"modules left over {[describe(s) for s in unused]}; pass key_map, "
                         f"match='order' or strict=False")
    arrays, masks, placed = _placed_arrays(pairs)
    _load(model, arrays, masks)
    return LoadReport(tuple(placed), tuple(masks), ignored)


def _check_arguments(model: Any, state: Any, key_map: Any, match: Any, layout: Any,
                     strict: Any) -> None:
    """Refuse, with one clear message, any argument of ``load_state`` it cannot take."""
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    reject_foreign(state, "state", "array")
    by_list = isinstance(state, (list, tuple))
    if not by_list and not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict name -> array or a list of arrays, got "
                        f"{type(state).__name__}")
    check_choice(layout, "layout", LAYOUTS)
    check_choice(match, "match", MATCHES)
    check_bool(strict, "strict")
    if key_map is not None and (not isinstance(key_map, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in key_map.items())):
        raise TypeError(f"key_map must be a dict of str -> str, got {key_map!r}")
    if by_list and key_map:
        raise ValueError("a list of arrays has no names: key_map applies to a dict state only")


def _placed_arrays(pairs: list[tuple[Unit, Unit]]) -> tuple[dict, dict, list]:
    """({nnprune name: array}, {nnprune name: mask}, [(source key, name, shape)]) for the
    pairs; a masked weight is loaded as weight_orig ⊙ weight_mask."""
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
    return arrays, masks, placed


def _load(model: Module, arrays: dict[str, Any], masks: dict[str, Any]) -> None:
    """Copy ``arrays`` into the model and attach ``masks`` (to parameters only)."""
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
