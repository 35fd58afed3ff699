"""The nnprune file layout: a ``.npz`` of plain arrays tagged ``format`` (``"nnprune.model"``
or ``"nnprune.masks"``) and ``version`` (1), and the checks on reading one, in the order
``nnprune.io`` describes (the members themselves: ``nnprune.archive``).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import numpy as np

from nnprune.archive import read_npz
from nnprune.files import atomic_open, fspath

MODEL_FORMAT = "nnprune.model"
MASKS_FORMAT = "nnprune.masks"
VERSION = 1


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an .npz through a temporary file and a rename."""
    with atomic_open(fspath(path), "wb") as f:
        np.savez(f, **arrays)


def text_array(value: str) -> np.ndarray:
    """``value`` as a 0-d unicode array, the way text is stored."""
    return np.array(value, dtype=np.str_)


def read_nnprune_npz(path: str | os.PathLike, expected_format: str,
                     max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, after checking it is an nnprune file of that kind:
    its members' names, dtypes and declared sizes are checked before any is read
    (``nnprune.archive``)."""
    path = fspath(path)
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
    arrays = read_npz(path, policy, max_bytes)
    return arrays


MAX_TEXT = 16 * 2**20  # bytes of the spec or the metadata (stored as UTF-32)
MAX_JSON_DEPTH = 64


def _member_policy(kind: str) -> Any:
    """What each key of an nnprune file of ``kind`` may hold (see ``archive.read_npz``)."""
    def allowed(key: str, dtype: np.dtype, shape: tuple) -> str | None:
        unexpected = f"unexpected entry {key[:80]!r}"
        role = key.partition("/")[0] if "/" in key else key
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


def check_mask(name: str, mask: Any) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"masks[{name!r}] must contain only 0 and 1 (dtype {mask.dtype})")
    return mask
