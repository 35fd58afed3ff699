"""The markdown report of pruning runs: the key findings (sentences that sum up the records,
every number computed), the results table, the figures. It re-exports
``experiment.results``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnprune.experiment.results import (RECORD_FIELDS, RESULTS_FORMAT,  # noqa: F401
                                        RESULTS_VERSION, check_records, read_results,
                                        write_json, write_results)
from nnprune.files import atomic_write_text


def percent(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals, or – for None."""
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def _points(dense: float, acc: float) -> float:
    """Accuracy lost in percentage points: 100 · (dense − acc) (negative: gained)."""
    return 100.0 * (float(dense) - float(acc))


def _loss_text(points: float) -> str:
    return f"loses {points:.1f}" if points >= 0 else f"gains {-points:.1f}"


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
        findings.append(f"**{model} on {dataset}**: dense test accuracy {percent(dense)}.")
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
            findings.append(f"{model}, {scope} pruning at {percent(s, 0)} sparsity: "
                            + "; ".join(parts) + ".")
        tol = []
        for (scope, criterion), runs in _groups(rows, ("scope", "criterion")).items():
            limit = tolerated_sparsity(runs, tolerance)
            reach = ("at none of the sparsities tried" if limit is None
                     else f"up to {percent(limit, 0)}")
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
    return [f"{model}, magnitude at {percent(s, 0)} sparsity {when}: global {percent(g)}, "
            f"layer-wise {percent(lw)} ({better} is better)."]


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


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
        cells = (str(r["model"]), str(r["scope"]), str(r["criterion"]), percent(r["sparsity"], 0),
                 percent(r["sparsity_reached"]), percent(r["accuracy_dense"]),
                 percent(r["accuracy_before_finetune"]), percent(r["accuracy_after_finetune"]),
                 f"{_int(r['nonzero_params'])} / {_int(r['params'])}",
                 _int(r["effective_macs"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    records = check_records(records, empty="there is nothing to report")
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
    return atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
