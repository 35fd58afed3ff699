"""The demo's three expectations, checked on its own measured numbers.

The MLP at 90 % global magnitude sparsity with fine-tuning loses at most 1 point of test
accuracy; random pruning at that sparsity is clearly worse (at least 5 points below
magnitude, both fine-tuned); magnitude pruning without fine-tuning stays within 1 point of
the dense accuracy up to at least 50 % sparsity.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nnprune.experiment.findings import nearest_sparsity, tolerated_sparsity

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
