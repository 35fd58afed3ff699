"""Training that diverges is an error: what ``train.fit`` watches, and the error it raises.

``fit`` refuses inputs that are not finite (naming the first bad sample) and, while it
trains, raises ``DivergenceError`` as soon as one of these holds:

- a batch's cross-entropy is NaN or ±∞, or more than ``LOSS_FACTOR`` (10) times the
  reference r = max(L₁, ln K), where L₁ is the first batch's loss and ln K the loss of a
  uniform guess over K classes (after the first epoch, r = max(L₁, ln K, Ē₁) with Ē₁ that
  epoch's mean loss);
- an epoch's mean loss is not finite or above ``LOSS_FACTOR``·r;
- after an epoch, a parameter or a buffer (BatchNorm statistics) holds NaN or ±∞;
- an epoch ends at chance in a way that only divergence explains: in every batch (of two or
  more samples) all predictions fell on one class, i.e. the output no longer depends on the
  input (a network whose ReLUs all died outputs its last biases), and either a batch loss
  had spiked above ``SPIKE_FACTOR`` (3)·max(L₁, ln K), or an earlier epoch had reached at
  least a quarter of the way from chance to perfect accuracy (1/K + (1 − 1/K)/4).

A network that is merely slow (a tiny rate, or pruned so hard that it cannot learn) does
none of these. ``DivergenceError`` is a ``ValueError`` (the rate was the wrong value for
this model and data) whose message suggests a rate ten times smaller.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

LOSS_FACTOR = 10.0
SPIKE_FACTOR = 3.0


class DivergenceError(ValueError):
    """Training diverged. ``epoch`` and ``step`` (1-based; step None for an end-of-epoch
    check) say where, ``lr`` the learning rate in use, ``reason`` what was seen."""

    def __init__(self, reason: str, *, epoch: int, step: int | None, lr: float) -> None:
        self.reason, self.epoch, self.step, self.lr = reason, epoch, step, float(lr)
        where = f"epoch {epoch}" + ("" if step is None else f", step {step}")
        super().__init__(f"training diverged at {where} with learning rate {lr:g}: {reason}; "
                         f"try a smaller learning rate, e.g. {lr / 10:g}")


def first_nonfinite(x: np.ndarray) -> int | None:
    """The index of the first sample (along axis 0) holding a NaN or ±∞, or None.

    >>> first_nonfinite(np.array([[0.0, 1.0], [2.0, np.nan], [np.inf, 0.0]]))
    1
    """
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or len(x) == 0:
        return None  # integers and booleans are always finite
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def check_finite_samples(x: np.ndarray, name: str) -> None:
    """A ValueError naming the first sample of ``x`` that is not finite, if any."""
    i = first_nonfinite(x)
    if i is not None:
        values = np.asarray(x[i], dtype=np.float64).ravel()
        bad = values[~np.isfinite(values)][0]
        raise ValueError(f"{name}: x[{i}] holds {bad} (the first sample that is not finite); "
                         f"training needs finite inputs: remove or repair that sample")


class DivergenceMonitor:
    """The checks of the module docstring, fed batch by batch and epoch by epoch by ``fit``."""

    def __init__(self) -> None:
        self.reference: float | None = None  # r = max(L₁, ln K), then also Ē₁
        self.start = math.inf                # max(L₁, ln K): what a spike is measured against
        self.peak = -math.inf                # the largest batch loss so far
        self.best_accuracy = 0.0             # the best epoch accuracy so far
        self.chance = 0.5                    # 1/K, known from the first batch
        self.collapsed: bool | None = None   # this epoch: one class per batch so far?
        self.last_class = 0

    def batch(self, loss: float, predictions: np.ndarray, num_classes: int, *, epoch: int,
              step: int, lr: float) -> None:
        """Check one batch's loss; ``predictions`` (B,) are the arg-max classes."""
        if not math.isfinite(loss):
            raise DivergenceError(f"the batch loss is {loss}", epoch=epoch, step=step, lr=lr)
        if self.reference is None:
            self.reference = self.start = max(loss, math.log(max(num_classes, 2)))
        if loss > LOSS_FACTOR * self.reference:
            raise DivergenceError(f"the batch loss {loss:.4g} is more than {LOSS_FACTOR:g}× "
                                  f"its starting level {self.reference:.4g}",
                                  epoch=epoch, step=step, lr=lr)
        self.peak = max(self.peak, loss)
        self.chance = 1.0 / num_classes
        predictions = np.asarray(predictions)
        if len(predictions) >= 2:
            one_class = bool(np.all(predictions == predictions[0]))
            self.collapsed = one_class if self.collapsed is None else self.collapsed and one_class
            self.last_class = int(predictions[0])

    def epoch_end(self, model: Any, *, epoch: int, loss: float, accuracy: float,
                  lr: float) -> None:
        """Check an epoch's mean loss and accuracy, and the model's parameters and buffers."""
        if not math.isfinite(loss):
            raise DivergenceError(f"the epoch's mean loss is {loss}", epoch=epoch, step=None,
                                  lr=lr)
        if epoch == 1:
            self.reference = max(loss, self.reference or 0.0)
        elif loss > LOSS_FACTOR * self.reference:
            raise DivergenceError(f"the epoch's mean loss {loss:.4g} is more than "
                                  f"{LOSS_FACTOR:g}× the first epoch's {self.reference:.4g}",
                                  epoch=epoch, step=None, lr=lr)
        for kind, items in (("parameter", model.named_parameters()),
                            ("buffer", model.named_buffers())):
            for name, value in items:
                data = getattr(value, "data", value)
                if not np.isfinite(data).all():
                    raise DivergenceError(f"{kind} {name} holds NaN or infinite values",
                                          epoch=epoch, step=None, lr=lr)
        self._check_collapse(epoch, accuracy, lr)
        self.best_accuracy = max(self.best_accuracy, accuracy)
        self.collapsed = None

    def _check_collapse(self, epoch: int, accuracy: float, lr: float) -> None:
        if not self.collapsed:
            return  # some batch's predictions spread over classes: the input still matters
        learnt = self.chance + 0.25 * (1.0 - self.chance)
        spiked = self.peak > SPIKE_FACTOR * self.start
        if spiked or self.best_accuracy >= learnt:
            why = (f"the loss spiked to {self.peak:.4g}" if spiked else
                   f"an earlier epoch reached accuracy {self.best_accuracy:.3f}")
            raise DivergenceError(f"the output no longer depends on the input (one class "
                                  f"per batch, the last {self.last_class}; accuracy "
                                  f"{accuracy:.3f}) after {why}", epoch=epoch, step=None, lr=lr)
