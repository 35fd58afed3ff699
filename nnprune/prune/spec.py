"""``PruneSpec``: how to prune, checked once where it enters; the functions it is handed to
(``prune_model`` and the mask functions behind it) trust it and check nothing again.

=================== ======================================================================
``criterion``        one of ``scores.CRITERIA`` or ``channel_scores.CHANNEL_CRITERIA``
``sparsity``         the target, a float in [0, 1] (N:M: its fixed 1 − N/M, given None),
                     or {weight name: float} (layer scope, not N:M)
``granularity``      a ``Granularity`` (a string is parsed once, here)
``min_keep``         global scope: entries (groups) every layer keeps, an int >= 0
``prune_io``         True prunes whole classes / image channels too (see ``exclusions``)
``rounding``         "half_up" (k = ⌊s·n + ½⌋) or PyTorch's "half_even"
``reduce``           a group's score: "l1" (Σ|s|) or "l2" (√Σs²)
``layer_norm``       "none", "l2" or "max": group scores per layer before a ranking
``obs``              ``ObsSettings`` of the criterion "obs" (None: the defaults)
=================== ======================================================================

>>> spec = PruneSpec("magnitude", None, granularity="2:4")
>>> spec.sparsity, spec.granularity.nm
(0.5, (2, 4))
>>> PruneSpec("l1_norm", 0.5, granularity="filter").exclusions(["0.weight", "2.weight"])
{'2.weight': 'its units are the classes'}
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterable, Mapping

from nnprune.checks import (check_bool, check_choice, check_int, check_known, check_names,
                            check_number, check_sparsity)
from nnprune.prune.channel_scores import CHANNEL_CRITERIA, LAYER_NORMS
from nnprune.prune.granularity import Granularity, as_granularity
from nnprune.prune.masks import check_rounding
from nnprune.prune.scores import CRITERIA

__all__ = ["PruneSpec", "ObsSettings", "Granularity", "as_granularity", "SCOPES", "IN_EXCLUDE",
           "METHODS"]

SCOPES = ("layer", "global")
METHODS = ("exact", "sparsegpt")
IN_EXCLUDE = "in exclude"  # the reason ``exclusions`` gives for a name the user excluded


@dataclass(frozen=True)
class ObsSettings:
    """How layer-wise OBS runs: ``method`` ("exact" OBC or "sparsegpt"), ``damping`` λ, the
    ``calibration_batches`` of training images the workflows take (of their batch size),
    SparseGPT's ``blocksize`` and the ``loss`` whose curvature weighs the rows globally."""

    method: str = "exact"
    damping: float = 0.01
    calibration_batches: int = 16
    blocksize: int = 128
    loss: str = "cross_entropy"

    def __post_init__(self) -> None:
        check_choice(self.method, "method", METHODS)
        check_number(self.damping, "damping")
        check_int(self.calibration_batches, "calibration_batches", 1)
        check_int(self.blocksize, "blocksize", 1)


@dataclass(frozen=True)
class PruneSpec:
    """How to prune (see the module docstring); every field checked on construction."""

    criterion: str = "magnitude"
    sparsity: float | Mapping[str, float] | None = 0.5
    scope: str = "layer"
    granularity: Granularity | str = "weight"
    exclude: tuple[str, ...] = ()
    min_keep: int = 1
    prune_io: bool = False
    rounding: str = "half_up"
    reduce: str = "l1"
    layer_norm: str = "none"
    seed: int = 0
    obs: ObsSettings | None = None

    def __post_init__(self) -> None:
        put = partial(object.__setattr__, self)  # frozen: only the constructor stores values
        criteria = CRITERIA + CHANNEL_CRITERIA
        if not isinstance(self.criterion, str) or self.criterion not in criteria:
            raise ValueError(f"unknown criterion {self.criterion!r}; choose one of {criteria}")
        check_choice(self.scope, "scope", SCOPES)
        put("granularity", as_granularity(self.granularity))
        put("sparsity", self._checked_sparsity())
        put("exclude", check_names(self.exclude, "exclude"))
        put("min_keep", check_int(self.min_keep, "min_keep", 0))
        check_bool(self.prune_io, "prune_io")
        check_rounding(self.rounding)
        check_choice(self.reduce, "reduce", ("l1", "l2"))
        check_choice(self.layer_norm, "layer_norm", LAYER_NORMS)
        self._check_units()
        self._check_obs()

    def _checked_sparsity(self) -> float | dict[str, float]:
        g = self.granularity
        if not isinstance(self.sparsity, Mapping):
            return g.target(self.sparsity)
        if self.scope != "layer":
            raise ValueError(f"a per-layer sparsity dict needs scope='layer' (global scope "
                             f"ranks all weights against one target), got scope={self.scope!r}")
        if g.is_nm:
            raise ValueError(f"granularity {str(g)!r} fixes the sparsity of every layer at "
                             f"1 - N/M: a per-layer sparsity dict does not apply")
        return {name: check_sparsity(value, f"sparsity[{name!r}]")
                for name, value in self.sparsity.items()}

    def _check_units(self) -> None:
        """Filter criteria and a per-layer normalisation rank whole output units."""
        by_unit = self.criterion in CHANNEL_CRITERIA
        g = self.granularity
        if (by_unit or self.layer_norm != "none") and g not in ("filter", "neuron", "channel"):
            raise ValueError(f"criterion {self.criterion!r} with layer_norm={self.layer_norm!r} "
                             f"ranks whole units: it needs granularity 'filter' or 'neuron', "
                             f"got {str(g)!r}")
        if by_unit and g == "channel":
            raise ValueError(f"criterion {self.criterion!r} scores output units: use granularity "
                             f"'filter' or 'neuron', not 'channel'")

    def _check_obs(self) -> None:
        if self.obs is not None and not isinstance(self.obs, ObsSettings):
            raise TypeError(f"obs must be a layerwise.ObsSettings or None, got "
                            f"{type(self.obs).__name__}")
        if self.criterion != "obs":
            return
        if self.layer_norm != "none" or self.rounding != "half_up":
            raise ValueError("criterion 'obs' counts k = ⌊s·n + ½⌋ and spreads a global target "
                             "by its loss traces: layer_norm and rounding do not apply")
        g = self.granularity
        if g not in ("weight", "channel") and not g.is_nm:
            raise ValueError(f"criterion 'obs' prunes single weights, N:M groups or input "
                             f"channels; granularity {str(g)!r} deletes whole rows or kernels, "
                             f"which layer-wise OBS cannot compensate inside their layer: use "
                             f"'weight', 'N:M' or 'channel' (a producer's filter dies with the "
                             f"channel its consumer no longer reads), or another criterion "
                             f"(e.g. 'obd')")
        if g == "channel" and self.obs_settings.method == "sparsegpt":
            raise ValueError("channel granularity needs method='exact' (group OBS); SparseGPT "
                             "prunes single weights or N:M groups")

    @property
    def obs_settings(self) -> ObsSettings:
        """``obs``, or the default ``ObsSettings()`` when None."""
        return ObsSettings() if self.obs is None else self.obs

    @property
    def per_layer(self) -> bool:
        """True when ``sparsity`` is a dict {weight name: target}."""
        return isinstance(self.sparsity, Mapping)

    @property
    def target(self) -> float | None:
        """The one target of every pruned weight, or None with a per-layer dict."""
        return None if self.per_layer else self.sparsity

    def exclusions(self, names: Iterable[str]) -> dict[str, str]:
        """{name: why} of the prunable weights (``names``, in model order) left dense: the
        user's ``exclude`` (``IN_EXCLUDE``; each must be one of ``names``), then the weight
        the granularity spares (``Granularity.spares``) unless ``prune_io``."""
        names = list(names)
        check_known(self.exclude, names, "exclude", "a prunable weight of the model",
                    "the prunable weights")
        out = {name: IN_EXCLUDE for name in self.exclude}
        if not self.prune_io:
            for name, why in self.granularity.spares(names).items():
                out.setdefault(name, why)
        return out

    def targets(self, names: Iterable[str]) -> dict[str, float]:
        """{name: sparsity} of the weights pruned: ``names`` minus the exclusions, and with a
        per-layer dict only the weights it names (each must be one of ``names``)."""
        names = list(names)
        excluded = self.exclusions(names)
        if not self.per_layer:
            return {name: self.sparsity for name in names if name not in excluded}
        for name in self.sparsity:
            if name not in names:
                raise ValueError(f"unknown layer name {name!r} in sparsity; the layers are "
                                 f"{names}")
            if name in excluded:
                raise ValueError(f"layer {name!r} is both excluded and given a sparsity")
        return {name: self.sparsity[name] for name in names if name in self.sparsity}

    def replace(self, **changes: Any) -> "PruneSpec":
        """A copy with ``changes``, checked again (e.g. the next round's sparsity)."""
        return dataclasses.replace(self, **changes)

