"""Other frameworks' weights in and out, as NumPy arrays under PyTorch's names and layouts.

``load_state`` copies a source into an nnprune model by name, explicit key map, or shape and
order, with a report of what went where. The source is a dict of arrays named as its
framework names them (a PyTorch ``state_dict`` as NumPy, Keras variable paths such as
``"dense/kernel:0"``) or a list of arrays in Keras's ``model.get_weights()`` order. An entry
name is split at its last ``.`` or ``/`` into a *module* and a *leaf*; other frameworks'
leaves get PyTorch's names (``kernel``/``gamma`` → ``weight``, ``beta`` → ``bias``,
``moving_mean``/``moving_variance`` → ``running_mean``/``running_var``), and
``layout="keras"`` transposes kernels to PyTorch's layout. Each nnprune module that holds
state is then given one source module whose leaves and shapes are exactly its own:

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

``export_state`` goes the other way: nnprune's layers store what PyTorch's store, so the
export is the state itself, plus ``num_batches_tracked`` (int64, 0) for every BatchNorm
(PyTorch reads it only when its momentum is None; nnprune always uses a momentum) and each
pruning mask applied (``masks="apply"``: a dense model for any framework) or as
``torch.nn.utils.prune`` stores it (``masks="torch"``: ``weight_orig`` and ``weight_mask``,
so the mask stays in force while the torch module fine-tunes).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from nnprune.checks import check_bool, check_choice
from nnprune.foreign import reject_foreign
from nnprune.interop.state_units import (Unit, describe, keras_flatten_order, pair_units,
                                         target_units, units_from_dict, units_from_list)
from nnprune.nn import Module
from nnprune.prune.masks import check_mask
from nnprune.nn.module import check_model

LAYOUTS = ("torch", "keras")
MATCHES = ("shape", "order")
MASK_MODES = ("apply", "torch")


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
    buffers, shapes in PyTorch's layout; ``key_map`` and ``match`` as the module docstring
    says. ``layout="keras"`` transposes kernels, and needs ``input_shape`` (C, H, W) when a
    Linear follows flattened feature maps. With ``strict`` every parameter and buffer must be
    filled and every source entry used; otherwise the unmatched are left as they are (see the
    report). Masks already attached stay attached, except where the source brings one.

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
    check_model(model)
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


def export_state(model: Module, masks: str = "apply") -> tuple[dict[str, np.ndarray],
                                                                dict[str, Any]]:
    """(state, spec): PyTorch's ``state_dict`` of the equivalent torch model as NumPy arrays,
    and the architecture (``model.config()``, JSON-able).

    {name: array} in PyTorch's layout and order (per module: parameters, then buffers);
    ``masks``: "apply" or "torch" (see the module docstring). A shrunk model is an ordinary
    ``Sequential``, exported like any other.

    >>> from nnprune import nn
    >>> state, spec = export_state(nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2)))
    >>> list(state), spec["layers"][0]["type"]
    (['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', \
'1.num_batches_tracked'], 'Linear')
    """
    check_model(model)
    check_choice(masks, "masks", MASK_MODES)
    try:
        spec = model.config()
    except NotImplementedError as err:
        raise TypeError(f"model cannot be exported: {err}") from None
    state: dict[str, np.ndarray] = {}
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        for leaf, p in module._parameters.items():
            if masks == "torch" and p.mask is not None:
                state[f"{dot}{leaf}_orig"] = p.data.copy()
                state[f"{dot}{leaf}_mask"] = p.mask.copy()
            else:
                state[f"{dot}{leaf}"] = p.data.copy()
        for leaf in module._buffers:
            state[f"{dot}{leaf}"] = getattr(module, leaf).copy()
        if type(module).__name__ in ("BatchNorm1d", "BatchNorm2d"):
            state[f"{dot}num_batches_tracked"] = np.array(0, dtype=np.int64)
    return state, spec


def _torch_layer(config: Mapping[str, Any], nn: Any) -> Any:
    """The torch.nn layer of one nnprune layer config."""
    kind = config["type"]
    if kind == "Linear":
        return nn.Linear(config["in_features"], config["out_features"], bias=config["bias"])
    if kind == "Conv2d":
        return nn.Conv2d(config["in_channels"], config["out_channels"],
                         tuple(config["kernel_size"]), stride=tuple(config["stride"]),
                         padding=tuple(config["padding"]), dilation=tuple(config["dilation"]),
                         bias=config["bias"])
    if kind in ("MaxPool2d", "AvgPool2d"):
        return getattr(nn, kind)(tuple(config["kernel_size"]), stride=tuple(config["stride"]),
                                 padding=tuple(config["padding"]))
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, kind)(config["num_features"], eps=config["eps"],
                                 momentum=config["momentum"], affine=config["affine"])
    if kind == "Dropout":
        return nn.Dropout(config["p"])
    if kind in ("ReLU", "Tanh", "Flatten"):
        return getattr(nn, kind)()
    raise ValueError(f"layer type {kind!r} has no torch.nn equivalent here")


def torch_module(spec: Mapping[str, Any], torch: Any,
                 state: Mapping[str, np.ndarray] | None = None) -> Any:
    """The ``torch.nn.Sequential`` that ``spec`` describes, in eval mode, float64 when the
    spec is; with ``state`` (from ``export_state``) loaded by ``load_state_dict(strict=True)``.

    ``torch`` is the caller's ``import torch``. Weights exported with ``masks="torch"`` get
    ``torch.nn.utils.prune.identity`` on their modules first, so their names fit.
    """
    if not isinstance(spec, Mapping) or spec.get("type") != "Sequential":
        raise ValueError(f"spec must be the config of an nnprune Sequential, got {spec!r}")
    layers = [_torch_layer(c, torch.nn) for c in spec["layers"]]
    module = torch.nn.Sequential(*layers)
    if any(c.get("dtype") == "float64" for c in spec["layers"]):
        module = module.double()
    if state is not None:
        masked = [key[:-len("_mask")].rpartition(".") for key in state if key.endswith("_mask")]
        if masked:  # the caller's torch: its pruning helpers are a submodule it loads on demand
            torch_prune = importlib.import_module(f"{torch.__name__}.nn.utils.prune")
        for path, _, leaf in masked:
            torch_prune.identity(module.get_submodule(path), leaf)
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()},
                               strict=True)
    return module.eval()
