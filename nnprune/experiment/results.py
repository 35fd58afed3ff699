"""Results files: ``results.json`` holds ``{"format", "version", "meta", "records"}``, a
record being one pruning run: a flat JSON-able dict with the fields of ``RECORD_FIELDS``
(accuracies are fractions in [0, 1]; ``sparsity`` is the target, ``sparsity_reached`` the
fraction of zeros the pruned weights hold). Files are written atomically.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnprune.files import atomic_write_text

RESULTS_FORMAT = "nnprune.results"
RESULTS_VERSION = 1
RECORD_FIELDS = (
    "model", "dataset", "criterion", "scope", "granularity", "schedule", "sparsity",
    "sparsity_reached", "finetune_epochs", "accuracy_dense", "accuracy_before_finetune",
    "accuracy_after_finetune", "params", "nonzero_params", "macs", "effective_macs", "seed",
)


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists, for ``json.dumps``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def check_path(path: Any) -> Path:
    """``path`` as a Path, or a TypeError: a non-empty str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"path must be a non-empty str or os.PathLike, got {path!r}")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file + ``os.replace``).

    NaN and infinity are refused (JSON has neither): write None instead.
    """
    check_path(path)
    try:
        text = json.dumps(obj, indent=2, default=_plain, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot write {os.fspath(path)!r} as JSON: {err}") from None
    return atomic_write_text(path, text + "\n")


def check_records(records: Any, fields: Sequence[str] = RECORD_FIELDS,
                  empty: str | None = None) -> list[dict[str, Any]]:
    """``records`` as a list of dicts that each have every one of ``fields`` (by default
    every field of ``RECORD_FIELDS``); not empty when ``empty`` says why it must not be."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of dicts, got {type(records).__name__}")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{i}] must be a dict, got {type(r).__name__}")
        missing = [k for k in fields if k not in r]
        if missing:
            raise ValueError(f"records[{i}] lacks the fields {missing}; it has {sorted(r)}")
    if empty and not records:
        raise ValueError(f"records is empty: {empty}")
    return [dict(r) for r in records]


def write_results(path: str | os.PathLike, records: Sequence[Mapping[str, Any]],
                  meta: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> Path:
    """Write ``{"format", "version", "meta", "records"}`` to ``path`` (atomically).

    ``extra``: further lists of records of another kind, each under its own top-level key
    beside ``records`` (e.g. the demo's ``{"structured": [...]}``); ``read_results`` ignores
    them.
    """
    records = check_records(records)
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict of name: list of dicts or None, got "
                        f"{type(extra).__name__}")
    content = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "meta": dict(meta or {}),
               "records": records}
    for key, items in (extra or {}).items():
        if not isinstance(key, str) or key in content:
            raise ValueError(f"extra: key {key!r} must be a str other than {sorted(content)}")
        try:
            content[key] = check_records(items, fields=())
        except TypeError as err:
            raise TypeError(f"extra[{key!r}]: {err}") from None
    return write_json(path, content)


def read_results(path: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(records, meta) from a file written by ``write_results``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON file: {err}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not an nnprune results file (no {RESULTS_FORMAT!r} tag)")
    return check_records(data.get("records")), dict(data.get("meta") or {})
