"""The metadata fields ``nnprune train`` writes into a model file, checked where they are read.

A model file's metadata is free JSON (``io.save`` takes any dict); the commands that read a
saved model trust only the fields of ``FIELDS``, and only once ``check_metadata`` has seen
their types. ``data_dir`` is for information only: a file never decides which folder is read
or created (``--data-dir`` does); ``data_file`` and ``split_indices`` (the user's .npz of
arrays and of split indices) are read again, never created, by prune and sweep.
"""
from __future__ import annotations

from typing import Any, Callable

MAX_SIDE = 65_536


def _is_int(value: Any, low: int, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


_TEXT = ("a string", lambda v: isinstance(v, str))
_TEXT_OR_NULL = ("a string or null", lambda v: v is None or isinstance(v, str))
_FLAG = ("true or false", lambda v: isinstance(v, bool))
FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "model": _TEXT, "dataset": _TEXT, "data_split": _TEXT,
    "data_dir": _TEXT_OR_NULL, "data_file": _TEXT_OR_NULL, "split_indices": _TEXT_OR_NULL,
    "standardize": _FLAG, "stratify": _FLAG,
    "data_seed": ("an int >= 0", lambda v: _is_int(v, 0)),
    "width": ("a positive number", lambda v: isinstance(v, (int, float))
              and not isinstance(v, bool) and 0 < v < 1e6),
    "input_shape": (f"[C, H, W] of positive ints up to {MAX_SIDE:,}",
                    lambda v: isinstance(v, list) and len(v) == 3
                    and all(_is_int(d, 1, MAX_SIDE) for d in v)),
    "num_classes": ("a positive int", lambda v: _is_int(v, 1, 10**6)),
    "train": ("an object whose seed is an int >= 0",
              lambda v: isinstance(v, dict) and _is_int(v.get("seed", 0), 0)),
}


def check_metadata(metadata: dict[str, Any], path: str) -> dict[str, Any]:
    """``metadata`` (a dict, as ``io.load`` returns it) itself, or a ValueError naming the
    file, the field, what it holds and what it should."""
    for field, (expected, ok) in FIELDS.items():
        if field in metadata and not ok(metadata[field]):
            shown = repr(metadata[field])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{path}: the metadata field {field!r} must be {expected}, got "
                             f"{shown}")
    return metadata
