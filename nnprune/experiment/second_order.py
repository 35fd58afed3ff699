"""What the second-order criteria need from the data: obd the Hessian diagonal
(``curvature_diag.hessian_diagonals``), obs the calibration samples themselves, both drawn
from the training split by ``seed`` (the same samples for every run of a sweep).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nnprune.checks import check_choice, check_int
from nnprune.curvature_diag import HESSIANS, hessian_diagonals
from nnprune.prune.layerwise import ObsSettings
from nnprune.prune.scores import NEEDS_CALIBRATION, NEEDS_HESSIAN

SECOND_ORDER = NEEDS_HESSIAN + NEEDS_CALIBRATION


@dataclass(frozen=True)
class SecondOrder:
    """Settings of the second-order criteria: the ``hessian`` diagonal OBD uses (one of
    ``curvature_diag.HESSIANS``), Hutchinson's ``samples``, and layer-wise OBS's ``obs``."""

    hessian: str = "gauss-newton"
    obs: ObsSettings = field(default_factory=ObsSettings)
    samples: int = 100

    def __post_init__(self) -> None:
        check_choice(self.hessian, "hessian", HESSIANS)
        if not isinstance(self.obs, ObsSettings):
            raise TypeError(f"obs must be an ObsSettings, got {type(self.obs).__name__}")
        check_int(self.samples, "samples", 1)


def calibration_data(data: Any, batches: int, batch_size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): ``batches`` × ``batch_size`` training samples (all, if fewer), drawn by ``seed``."""
    order = np.random.default_rng(seed).permutation(len(data.x_train))[:batches * batch_size]
    return data.x_train[order], data.y_train[order]


def second_order_inputs(criterion: str, model: Any, data: Any, settings: SecondOrder | None,
                        batch_size: int, seed: int) -> dict[str, Any]:
    """The keyword arguments ``prune_model`` needs for ``criterion`` ({} for first-order
    criteria): ``hessian_diag`` for obd, ``calibration`` and ``obs`` for obs."""
    if criterion not in SECOND_ORDER:
        return {}
    settings = SecondOrder() if settings is None else settings
    if not isinstance(settings, SecondOrder):
        raise TypeError(f"second_order must be a SecondOrder or None, got "
                        f"{type(settings).__name__}")
    x, y = calibration_data(data, settings.obs.calibration_batches, batch_size, seed)
    if criterion == "obs":
        return {"calibration": (x, y), "obs": settings.obs}
    return {"hessian_diag": hessian_diagonals(model, x, y, settings.hessian,
                                              samples=settings.samples, seed=seed)}


def describe(criterion: str, settings: SecondOrder | None) -> dict[str, Any]:
    """The record's fields for a second-order run: ``hessian`` (obd), ``obs_method`` and
    ``damping`` (obs); {} otherwise."""
    settings = SecondOrder() if settings is None else settings
    if criterion == "obd":
        return {"hessian": settings.hessian}
    if criterion == "obs":
        return {"obs_method": settings.obs.method, "damping": settings.obs.damping,
                "calibration_batches": settings.obs.calibration_batches}
    return {}


VARIANTS = tuple(f"obd:{h}" for h in HESSIANS) + ("obs:exact", "obs:sparsegpt")


def split_variant(name: str, settings: SecondOrder | None = None
                  ) -> tuple[str, SecondOrder | None]:
    """A sweep's criterion name -> (criterion, settings): ``obd:fisher`` is obd with the
    Fisher diagonal, ``obs:sparsegpt`` obs by SparseGPT; a plain name keeps ``settings``.

    >>> split_variant("obd:fisher")[1].hessian
    'fisher'
    """
    if ":" not in name:
        return name, settings
    if name not in VARIANTS:
        raise ValueError(f"unknown criterion variant {name!r}; choose one of {VARIANTS}")
    base, kind = name.split(":")
    settings = SecondOrder() if settings is None else settings
    if base == "obd":
        return base, replace(settings, hessian=kind)
    return base, replace(settings, obs=replace(settings.obs, method=kind))


def check_first_order(criterion: str, workflow: str) -> None:
    """Refuse obd/obs in a workflow that prunes during training or rewinds."""
    if criterion in SECOND_ORDER:
        raise ValueError(f"{workflow} does not run the second-order criterion {criterion!r}: "
                         f"use the oneshot or iterative schedule")
