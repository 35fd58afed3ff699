"""The markdown report of pruning runs: the key findings, the results table, the figures.
It re-exports ``experiment.results`` and ``experiment.findings``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnprune.experiment.findings import (key_findings, nearest_sparsity, percent,  # noqa: F401
                                         tolerated_sparsity)
from nnprune.experiment.results import (RECORD_FIELDS, RESULTS_FORMAT,  # noqa: F401
                                        RESULTS_VERSION, check_records, read_results,
                                        write_json, write_results)
from nnprune.files import atomic_write_text


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
