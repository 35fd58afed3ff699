"""Structured pruning and surgery on models with Residual blocks, one channel group at a time.

``dependency.channel_groups`` says which channels go together. Here:

- ``group_scores_of``: one score per channel of each group, the producers' filter scores
  added up (L1: Σ_p ‖w_p[c]‖₁; L2: √Σ_p ‖w_p[c]‖₂²; FPGM, BatchNorm |γ|: summed over the
  producers / norms; group Taylor: a gate on channel c scales every producer's filter c, so
  ∂L/∂gate = Σ_p Σ w_p[c]·g_p[c] is squared per batch and averaged);
- ``group_keep_masks``: the producers' weight masks keeping a group's kept channels;
- ``mask_group_units``: a channel whose every producer filter is masked is silenced whole —
  the producers' bias entries and the BatchNorms' γ_c, β_c masked too (running mean 0 for a
  BatchNorm without γ, β), so it is exactly 0 wherever it is read, in eval and training;
- ``shrink_groups``: a new, smaller model without the silenced channels: producers lose
  filters, BatchNorms their entries, consumers their input channels (or the H'·W' columns
  per channel after a Flatten). Its outputs equal the masked model's.

Dense MACs after surgery: each conv loses OH·OW·kh·kw·(removed outputs × inputs + kept
outputs × removed inputs), i.e. params and MACs are those of the same network with the new
widths (``nnprune.count``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nnprune.nn import from_config
from nnprune.prune import channel_scores as cs
from nnprune.prune.apply import attach_masks, model_masks, named_parameters
from nnprune.prune.channel_routes import columns
from nnprune.prune.dependency import ChannelGroup, channel_groups
from nnprune.prune.groups import group_alive, group_scores
from nnprune.prune.surgery_report import SurgeryReport

GROUP_CRITERIA = ("l1_norm", "l2_norm", "fpgm", "bn_gamma", "taylor_group", "magnitude",
                  "random")


def prunable_groups(model: Any, exclude: tuple[str, ...] = ()) -> list[ChannelGroup]:
    """The groups that may lose channels: not the model's input or output, and no producer's
    weight in ``exclude``."""
    return [g for g in channel_groups(model) if g.fixed is None
            and not any(f"{p}.weight" in exclude for p in g.producers)]


def group_scores_of(model: Any, groups: list[ChannelGroup], criterion: str, *,
                    data: Any = None, seed: int = 0, reduce: str = "l1",
                    num_batches: int = 8) -> dict[str, np.ndarray]:
    """{group name: (width,) float64} channel scores (see the module doc)."""
    if criterion not in GROUP_CRITERIA:
        raise ValueError(f"criterion {criterion!r} cannot score channel groups tied by a "
                         f"residual connection; choose one of {GROUP_CRITERIA}")
    modules = dict(model.named_modules())
    w = {p: modules[p].weight.data for g in groups for p in g.producers}
    if criterion == "random":
        rng = np.random.default_rng(seed)
        return {g.name: rng.random(g.width) for g in groups}
    if criterion == "bn_gamma":
        for g in groups:
            if not g.norms or any(modules[n].weight is None for n in g.norms):
                raise ValueError(f"criterion 'bn_gamma' needs an affine BatchNorm on the "
                                 f"channels of {g.name!r}")
        return {g.name: sum(cs.bn_gamma_scores(modules[n].weight.data) for n in g.norms)
                for g in groups}
    if criterion == "taylor_group":
        from nnprune.prune.channel_criteria import sample_batches, check_sample
        from nnprune.train import gradients

        batches = sample_batches(check_sample(data, criterion), 64, num_batches, seed)
        grads = [gradients(model, b, batch_size=len(b[1])) for b in batches]
        return {g.name: np.mean([np.square(sum(cs.gate_gradient(w[p], gb[f"{p}.weight"])
                                               for p in g.producers)) for gb in grads], axis=0)
                for g in groups}
    if criterion == "fpgm":
        return {g.name: sum(cs.fpgm_scores(w[p]) for p in g.producers) for g in groups}
    norm = {"l1_norm": "l1", "l2_norm": "l2"}.get(criterion, reduce)
    if norm == "l1":
        return {g.name: sum(group_scores(np.abs(w[p]), "filter", "l1") for p in g.producers)
                for g in groups}
    return {g.name: np.sqrt(sum(np.square(group_scores(w[p], "filter", "l2"))
                                for p in g.producers)) for g in groups}


def group_alive_of(model: Any, group: ChannelGroup,
                   masks: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """(width,) bool: channel c is alive while any producer still keeps a weight of filter c."""
    masks = model_masks(model) if masks is None else masks
    alive = np.zeros(group.width, bool)
    for p in group.producers:
        mask = masks.get(f"{p}.weight")
        alive |= np.ones(group.width, bool) if mask is None else group_alive(mask, "filter")
    return alive


def group_keep_masks(model: Any, group: ChannelGroup, keep: np.ndarray) -> dict[str, np.ndarray]:
    """{producer weight name: mask} zero on the filters ``keep`` (bool (width,)) drops."""
    params = named_parameters(model)
    out = {}
    for p in group.producers:
        shape = params[f"{p}.weight"].shape
        out[f"{p}.weight"] = np.broadcast_to(
            np.asarray(keep, np.float64).reshape(-1, *([1] * (len(shape) - 1))), shape).copy()
    return out


def _off(n: int, drop: np.ndarray) -> np.ndarray:
    mask = np.ones(n)
    mask[drop] = 0
    return mask


def mask_group_units(model: Any) -> dict[str, np.ndarray]:
    """Silence every dead channel of every prunable group whole (see the module doc);
    returns {group name: (d,) dead channel indices}. Calling it again changes nothing."""
    modules, params = dict(model.named_modules()), named_parameters(model)
    dead, silenced = {}, {}
    for g in prunable_groups(model):
        drop = np.flatnonzero(~group_alive_of(model, g))
        if not drop.size:
            continue
        dead[g.name] = drop
        for p in g.producers:
            silenced[f"{p}.weight"] = group_keep_masks(model, g, _off(g.width, drop) > 0)[
                f"{p}.weight"]
            if f"{p}.bias" in params:
                silenced[f"{p}.bias"] = _off(g.width, drop)
        for n in g.norms:
            if modules[n].weight is not None:
                silenced[f"{n}.weight"] = silenced[f"{n}.bias"] = _off(g.width, drop)
            else:  # no γ, β: a zero input must be normalised by a zero mean
                modules[n].running_mean[drop] = 0
    attach_masks(model, silenced)
    return dead


def _config_at(config: dict, prefix: str) -> dict:
    """The config dict of the module at dotted ``prefix`` inside a nested model config."""
    node = config
    for part in prefix.split("."):
        node = node["layers"][int(part)] if node["type"] == "Sequential" else node[part]
    return node


def _silent(state: Mapping[str, np.ndarray], config: dict, g: ChannelGroup,
            drop: np.ndarray) -> bool:
    """Whether channels ``drop`` of ``g`` output exactly 0 (weights, biases, γ and β zero)."""
    zero = [state[f"{p}.{k}"][drop] for p in g.producers for k in ("weight", "bias")
            if f"{p}.{k}" in state]
    for n in g.norms:
        affine = _config_at(config, n)["affine"]
        zero += [state[f"{n}.weight"][drop], state[f"{n}.bias"][drop]] if affine else \
            [state[f"{n}.running_mean"][drop]]
    return all(not np.any(z) for z in zero)


def shrink_groups(model: Any, input_shape: tuple[int, ...],
                  masks: Mapping[str, np.ndarray] | None = None
                  ) -> tuple[Any, SurgeryReport]:
    """A new model without the dead channels of every prunable group, and the SurgeryReport.

    A channel is dead when every producer's filter for it is masked (``masks``, default the
    attached ones); at least one channel of each group stays. The dead channels must already
    be silent (``mask_group_units``): otherwise a ValueError names the group, since cutting
    them would change the outputs. The result equals the masked model in eval and train mode.
    """
    masks = model_masks(model) if masks is None else dict(masks)
    config, state, attached = model.config(), model.state_dict(), model_masks(model)
    keeps = {}
    for g in prunable_groups(model):
        alive = group_alive_of(model, g, masks)
        keep = np.flatnonzero(alive) if alive.any() else np.array([0])
        drop = np.setdiff1d(np.arange(g.width), keep)
        if not drop.size:
            continue
        if not _silent(state, config, g, drop):
            raise ValueError(f"channels {drop.tolist()} of the group of {', '.join(g.producers)} "
                             f"still output non-zero values (a bias or BatchNorm β): mask the "
                             f"whole units first (mask_units), then shrink")
        keeps[g.name] = keep
        for arrays in (state, attached):
            for p in g.producers:
                for k in ("weight", "bias"):
                    if f"{p}.{k}" in arrays:
                        arrays[f"{p}.{k}"] = arrays[f"{p}.{k}"][keep]
            for n in g.norms:
                for k in ("weight", "bias", "running_mean", "running_var"):
                    if f"{n}.{k}" in arrays:
                        arrays[f"{n}.{k}"] = arrays[f"{n}.{k}"][keep]
            for c, spatial in g.consumers:
                if f"{c}.weight" in arrays:
                    arrays[f"{c}.weight"] = np.take(arrays[f"{c}.weight"],
                                                    columns(keep, spatial), axis=1)
        for p in g.producers:
            node = _config_at(config, p)
            node["out_channels" if node["type"] == "Conv2d" else "out_features"] = keep.size
        for n in g.norms:
            _config_at(config, n)["num_features"] = keep.size
        for c, spatial in g.consumers:
            node = _config_at(config, c)
            node["in_channels" if node["type"] == "Conv2d" else "in_features"] = \
                keep.size * spatial
    small = from_config(config)
    small.load_state_dict(state)
    params = dict(small.named_parameters())
    for name, mask in attached.items():
        params[name].set_mask(mask)
    small.train(bool(model.training))
    report = SurgeryReport.compare_modules(model, small, input_shape, keeps)
    return small, report
