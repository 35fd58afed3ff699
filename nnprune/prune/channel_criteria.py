"""Filter criteria on a model: what each criterion of ``channel_scores`` needs, and the ranking.

``prune_model(model, criterion, sparsity, granularity="filter", ...)`` with a criterion of
``CHANNEL_CRITERIA`` scores each output unit of every pruned Conv2d / Linear here:

- ``l1_norm``, ``l2_norm``, ``fpgm``: from the weight alone;
- ``bn_gamma``: from the γ of the affine BatchNorm that follows the layer;
- ``taylor_group``: from the gradients of ``num_batches`` mini-batches of ``data``;
- ``apoz``, ``mean_activation``: from the activations of the unit's channel after the layers
  that keep channels apart (BatchNorm, ReLU, Tanh) on ``num_batches`` batches, in eval mode.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from nnprune.autograd import Tensor, no_grad
from nnprune.prune import channel_scores as cs
from nnprune.prune.surgery.routes import find_route, layer_configs
from nnprune.prune.groups import expand_group_mask, group_alive
from nnprune.prune.protocol import eval_mode
from nnprune.prune.report import PruneReport
from nnprune.prune.granularity import WEIGHT
from nnprune.prune.scope import global_topk, layer_topk

if TYPE_CHECKING:
    from nnprune.prune.spec import PruneSpec

CHANNEL_CRITERIA, NEEDS_DATA = cs.CHANNEL_CRITERIA, cs.NEEDS_DATA


def check_sample(data: Any, criterion: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as an (x, y) pair of arrays for ``criterion``, or a ValueError saying why not."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"criterion {criterion!r} needs data=(x, y): a sample of training "
                         f"inputs and labels to run the model on, got {type(data).__name__}")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"data must be (x, y) with as many labels as inputs (>= 1), got "
                         f"{len(x)} inputs and {len(y)} labels")
    return x, y


def sample_batches(data: tuple[np.ndarray, np.ndarray], batch_size: int, num_batches: int,
             seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``num_batches`` batches of a pass over ``data`` shuffled by ``seed``."""
    x, y = data
    order = np.random.default_rng(seed).permutation(len(x))
    starts = range(0, len(x), batch_size)[:num_batches]
    return [(x[order[s:s + batch_size]], y[order[s:s + batch_size]]) for s in starts]


def _layer(name: str) -> int:
    return int(name.split(".")[0])


def following_gamma(model: Any, configs: list, name: str) -> np.ndarray:
    """γ of the affine BatchNorm on the way from layer ``name``'s outputs to their consumer."""
    route = find_route(configs, _layer(name))
    for j, per_column in route.norms:
        if not per_column and configs[j]["affine"]:
            return np.asarray(model[j].weight.data)
    raise ValueError(f"criterion 'bn_gamma' needs an affine BatchNorm after {name}, and "
                     f"layer {_layer(name)} ({configs[_layer(name)]['type']}) has none before "
                     f"its consumer: exclude it or use another criterion")


def _activation_points(configs: list, names: list[str]) -> dict[str, int]:
    """{weight name: the layer whose output is that unit's activation}: the last BatchNorm,
    ReLU or Tanh right after the producer (the producer itself if none)."""
    points = {}
    for name in names:
        i = _layer(name)
        route, point = find_route(configs, i), i
        for j in route.through:
            if configs[j]["type"] not in ("BatchNorm2d", "BatchNorm1d", "ReLU", "Tanh"):
                break
            point = j
        points[name] = point
    return points


def _activations(model: Any, batches: list, points: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The outputs of the layers ``points`` on every batch, in eval mode: {name: (N, F, ...)}."""
    dtype = next(iter(model.parameters())).dtype
    wanted = set(points.values())
    seen: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    with eval_mode(model), no_grad():
        for x, _ in batches:
            out = Tensor(np.asarray(x), dtype=dtype)
            for i, layer in enumerate(model):
                out = layer(out)
                if i in wanted:
                    seen[i].append(out.data)
                if i >= max(wanted):
                    break
    return {name: np.concatenate(seen[i]) for name, i in points.items()}


def unit_scores(model: Any, criterion: str, names: list[str], data: Any = None, *,
                batch_size: int = 64, num_batches: int = 8, seed: int = 0
                ) -> dict[str, np.ndarray]:
    """{weight name: (F,) float64 score per output unit} of the layers ``names`` of a
    ``Sequential`` by ``criterion`` (one of ``CHANNEL_CRITERIA``, see the module doc)."""
    if criterion not in CHANNEL_CRITERIA:
        raise ValueError(f"unknown channel criterion {criterion!r}; choose one of "
                         f"{CHANNEL_CRITERIA}")
    weights = {name: p.data for name, p in model.named_parameters() if name in names}
    if criterion in ("l1_norm", "l2_norm"):
        return {n: cs.filter_norm_scores(w, criterion[:2]) for n, w in weights.items()}
    if criterion == "fpgm":
        return {n: cs.fpgm_scores(w) for n, w in weights.items()}
    configs = layer_configs(model)
    if criterion == "bn_gamma":
        return {n: cs.bn_gamma_scores(following_gamma(model, configs, n)) for n in names}
    batches = sample_batches(check_sample(data, criterion), batch_size, num_batches, seed)
    if criterion == "taylor_group":
        from nnprune.train import gradients  # the loss and its backward pass live there

        grads = [gradients(model, b, batch_size=len(b[1])) for b in batches]
        return {n: cs.taylor_group_scores(w, [g[n] for g in grads]) for n, w in weights.items()}
    acts = _activations(model, batches, _activation_points(configs, names))
    score = cs.apoz_scores if criterion == "apoz" else cs.mean_activation_scores
    return {n: score(a) for n, a in acts.items()}


def ranked_group_masks(group: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray],
                       old: Mapping[str, np.ndarray], spec: PruneSpec,
                       targets: Mapping[str, float]) -> tuple[dict[str, np.ndarray], PruneReport]:
    """Masks from one score per group: rank the groups, expand the kept ones to the weights.

    {name: (G,)} group scores, {name: weight}, {name: existing mask} -> ({name: mask},
    PruneReport counted in weights). Dead groups (all zero in ``old``) are pruned first;
    ``spec.layer_norm`` puts each layer's scores on a common scale. ``targets``: {name:
    sparsity} of the weights pruned; the fraction counts groups (``spec.scope``).
    """
    g = spec.granularity
    olds = {n: np.asarray(old[n], np.float64) if n in old else np.ones(np.shape(w))
            for n, w in weights.items()}
    alive = {n: group_alive(olds[n], g).astype(np.float64) for n in weights}
    scores = {n: cs.normalise_layer(np.asarray(group[n]) * alive[n], spec.layer_norm)
              if n in group else np.zeros(alive[n].shape) for n in weights}
    if spec.scope == "layer":
        keep = layer_topk(scores, alive, targets, WEIGHT, "l1", spec.rounding)
    else:
        keep = global_topk(scores, alive, [n for n in weights if n in targets], spec.target,
                           WEIGHT, "l1", spec.rounding, spec.min_keep)
    masks = {n: expand_group_mask(keep[n], np.shape(weights[n]), g) * olds[n]
             for n in weights}
    skipped = tuple(n for n in weights if n not in targets)
    return masks, PruneReport.from_masks(masks, skipped, spec.target)

