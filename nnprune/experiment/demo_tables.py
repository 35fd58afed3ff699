"""The demo's text, every number read from its records: the tables of the sweep (accuracy per
run, the time each criterion took; plain text for the console, markdown for the report) and
its three expectations, checked on its own measured numbers:

The MLP at 90 % global magnitude sparsity with fine-tuning loses at most 1 point of test
accuracy; random pruning at that sparsity is clearly worse (at least 5 points below
magnitude, both fine-tuned); magnitude pruning without fine-tuning stays within 1 point of
the dense accuracy up to at least 50 % sparsity.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nnprune.experiment.report import nearest_sparsity, tolerated_sparsity

MLP, TARGET_SPARSITY, TOLERANCE, CLEAR_GAP = "lenet_300_100", 0.9, 0.01, 0.05
STATUS = {True: "met", False: "NOT met", None: "not run"}


def demo_checks(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The demo's three expectations, each evaluated on ``records``.

    Returns one dict per check: ``name``, ``met`` (bool, or None when the records lack the
    runs it needs) and ``detail`` (the measured numbers, in words).
    """
    mlp = [r for r in records if r["model"] == MLP and r["scope"] == "global"]
    checks: list[dict[str, Any]] = []

    def pick(criterion: str, sparsity: float) -> Mapping[str, Any] | None:
        return next((r for r in mlp if r["criterion"] == criterion
                     and float(r["sparsity"]) == sparsity), None)

    s = nearest_sparsity(mlp, TARGET_SPARSITY) if mlp else None
    mag = pick("magnitude", s) if s is not None else None
    rnd = pick("random", s) if s is not None else None
    name = f"{MLP}, global magnitude at {s or TARGET_SPARSITY:.0%}, fine-tuned, loses ≤ 1 point"
    if mag is None or mag["accuracy_after_finetune"] is None:
        checks.append({"name": name, "met": None, "detail": "no such run"})
    else:
        lost = 100 * (mag["accuracy_dense"] - mag["accuracy_after_finetune"])
        checks.append({"name": name, "met": lost <= 100 * TOLERANCE,
                       "detail": f"dense {100 * mag['accuracy_dense']:.1f}%, fine-tuned "
                                 f"{100 * mag['accuracy_after_finetune']:.1f}%: "
                                 f"{'loses' if lost >= 0 else 'gains'} {abs(lost):.1f} points"})
    name = f"{MLP}, random at {s or TARGET_SPARSITY:.0%} is clearly worse (≥ 5 points below)"
    if mag is None or rnd is None or rnd["accuracy_after_finetune"] is None \
            or mag["accuracy_after_finetune"] is None:
        checks.append({"name": name, "met": None, "detail": "no such runs"})
    else:
        gap = 100 * (mag["accuracy_after_finetune"] - rnd["accuracy_after_finetune"])
        checks.append({"name": name, "met": gap >= 100 * CLEAR_GAP,
                       "detail": f"random {100 * rnd['accuracy_after_finetune']:.1f}% vs "
                                 f"magnitude {100 * mag['accuracy_after_finetune']:.1f}% "
                                 f"(fine-tuned): {gap:.1f} points below"})
    runs = [r for r in mlp if r["criterion"] == "magnitude"]
    limit = tolerated_sparsity(runs, TOLERANCE) if runs else None
    checks.append({"name": f"{MLP}, global magnitude without fine-tuning within 1 point "
                           "up to ≥ 50%",
                   "met": None if not runs else (limit is not None and limit >= 0.5),
                   "detail": "no such runs" if not runs else
                   ("loses more than 1 point at every sparsity tried" if limit is None
                    else f"within 1 point up to {limit:.0%}")})
    return checks


def checks_markdown(checks: Sequence[Mapping[str, Any]]) -> str:
    """The checks as a markdown list, one line each: name, met or not, the numbers."""
    mark = {True: "met", False: "**not met**", None: "not run"}
    return "\n".join(f"- {c['name']}: {mark[c['met']]} ({c['detail']})" for c in checks)


def check_lines(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The checks as plain text, one line each: ``[met] name: detail``."""
    return [f"[{STATUS[c['met']]}] {c['name']}: {c['detail']}" for c in checks]


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
