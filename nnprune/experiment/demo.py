"""``nnprune demo``: train, prune and report on the bundled 8×8 digits, end to end, offline.

The small CNN and LeNet-300-100 are trained, then pruned one shot from their trained weights
by every criterion of the settings at several sparsities (global and layer-wise), measured
before and after fine-tuning (``sweep``); the CNN is also filter-pruned and shrunk
(``demo_structured``) and its filter criteria compared (``demo_criteria``). The output folder
gets ``results.json``, ``report.md`` and ``figures/``; ``demo_tables`` checks three
expectations on the measured numbers.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nnprune import data as datasets
from nnprune import models, train
from nnprune.checks import check_bool, check_int
from nnprune.experiment.demo_criteria import (CRITERIA, criteria_figures, criteria_lines,
                                              criteria_markdown, criteria_runs)
from nnprune.experiment.demo_structured import (structured_console, structured_markdown,
                                                structured_runs)
from nnprune.experiment.demo_tables import (MLP, check_lines, checks_markdown,  # noqa: F401
                                            console_table, demo_checks, times_console,
                                            times_markdown)
from nnprune.experiment.sweep import fit_model, representative, sweep, write_outputs
from nnprune.nn import Module
from nnprune.train import TrainSpec


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


# Chosen over seeds 0-4: with weight decay 5e-3 the MLP loses 0.3-0.9 points at one-shot 90%
# global magnitude after fine-tuning, random 17-26 (1e-2, 1e-3 and 1e-4 lost up to 1.1).
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


def run_demo(out_dir: str | os.PathLike = DEFAULT_OUT, *, quick: bool = False, seed: int = 0,
             progress: bool = True, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo and write ``results.json``, ``report.md`` and ``figures/`` to ``out_dir``.

    ``quick`` runs a few seconds' version for tests (two sparsities, 2-4 training epochs);
    ``seed`` seeds the data split, the initial weights, the shuffling and random pruning.
    ``echo`` receives the lines to print. Returns ``{"records", "checks", "paths",
    "structured", "seconds"}``.
    """
    check_int(seed, "seed", 0)
    settings = QUICK if check_bool(quick, "quick") else FULL
    start = time.perf_counter()
    data = datasets.digits(seed=seed)
    echo(f"nnprune demo ({'quick' if quick else 'full'}): {data.description}")
    records, trained, kept = _sweep_models(settings, data, seed, progress, echo)
    spec = next(m for m in settings.models if m.name == settings.structured_model)
    result = _filter_pruning(out_dir, settings, spec, trained[spec.name], data, seed, echo)
    result.update(records=records, checks=demo_checks(records),
                  seconds=time.perf_counter() - start)
    meta = {"demo": "quick" if quick else "full", "seed": seed, "dataset": data.description,
            "seconds": result["seconds"]}
    intro = _intro(settings, data, seed, quick, result["seconds"])
    result["paths"] = _write(out_dir, result, trained, kept, meta, intro)
    echo(console_table(records))
    echo(times_console(records))
    echo(structured_console(result["structured"]))
    for line in criteria_lines(result["criteria"]) + check_lines(result["checks"]):
        echo(line)
    echo(f"wrote {result['paths']['report']}, {result['paths']['results']} and "
         f"{len(result['paths']) - 2} figures in {result['seconds']:.1f}s")
    del result["plots"]
    return result


def _sweep_models(settings: DemoSettings, data: Any, seed: int, progress: bool,
                  echo: Callable[[str], None]
                  ) -> tuple[list[dict[str, Any]], dict[str, Module], dict[str, Module]]:
    """Train each model of ``settings`` and sweep its criteria, sparsities and scopes.

    Returns (the records, the trained models, the pruned copy shown in the report per model).
    """
    records, trained, kept = [], {}, {}
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
    return records, trained, kept


def _filter_pruning(out_dir: str | os.PathLike, settings: DemoSettings, spec: DemoModel,
                    trained: Module, data: Any, seed: int,
                    echo: Callable[[str], None]) -> dict[str, Any]:
    """The structured part on ``trained``: filter pruning and shrinking at each structured
    sparsity, then the filter criteria compared and the sensitivity curves drawn.

    Returns ``{"structured", "criteria", "sensitivity", "plots"}`` (plots: caption, path).
    """
    options = dict(train=TrainSpec(epochs=spec.finetune_epochs, lr=spec.finetune_lr,
                                   batch_size=spec.batch_size, seed=seed), model_name=spec.name)
    t0 = time.perf_counter()
    structured = structured_runs(trained, data, sparsities=settings.structured,
                                 repeats=settings.timing_repeats, **options)
    echo(f"{spec.name}: filter pruning and shrinking at "
         f"{', '.join(f'{s:.0%}' for s in settings.structured)} in "
         f"{time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    criteria = criteria_runs(trained, data, sparsity=settings.structured[0],
                             criteria=settings.filter_criteria, **options)
    plots, sensitivity = criteria_figures(out_dir, trained, data, criteria, structured,
                                          ratios=settings.sensitivity_ratios)
    echo(f"{spec.name}: {len(criteria)} filter criteria and the sensitivity curves in "
         f"{time.perf_counter() - t0:.1f}s")
    return {"structured": structured, "criteria": criteria, "sensitivity": sensitivity,
            "plots": plots}


def _write(out_dir: str | os.PathLike, result: Mapping[str, Any], trained: dict[str, Module],
           kept: dict[str, Module], meta: dict[str, Any], intro: str) -> dict[str, Any]:
    """Write ``report.md``, ``results.json`` and the figures; returns their paths by name."""
    records, plots = result["records"], result["plots"]
    figures = "\n\n".join(f"![{caption}](figures/{path.name})" for caption, path in plots)
    paths = write_outputs(out_dir, records, trained=trained, pruned=kept,
                          title="nnprune demo: pruning on the digits", intro=intro, meta=meta,
                          sections=[("Expectations", checks_markdown(result["checks"])),
                                    ("Time per criterion", times_markdown(records)),
                                    ("Structured pruning: a really smaller model",
                                     structured_markdown(result["structured"])),
                                    ("Filter criteria compared",
                                     criteria_markdown(result["criteria"]) + "\n\n"
                                     + figures)],
                          extra={"structured": result["structured"],
                                 "criteria": result["criteria"],
                                 "sensitivity": [result["sensitivity"]]})
    for _, path in plots:
        paths[f"figures/{path.name}"] = path
    return paths


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
