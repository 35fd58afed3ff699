"""Figures of a pruning experiment, written to PNG files (never a window).

Each function builds a ``matplotlib.figure.Figure`` on the Agg canvas directly (no
``pyplot``), so it neither opens a window nor changes the caller's backend, writes the file
and returns its path.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nnprune.checks import check_int
from nnprune.experiment.results import check_path, check_records

PathLike = str | os.PathLike


def _check_path(path: Any) -> Path:
    path = check_path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (figures are PNG files), got {str(path)!r}")
    return path


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)  # attach the raster canvas: no GUI backend is ever involved
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _percent(value: Any) -> float:
    return 100.0 * float(value)


# ---------------------------------------------------------------------- accuracy vs sparsity
def accuracy_vs_sparsity(records: Sequence[Mapping[str, Any]], path: PathLike, *,
                         title: str = "Test accuracy against sparsity") -> Path:
    """Plot test accuracy (%) against target sparsity (%) for every series of ``records``.

    A record needs ``criterion``, ``sparsity``, ``accuracy_before_finetune`` and
    ``accuracy_after_finetune`` (None when not fine-tuned); records differing in ``scope``
    or ``granularity`` become separate series. One colour per series: the solid line is
    after fine-tuning, the dashed line with hollow markers without it. The dense accuracy
    (``accuracy_dense``, if present) is a grey dotted line.
    """
    records = check_records(records, ("criterion", "sparsity", "accuracy_before_finetune"),
                            "there is nothing to plot")
    keys = ["criterion"] + [k for k in ("scope", "granularity")
                            if len({str(r.get(k)) for r in records}) > 1]
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        series.setdefault(", ".join(str(r[k]) for k in keys), []).append(r)  # "magnitude, global"

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(series))]
    for color, (label, rows) in zip(colors, series.items()):
        rows = sorted(rows, key=lambda r: float(r["sparsity"]))
        x = [_percent(r["sparsity"]) for r in rows]
        tuned = [(xi, _percent(r["accuracy_after_finetune"])) for xi, r in zip(x, rows)
                 if r.get("accuracy_after_finetune") is not None]
        if tuned:
            ax.plot(*zip(*tuned), color=color, marker="o", linestyle="-",
                    label=f"{label} (fine-tuned)")
        ax.plot(x, [_percent(r["accuracy_before_finetune"]) for r in rows], color=color,
                marker="o", markerfacecolor="none", linestyle="--",
                label=f"{label} (no fine-tuning)")
    dense = [float(r["accuracy_dense"]) for r in records if r.get("accuracy_dense") is not None]
    if dense:
        ax.axhline(_percent(np.mean(dense)), color="0.4", linestyle=":", linewidth=1.2,
                   label=f"dense model ({_percent(np.mean(dense)):.1f}%)")
    ax.set_xlabel("sparsity (% of weights pruned)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2 if len(series) > 3 else 1)
    fig.tight_layout()
    return _save(fig, _check_path(path))


def accuracy_vs_macs(points: Sequence[tuple[str, float, float]], path: PathLike, *,
                     title: str = "Test accuracy against the MACs run") -> Path:
    """A scatter of (label, MACs per image, accuracy) points, one marker and label each."""
    if not points:
        raise ValueError("points is empty: nothing to plot")
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    markers = "o s ^ v D P X * < > h p d".split()
    colours = [f"C{i}" for i in range(10)] + ["black", "olive", "navy"]
    for i, (label, macs, acc) in enumerate(points):
        # hollow, each point its own marker and colour: criteria at equal MACs and accuracy
        # overlap, and stay distinguishable
        ax.scatter([macs], [_percent(acc)], marker=markers[i % len(markers)], s=46,
                   facecolors="none", edgecolors=colours[i % len(colours)], linewidths=1.4,
                   label=label)
    ax.set_xscale("log")
    ax.set_xlabel("MACs per image (dense, or effective for unstructured)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, _check_path(path))


def sensitivity_plot(result: Mapping[str, Any], path: PathLike, *,
                     tolerance: float | None = None, title: str | None = None) -> Path:
    """One curve per layer: accuracy (%) against the fraction of its filters pruned."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    curves = result["curves"]
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for colour, (name, curve) in zip(colours, curves.items()):
        r, acc = np.asarray(curve, dtype=float).T
        ax.plot(100 * r, 100 * acc, marker="o", ms=3, color=colour, label=name)
    dense = 100 * result["accuracy_dense"]
    ax.axhline(dense, color="0.5", lw=0.8, ls=":")
    if tolerance is not None:
        ax.axhline(dense - 100 * tolerance, color="0.3", lw=0.8, ls="--",
                   label=f"dense − {100 * tolerance:g} points")
    ax.set_xlabel(f"{result['granularity']}s pruned in that layer alone (%)")
    ax.set_ylabel("accuracy, no fine-tuning (%)")
    ax.set_title(title or f"Sensitivity to pruning ({result['criterion']})")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, Path(path))


# ---------------------------------------------------------------------- per-layer sparsity
def layer_sparsity_bars(per_layer: Mapping[str, Mapping[str, float]], path: PathLike, *,
                        title: str = "Sparsity reached per layer") -> Path:
    """Grouped bars of the sparsity (%) each layer reached, one bar per series.

    ``per_layer``: ``{series label: {layer name: sparsity in [0, 1]}}``, e.g. global and
    layer-wise magnitude pruning at the same overall sparsity. Layers appear in the order
    they are first met.
    """
    if not isinstance(per_layer, Mapping) or not per_layer:
        raise ValueError("per_layer must be a non-empty dict {series: {layer: sparsity}}, "
                         f"got {per_layer!r}")
    layers: list[str] = []
    for label, values in per_layer.items():
        if not isinstance(values, Mapping) or not values:
            raise ValueError(f"per_layer[{label!r}] must be a non-empty dict {{layer: "
                             f"sparsity}}, got {values!r}")
        for name, s in values.items():
            if not 0.0 <= float(s) <= 1.0:
                raise ValueError(f"per_layer[{label!r}][{name!r}] must be a sparsity in "
                                 f"[0, 1], got {s!r}")
            if name not in layers:
                layers.append(name)

    fig = Figure(figsize=(max(6.5, 1.1 * len(layers) + 2.5), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / len(per_layer)
    x = np.arange(len(layers))
    for i, (label, values) in enumerate(per_layer.items()):
        heights = [_percent(values.get(name, 0.0)) for name in layers]
        bars = ax.bar(x + (i - (len(per_layer) - 1) / 2) * width, heights, width, label=label,
                      color=f"C{i % 10}")
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(x, layers, rotation=30 if len(layers) > 6 else 0, ha="right"
                  if len(layers) > 6 else "center")
    ax.set_xlabel("layer (parameter name)")
    ax.set_ylabel("sparsity (% of the layer's weights pruned)")
    ax.set_ylim(0, 110)
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, _check_path(path))


# ---------------------------------------------------------------------- weight histograms
def _flat_weights(weights: Any, name: str) -> np.ndarray:
    if isinstance(weights, Mapping):
        arrays = [np.asarray(w, dtype=np.float64).ravel() for w in weights.values()]
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
    else:
        flat = np.asarray(weights, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError(f"{name} holds no weights")
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{name} holds NaN or infinite weights")
    return flat


def weight_histograms(before: Any, after: Any, path: PathLike, *, bins: int = 80,
                      title: str = "Weight distribution before and after pruning") -> Path:
    """Histograms of the weights before and after pruning, on a log-scaled count axis.

    ``before``/``after``: an array or ``{name: array}`` (all arrays are pooled). The pruned
    zeros are **excluded** from the "after" histogram (otherwise one bar at 0 dwarfs the
    rest) and their number is given in its legend entry; the "before" histogram shows every
    weight. Both use the same bins, so the gap magnitude pruning cuts around 0 is visible.
    """
    check_int(bins, "bins", 1)
    w_before, w_after = _flat_weights(before, "before"), _flat_weights(after, "after")
    zeros = int(np.count_nonzero(w_after == 0))
    kept = w_after[w_after != 0]
    low, high = float(w_before.min()), float(w_before.max())
    if kept.size:
        low, high = min(low, float(kept.min())), max(high, float(kept.max()))
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)

    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot()
    ax.hist(w_before, bins=edges, color="C0", alpha=0.55,
            label=f"before pruning ({w_before.size:,} weights)")
    if kept.size:
        ax.hist(kept, bins=edges, color="C3", histtype="step", linewidth=1.6,
                label=f"after pruning, non-zero ({kept.size:,}; {zeros:,} zeros not shown)")
    ax.set_yscale("log")
    peak = np.histogram(w_before, bins=edges)[0].max()
    ax.set_ylim(0.7, 20.0 * max(peak, 1))  # head-room on the log axis for the legend
    ax.set_xlabel("weight value")
    ax.set_ylabel("count (log scale)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, _check_path(path))


# ---------------------------------------------------------------------- mask image
def mask_matrix(mask: Any) -> np.ndarray:
    """A mask as a 2-D matrix: (F, C, kh, kw) -> (F, C·kh·kw); (out, in) stays; (n,) -> (1, n).

    >>> mask_matrix(np.ones((4, 3, 2, 5))).shape
    (4, 30)
    """
    mask = np.asarray(mask)
    if mask.ndim == 0 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty array of at least 1 dimension, "
                         f"got shape {mask.shape}")
    if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must contain only 0 and 1")
    return mask.reshape(1, -1) if mask.ndim == 1 else mask.reshape(mask.shape[0], -1)


def mask_image(mask: Any, path: PathLike, *, title: str = "Pruning mask",
               name: str = "") -> Path:
    """Draw a 0/1 mask as an image: black = kept weight, white = pruned.

    A conv mask (F, C, kh, kw) is drawn as (F, C·kh·kw): one row per output filter, its
    C·kh·kw inputs along the row; a linear mask (out, in) as it is.
    """
    matrix = mask_matrix(mask)
    rows, cols = matrix.shape
    aspect = cols / rows
    fig = Figure(figsize=(min(10.0, max(5.5, 1.2 + 4.0 * np.sqrt(aspect))),
                          min(8.0, max(3.0, 1.2 + 4.0 / np.sqrt(aspect)))))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    conv = np.ndim(mask) == 4
    ax.set_xlabel("input (C·kh·kw)" if conv else "input feature")
    ax.set_ylabel("output filter" if conv else "output unit")
    density = float(matrix.mean())
    label = f" {name}" if name else ""
    ax.set_title(f"{title}{label}\n{rows}×{cols}, {100 * (1 - density):.1f}% pruned "
                 "(black = kept, white = pruned)", fontsize=10)
    fig.tight_layout()
    return _save(fig, _check_path(path))
