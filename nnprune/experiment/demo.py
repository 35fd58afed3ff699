"""``nnprune demo``: train, prune and report on the bundled 8×8 digits, end to end, offline.

Two models are trained on the 8×8 digits: the small CNN (two 3×3 conv blocks and an MLP
head) and the LeNet-300-100-style MLP. Each is pruned one shot, from its trained weights,
with six criteria (magnitude, gradient, Taylor, random, and the second-order OBD with the
Gauss–Newton diagonal and layer-wise OBS, exact per row), at several sparsities, with
global and with layer-wise scope, and measured on the test split before and after
fine-tuning; the seconds each criterion took to prune are reported beside. The small CNN
is also filter-pruned and shrunk into a smaller dense model (``demo_structured``), whose measured inference time is set beside the dense model's and the
unstructured one's; the filter criteria are compared at the first structured sparsity, with an
accuracy-vs-MACs chart and per-layer sensitivity curves (``demo_criteria``). The output folder gets ``results.json`` (the structured runs under
``"structured"``), ``report.md`` and ``figures/``.

The demo checks three expectations on its own numbers (they are measured, not assumed):
the MLP at 90 % global magnitude sparsity with fine-tuning loses at most 1 point of test
accuracy; random pruning at that sparsity is clearly worse (at least 5 points below
magnitude, both fine-tuned); magnitude pruning without fine-tuning stays within 1 point of
the dense accuracy up to at least 50 % sparsity.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnprune import data as datasets
from nnprune import models, train
from nnprune.experiment.demo_structured import (structured_console, structured_markdown,
                                                structured_runs)
from nnprune.experiment.demo_criteria import (CRITERIA, criteria_figures, criteria_markdown,
                                              criteria_runs)
from nnprune.experiment.report import nearest_sparsity, tolerated_sparsity, write_results
from nnprune.experiment.sweep import fit_model, representative, sweep, write_outputs
from nnprune.nn import Module


@dataclass(frozen=True)
class DemoModel:
    """How one model of the demo is trained and fine-tuned.

    Training uses L2 weight decay, as Han et al. 2015 do before magnitude pruning: it
    drives the weights the task does not need towards zero, so pruning them costs little.
    Fine-tuning runs without it, from a smaller rate.
    """

    name: str
    epochs: int
    finetune_epochs: int
    lr: float = 0.05
    weight_decay: float = 1e-2
    finetune_lr: float = 0.02
    batch_size: int = 64


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo runs; ``FULL`` and ``QUICK`` are the two presets."""

    models: tuple[DemoModel, ...]
    criteria: tuple[str, ...] = ("magnitude", "gradient", "taylor", "random", "obd", "obs")
    sparsities: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)
    scopes: tuple[str, ...] = ("global", "layer")
    structured: tuple[float, ...] = (0.5, 0.75)  # filter sparsities of the structured part
    structured_model: str = "simple_cnn"
    timing_repeats: int = 21  # train.predict calls per model, their median is reported
    filter_criteria: tuple[str, ...] = CRITERIA  # compared at the first structured sparsity
    sensitivity_ratios: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


# Measured over seeds 0-4 (split and initial weights), from PyTorch's default initialisation.
# The CNN: lr 0.02, weight decay 5e-3, batch 32, 30 epochs reach 98.1-99.4% dense (mean 98.6%).
# The MLP: weight decay 5e-3 gives 98.1% dense on average (96.7-99.2%) and loses 0.3-0.9 points
# (mean 0.6) at one-shot 90% global magnitude after 20 epochs of fine-tuning; random pruning
# fine-tuned as long stays 17-26 points below. Weight decay 1e-2 lost up to 1.1 points there
# (97.7% dense); 1e-3 up to 0.9 and 1e-4 up to 1.1, with random only 4-11 points below.
FULL = DemoSettings(models=(DemoModel("simple_cnn", epochs=30, finetune_epochs=5, lr=0.02,
                                      weight_decay=5e-3, batch_size=32),
                            DemoModel("lenet_300_100", epochs=30, finetune_epochs=20,
                                      weight_decay=5e-3)))
QUICK = DemoSettings(models=(DemoModel("simple_cnn", epochs=2, finetune_epochs=1),
                             DemoModel("lenet_300_100", epochs=4, finetune_epochs=2)),
                     # the cheap second-order variants: one backward pass, one pass per layer
                     criteria=("magnitude", "gradient", "taylor", "random", "obd:lecun",
                               "obs:sparsegpt"),
                     sparsities=(0.5, 0.9), structured=(0.5,), timing_repeats=3,
                     filter_criteria=("l1_norm", "fpgm"), sensitivity_ratios=(0.5,))

DEFAULT_OUT = "nnprune-demo"
MLP, TARGET_SPARSITY, TOLERANCE, CLEAR_GAP = "lenet_300_100", 0.9, 0.01, 0.05


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


def console_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of the runs: accuracy without and with fine-tuning, in %."""
    header = f"{'model':<14} {'scope':<6} {'criterion':<10} {'sparsity':>8} {'dense':>7} " \
             f"{'pruned':>7} {'tuned':>7}"
    lines = [header, "-" * len(header)]
    for r in records:
        tuned = r["accuracy_after_finetune"]
        lines.append(f"{r['model']:<14} {r['scope']:<6} {r['criterion']:<10} "
                     f"{100 * r['sparsity']:>7.0f}% {100 * r['accuracy_dense']:>6.1f}% "
                     f"{100 * r['accuracy_before_finetune']:>6.1f}% "
                     + ("      –" if tuned is None else f"{100 * tuned:>6.1f}%"))
    return "\n".join(lines)


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


def run_demo(out_dir: str | os.PathLike = DEFAULT_OUT, *, quick: bool = False, seed: int = 0,
             progress: bool = True, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo and write ``results.json``, ``report.md`` and ``figures/`` to ``out_dir``.

    ``quick`` runs a few seconds' version for tests (two sparsities, 2-4 training epochs);
    ``seed`` seeds the data split, the initial weights, the shuffling and random pruning.
    ``echo`` receives the lines to print. Returns ``{"records", "checks", "paths",
    "structured", "seconds"}``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {type(quick).__name__}")
    settings = QUICK if quick else FULL
    start = time.perf_counter()
    data = datasets.digits(seed=seed)
    echo(f"nnprune demo ({'quick' if quick else 'full'}): {data.description}")
    records: list[dict[str, Any]] = []
    trained: dict[str, Module] = {}
    kept: dict[str, Module] = {}
    shown = representative(settings.criteria, settings.scopes, settings.sparsities)
    for spec in settings.models:
        c, h, w = data.input_shape
        model = models.build_model(spec.name, in_channels=c, num_classes=data.num_classes,
                                   input_size=(h, w), seed=seed)
        t0 = time.perf_counter()
        fit_model(model, data, epochs=spec.epochs, lr=spec.lr, weight_decay=spec.weight_decay,
                  batch_size=spec.batch_size, seed=seed, quiet=True)
        dense = train.evaluate(model, (data.x_test, data.y_test))["accuracy"]
        echo(f"{spec.name}: trained {spec.epochs} epochs in {time.perf_counter() - t0:.1f}s, "
             f"test accuracy {100 * dense:.1f}%")
        trained[spec.name] = model

        def keep(record: dict[str, Any], pruned: Module, name: str = spec.name) -> None:
            if (record["criterion"], record["scope"], record["sparsity"]) == shown:
                kept[name] = pruned

        records += sweep(model, data, criteria=settings.criteria,
                         sparsities=settings.sparsities, scopes=settings.scopes,
                         finetune_epochs=spec.finetune_epochs, lr=spec.finetune_lr,
                         batch_size=spec.batch_size, seed=seed, model_name=spec.name,
                         progress=progress, on_run=keep)
    spec = next(m for m in settings.models if m.name == settings.structured_model)
    t0 = time.perf_counter()
    structured = structured_runs(trained[spec.name], data, sparsities=settings.structured,
                                 finetune_epochs=spec.finetune_epochs, lr=spec.finetune_lr,
                                 batch_size=spec.batch_size, seed=seed, model_name=spec.name,
                                 repeats=settings.timing_repeats)
    echo(f"{spec.name}: filter pruning and shrinking at "
         f"{', '.join(f'{s:.0%}' for s in settings.structured)} in "
         f"{time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    criteria = criteria_runs(trained[spec.name], data, sparsity=settings.structured[0],
                             finetune_epochs=spec.finetune_epochs, lr=spec.finetune_lr,
                             batch_size=spec.batch_size, seed=seed, model_name=spec.name,
                             criteria=settings.filter_criteria)
    criteria_plots, sensitivity = criteria_figures(out_dir, trained[spec.name], data, criteria,
                                                   structured,
                                                   ratios=settings.sensitivity_ratios)
    echo(f"{spec.name}: {len(criteria)} filter criteria and the sensitivity curves in "
         f"{time.perf_counter() - t0:.1f}s")
    seconds = time.perf_counter() - start
    checks = demo_checks(records)
    meta = {"demo": "quick" if quick else "full", "seed": seed, "dataset": data.description,
            "seconds": seconds}
    paths = write_outputs(out_dir, records, trained=trained, pruned=kept,
                          title="nnprune demo: pruning on the digits",
                          intro=_intro(settings, data, seed, quick, seconds), meta=meta,
                          sections=[("Expectations", _checks_markdown(checks)),
                                    ("Time per criterion", times_markdown(records)),
                                    ("Structured pruning: a really smaller model",
                                     structured_markdown(structured)),
                                    ("Filter criteria compared",
                                     criteria_markdown(criteria) + "\n\n" + "\n\n".join(
                                         f"![{caption}](figures/{path.name})"
                                         for caption, path in criteria_plots))])
    # write_outputs writes the sweep's records; the structured runs join them in the same file
    write_results(paths["results"], records, meta,
                  extra={"structured": structured, "criteria": criteria,
                         "sensitivity": [sensitivity]})
    for _, path in criteria_plots:
        paths[f"figures/{path.name}"] = path
    echo(console_table(records))
    echo(times_console(records))
    echo(structured_console(structured))
    for r in criteria:
        echo(f"{r['criterion']:<16} {100 * r['sparsity']:.0f}% filters: pruned "
             f"{100 * r['accuracy_pruned']:5.1f}%, shrunk after fine-tuning "
             f"{100 * r['accuracy_shrunk']:5.1f}% (dense {100 * r['accuracy_dense']:.1f}%)")
    for check in checks:
        status = {True: "met", False: "NOT met", None: "not run"}[check["met"]]
        echo(f"[{status}] {check['name']}: {check['detail']}")
    echo(f"wrote {paths['report']}, {paths['results']} and {len(paths) - 2} figures "
         f"in {seconds:.1f}s")
    return {"records": records, "checks": checks, "structured": structured, "paths": paths,
            "seconds": seconds, "criteria": criteria, "sensitivity": sensitivity}


def _intro(settings: DemoSettings, data: Any, seed: int, quick: bool, seconds: float) -> str:
    lines = [f"{'Quick' if quick else 'Full'} demo, seed {seed}, run in {seconds:.0f} s. "
             f"Data: {data.description}; {len(data.y_test)} test images, so one point of "
             f"accuracy is {len(data.y_test) / 100:.1f} images.",
             f"Seeds behind each number: 1 (seed {seed}: one split, one initialisation, one "
             f"run; no error bars). `nnprune demo --seed N` repeats it with another seed.", ""]
    for m in settings.models:
        lines.append(f"- `{m.name}`: trained {m.epochs} epochs (SGD, momentum 0.9, lr "
                     f"{m.lr} with cosine decay, L2 weight decay {m.weight_decay}, batch "
                     f"{m.batch_size}); each pruned copy fine-tuned "
                     f"{m.finetune_epochs} epochs from lr {m.finetune_lr} (no weight decay).")
    lines += ["", "Every run prunes a copy of the trained model once (one shot) to the target "
              "sparsity of its conv and linear weights; gradient and Taylor (|w·g|) scores use "
              "the mean gradient over the training split. OBD scores ½·h·w² with h the exact "
              "Gauss–Newton diagonal of the loss (second-order backpropagation); OBS prunes "
              "layer by layer, exactly per row (Optimal Brain Compression), on 16 training "
              "batches run through the already pruned layers, and moves the kept weights to "
              "make up for the pruned ones; both are measured on the same training samples."]
    return "\n".join(lines)


def _checks_markdown(checks: Sequence[Mapping[str, Any]]) -> str:
    mark = {True: "met", False: "**not met**", None: "not run"}
    return "\n".join(f"- {c['name']}: {mark[c['met']]} ({c['detail']})" for c in checks)
