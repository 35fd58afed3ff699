"""A sweep: criteria × sparsities × scopes, each run from the same trained starting point.

Every run copies the trained model (``clone_model``), prunes the copy once
(``workflows.oneshot``), measures the test accuracy without fine-tuning, then
fine-tunes the pruned copy (its masks stay attached, so pruned weights stay zero) and
measures it again. So one run gives both arms of the comparison {no fine-tuning,
fine-tuning}, and one record (see ``nnprune.experiment.report.RECORD_FIELDS``) holds them.

The gradients the gradient, Taylor and SNIP criteria need are computed once, on the trained
model and the training data, and shared by all runs: every run prunes the same model, so
they would be the same each time.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nnprune import train
from nnprune.experiment import plots, report, workflows
from nnprune.experiment.parallel import check_jobs, map_runs
from nnprune.experiment.runs import (OPTIMIZERS, Regularizer, clone_model, fit_model,
                                     make_optimizer)
from nnprune.experiment.second_order import SecondOrder, second_order_inputs, split_variant
from nnprune.nn import Module
from nnprune.prune.scores import NEEDS_GRADS

# clone_model, fit_model and make_optimizer live in runs.py; they are importable from here too
__all__ = ["prune_once", "sweep", "representative", "write_outputs", "clone_model", "fit_model",
           "make_optimizer", "OPTIMIZERS", "SCOPES"]

SCOPES = ("global", "layer")


def prune_once(trained: Module, data: Any, *, criterion: str, sparsity: float,
               scope: str = "global", granularity: str = "weight", finetune_epochs: int = 2,
               lr: float = 0.01, optimizer: str = "sgd", cosine: bool = True,
               batch_size: int = 64, seed: int = 0, exclude: Sequence[str] = (),
               grads: Mapping[str, np.ndarray] | None = None,
               accuracy_dense: float | None = None, model_name: str = "model",
               quiet: bool = True, regularizer: Regularizer | None = None,
               weight_decay: float = 0.0, lr_schedule: str | None = None,
               layer_norm: str = "none", second_order: SecondOrder | None = None,
               pruning_inputs: dict[str, Any] | None = None) -> tuple[dict[str, Any], Module]:
    """Prune a copy of ``trained`` once, evaluate, fine-tune, evaluate: (record, pruned model).

    ``workflows.oneshot`` on ``clone_model(trained)``, so ``trained`` is never modified.
    ``data``: a ``nnprune.data.Dataset`` (x_train, y_train, x_test, y_test, name,
    input_shape). ``grads``: dL/dw of ``trained`` for the gradient criteria (computed when
    None and needed); ``accuracy_dense``: its test accuracy (measured when None). Fine-tuning
    uses ``lr``, ``optimizer``, ``cosine`` (or ``lr_schedule``), ``weight_decay`` and
    ``regularizer``; ``finetune_epochs=0`` skips it
    (``accuracy_after_finetune`` is then None). The record also carries ``layer_sparsity``
    (the reached sparsity of every prunable weight, excluded ones included) and ``seconds``.
    ``criterion`` may name a second-order variant (``obd:fisher``, ``obs:sparsegpt``, see
    ``second_order.split_variant``), kept as the record's criterion; ``pruning_inputs`` are
    its Hessian diagonal or calibration samples when computed already.
    """
    label = criterion
    criterion, second_order = split_variant(criterion, second_order)
    model = clone_model(trained)
    record = workflows.oneshot(
        model, data, criterion=criterion, sparsity=sparsity, scope=scope,
        granularity=granularity, exclude=exclude, finetune_epochs=finetune_epochs, lr=lr,
        optimizer=optimizer, batch_size=batch_size, seed=seed, quiet=quiet,
        model_name=model_name, regularizer=regularizer, cosine=cosine, grads=grads,
        accuracy_dense=accuracy_dense, weight_decay=weight_decay, lr_schedule=lr_schedule,
        layer_norm=layer_norm, second_order=second_order, pruning_inputs=pruning_inputs)
    record["criterion"] = label
    return record, model


def _check_choices(name: str, values: Sequence[Any], allowed: Sequence[Any] | None) -> list:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{name}: unknown {bad}; choose from {list(allowed)}")
    return list(values)


def sweep(trained: Module, data: Any, *, criteria: Sequence[str], sparsities: Sequence[float],
          scopes: Sequence[str] = ("global",), granularity: str = "weight",
          finetune_epochs: int = 2, lr: float = 0.01, optimizer: str = "sgd",
          cosine: bool = True, batch_size: int = 64, seed: int = 0, exclude: Sequence[str] = (),
          model_name: str = "model", progress: bool = True,
          on_run: Callable[[dict[str, Any], Module], None] | None = None,
          regularizer: Regularizer | None = None, weight_decay: float = 0.0,
          lr_schedule: str | None = None, layer_norm: str = "none",
          second_order: SecondOrder | None = None, jobs: int = 1,
          seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Every (seed, scope, criterion, sparsity) one-shot run from ``trained``: a list of records.

    obd's Hessian diagonal and obs's calibration samples are computed once per criterion
    (variant), from ``trained``, with ``second_order``'s settings, like the gradients; every
    record keeps the seconds its own pruning took (``prune_seconds``) and the seconds those
    shared inputs took (``setup_seconds``): one pruning from scratch costs their sum.

    The trained model itself is never modified. ``on_run(record, pruned_model)`` is called
    after each run (e.g. to keep a model for the figures). A tqdm bar counts the runs.
    ``layer_norm`` (filter criteria, global scope): see ``prune_model``.
    ``seeds``: repeat every run with each seed (random scores, gradient batches, calibration
    samples, fine-tuning order; default ``[seed]``). ``jobs``: worker processes
    (``parallel.map_runs``); the records are the same, bit for bit, whatever the number
    (their ``*seconds`` timings aside).
    """
    criteria = _check_choices("criteria", criteria, None)
    scopes = _check_choices("scopes", scopes, SCOPES)
    sparsities = _check_choices("sparsities", sparsities, None)
    for s in sparsities:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise ValueError(f"sparsities must be fractions in [0, 1], got {s!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) \
            or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an int >= 0, got {finetune_epochs!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if on_run is not None and not callable(on_run):
        raise TypeError(f"on_run must be callable or None, got {type(on_run).__name__}")

    jobs = check_jobs(jobs)
    seeds = [seed] if seeds is None else _check_choices("seeds", seeds, None)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be ints >= 0, got {s!r}")

    accuracy_dense = train.evaluate(trained, (data.x_test, data.y_test))["accuracy"]
    grads, inputs, setup = {}, {}, {}
    for run_seed in seeds:  # the shared inputs, once per seed (their batches are seeded)
        grads[run_seed], grads_seconds = None, 0.0
        if any(c in NEEDS_GRADS for c in criteria):
            start = time.perf_counter()
            grads[run_seed] = train.gradients(trained, (data.x_train, data.y_train),
                                              batch_size=batch_size, seed=run_seed)
            grads_seconds = time.perf_counter() - start
        for c in criteria:  # once per second-order criterion: its diagonal or calibration set
            base, settings = split_variant(c, second_order)
            start = time.perf_counter()
            inputs[run_seed, c] = second_order_inputs(base, trained, data, settings, batch_size,
                                                      run_seed)
            setup[run_seed, c] = time.perf_counter() - start + (grads_seconds
                                                                 if c in NEEDS_GRADS else 0.0)
    shared = {"trained": trained, "data": data, "grads": grads, "inputs": inputs,
              "keep_models": on_run is not None,
              "options": dict(granularity=granularity, finetune_epochs=finetune_epochs, lr=lr,
                              optimizer=optimizer, cosine=cosine, batch_size=batch_size,
                              exclude=exclude, accuracy_dense=accuracy_dense,
                              model_name=model_name, regularizer=regularizer,
                              weight_decay=weight_decay, lr_schedule=lr_schedule,
                              layer_norm=layer_norm, second_order=second_order)}
    runs = [(run_seed, scope, c, float(s)) for run_seed in seeds for scope in scopes
            for c in criteria for s in sparsities]
    records = []
    bar = tqdm(total=len(runs), desc=f"sweep {model_name}" + (f" ({jobs} jobs)" if jobs > 1
                                                              else ""),
               disable=not progress, dynamic_ncols=True)
    for (run_seed, _, criterion, _), (record, model) in zip(
            runs, map_runs(_one_run, shared, runs, jobs)):
        bar.set_postfix_str(f"{record['scope']} {criterion} {record['sparsity']:.0%}",
                            refresh=False)
        bar.update()
        record["setup_seconds"] = setup[run_seed, criterion]
        records.append(record)
        if on_run is not None:
            on_run(record, model)
    bar.close()
    return records


def _one_run(shared: Mapping[str, Any], run: tuple[int, str, str, float]
             ) -> tuple[dict[str, Any], Module | None]:
    """One run of ``sweep``: (record, pruned model, or None when no one keeps it)."""
    seed, scope, criterion, sparsity = run
    record, model = prune_once(shared["trained"], shared["data"], criterion=criterion,
                               sparsity=sparsity, scope=scope, seed=seed,
                               grads=shared["grads"][seed],
                               pruning_inputs=shared["inputs"][seed, criterion],
                               **shared["options"])
    return record, model if shared["keep_models"] else None


# ---------------------------------------------------------------------- outputs
def representative(criteria: Sequence[str], scopes: Sequence[str], sparsities: Sequence[float],
                   at: float = 0.9) -> tuple[str, str, float]:
    """The run whose model the figures show: magnitude (else the first criterion), global
    scope (else the first scope), at the sparsity nearest ``at``."""
    criterion = "magnitude" if "magnitude" in criteria else criteria[0]
    scope = "global" if "global" in scopes else scopes[0]
    return criterion, scope, min((float(s) for s in sparsities), key=lambda s: (abs(s - at), -s))


def _weights_and_masks(model: Module, exclude: Sequence[str] = ()
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The conv/linear weights of ``model`` and their masks (from the values if none)."""
    weights, masks = {}, {}
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.ndim >= 2 and name not in exclude:
            weights[name] = p.data
            masks[name] = p.mask if p.mask is not None else (p.data != 0).astype(p.dtype)
    return weights, masks


def _mask_to_show(masks: Mapping[str, np.ndarray]) -> str:
    """The largest conv mask (drawn as (F, C·kh·kw)), else the first linear one."""
    conv = [name for name, m in masks.items() if m.ndim == 4]
    return max(conv, key=lambda name: masks[name].size) if conv else next(iter(masks))


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,100}")


def figure_names(records: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every file name ``write_outputs`` may give a figure of these records' models."""
    names = set()
    for r in records:
        model, scope = str(r.get("model")), str(r.get("scope"))
        names |= {f"layers_{model}.png", f"weights_{model}.png", f"mask_{model}.png",
                  f"accuracy_{model}_{scope}.png"}
    return {n for n in names if _PLAIN_NAME.fullmatch(n)}


def earlier_figures(out: Path) -> set[str]:
    """The figure names the run recorded in ``out/results.json`` may have written (none if
    there is no such file, or it is not one of ours)."""
    try:
        old, _ = report.read_results(out / "results.json")
    except (OSError, ValueError, TypeError, KeyError):
        return set()
    return figure_names(old)


def remove_stale_figures(out: Path, earlier: set[str], written: set[str]) -> list[Path]:
    """Remove the ``earlier`` run's figures this run did not write again (``written``), so a
    reused output folder shows this run's results only. Only plain file names inside
    ``out/figures`` are removed; returns them."""
    stale = [out / "figures" / name for name in sorted(earlier - written)]
    stale = [p for p in stale if p.is_file()]
    for path in stale:
        path.unlink()
    return stale


def write_outputs(out_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], *,
                  trained: Mapping[str, Module] | None = None,
                  pruned: Mapping[str, Module] | None = None, title: str = "Pruning sweep",
                  intro: str = "", meta: Mapping[str, Any] | None = None,
                  sections: Sequence[tuple[str, str]] = (), at: float = 0.9) -> dict[str, Path]:
    """Write ``results.json``, the figures (``figures/*.png``) and ``report.md`` to ``out_dir``.

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
    earlier = earlier_figures(out)  # read before results.json is replaced
    trained, pruned = dict(trained or {}), dict(pruned or {})
    paths: dict[str, Path] = {"results": report.write_results(out / "results.json", records,
                                                              meta)}
    figures: list[tuple[str, Path]] = []
    for model_name in dict.fromkeys(r["model"] for r in records):
        rows = [r for r in records if r["model"] == model_name]
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
        if model_name in trained and model_name in pruned:
            before, _ = _weights_and_masks(trained[model_name])
            _, masks = _weights_and_masks(pruned[model_name])
            after = {n: w * masks[n] for n, w in before.items() if n in masks}
            path = plots.weight_histograms(
                before, after, out / "figures" / f"weights_{model_name}.png",
                title=f"{model_name}: weights before and after pruning")
            figures.append((f"{model_name}: weight histograms before and after pruning "
                            "(log count; pruned zeros not shown)", path))
            shown = _mask_to_show(masks)
            path = plots.mask_image(masks[shown], out / "figures" / f"mask_{model_name}.png",
                                    title=model_name, name=shown)
            figures.append((f"{model_name}: mask of {shown} (black = kept)", path))
    for caption, path in figures:
        paths[f"figures/{path.name}"] = path
    remove_stale_figures(out, earlier, {path.name for _, path in figures})
    paths["report"] = report.write_report(out / "report.md", records, title=title, intro=intro,
                                          figures=figures, sections=sections, at=at)
    return paths
