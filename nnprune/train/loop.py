"""``fit``: the training loop, and the ``History`` of what it measured.

One step is the PyTorch ritual: ``optimizer.zero_grad()``, forward, ``loss.backward()``,
``optimizer.step()``; the optimizers re-apply every pruning mask after their update, so pruned
weights stay zero.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from nnprune import functional as F
from nnprune.autograd import Tensor
from nnprune.data import DataLoader
from nnprune.divergence import DivergenceMonitor, check_finite_samples
from nnprune.nn import Module
from nnprune.optim import Optimizer
from nnprune.nn.module import check_model, kept_modes
from nnprune.train.batches import batches, check_pair, check_positive, forward, model_dtype
from nnprune.train.measure import evaluate


class History:
    """What ``fit`` measured, one dict per epoch.

    Each entry of ``epochs``: ``epoch`` (1-based), ``loss`` and ``accuracy`` (averaged over
    the epoch's training samples, measured in training mode as the weights moved), ``val_loss``
    and ``val_accuracy`` (after the epoch, in eval mode; None without ``val``), ``lr`` (the
    rate used during the epoch) and ``seconds``.
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.epochs)

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return f"History(epochs={len(self.epochs)}, last={last})"

    @property
    def last(self) -> dict[str, Any]:
        """The final epoch's entry."""
        if not self.epochs:
            raise ValueError("the history is empty: no epoch was run")
        return self.epochs[-1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy: ``{"epochs": [...]}``."""
        return {"epochs": [dict(e) for e in self.epochs]}


def fit(model: Module, train: Any, optimizer: Optimizer, epochs: int, *, batch_size: int = 64,
        seed: int = 0, val: Any = None, scheduler: Any = None,
        regularizer: Callable[[Module], Tensor] | None = None,
        step_callback: Callable[[int], None] | None = None, quiet: bool = False,
        desc: str = "train") -> History:
    """Train ``model`` on ``train`` for ``epochs`` epochs; returns the per-epoch History.

    x (N, ...) -> logits (N, K); loss per step: mean cross-entropy of the batch
    + ``regularizer(model)`` (the History records the cross-entropy alone).

    ``optimizer`` updates the parameters; ``scheduler`` (if any) steps once after each epoch;
    ``step_callback(step)`` runs after every ``optimizer.step()`` with the global step count
    1, 2, ... (gradual pruning prunes from there). A pair ``train`` is shuffled every epoch
    by ``np.random.default_rng(seed)``; ``batch_size`` and ``seed`` do not apply to a
    DataLoader, which batches and shuffles itself. The model trains in training mode and is
    left in the mode it had. ``quiet`` hides the per-epoch progress bar.

    Inputs that are not finite are refused (a ValueError naming the first bad sample).
    Divergence raises ``DivergenceError`` (a ValueError naming the learning rate): a batch
    loss that is not finite or far above its starting level, parameters that are not finite
    after an epoch, or an epoch collapsed onto one class after a loss spike (see
    ``nnprune.divergence``). The model is then left as the diverged step made it.

    >>> import numpy as np
    >>> from nnprune import nn, optim
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((64, 2)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(2, 2, rng=0))
    >>> history = fit(model, (x, y), optim.SGD(model.parameters(), lr=0.5), 20, quiet=True)
    >>> history.last["accuracy"] > 0.9
    True
    """
    epochs, batch_size = _check_fit(model, train, optimizer, epochs, batch_size, val,
                                    scheduler, regularizer, step_callback)
    loop = _Loop(model, optimizer, regularizer, step_callback)
    rng, history = np.random.default_rng(seed), History()
    with kept_modes(model):
        for epoch in range(1, epochs + 1):
            model.train()
            start, lr = time.perf_counter(), float(optimizer.lr)
            loss, accuracy = loop.epoch(*batches(train, "train", batch_size, rng), epoch,
                                        f"{desc} {epoch}/{epochs}", quiet)
            entry = {"epoch": epoch, "loss": loss, "accuracy": accuracy, "val_loss": None,
                     "val_accuracy": None, "lr": lr}
            if val is not None:
                metrics = evaluate(model, val)
                entry["val_loss"], entry["val_accuracy"] = metrics["loss"], metrics["accuracy"]
            if scheduler is not None:
                scheduler.step()
            entry["seconds"] = time.perf_counter() - start
            history.epochs.append(entry)
            if not quiet:
                val_text = ("" if val is None else f", val loss {entry['val_loss']:.4f}, "
                            f"val acc {entry['val_accuracy']:.4f}")
                tqdm.write(f"{desc} epoch {epoch}/{epochs}: loss {entry['loss']:.4f}, "
                           f"acc {entry['accuracy']:.4f}{val_text} ({entry['seconds']:.1f}s)")
    return history


def _check_fit(model: Any, train: Any, optimizer: Any, epochs: Any, batch_size: Any, val: Any,
               scheduler: Any, regularizer: Any, step_callback: Any) -> tuple[int, int]:
    """Every argument of ``fit`` checked before the first step; (epochs, batch_size)."""
    check_model(model)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an nnprune.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    epochs = check_positive("epochs", epochs)
    batch_size = check_positive("batch_size", batch_size)
    for name, fn in (("regularizer", regularizer), ("step_callback", step_callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method, got {type(scheduler).__name__}")
    for name, data in (("train", train), ("val", val)):
        if isinstance(data, DataLoader):
            check_finite_samples(data.x, name)
        elif data is not None:
            check_finite_samples(check_pair(data, name)[0], name)
    return epochs, batch_size


class _Loop:
    """The optimizer steps of ``fit``: the global step count, the divergence monitor."""

    def __init__(self, model: Module, optimizer: Optimizer,
                 regularizer: Callable[[Module], Tensor] | None,
                 step_callback: Callable[[int], None] | None) -> None:
        self.model, self.optimizer, self.dtype = model, optimizer, model_dtype(model)
        self.regularizer, self.step_callback = regularizer, step_callback
        self.step, self.monitor = 0, DivergenceMonitor()

    def epoch(self, one_pass: Iterator[tuple[np.ndarray, np.ndarray]], total: int, epoch: int,
              label: str, quiet: bool) -> tuple[float, float]:
        """One pass of steps; (mean cross-entropy, accuracy) over its samples."""
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(one_pass, total=total, desc=label, disable=quiet, leave=False,
                   dynamic_ncols=True)
        for xb, yb in bar:
            self.optimizer.zero_grad()
            logits = forward(self.model, xb, yb, self.dtype)
            loss = F.cross_entropy(logits, np.asarray(yb))
            batch_loss, predicted = loss.item(), logits.data.argmax(axis=1)
            self.monitor.batch(batch_loss, predicted, logits.shape[1], epoch=epoch,
                               step=self.step + 1, lr=float(self.optimizer.lr))
            if self.regularizer is not None:
                loss = loss + self.regularizer(self.model)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if self.step_callback is not None:
                self.step_callback(self.step)
            loss_sum += batch_loss * len(yb)
            correct += int(np.sum(predicted == np.asarray(yb)))
            seen += len(yb)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                            refresh=False)  # redrawn at tqdm's own pace
        bar.close()
        self.monitor.epoch_end(self.model, epoch=epoch, loss=loss_sum / seen,
                               accuracy=correct / seen, lr=float(self.optimizer.lr))
        return loss_sum / seen, correct / seen
