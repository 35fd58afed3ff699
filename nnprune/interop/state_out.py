"""An nnprune model out as PyTorch arrays: the names and layouts ``torch.nn`` uses, plus the
architecture spec, so ``torch_model.load_state_dict`` takes them.

nnprune's layers store what PyTorch's store, under the same names and layouts, so the export
is the state itself, with what PyTorch expects beside it:

- every BatchNorm gets ``num_batches_tracked`` (int64, 0), PyTorch's counter of training
  batches (read only when its momentum is None; nnprune always uses a momentum);
- a pruning mask is exported applied (``masks="apply"``: a dense model for any framework) or
  as ``torch.nn.utils.prune`` stores it (``masks="torch"``: ``weight_orig`` and
  ``weight_mask``, so the mask stays in force while the torch module fine-tunes).
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

import numpy as np

from nnprune.foreign import reject_foreign
from nnprune.nn import Module

MASK_MODES = ("apply", "torch")


def export_state(model: Module, masks: str = "apply") -> tuple[dict[str, np.ndarray],
                                                                dict[str, Any]]:
    """(state, spec): PyTorch's ``state_dict`` of the equivalent torch model as NumPy arrays,
    and the architecture (``model.config()``, JSON-able).

    {name: array} in PyTorch's layout and order (per module: parameters, then buffers).
    ``masks``: "apply" or "torch" (see the module docstring). A dense, masked or shrunk
    model: shrinking returns an ordinary ``Sequential``, exported like any other.

    >>> from nnprune import nn
    >>> state, spec = export_state(nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2)))
    >>> list(state), spec["layers"][0]["type"]
    (['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', \
'1.num_batches_tracked'], 'Linear')
    """
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    if masks not in MASK_MODES:
        raise ValueError(f"masks must be one of {MASK_MODES}, got {masks!r}")
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
