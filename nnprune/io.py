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

A masks file holds ``format`` (``"nnprune.masks"``), ``version`` and ``mask/<name>`` only.
Text is stored as a 0-d unicode array. Files are written atomically (``nnprune.files``).
Loading trusts nothing the file says until it is checked, and checks before it allocates
(``nnprune.archive``); every refusal is one ValueError line naming the file.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import numpy as np

from nnprune.archive import read_npz
from nnprune.files import atomic_open, fspath
from nnprune.nn import Module, from_config
from nnprune.nn.init import skip_init
from nnprune.nn.spec import SpecError, state_shapes
from nnprune.nn.module import check_model

MODEL_FORMAT = "nnprune.model"
MASKS_FORMAT = "nnprune.masks"
VERSION = 1


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
    check_model(model)
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
    arrays = {"format": np.array(MODEL_FORMAT, np.str_), "version": np.array(VERSION),
              "spec": np.array(spec, np.str_), "metadata": np.array(meta, np.str_)}
    for name, p in model.named_parameters():
        arrays[f"param/{name}"] = p.data
        if p.mask is not None:
            arrays[f"mask/{name}"] = p.mask
    for name, b in model.named_buffers():
        arrays[f"buffer/{name}"] = b
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike,
         max_bytes: int | None = None) -> tuple[Module, dict[str, Any]]:
    """The model saved at ``path`` (architecture, weights, buffers, masks) and its metadata.

    Raises ValueError naming the file when it is not an nnprune model file, is corrupted or
    truncated, or when its arrays do not match its architecture spec. Its arrays may declare
    at most ``max_bytes`` bytes (default: 32 MiB or 8 times the file's size); only once their
    shapes are the spec's is the model built, without drawing initial weights.
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
    arrays = {"format": np.array(MASKS_FORMAT, np.str_), "version": np.array(VERSION)}
    for name, mask in masks.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"mask names must be non-empty strings, got {name!r}")
        arrays[f"mask/{name}"] = _check_mask(name, mask)
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def load_masks(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The ``{name: mask}`` dict written by ``save_masks`` (``max_bytes`` as in ``load``)."""
    path = fspath(path)
    arrays = read_nnprune_npz(path, MASKS_FORMAT, max_bytes)
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


# ---------------------------------------------------------------------- the layout
def read_nnprune_npz(path: str | os.PathLike, expected_format: str,
                     max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, after checking it is an nnprune file of that kind:
    its members' names, dtypes and declared sizes are checked before any is read."""
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "no such file"
        raise FileNotFoundError(f"{path}: {what}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or max_bytes < 0):
        raise TypeError(f"max_bytes must be None or an int >= 0, got {max_bytes!r}")
    with open(path, "rb") as f:
        magic = f.read(6)
    # np.load takes anything that is neither a zip nor a .npy for a pickle and says so, which
    # sends the reader the wrong way: name what the file starts with instead
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        found = f"it starts with {magic!r}" if magic else "it is empty"
        raise ValueError(f"{path}: not a readable .npz file: {found}, and an .npz (a zip "
                         f"archive) starts with b'PK'")
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{path}: not an nnprune file: it holds a single .npy array, "
                         f"not an .npz archive")
    policy = _member_policy(expected_format)
    arrays = read_npz(path, policy, max_bytes, only=("format", "version"))
    tag = arrays.get("format")
    if tag is None or str(tag) != expected_format:
        found = "no format tag" if tag is None else f"format tag {str(tag)[:40]!r}"
        raise ValueError(f"{path}: not an {expected_format!r} file ({found}); it was not written "
                         f"by nnprune.io")
    version = arrays.get("version")
    if version is None:
        raise ValueError(f"{path}: the format version is missing or malformed")
    if int(version) > VERSION:
        raise ValueError(f"{path}: format version {int(version)} is newer than this nnprune "
                         f"reads ({VERSION}); upgrade nnprune")
    return read_npz(path, policy, max_bytes)


MAX_TEXT = 16 * 2**20  # bytes of the spec or the metadata (stored as UTF-32)
MAX_JSON_DEPTH = 64


def _member_policy(kind: str) -> Any:
    """What each key of an nnprune file of ``kind`` may hold (see ``archive.read_npz``)."""
    def allowed(key: str, dtype: np.dtype, shape: tuple) -> str | None:
        unexpected = f"unexpected entry {key[:80]!r}"
        role = key.partition("/")[0]
        if role in ("format", "spec", "metadata"):
            if dtype.kind != "U" or shape != ():
                return f"the {key!r} entry must be text (a 0-d unicode array), got {dtype} {shape}"
            if dtype.itemsize > MAX_TEXT:
                return f"the {key!r} entry is longer than {MAX_TEXT // 4:,} characters"
            return None if role == "format" or kind == MODEL_FORMAT else unexpected
        if role == "version":
            ok = dtype.kind in "iu" and shape == ()
            return None if ok else f"the format version must be an integer, got {dtype} {shape}"
        if key == role or role not in ("param", "buffer", "mask"):
            return unexpected
        if role == "mask":
            return None if dtype.kind in "biuf" else (f"{key} must hold 0 and 1 as bools, ints "
                                                     f"or floats, got dtype {dtype}")
        if kind != MODEL_FORMAT:
            return unexpected
        return None if dtype.kind == "f" else f"{key} must hold real floats, got dtype {dtype}"
    return allowed


def json_entry(path: str, arrays: Mapping[str, np.ndarray], key: str) -> Any:
    """The JSON text stored under ``key``, parsed once its nesting is found shallow enough."""
    value = arrays.get(key)
    if value is None or value.dtype.kind != "U" or value.shape != ():
        raise ValueError(f"{path}: the {key!r} entry is missing or is not a JSON string")
    text = str(value)
    if _nesting(text) > MAX_JSON_DEPTH:
        raise ValueError(f"{path}: the {key!r} entry is nested more than {MAX_JSON_DEPTH} "
                         f"levels deep")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError, RecursionError) as err:
        raise ValueError(f"{path}: the {key!r} entry is not valid JSON: "
                         f"{str(err)[:200]}") from None


def _nesting(text: str) -> int:
    """The nesting depth of the JSON ``text``: its brackets counted outside strings."""
    outside = _STRING.sub("", text)
    depth = deepest = 0
    for bracket in _BRACKET.findall(outside):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _check_mask(name: str, mask: Any) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"masks[{name!r}] must contain only 0 and 1 (dtype {mask.dtype})")
    return mask
