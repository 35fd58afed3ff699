"""The demo's structured part: filter pruning that makes the model really smaller, and faster.

Unstructured zeros leave the layers their shapes, so the dense kernels still multiply them;
filter pruning, each dead unit masked whole (``prune.mask_units``), fine-tuning, then
``prune.shrink`` give a smaller dense model that computes what the masked one does (Li et al.
2017). One *structured record* (``STRUCTURED_FIELDS``) per sparsity sets it beside the
unstructured model of the same sparsity, with the measured ``train.predict`` time of each.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nnprune import train
from nnprune.checks import check_int
from nnprune.experiment import workflows
from nnprune.experiment.demo_tables import text_table
from nnprune.experiment.results import check_records
from nnprune.experiment.runs import accuracy, clone_model, train_spec
from nnprune.nn import Module
from nnprune.prune.spec import PruneSpec
from nnprune.prune.surgery import shrink
from nnprune.prune.units import mask_units
from nnprune.train import TrainSpec

STRUCTURED_FIELDS = (
    "model", "dataset", "criterion", "scope", "granularity", "sparsity", "finetune_epochs",
    "seed", "accuracy_dense", "accuracy_masked", "accuracy_shrunk", "params", "params_shrunk",
    "macs", "macs_shrunk", "widths", "unstructured", "predict_seconds", "speedup", "repeats",
    "images",
)
TIMED = ("dense", "unstructured", "masked", "shrunk")


def predict_seconds(models: Mapping[str, Module], x: np.ndarray, *, repeats: int = 9,
                    batch_size: int = 256) -> dict[str, float]:
    """The median wall-clock time of ``train.predict(model, x)`` for each model, in seconds.

    x (N, ...) -> {name: median over ``repeats`` calls}, timed with ``time.perf_counter``.
    Every model is called once untimed first (warm-up), then the models take turns, one call
    each per round, so a change of machine load during the measurement hits all of them.
    """
    if isinstance(models, (str, bytes)) or not isinstance(models, Mapping) or not models:
        raise TypeError(f"models must be a non-empty dict of name: Module, got "
                        f"{type(models).__name__}")
    for name, model in models.items():
        if not isinstance(model, Module):
            raise TypeError(f"models[{name!r}] must be an nnprune.nn.Module, got "
                            f"{type(model).__name__}")
    check_int(repeats, "repeats", 1)
    for model in models.values():
        train.predict(model, x, batch_size=batch_size)  # warm-up; also checks x and batch_size
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            train.predict(model, x, batch_size=batch_size)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def filter_prune(trained: Module, data: Any, *, criterion: str, sparsity: float,
                 accuracy_dense: float, train: TrainSpec, model_name: str = "model"
                 ) -> tuple[dict[str, Any], Module, Module, Any]:
    """Filter-prune a copy of ``trained``, fine-tune it as ``train`` says, shrink it: (the
    ``workflows.oneshot`` record, the masked copy, the shrunk model, the ``SurgeryReport``).

    Layer-wise scope, ``granularity="filter"`` (the output layer stays dense: its units are
    the classes) and ``mask_units`` as the ``after_prune`` hook, so dead units stay exactly 0
    while the copy fine-tunes; ``shrink`` then cuts them out. ``trained`` is never modified.
    """
    masked = clone_model(trained)
    record = workflows.oneshot(masked, data, PruneSpec(criterion, sparsity, "layer", "filter",
                                                       seed=train.seed), train,
                               after_prune=mask_units, accuracy_dense=accuracy_dense,
                               model_name=model_name)
    small, surgery = shrink(masked, tuple(data.input_shape))
    return record, masked, small, surgery


def structured_run(trained: Module, data: Any, *, sparsity: float,
                   train: TrainSpec | None = None, model_name: str = "model", repeats: int = 9,
                   **options: Any) -> tuple[dict[str, Any], Module]:
    """Filter-prune a copy of ``trained``, fine-tune, shrink; prune another copy unstructured
    to the same ``sparsity``; time all of them. Returns (structured record, shrunk model).

    Both copies: magnitude scores, layer-wise scope, ``workflows.oneshot``, fine-tuned as
    ``train`` says (a ``TrainSpec``, or its keywords: ``finetune_epochs``, ``lr``, ...); the
    filter copy as ``filter_prune`` does it. ``trained`` is never modified.
    """
    start = time.perf_counter()
    train = train_spec(train, options, "structured_run")
    dense = accuracy(trained, data)
    filters, masked, small, surgery = filter_prune(trained, data, criterion="magnitude",
                                                   sparsity=sparsity, accuracy_dense=dense,
                                                   train=train, model_name=model_name)
    unstructured = clone_model(trained)
    weights = workflows.oneshot(unstructured, data, PruneSpec("magnitude", sparsity, "layer",
                                                              seed=train.seed), train,
                                accuracy_dense=dense, model_name=model_name)
    seconds = predict_seconds({"dense": trained, "unstructured": unstructured,
                               "masked": masked, "shrunk": small}, data.x_test,
                              repeats=repeats)
    after = filters["accuracy_after_finetune"]
    return {
        "model": model_name, "dataset": filters["dataset"], "criterion": "magnitude",
        "scope": "layer", "granularity": "filter", "sparsity": float(sparsity),
        "finetune_epochs": train.epochs, "seed": train.seed, "accuracy_dense": dense,
        "accuracy_masked": filters["accuracy_before_finetune"] if after is None else after,
        "accuracy_shrunk": accuracy(small, data),
        "params": surgery.params[0], "params_shrunk": surgery.params[1],
        "macs": surgery.macs[0], "macs_shrunk": surgery.macs[1],
        "widths": {name: list(w) for name, w in surgery.widths.items()},
        "unstructured": {k: weights[k] for k in (
            "granularity", "sparsity_reached", "accuracy_before_finetune",
            "accuracy_after_finetune", "nonzero_params", "effective_macs")},
        "predict_seconds": seconds,
        "speedup": {name: seconds["dense"] / seconds[name] for name in TIMED[1:]},
        "repeats": int(repeats), "images": int(len(data.x_test)),
        "seconds": time.perf_counter() - start,
    }, small


def structured_runs(trained: Module, data: Any, *, sparsities: Sequence[float],
                    **options: Any) -> list[dict[str, Any]]:
    """The records of ``structured_run`` (``options``: its keywords) at every sparsity of
    ``sparsities`` (fractions in (0, 1)), in that order."""
    if isinstance(sparsities, (str, bytes)) or not isinstance(sparsities, Sequence) \
            or not sparsities:
        raise ValueError(f"sparsities must be a non-empty list, got {sparsities!r}")
    for s in sparsities:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 < s < 1.0:
            raise ValueError(f"sparsities must be fractions in (0, 1), got {s!r}")
    return [structured_run(trained, data, sparsity=float(s), **options)[0] for s in sparsities]


# ---------------------------------------------------------------------- tables
def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


def structured_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table, one row per structured record (see ``STRUCTURED_FIELDS``)."""
    records = check_records(records, STRUCTURED_FIELDS)
    lines = ["| filter sparsity | widths | params | dense MACs | acc. masked | acc. shrunk | "
             "time dense | time shrunk | speed-up | unstructured eff. MACs | "
             "time unstructured | speed-up |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        t, u = r["predict_seconds"], r["unstructured"]
        widths = ", ".join(f"{a}→{b}" for a, b in r["widths"].values())
        cells = (f"{100 * r['sparsity']:.0f}%", widths,
                 f"{r['params']:,} → {r['params_shrunk']:,}",
                 f"{r['macs']:,} → {r['macs_shrunk']:,}",
                 f"{100 * r['accuracy_masked']:.1f}%", f"{100 * r['accuracy_shrunk']:.1f}%",
                 _ms(t["dense"]), _ms(t["shrunk"]), f"×{r['speedup']['shrunk']:.2f}",
                 f"{r['macs']:,} → {u['effective_macs']:,}", _ms(t["unstructured"]),
                 f"×{r['speedup']['unstructured']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def structured_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    """The report's section: what was done, the table, and the figures in words."""
    records = check_records(records, STRUCTURED_FIELDS, "there is no structured run to report")
    first = records[0]
    epochs = f"{first['finetune_epochs']} epoch{'s' if first['finetune_epochs'] != 1 else ''}"
    text = [f"`{first['model']}`, from the same trained weights: magnitude filter pruning "
            f"(whole conv filters and hidden neurons, layer-wise; the output layer stays "
            f"dense), every dead unit masked whole (`prune.mask_units`), fine-tuned "
            f"{epochs}, then cut out (`prune.shrink`) into a smaller "
            f"dense model. Beside it, the same model pruned unstructured (single weights) to "
            f"the same sparsity and fine-tuned alike. *widths*: output channels / features of "
            f"each conv and linear layer; params and dense MACs per image, before → after "
            f"surgery; *eff. MACs* = MACs × weight density.", "",
            f"Times are the median of {first['repeats']} calls of `train.predict` on the "
            f"{first['images']} test images, measured by this run (`time.perf_counter`): wall "
            f"clock on this machine, at this moment; they vary from machine to machine and "
            f"run to run. *speed-up* = dense time / time.", "", structured_table(records), ""]
    for r in records:
        t, u = r["predict_seconds"], r["unstructured"]
        same = "equal" if r["accuracy_masked"] == r["accuracy_shrunk"] else "**not equal**"
        tuned = u["accuracy_after_finetune"]
        unstructured = u["accuracy_before_finetune"] if tuned is None else tuned
        text.append(
            f"- {100 * r['sparsity']:.0f}%: the shrunk model has "
            f"{r['params_shrunk'] / r['params']:.1%} of the parameters and "
            f"{r['macs_shrunk'] / r['macs']:.1%} of the dense MACs and runs in "
            f"{t['shrunk'] / t['dense']:.0%} of the dense time; test accuracy "
            f"{100 * r['accuracy_masked']:.1f}% masked, {100 * r['accuracy_shrunk']:.1f}% "
            f"shrunk ({same}; dense {100 * r['accuracy_dense']:.1f}%). The unstructured model "
            f"({100 * unstructured:.1f}%) has "
            f"{u['effective_macs'] / r['macs']:.1%} of the effective MACs but runs in "
            f"{t['unstructured'] / t['dense']:.0%} of the dense time, and the filter-pruned "
            f"model before surgery in {t['masked'] / t['dense']:.0%}: both still run the "
            f"dense kernels over their zeros.")
    return "\n".join(text)


def structured_console(records: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of the structured records: params, accuracy, times in ms."""
    records = check_records(records, STRUCTURED_FIELDS)
    header = (f"{'filters':>8} {'params':>16} {'masked':>7} {'shrunk':>7} {'dense ms':>9} "
              f"{'shrunk ms':>9} {'unstr. ms':>9}")
    return text_table(header, (
        f"{100 * r['sparsity']:>7.0f}% {r['params']:>7,}->{r['params_shrunk']:<7,} "
        f"{100 * r['accuracy_masked']:>6.1f}% {100 * r['accuracy_shrunk']:>6.1f}% "
        f"{1000 * r['predict_seconds']['dense']:>9.2f} "
        f"{1000 * r['predict_seconds']['shrunk']:>9.2f} "
        f"{1000 * r['predict_seconds']['unstructured']:>9.2f}" for r in records))
