"""Models and masks on disk: one ``.npz`` each, readable with ``allow_pickle=False``.

A model file holds, as plain NumPy arrays (never pickled objects):

============================ ===========================================================
key                           content
============================ ===========================================================
``format``, ``version``       ``"nnprune.model"`` and the layout version (1)
``spec``                      ``json.dumps(model.config())``: the architecture
``metadata``                  ``json.dumps(metadata)``: anything JSON-able (a dict)
``param/<name>``              every parameter, e.g. ``param/0.weight``
``buffer/<name>``             every buffer, e.g. ``buffer/1.running_mean``
``mask/<name>``               every attached pruning mask, e.g. ``mask/0.weight``
============================ ===========================================================

Text is stored as a 0-d unicode array. Files are written to a temporary file in the same
directory and renamed over the target, so a failed save never leaves a partial file.

Loading trusts nothing the file says until it is checked, and checks before it allocates:
every member's name, dtype (real floats for weights, 0-d text for the spec and metadata) and
declared size are read from its ``.npy`` header and held against the zip directory and a
budget (``max_bytes``, see ``nnprune.archive``); the spec's nesting and its layers' shapes
(``nn.spec.state_shapes``) are compared with the stored arrays; only then is the model built,
without drawing initial weights (``nn.init.skip_init``), and filled from them. Every refusal
is one ValueError line naming the file. The layout's tags and the checks on reading any
nnprune file live in ``nnprune.file_format``; this module turns models and masks into it.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from nnprune.file_format import (MASKS_FORMAT, MODEL_FORMAT, VERSION, atomic_savez,
                                 check_mask, json_entry, read_nnprune_npz, text_array)
from nnprune.files import fspath
from nnprune.foreign import reject_foreign
from nnprune.nn import Module, from_config
from nnprune.nn.init import skip_init
from nnprune.nn.spec import SpecError, state_shapes

# ---------------------------------------------------------------------- models
def save(path: str | os.PathLike, model: Module, metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` (weights, buffers, masks, architecture) and ``metadata`` to ``path``.

    The file is written exactly at ``path`` (no suffix is added) and atomically: on any
    error the previous file, if any, is left untouched. ``metadata`` must be a JSON-able dict.

    >>> import os, tempfile
    >>> from nnprune import nn
    >>> model = nn.Sequential(nn.Linear(4, 2, rng=0))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(path, model, {"accuracy": 0.9})
    >>> loaded, metadata = load(path)
    >>> metadata, bool((loaded[0].weight.data == model[0].weight.data).all())
    ({'accuracy': 0.9}, True)
    """
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        spec = json.dumps(model.config())
    except NotImplementedError as err:
        raise TypeError(f"model cannot be saved: {err}") from None
    try:
        meta = json.dumps(dict(metadata), allow_nan=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serialisable: {err}") from None
    arrays: dict[str, np.ndarray] = {"format": text_array(MODEL_FORMAT),
                                     "version": np.array(VERSION),
                                     "spec": text_array(spec), "metadata": text_array(meta)}
    for name, p in model.named_parameters():
        arrays[f"param/{name}"] = p.data
        if p.mask is not None:
            arrays[f"mask/{name}"] = p.mask
    for name, b in model.named_buffers():
        arrays[f"buffer/{name}"] = b
    atomic_savez(path, arrays)


def load(path: str | os.PathLike,
         max_bytes: int | None = None) -> tuple[Module, dict[str, Any]]:
    """The model saved at ``path`` (architecture, weights, buffers, masks) and its metadata.

    Raises ValueError naming the file when it is not an nnprune model file, is corrupted or
    truncated, or when its arrays do not match its architecture spec. A file is checked
    before anything is allocated (``nnprune.archive``): its arrays may declare at most
    ``max_bytes`` bytes (default: 32 MiB or 8 times the file's size, whichever is more);
    their shapes must be the spec's (``nn.spec.state_shapes``), and only then is the model
    built, without drawing initial weights, and filled from them.
    """
    path = fspath(path)
    arrays = read_nnprune_npz(path, MODEL_FORMAT, max_bytes)
    spec, metadata = json_entry(path, arrays, "spec"), json_entry(path, arrays, "metadata")
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: the metadata is not a JSON object")
    state, masks = _split_arrays(path, arrays, spec)
    try:
        with skip_init():  # every value comes from the file: draw nothing
            model = from_config(spec)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: the architecture spec cannot be rebuilt: {err}") from None
    try:
        model.load_state_dict(state, strict=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: the arrays do not match the architecture spec: {err}") from None
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"{path}: mask/{name} names no parameter of the model; "
                             f"parameters: {sorted(params)[:10]}")
        try:
            params[name].set_mask(mask)
        except ValueError as err:
            raise ValueError(f"{path}: mask/{name} is invalid: {err}") from None
    return model, metadata


def _split_arrays(path: str, arrays: Mapping[str, np.ndarray],
                  spec: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The file's ``(state, masks)``, each keyed by parameter or buffer name, once every
    ``param/`` and ``buffer/`` array is checked against the shapes the spec declares."""
    try:
        expected = state_shapes(spec)
    except SpecError as err:
        raise ValueError(f"{path}: the architecture spec cannot be rebuilt: {err}") from None
    state, masks = {}, {}
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind in ("param", "buffer"):
            if name not in expected:
                raise ValueError(f"{path}: unexpected entry {key!r}: the architecture spec has "
                                 f"no {kind} {name}")
            role, shape = expected[name]
            if role != kind or value.shape != shape:
                raise ValueError(f"{path}: {key} has shape {value.shape}; the spec declares "
                                 f"{role}/{name} of shape {shape}")
            state[name] = value
        elif kind == "mask":
            masks[name] = value
    missing = sorted(f"{role}/{name}" for name, (role, _) in expected.items()
                     if name not in state)
    if missing:
        raise ValueError(f"{path}: the arrays do not match the architecture spec: missing "
                         f"{missing[:5]}")
    return state, masks


# ---------------------------------------------------------------------- plain masks
def save_masks(path: str | os.PathLike, masks: Mapping[str, np.ndarray]) -> None:
    """Write a ``{name: mask}`` dict (1 = keep, 0 = pruned) to one .npz, atomically.

    Any framework's masks fit: the names are free strings and each mask keeps its dtype.
    """
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a dict of name -> array, got {type(masks).__name__}")
    arrays: dict[str, np.ndarray] = {"format": text_array(MASKS_FORMAT),
                                     "version": np.array(VERSION)}
    for name, mask in masks.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"mask names must be non-empty strings, got {name!r}")
        arrays[f"mask/{name}"] = check_mask(name, mask)
    atomic_savez(path, arrays)


def load_masks(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The ``{name: mask}`` dict written by ``save_masks`` (``max_bytes`` as in ``load``)."""
    path = fspath(path)
    arrays = read_nnprune_npz(path, MASKS_FORMAT, max_bytes)
    masks = {}
    for key, value in arrays.items():
        if key.startswith("mask/") and len(key) > len("mask/"):
            try:
                masks[key[len("mask/"):]] = check_mask(key[len("mask/"):], value)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        elif key not in ("format", "version"):
            raise ValueError(f"{path}: unexpected entry {key!r}")
    return masks
