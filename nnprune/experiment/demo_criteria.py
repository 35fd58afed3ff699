"""The demo's comparison of filter criteria (``CRITERIA``) at one sparsity, each pruned,
masked whole, fine-tuned and shrunk (one record of ``CRITERION_FIELDS`` each), with the
per-layer sensitivity curves (Li et al. 2017, Fig. 2) and a chart of accuracy against MACs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnprune.experiment.demo_structured import filter_prune
from nnprune.experiment.plots import accuracy_vs_macs, sensitivity_plot
from nnprune.experiment.results import check_records
from nnprune.experiment.runs import accuracy
from nnprune.experiment.sensitivity import layer_sensitivity
from nnprune.nn import Module
from nnprune.train import TrainSpec

CRITERIA = ("l1_norm", "l2_norm", "fpgm", "taylor_group", "apoz", "mean_activation", "random")
CRITERION_FIELDS = ("model", "criterion", "sparsity", "finetune_epochs", "seed",
                    "accuracy_dense", "accuracy_pruned", "accuracy_finetuned",
                    "accuracy_shrunk", "macs", "macs_shrunk", "params", "params_shrunk")


def criteria_runs(trained: Module, data: Any, *, sparsity: float, train: TrainSpec,
                  model_name: str = "model",
                  criteria: Sequence[str] = CRITERIA) -> list[dict[str, Any]]:
    """One criterion record per criterion, each fine-tuned as ``train`` says (see the module
    doc); ``trained`` is not changed."""
    dense = accuracy(trained, data)
    rows = []
    for criterion in criteria:
        r, _, small, surgery = filter_prune(trained, data, criterion=criterion,
                                            sparsity=sparsity, accuracy_dense=dense,
                                            train=train, model_name=model_name)
        rows.append({"model": model_name, "criterion": criterion, "sparsity": float(sparsity),
                     "finetune_epochs": train.epochs, "seed": train.seed,
                     "accuracy_dense": dense,
                     "accuracy_pruned": r["accuracy_before_finetune"],
                     "accuracy_finetuned": r["accuracy_after_finetune"],
                     "accuracy_shrunk": accuracy(small, data),
                     "macs": surgery.macs[0], "macs_shrunk": surgery.macs[1],
                     "params": surgery.params[0], "params_shrunk": surgery.params[1]})
    return rows


def criteria_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The report's table of criterion records and the best criterion in words."""
    rows = check_records(rows, CRITERION_FIELDS, "there is no criterion run to report")
    first = rows[0]
    lines = [f"`{first['model']}`: {100 * first['sparsity']:.0f}% of the filters and hidden "
             f"neurons of every hidden layer removed by each criterion (layer-wise), units "
             f"masked whole, fine-tuned {first['finetune_epochs']} "
             f"epoch{'s' if first['finetune_epochs'] != 1 else ''}, shrunk. Dense "
             f"accuracy {100 * first['accuracy_dense']:.1f}%; "
             f"{first['params']:,} → {first['params_shrunk']:,} parameters, "
             f"{first['macs']:,} → {first['macs_shrunk']:,} MACs per image.", "",
             "| criterion | pruned | fine-tuned | shrunk | shrunk − dense (points) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        tuned = r["accuracy_finetuned"]
        tuned = r["accuracy_pruned"] if tuned is None else tuned
        lines.append(f"| {r['criterion']} | {100 * r['accuracy_pruned']:.1f}% | "
                     f"{100 * tuned:.1f}% | {100 * r['accuracy_shrunk']:.1f}% | "
                     f"{100 * (r['accuracy_shrunk'] - r['accuracy_dense']):+.1f} |")
    best = max(rows, key=lambda r: r["accuracy_shrunk"])
    spread = [100 * (max(r[k] for r in rows) - min(r[k] for r in rows))
              for k in ("accuracy_pruned", "accuracy_shrunk")]
    lines += ["", f"Best after fine-tuning: {best['criterion']}, "
                  f"{100 * (best['accuracy_shrunk'] - best['accuracy_dense']):+.1f} points from "
                  f"the dense model. The criteria span {spread[0]:.1f} points right after "
                  f"pruning and {spread[1]:.1f} points after fine-tuning."]
    return "\n".join(lines)


def criteria_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The criterion records as plain text, one line each: accuracy pruned and shrunk."""
    return [f"{r['criterion']:<16} {100 * r['sparsity']:.0f}% filters: pruned "
            f"{100 * r['accuracy_pruned']:5.1f}%, shrunk after fine-tuning "
            f"{100 * r['accuracy_shrunk']:5.1f}% (dense {100 * r['accuracy_dense']:.1f}%)"
            for r in rows]


def criteria_figures(out_dir: str | Path, trained: Module, data: Any,
                     rows: Sequence[Mapping[str, Any]],
                     structured: Sequence[Mapping[str, Any]], *,
                     ratios: Sequence[float]) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
    """The accuracy-vs-MACs chart and the sensitivity curves in ``out_dir/figures``; returns
    ([(caption, path)], the sensitivity result)."""
    out = Path(out_dir) / "figures"
    first = rows[0]
    points = [("dense", first["macs"], first["accuracy_dense"])]
    for s in structured:
        u = s["unstructured"]
        tuned = u["accuracy_after_finetune"]
        points.append((f"unstructured {100 * s['sparsity']:.0f}% (effective MACs)",
                       u["effective_macs"], u["accuracy_before_finetune"] if tuned is None
                       else tuned))
        points.append((f"magnitude filters {100 * s['sparsity']:.0f}%, shrunk",
                       s["macs_shrunk"], s["accuracy_shrunk"]))
    points += [(f"{r['criterion']} {100 * r['sparsity']:.0f}%, shrunk", r["macs_shrunk"],
                r["accuracy_shrunk"]) for r in rows]
    macs = accuracy_vs_macs(points, out / "accuracy_vs_macs.png",
                            title=f"{first['model']}: test accuracy against MACs")
    sens = layer_sensitivity(trained, (data.x_test, data.y_test), ratios=ratios,
                             criterion="l1_norm")
    curves = sensitivity_plot(sens, out / "sensitivity.png", tolerance=0.01,
                              title=f"{first['model']}: sensitivity of each layer (L1 norm)")
    return [("Test accuracy against the MACs each model runs", macs),
            ("Each layer pruned alone, no fine-tuning (Li et al. 2017, Fig. 2)", curves)], sens
