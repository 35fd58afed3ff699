"""The demo's tables of the sweep: accuracy per run, and the time each criterion took.

Plain text for the console, markdown for the report; every number is read from the records
(``experiment.results``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nnprune.experiment.demo_checks import TARGET_SPARSITY
from nnprune.experiment.findings import nearest_sparsity


def text_table(header: str, rows: Iterable[str]) -> str:
    """A plain-text table: ``header``, a rule of dashes as wide, then one line per row."""
    return "\n".join([header, "-" * len(header), *rows])


def console_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of the runs: accuracy without and with fine-tuning, in %."""
    header = f"{'model':<14} {'scope':<6} {'criterion':<10} {'sparsity':>8} {'dense':>7} " \
             f"{'pruned':>7} {'tuned':>7}"
    return text_table(header, (
        f"{r['model']:<14} {r['scope']:<6} {r['criterion']:<10} "
        f"{100 * r['sparsity']:>7.0f}% {100 * r['accuracy_dense']:>6.1f}% "
        f"{100 * r['accuracy_before_finetune']:>6.1f}% "
        + ("      –" if r["accuracy_after_finetune"] is None
           else f"{100 * r['accuracy_after_finetune']:>6.1f}%") for r in records))


def criterion_times(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model and criterion: the runs, the median seconds one pruning from the trained
    model takes (its own ``prune_seconds`` plus the shared gradients, Hessian diagonal or
    calibration, ``setup_seconds``) and the best one-shot accuracy without fine-tuning at the
    sparsity nearest 90 %, global scope."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        for criterion in dict.fromkeys(r["criterion"] for r in records if r["model"] == model):
            runs = [r for r in records if r["model"] == model and r["criterion"] == criterion]
            seconds = sorted(float(r.get("prune_seconds", 0.0)) + float(r.get(
                "setup_seconds", 0.0)) for r in runs)
            at = [r for r in runs if r["scope"] == "global"] or runs
            s = nearest_sparsity(at, TARGET_SPARSITY)
            rows.append({"model": model, "criterion": criterion, "runs": len(runs),
                         "median_seconds": seconds[len(seconds) // 2], "sparsity": s,
                         "accuracy_pruned": max(r["accuracy_before_finetune"] for r in at
                                                if float(r["sparsity"]) == s)})
    return rows


def times_console(records: Sequence[Mapping[str, Any]]) -> str:
    """The ``criterion_times`` table as plain text."""
    lines = [f"{'model':<14} {'criterion':<10} {'prune s':>8}  one-shot accuracy"]
    for t in criterion_times(records):
        lines.append(f"{t['model']:<14} {t['criterion']:<10} {t['median_seconds']:>8.3f}  "
                     f"{100 * t['accuracy_pruned']:.1f}% at {t['sparsity']:.0%}")
    return "\n".join(lines)


def times_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    """The ``criterion_times`` table in markdown."""
    lines = ["Median seconds one pruning step took per criterion (gradients, Hessian diagonal "
             "or calibration included; the machine may have been loaded), and the test "
             "accuracy right after one-shot global pruning at the sparsity nearest 90 %.", "",
             "| model | criterion | runs | seconds to prune | accuracy, no fine-tuning |",
             "| --- | --- | ---: | ---: | ---: |"]
    for t in criterion_times(records):
        lines.append(f"| {t['model']} | {t['criterion']} | {t['runs']} | "
                     f"{t['median_seconds']:.3f} | {100 * t['accuracy_pruned']:.1f}% at "
                     f"{t['sparsity']:.0%} |")
    return "\n".join(lines)
