"""Results of pruning runs: ``results.json`` and a short markdown report.

A *record* is one pruning run, a flat JSON-able dict with the fields of ``RECORD_FIELDS``
(accuracies are fractions in [0, 1]; ``accuracy_after_finetune`` is None when the run was
not fine-tuned; ``sparsity`` is the target, ``sparsity_reached`` the fraction of zeros the
pruned weights actually hold). ``results.json`` holds ``{"format", "version", "meta",
"records"}`` and is written atomically (a temporary file renamed over the target).

The report's findings are computed from the records, never typed in: the accuracy lost
(in percentage points of test accuracy, dense minus pruned) by each criterion at a chosen
sparsity, with and without fine-tuning; up to which sparsity pruning without fine-tuning
stays within a tolerance of the dense model; global against layer-wise scope.
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


# ---------------------------------------------------------------------- JSON files
def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists, for ``json.dumps``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync'd,
    then ``os.replace`` over the target, so readers see the old file or the new one."""
    return atomic_write_text(path, text)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file + ``os.replace``).

    NaN and infinity are refused (JSON has neither): write None instead.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"path must be a non-empty str or os.PathLike, got {path!r}")
    try:
        text = json.dumps(obj, indent=2, default=_plain, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot write {os.fspath(path)!r} as JSON: {err}") from None
    return write_text(path, text + "\n")


def check_records(records: Any, fields: Sequence[str] = RECORD_FIELDS) -> list[dict[str, Any]]:
    """``records`` as a list of dicts that each have every one of ``fields`` (by default
    every field of ``RECORD_FIELDS``)."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of dicts, got {type(records).__name__}")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{i}] must be a dict, got {type(r).__name__}")
        missing = [k for k in fields if k not in r]
        if missing:
            raise ValueError(f"records[{i}] lacks the fields {missing}; it has {sorted(r)}")
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


# ---------------------------------------------------------------------- formatting
def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _points(dense: float, acc: float) -> float:
    """Accuracy lost in percentage points: 100 · (dense − acc) (negative: gained)."""
    return 100.0 * (float(dense) - float(acc))


def _loss_text(points: float) -> str:
    return f"loses {points:.1f}" if points >= 0 else f"gains {-points:.1f}"


TABLE_COLUMNS = ("model", "scope", "criterion", "target", "reached", "dense", "pruned",
                 "fine-tuned", "nonzero params", "eff. MACs")


def results_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table, one row per record, sorted by model, scope, criterion, sparsity.

    Accuracies are test accuracies: ``dense`` before pruning, ``pruned`` right after
    pruning (no fine-tuning), ``fine-tuned`` after fine-tuning (– when not fine-tuned).
    """
    records = check_records(records)
    order = sorted(records, key=lambda r: (str(r["model"]), str(r["scope"]),
                                           str(r["criterion"]), float(r["sparsity"])))
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(TABLE_COLUMNS))) + "|"]
    for r in order:
        cells = (str(r["model"]), str(r["scope"]), str(r["criterion"]), _pct(r["sparsity"], 0),
                 _pct(r["sparsity_reached"]), _pct(r["accuracy_dense"]),
                 _pct(r["accuracy_before_finetune"]), _pct(r["accuracy_after_finetune"]),
                 f"{_int(r['nonzero_params'])} / {_int(r['params'])}",
                 _int(r["effective_macs"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- findings
def _groups(records: list[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def nearest_sparsity(records: Sequence[Mapping[str, Any]], target: float) -> float:
    """The target sparsity among ``records`` closest to ``target`` (the larger on a tie).

    >>> nearest_sparsity([{"sparsity": 0.5}, {"sparsity": 0.7}, {"sparsity": 0.9}], 0.8)
    0.9
    """
    values = sorted({float(r["sparsity"]) for r in records})
    if not values:
        raise ValueError("records is empty: no sparsity to choose from")
    return min(values, key=lambda s: (abs(s - target), -s))


def tolerated_sparsity(records: Sequence[Mapping[str, Any]], tolerance: float,
                       field: str = "accuracy_before_finetune") -> float | None:
    """The highest sparsity up to which every run stays within ``tolerance`` (a fraction,
    0.01 = 1 point) of the dense accuracy, checking sparsities in increasing order;
    None if even the lowest one loses more.

    >>> runs = [{"sparsity": s, "accuracy_dense": 0.97, "accuracy_before_finetune": a}
    ...         for s, a in [(0.5, 0.965), (0.7, 0.95), (0.9, 0.6)]]
    >>> tolerated_sparsity(runs, 0.01)
    0.5
    """
    best = None
    for r in sorted(records, key=lambda r: float(r["sparsity"])):
        if r[field] is None or float(r["accuracy_dense"]) - float(r[field]) > tolerance:
            break
        best = float(r["sparsity"])
    return best


def key_findings(records: Sequence[Mapping[str, Any]], at: float = 0.9,
                 tolerance: float = 0.01) -> list[str]:
    """Sentences that sum up ``records``, each number computed from them.

    Per model and dataset: the dense accuracy; at the sparsity nearest ``at``, the points
    each criterion loses with and without fine-tuning (per scope); for each criterion, the
    highest sparsity at which pruning without fine-tuning stays within ``tolerance`` of the
    dense accuracy; and global against layer-wise magnitude pruning at the highest sparsity
    both were run at.
    """
    records = check_records(records)
    if not 0.0 <= float(at) <= 1.0 or not 0.0 <= float(tolerance) <= 1.0:
        raise ValueError(f"at and tolerance must be fractions in [0, 1], got {at!r}, "
                         f"{tolerance!r}")
    findings = []
    for (model, dataset), rows in _groups(records, ("model", "dataset")).items():
        dense = float(np.mean([r["accuracy_dense"] for r in rows]))
        findings.append(f"**{model} on {dataset}**: dense test accuracy {_pct(dense)}.")
        s = nearest_sparsity(rows, at)
        for (scope,), scoped in _groups([r for r in rows if float(r["sparsity"]) == s],
                                        ("scope",)).items():
            parts = []
            for r in sorted(scoped, key=lambda r: _points(r["accuracy_dense"],
                                                          r["accuracy_before_finetune"])):
                no_ft = _points(r["accuracy_dense"], r["accuracy_before_finetune"])
                if r["accuracy_after_finetune"] is None:
                    parts.append(f"{r['criterion']} {_loss_text(no_ft)} points without "
                                 "fine-tuning")
                else:
                    ft = _points(r["accuracy_dense"], r["accuracy_after_finetune"])
                    parts.append(f"{r['criterion']} {_loss_text(ft)} points with fine-tuning "
                                 f"({_loss_text(no_ft)} without)")
            findings.append(f"{model}, {scope} pruning at {_pct(s, 0)} sparsity: "
                            + "; ".join(parts) + ".")
        tol = []
        for (scope, criterion), runs in _groups(rows, ("scope", "criterion")).items():
            limit = tolerated_sparsity(runs, tolerance)
            reach = ("at none of the sparsities tried" if limit is None
                     else f"up to {_pct(limit, 0)}")
            tol.append(f"{criterion} ({scope}) {reach}")
        findings.append(f"{model}, without fine-tuning, within {100 * tolerance:g} "
                        f"point{'s' if tolerance != 0.01 else ''} of the dense accuracy: "
                        + "; ".join(tol) + ".")
        findings.extend(_scope_finding(model, rows))
    return findings


def _scope_finding(model: str, rows: list[dict[str, Any]]) -> list[str]:
    """Global against layer-wise magnitude pruning at the highest sparsity run with both."""
    magnitude = [r for r in rows if r["criterion"] == "magnitude"]
    by_scope = _groups(magnitude, ("scope",))
    if ("global",) not in by_scope or ("layer",) not in by_scope:
        return []
    common = ({float(r["sparsity"]) for r in by_scope[("global",)]}
              & {float(r["sparsity"]) for r in by_scope[("layer",)]})
    if not common:
        return []
    s = max(common)
    pick = {scope: next(r for r in by_scope[(scope,)] if float(r["sparsity"]) == s)
            for scope in ("global", "layer")}
    field = ("accuracy_after_finetune" if all(r["accuracy_after_finetune"] is not None
                                              for r in pick.values())
             else "accuracy_before_finetune")
    when = "with fine-tuning" if field == "accuracy_after_finetune" else "without fine-tuning"
    g, lw = float(pick["global"][field]), float(pick["layer"][field])
    better = "global" if g > lw else "layer-wise" if lw > g else "neither"
    return [f"{model}, magnitude at {_pct(s, 0)} sparsity {when}: global {_pct(g)}, "
            f"layer-wise {_pct(lw)} ({better} is better)."]


# ---------------------------------------------------------------------- the report
def write_report(path: str | os.PathLike, records: Sequence[Mapping[str, Any]], *,
                 title: str = "Pruning results", intro: str = "",
                 figures: Sequence[tuple[str, str | os.PathLike]] = (),
                 sections: Sequence[tuple[str, str]] = (), at: float = 0.9,
                 tolerance: float = 0.01) -> Path:
    """Write a markdown report: ``intro``, key findings, the results table, the figures.

    ``figures``: (caption, image path) pairs, embedded by their path *relative to the
    report's folder*, so the folder can be moved as a whole. ``sections``: extra
    (heading, markdown body) pairs appended at the end. Written atomically.
    """
    records = check_records(records)
    if not records:
        raise ValueError("records is empty: there is nothing to report")
    path = Path(path)
    folder = path.parent.resolve()
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro.strip(), ""]
    lines += ["## Key findings", ""]
    lines += [f"- {f}" for f in key_findings(records, at=at, tolerance=tolerance)]
    lines += ["", "## Results", "",
              "Test accuracy: *dense* before pruning, *pruned* right after pruning, "
              "*fine-tuned* after fine-tuning the pruned model (masks kept). *target* is "
              "the sparsity asked for, *reached* the fraction of zeros in the pruned weights. "
              "Effective MACs = MACs × weight density per layer (Blalock et al. 2020), "
              "per image.", "", results_table(records), ""]
    if figures:
        lines += ["## Figures", ""]
        for caption, figure in figures:
            rel = os.path.relpath(Path(figure).resolve(), folder).replace(os.sep, "/")
            lines += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", body.strip(), ""]
    return write_text(path, "\n".join(lines).rstrip() + "\n")
