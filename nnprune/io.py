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
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

from nnprune.files import atomic_open
from nnprune.foreign import reject_foreign
from nnprune.nn import Module, from_config

MODEL_FORMAT = "nnprune.model"
MASKS_FORMAT = "nnprune.masks"
VERSION = 1


# ---------------------------------------------------------------------- the file layer
def _atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an .npz through a temporary file and a rename."""
    with atomic_open(_fspath(path), "wb") as f:
        np.savez(f, **arrays)

def _fspath(path: Any) -> str:
    """``path`` as a string, or a TypeError naming the argument."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or os.PathLike), got {type(path).__name__}")
    return os.fspath(path)


def _text(value: str) -> np.ndarray:
    return np.array(value, dtype=np.str_)


def _read_npz(path: str | os.PathLike, expected_format: str) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, after checking it is an nnprune file of that kind."""
    path = _fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    # np.load takes anything that is neither a zip nor a .npy for a pickle and says so, which
    # sends the reader the wrong way: name what the file starts with instead
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        found = f"it starts with {magic!r}" if magic else "it is empty"
        raise ValueError(f"{path}: not a readable .npz file: {found}, and an .npz (a zip "
                         f"archive) starts with b'PK'")
    unreadable = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)
    try:
        loaded = np.load(path, allow_pickle=False)
    except unreadable as err:
        raise ValueError(f"{path}: not a readable .npz file (corrupted, truncated or of "
                         f"another kind): {err}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an nnprune file: it holds a single .npy array, "
                         f"not an .npz archive")
    try:
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}  # reading each one checks its CRC
    except unreadable as err:
        raise ValueError(f"{path}: corrupted .npz file, an array cannot be read: {err}") from None
    tag = arrays.get("format")
    if tag is None or tag.dtype.kind != "U" or tag.shape != () or str(tag) != expected_format:
        found = "no format tag" if tag is None else f"format tag {tag!r}"
        raise ValueError(f"{path}: not an {expected_format!r} file ({found}); it was not written "
                         f"by nnprune.io")
    version = arrays.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(f"{path}: the format version is missing or malformed")
    if int(version) > VERSION:
        raise ValueError(f"{path}: format version {int(version)} is newer than this nnprune "
                         f"reads ({VERSION}); upgrade nnprune")
    return arrays


def _json_entry(path: str, arrays: Mapping[str, np.ndarray], key: str) -> Any:
    value = arrays.get(key)
    if value is None or value.dtype.kind != "U" or value.shape != ():
        raise ValueError(f"{path}: the {key!r} entry is missing or is not a JSON string")
    try:
        return json.loads(str(value))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the {key!r} entry is not valid JSON: {err}") from None


def _check_mask(name: str, mask: Any) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"masks[{name!r}] must contain only 0 and 1 (dtype {mask.dtype})")
    return mask


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
    arrays: dict[str, np.ndarray] = {"format": _text(MODEL_FORMAT), "version": np.array(VERSION),
                                     "spec": _text(spec), "metadata": _text(meta)}
    for name, p in model.named_parameters():
        arrays[f"param/{name}"] = p.data
        if p.mask is not None:
            arrays[f"mask/{name}"] = p.mask
    for name, b in model.named_buffers():
        arrays[f"buffer/{name}"] = b
    _atomic_savez(path, arrays)


def load(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """The model saved at ``path`` (architecture, weights, buffers, masks) and its metadata.

    Raises ValueError naming the file when it is not an nnprune model file, is corrupted or
    truncated, or when its arrays do not match its architecture spec.
    """
    path = _fspath(path)
    arrays = _read_npz(path, MODEL_FORMAT)
    spec, metadata = _json_entry(path, arrays, "spec"), _json_entry(path, arrays, "metadata")
    try:
        model = from_config(spec)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: the architecture spec cannot be rebuilt: {err}") from None
    state, masks = {}, {}
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind in ("param", "buffer") and name:
            state[name] = value
        elif kind == "mask" and name:
            masks[name] = value
        elif key not in ("format", "version", "spec", "metadata"):
            raise ValueError(f"{path}: unexpected entry {key!r}")
    try:
        model.load_state_dict(state, strict=True)
    except ValueError as err:
        raise ValueError(f"{path}: the arrays do not match the architecture spec: {err}") from None
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"{path}: mask/{name} names no parameter of the model; "
                             f"parameters: {sorted(params)}")
        try:
            params[name].set_mask(mask)
        except ValueError as err:
            raise ValueError(f"{path}: mask/{name} is invalid: {err}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: the metadata is not a JSON object")
    return model, metadata


# ---------------------------------------------------------------------- plain masks
def save_masks(path: str | os.PathLike, masks: Mapping[str, np.ndarray]) -> None:
    """Write a ``{name: mask}`` dict (1 = keep, 0 = pruned) to one .npz, atomically.

    Any framework's masks fit: the names are free strings and each mask keeps its dtype.
    """
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a dict of name -> array, got {type(masks).__name__}")
    arrays: dict[str, np.ndarray] = {"format": _text(MASKS_FORMAT), "version": np.array(VERSION)}
    for name, mask in masks.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"mask names must be non-empty strings, got {name!r}")
        arrays[f"mask/{name}"] = _check_mask(name, mask)
    _atomic_savez(path, arrays)


def load_masks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``{name: mask}`` dict written by ``save_masks``."""
    path = _fspath(path)
    arrays = _read_npz(path, MASKS_FORMAT)
    masks = {}
    for key, value in arrays.items():
        if key.startswith("mask/") and len(key) > len("mask/"):
            try:
                masks[key[len("mask/"):]] = _check_mask(key[len("mask/"):], value)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        elif key not in ("format", "version"):
            raise ValueError(f"{path}: unexpected entry {key!r}")
    return masks
