"""What a sweep writes: ``results.json``, the figures and ``report.md`` (``write_outputs``),
and which run's model the figures show (``representative``)."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnprune.experiment import plots, report
from nnprune.nn import Module


def representative(criteria: Sequence[str], scopes: Sequence[str], sparsities: Sequence[float],
                   at: float = 0.9) -> tuple[str, str, float]:
    """The run whose model the figures show: magnitude (else the first criterion), global
    scope (else the first scope), at the sparsity nearest ``at``."""
    criterion = "magnitude" if "magnitude" in criteria else criteria[0]
    scope = "global" if "global" in scopes else scopes[0]
    return criterion, scope, min((float(s) for s in sparsities), key=lambda s: (abs(s - at), -s))


def _weights_and_masks(model: Module) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The conv/linear weights of ``model`` and their masks (from the values if none)."""
    weights, masks = {}, {}
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.ndim >= 2:
            weights[name] = p.data
            masks[name] = p.mask if p.mask is not None else (p.data != 0).astype(p.dtype)
    return weights, masks


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,100}")


def _earlier_figures(out: Path) -> set[str]:
    """The plain file names of the figures that the run recorded in ``out/results.json`` may
    have written (none if there is no such file, or it is not one of ours)."""
    try:
        old, _ = report.read_results(out / "results.json")
    except (OSError, ValueError, TypeError, KeyError):
        return set()
    names = set()
    for r in old:
        model, scope = str(r.get("model")), str(r.get("scope"))
        names |= {f"layers_{model}.png", f"weights_{model}.png", f"mask_{model}.png",
                  f"accuracy_{model}_{scope}.png"}
    return {n for n in names if _PLAIN_NAME.fullmatch(n)}


def _model_figures(out: Path, model_name: str, rows: Sequence[Mapping[str, Any]],
                   trained: Module | None, pruned: Module | None,
                   at: float) -> list[tuple[str, Path]]:
    """(caption, path) of every figure of one model's runs (see ``write_outputs``)."""
    figures: list[tuple[str, Path]] = []
    for scope in dict.fromkeys(r["scope"] for r in rows):
        path = plots.accuracy_vs_sparsity(
            [r for r in rows if r["scope"] == scope],
            out / "figures" / f"accuracy_{model_name}_{scope}.png",
            title=f"{model_name} on {rows[0]['dataset']}: {scope} pruning")
        figures.append((f"{model_name}: test accuracy against sparsity, {scope} scope "
                        "(solid: fine-tuned, dashed: no fine-tuning)", path))
    criterion, _, s = representative([r["criterion"] for r in rows],
                                     [r["scope"] for r in rows],
                                     [r["sparsity"] for r in rows], at)
    bars = {f"{r['scope']} scope": r["layer_sparsity"] for r in rows
            if r["criterion"] == criterion and float(r["sparsity"]) == s
            and r.get("layer_sparsity")}
    if bars:
        path = plots.layer_sparsity_bars(
            bars, out / "figures" / f"layers_{model_name}.png",
            title=f"{model_name}: {criterion} pruning to {s:.0%}, sparsity per layer")
        figures.append((f"{model_name}: sparsity reached per layer, {criterion} at "
                        f"{s:.0%}", path))
    if trained is not None and pruned is not None:
        before, _ = _weights_and_masks(trained)
        _, masks = _weights_and_masks(pruned)
        after = {n: w * masks[n] for n, w in before.items() if n in masks}
        path = plots.weight_histograms(
            before, after, out / "figures" / f"weights_{model_name}.png",
            title=f"{model_name}: weights before and after pruning")
        figures.append((f"{model_name}: weight histograms before and after pruning "
                        "(log count; pruned zeros not shown)", path))
        conv = [name for name, m in masks.items() if m.ndim == 4]
        shown = max(conv, key=lambda name: masks[name].size) if conv else next(iter(masks))
        path = plots.mask_image(masks[shown], out / "figures" / f"mask_{model_name}.png",
                                title=model_name, name=shown)
        figures.append((f"{model_name}: mask of {shown} (black = kept)", path))
    return figures


def write_outputs(out_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], *,
                  trained: Mapping[str, Module] | None = None,
                  pruned: Mapping[str, Module] | None = None, title: str = "Pruning sweep",
                  intro: str = "", meta: Mapping[str, Any] | None = None,
                  sections: Sequence[tuple[str, str]] = (), at: float = 0.9,
                  extra: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
                  ) -> dict[str, Path]:
    """Write ``results.json`` (with ``extra`` beside the records, see ``write_results``), the
    figures (``figures/*.png``) and ``report.md`` to ``out_dir``.

    Figures per model: accuracy against sparsity (one chart per scope); the per-layer
    sparsity of the criterion shown at the sparsity nearest ``at``, global against
    layer-wise; and, when ``trained[model]`` and ``pruned[model]`` are given, the weight
    histograms before and after pruning (the trained weights times the pruned model's
    mask: the weights right after pruning, before fine-tuning) and one mask (the largest
    conv weight's, else the first linear weight's).
    Returns {"results": ..., "report": ..., "figures/<name>": ...} paths.
    """
    out = Path(out_dir)
    records = report.check_records(records)
    earlier = _earlier_figures(out)  # read before results.json is replaced
    trained, pruned = dict(trained or {}), dict(pruned or {})
    paths: dict[str, Path] = {"results": report.write_results(out / "results.json", records,
                                                              meta, extra)}
    figures: list[tuple[str, Path]] = []
    for model_name in dict.fromkeys(r["model"] for r in records):
        figures += _model_figures(out, model_name, [r for r in records
                                                    if r["model"] == model_name],
                                  trained.get(model_name), pruned.get(model_name), at)
    for caption, path in figures:
        paths[f"figures/{path.name}"] = path
    # the earlier run's figures this one did not write again go: the folder shows this run's
    for name in sorted(earlier - {path.name for _, path in figures}):
        if (out / "figures" / name).is_file():
            (out / "figures" / name).unlink()
    paths["report"] = report.write_report(out / "report.md", records, title=title, intro=intro,
                                          figures=figures, sections=sections, at=at)
    return paths
