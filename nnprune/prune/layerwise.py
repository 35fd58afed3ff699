"""Layer-wise OBS on a model: calibrate each Linear and Conv2d, prune it, compensate, mask it.

Optimal Brain Compression (Frantar, Singh & Alistarh 2022) prunes a network one layer at a
time. Layer l sees the calibration images after the layers before it **were already pruned**,
so each layer also makes up for the errors of the ones before. Its Hessian is H = 2XXᵀ/N of
its inputs X (``layer_hessian``), damped as H + λ·mean(diag H)·I (λ = ``damping``), shared
by the rows of W: ``obc.py`` prunes them exactly (``"exact"``), ``sparsegpt.py`` in one pass.

**How much each layer keeps.** ``scope="layer"`` gives every layer the same target (or a
dict of them). ``scope="global"`` spreads one target over the layers as OBC does, by their
loss traces: every row's greedy OBS steps, each row's reconstruction error put in loss units
by the mean Gauss–Newton curvature of the loss in that unit (``curvature_diag.
unit_curvature``: ½ c_i E[δa_i²] is the loss rise of an error δa_i in unit i), are merged and
the k cheapest taken, each row a prefix of its trace (``obc.select_counts``). The traces of
the dense model fix every layer's count; the second pass prunes layer by layer on the pruned
model's inputs. With ``"sparsegpt"`` (no traces) each layer is pruned at the sparsities of
``GRID`` and its weighted loss interpolated between them.

Granularity: ``weight``, ``"N:M"`` (in a conv, m consecutive channels at each kernel
position, as ``groups.nm_mask``), or ``channel``: whole input channels, by greedy group OBS
(``obc.group_traces``, OBC's structured case). Whole filters or neurons are refused:
deleting a row cannot be compensated inside its layer.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from nnprune import nn
from nnprune.autograd.tensor import Tensor
from nnprune.curvature_diag import unit_curvature
from nnprune.functional.conv_plain import patches
from nnprune.prune.masks import count
from nnprune.prune.obc import (damp, group_traces, masks_from_counts, obc_traces,
                               reconstruction_loss, refit_rows, select_counts)
from nnprune.prune.report import PruneReport
from nnprune.prune.sparsegpt import sparsegpt
from nnprune.prune.protocol import PrunableModel, eval_mode
from nnprune.prune.spec import METHODS, ObsSettings, PruneSpec  # noqa: F401 (re-exported)


def layer_hessian(layer: Any, x: np.ndarray) -> np.ndarray:
    """H = 2 X Xᵀ / N of a Linear or Conv2d from its input batch x: (d, d), d = in or C·kh·kw.

    X's rows: (N, in) for a Linear, (N·OH·OW, C·kh·kw) for a Conv2d (its receptive fields).
    """
    x = np.asarray(x, dtype=np.float64)
    if isinstance(layer, nn.Linear):
        rows = x.reshape(len(x), -1)
    else:
        cols = patches(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        rows = cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])
    return 2.0 * rows.T @ rows / len(rows)


def _chain(model: Any) -> list[Any]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"layer-wise OBS needs an nn.Sequential, got {type(model).__name__}")
    for i, layer in enumerate(model):
        if any(True for _ in layer.parameters()) and not isinstance(
                layer, (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)):
            raise ValueError(f"layer {i} ({type(layer).__name__}) has parameters that "
                             f"layer-wise OBS cannot prune or pass: it handles Linear and "
                             f"Conv2d weights between parameter-free layers and BatchNorm")
    return list(model)


def _groups(layer: Any, nm: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Group id of each input column for N:M, j // m (Linear) or (c // m, i, j) (Conv2d), and
    the span of consecutive columns a group lies in (m, or m·kh·kw)."""
    w = layer.weight.data
    if w.ndim == 2:
        return np.arange(w.shape[1]) // nm[1], nm[1]
    c, k = w.shape[1], w.shape[2] * w.shape[3]
    return ((np.arange(c)[:, None] // nm[1]) * k + np.arange(k)[None, :]).ravel(), nm[1] * k


def _forward(layer: Any, x: np.ndarray) -> np.ndarray:
    params = list(layer.parameters())  # the layer's own dtype (float64 without parameters)
    return layer(Tensor(x.astype(params[0].dtype if params else np.float64, copy=False))).data


def _prune_layer(w, h, count, alive, settings, nm, groups, traces=None):
    """(Ŵ, mask) of one layer's (R, d) weight: ``count`` deletions, or N:M."""
    gid, span = groups if groups is not None else (None, 1)
    if settings.method == "sparsegpt":
        block = max(span, (settings.blocksize // span) * span)  # whole N:M groups per block
        return sparsegpt(w, h, sparsity=None if nm else count / w.size, alive=alive, nm=nm,
                         blocksize=block, groups=gid)
    order, losses = traces if traces is not None else obc_traces(
        w, h, alive, None if nm is None else (gid, nm[1] - nm[0]))
    counts = select_counts(losses, w.size if nm is not None else count)
    counts = np.maximum(counts, (~alive).sum(axis=1))  # never revive
    mask = masks_from_counts(order, counts, w.shape[1])
    return refit_rows(w, h, mask), mask


def _channels(layer: Any) -> np.ndarray:
    """(G, q): the input columns of each input channel, kh·kw of them (Conv2d) or one
    (Linear), in the order of ``w.reshape(F, -1)``."""
    w = layer.weight.data
    k = int(np.prod(w.shape[2:])) if w.ndim == 4 else 1
    return np.arange(w.shape[1] * k).reshape(w.shape[1], k)


def _dead(alive: np.ndarray, chans: np.ndarray) -> np.ndarray:
    """(G,) the channels whose every weight is pruned already."""
    return ~alive[:, chans].any(axis=(0, 2))


def _prune_channels(w, h, count, alive, chans, traces=None):
    """(Ŵ, mask) deleting ``count`` input channels by greedy group OBS (``group_traces``)."""
    dead = _dead(alive, chans)
    order, _ = traces if traces is not None else group_traces(w, h, chans, dead=dead)
    mask = alive.copy()
    mask[:, chans[order[:max(int(count), int(dead.sum()))]].ravel()] = False
    return refit_rows(w, h, mask), mask.astype(np.float64)


def obs_prune_model(model: PrunableModel, calibration: np.ndarray,
                    sparsity: float | Mapping[str, float], scope: str = "global",
                    granularity: str = "weight", exclude: Iterable[str] = (),
                    settings: ObsSettings = ObsSettings(), labels: np.ndarray | None = None,
                    min_keep: int = 1) -> PruneReport:
    """Prune every Linear/Conv2d weight of ``model`` (not in ``exclude``) by layer-wise OBS.

    ``calibration``: (N, …) training inputs; ``labels`` (N,) the classes, needed by
    ``scope="global"`` (the loss curvature that weighs the rows). Masks are attached and the
    compensated weights written back. Returns the sparsity reached (a ``PruneReport``).
    """
    spec = PruneSpec("obs", sparsity, scope, granularity, exclude, min_keep, prune_io=True,
                     obs=settings)
    return prune_obs(model, spec, calibration, labels)


def prune_obs(model: PrunableModel, spec: PruneSpec, calibration: np.ndarray,
              labels: np.ndarray | None = None,
              targets: Mapping[str, float] | None = None) -> PruneReport:
    """``obs_prune_model`` of a checked spec (criterion "obs"); ``targets``: {weight name:
    sparsity} of the weights pruned (``spec.targets`` of the layers' weights when None)."""
    layers = _chain(model)
    x = np.asarray(calibration)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"calibration must be a batch of inputs (N, ...), got shape {x.shape}")
    names = {i: f"{i}.weight" for i, layer in enumerate(layers)
             if isinstance(layer, (nn.Linear, nn.Conv2d))}
    targets = spec.targets(names.values()) if targets is None else targets
    pruned = [i for i, name in names.items() if name in targets]
    for i in pruned:
        if spec.granularity.is_nm and not spec.granularity.fits(layers[i].weight.shape):
            raise ValueError(f"granularity {str(spec.granularity)!r} groups "
                             f"{spec.granularity.m} consecutive inputs, but {names[i]} "
                             f"{layers[i].weight.shape} has {layers[i].weight.shape[1]}: "
                             f"exclude it")
    alive = {i: _alive(layers[i].weight) for i in pruned}
    counts, first = _counts(model, layers, pruned, alive, x, labels, spec,
                            {i: targets[names[i]] for i in pruned})
    _prune_pass(model, layers, pruned, alive, counts, first, x, spec)
    masks = {name: (p.mask if p.mask is not None else np.ones(p.shape))
             for name, p in model.named_parameters() if name in names.values()}
    return PruneReport.from_masks(masks, [n for i, n in names.items() if i not in pruned],
                                  spec.target)


def _alive(p: Any) -> np.ndarray:
    """(R, d) bool: the entries of a weight not masked yet, one row per output unit."""
    alive = p.mask != 0 if p.mask is not None else np.ones(p.shape, bool)
    return alive.reshape(len(p.data), -1)


def _counts(model, layers, pruned, alive, x, labels, spec, targets):
    """({layer: deletions (None for N:M)}, {layer: dense traces}) of every layer pruned: its
    own target, or a share of one global target by the loss traces (``_global_counts``)."""
    if spec.granularity.is_nm:
        return {i: None for i in pruned}, {}
    channel = spec.granularity == "channel"  # counts and targets in input channels
    sizes = {i: len(_channels(layers[i])) if channel else layers[i].weight.data.size
             for i in pruned}
    if spec.scope == "layer" or spec.per_layer:
        return {i: count(sizes[i], targets[i], "half_up") for i in pruned}, {}
    return _global_counts(model, layers, pruned, alive, x, labels, spec.sparsity,
                          spec.obs_settings, spec.min_keep, channel)


def _prune_pass(model, layers, pruned, alive, counts, first, x, spec):
    """Layer by layer on the pruned model's inputs: prune, compensate, write back, mask."""
    settings, nm = spec.obs_settings, spec.granularity.nm
    with eval_mode(model):
        for i, layer in enumerate(layers):
            if i in pruned:
                p = layer.weight
                w = p.data.reshape(len(p.data), -1).astype(np.float64)
                h = damp(layer_hessian(layer, x), settings.damping)
                if spec.granularity == "channel":
                    new, mask = _prune_channels(w, h, counts[i], alive[i], _channels(layer),
                                                first.get(i))
                else:
                    new, mask = _prune_layer(w, h, counts[i], alive[i], settings, nm,
                                             None if nm is None else _groups(layer, nm),
                                             first.get(i))
                p.data[...] = new.reshape(p.shape).astype(p.dtype)
                p.set_mask(mask.reshape(p.shape).astype(p.dtype))
            x = _forward(layer, x)


GRID = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
CURVATURE_SAMPLES = 256  # enough to estimate the mean curvature of a unit


def _sparsegpt_steps(w, h, c, alive, blocksize):
    """(1, R·d) cost of each further deletion in one layer: SparseGPT run at the sparsities
    of ``GRID``, its curvature-weighted loss interpolated linearly between them."""
    counts, losses = [], []
    for s in GRID:
        new, _ = sparsegpt(w, h, sparsity=s, alive=alive, blocksize=blocksize)
        counts.append(count(w.size, s, "half_up"))
        losses.append(float((c[:, 0] * reconstruction_loss(w, new, h)).sum()))
    steps = np.concatenate([np.full(b - a, (lb - la) / max(1, b - a))
                            for a, b, la, lb in zip(counts, counts[1:], losses, losses[1:])])
    return steps[None, :]


def _global_counts(model, layers, pruned, alive, x, labels, sparsity, settings, min_keep,
                   channel=False):
    """Each layer's deletions for one global target, from the dense model's traces."""
    if labels is None:
        raise ValueError("scope='global' needs labels for the calibration inputs (the loss "
                         "curvature weighs each row's error)")
    few = slice(0, CURVATURE_SAMPLES)
    curvature = unit_curvature(model, x[few], np.asarray(labels)[few], settings.loss)
    steps, traces = {}, {}
    with eval_mode(model):
        for i, layer in enumerate(layers):
            if i in pruned:
                w = layer.weight.data.reshape(len(layer.weight.data), -1).astype(np.float64)
                h = damp(layer_hessian(layer, x), settings.damping)
                c = curvature[str(i)][:, None]
                if channel:
                    chans = _channels(layer)
                    traces[i] = group_traces(w, h, chans, c[:, 0], _dead(alive[i], chans))
                    steps[i] = traces[i][1][None, :]
                elif settings.method == "exact":
                    traces[i] = obc_traces(w, h, alive[i])
                    steps[i] = c * traces[i][1]
                else:
                    steps[i] = _sparsegpt_steps(w, h, c, alive[i], settings.blocksize)
            x = _forward(layer, x)
    total = sum(steps[i].size for i in pruned)
    width = max(s.shape[1] for s in steps.values())
    # every row of every layer, its steps in loss units, padded with +inf to one width
    losses = np.vstack([np.pad(steps[i], ((0, 0), (0, width - steps[i].shape[1])),
                               constant_values=np.inf) for i in pruned])
    owner = np.concatenate([np.full(len(steps[i]), i) for i in pruned])
    per_row = select_counts(losses, count(total, sparsity, "half_up"))
    first = {pruned[0]: traces[pruned[0]]} if settings.method == "exact" and pruned else {}
    # min_keep: no layer is emptied; a layer over its cap prunes fewer (the report says so)
    return {i: int(min(per_row[owner == i].sum(), max(0, steps[i].size - min_keep)))
            for i in pruned}, first
