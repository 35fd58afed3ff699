"""Training and evaluation of a classifier: ``fit``, ``evaluate``, ``gradients``, ``predict``.

The loss is the mean cross-entropy of the logits, L = −(1/N) Σᵢ log softmax(zᵢ)[yᵢ], plus an
optional regularizer R(model) (an L1/L2 penalty for fine-tuning). One step is the PyTorch
ritual: ``optimizer.zero_grad()``, forward, ``loss.backward()``, ``optimizer.step()``; the
optimizers re-apply every pruning mask after their update, so pruned weights stay zero.

Data is an ``(x, y)`` pair of arrays — x ``(N, ...)`` float, y ``(N,)`` integer class labels —
or a ``nnprune.data.DataLoader``. A pair is shuffled each epoch by a generator seeded with
``seed``, so the same seed gives bit-identical weights.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from nnprune import functional as F
from nnprune.autograd import Tensor, no_grad
from nnprune.data import DataLoader
from nnprune.divergence import DivergenceError, DivergenceMonitor, check_finite_samples
from nnprune.foreign import reject_foreign
from nnprune.nn import Module
from nnprune.optim import Optimizer


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


# ---------------------------------------------------------------------- data handling
def _check_pair(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as (x, y) arrays, with a clear error for every way it can be wrong."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (x, y) pair of arrays or a DataLoader, "
                        f"got {type(data).__name__}")
    reject_foreign(data[0], f"{name}[0]", "array")
    reject_foreign(data[1], f"{name}[1]", "array")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 1 or y.ndim != 1:
        raise ValueError(f"{name}: x must be (N, ...) and y (N,), got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{name}: x has {len(x)} samples but y has {len(y)} labels")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: it has no samples")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: x must be numeric, got dtype {x.dtype}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels y must be integers (class indices), got dtype {y.dtype}")
    return x, y


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _batches(data: Any, name: str, batch_size: int,
             rng: np.random.Generator | None) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int]:
    """(an iterator over (xb, yb) batches, the number of batches) for one pass over ``data``.

    A pair is cut into ``batch_size`` slices (the last may be smaller), in an order drawn
    from ``rng`` (in order when ``rng`` is None); a DataLoader batches itself.
    """
    if isinstance(data, DataLoader):
        if len(data) == 0:
            raise ValueError(f"{name} is an empty DataLoader: it yields no batch")
        return iter(data), len(data)
    x, y = _check_pair(data, name)
    order = np.arange(len(x)) if rng is None else rng.permutation(len(x))
    starts = range(0, len(x), batch_size)
    return ((x[order[s:s + batch_size]], y[order[s:s + batch_size]]) for s in starts), len(starts)


def _model_dtype(model: Module) -> np.dtype:
    for p in model.parameters():
        return p.dtype
    return np.dtype(np.float32)


def _forward(model: Module, xb: np.ndarray, yb: np.ndarray, dtype: np.dtype) -> Tensor:
    """Logits (N, K) of a batch, after checking the output shape and the labels against K."""
    yb = np.asarray(yb)
    if yb.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {yb.dtype}")
    logits = model(Tensor(np.asarray(xb), dtype=dtype))
    if logits.ndim != 2 or logits.shape[0] != len(yb):
        raise ValueError(f"the model must output logits of shape (N, K) = ({len(yb)}, K), "
                         f"got shape {logits.shape}")
    k = logits.shape[1]
    if yb.size and (yb.min() < 0 or yb.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k}) for a model with {k} "
                         f"outputs, got labels in [{yb.min()}, {yb.max()}]")
    return logits


def _modes(model: Module) -> list[tuple[Module, bool]]:
    """Every submodule's training flag, to put back afterwards."""
    return [(m, m.training) for m in model.modules()]


def _restore_modes(modes: list[tuple[Module, bool]]) -> None:
    for m, training in modes:
        object.__setattr__(m, "training", training)


# ---------------------------------------------------------------------- training
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
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an nnprune.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    epochs = _check_positive("epochs", epochs)
    batch_size = _check_positive("batch_size", batch_size)
    for name, fn in (("regularizer", regularizer), ("step_callback", step_callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method, got {type(scheduler).__name__}")
    for name, data in (("train", train), ("val", val)):
        if isinstance(data, DataLoader):
            check_finite_samples(data.x, name)
        elif data is not None:
            check_finite_samples(_check_pair(data, name)[0], name)

    rng = np.random.default_rng(seed)
    dtype = _model_dtype(model)
    history, step, modes, monitor = History(), 0, _modes(model), DivergenceMonitor()
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            start, lr = time.perf_counter(), float(optimizer.lr)
            loss_sum, correct, seen = 0.0, 0, 0
            batches, total = _batches(train, "train", batch_size, rng)
            bar = tqdm(batches, total=total, desc=f"{desc} {epoch}/{epochs}", disable=quiet,
                       leave=False, dynamic_ncols=True)
            for xb, yb in bar:
                optimizer.zero_grad()
                logits = _forward(model, xb, yb, dtype)
                loss = F.cross_entropy(logits, np.asarray(yb))
                batch_loss = loss.item()
                predicted = logits.data.argmax(axis=1)
                monitor.batch(batch_loss, predicted, logits.shape[1], epoch=epoch,
                              step=step + 1, lr=float(optimizer.lr))
                if regularizer is not None:
                    loss = loss + regularizer(model)
                loss.backward()
                optimizer.step()
                step += 1
                if step_callback is not None:
                    step_callback(step)
                n = len(yb)
                loss_sum += batch_loss * n
                correct += int(np.sum(predicted == np.asarray(yb)))
                seen += n
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                                refresh=False)  # redrawn at tqdm's own pace
            bar.close()
            entry = {"epoch": epoch, "loss": loss_sum / seen, "accuracy": correct / seen,
                     "val_loss": None, "val_accuracy": None, "lr": lr}
            monitor.epoch_end(model, epoch=epoch, loss=entry["loss"], accuracy=entry["accuracy"],
                              lr=lr)
            if val is not None:
                metrics = evaluate(model, val)
                entry["val_loss"], entry["val_accuracy"] = metrics["loss"], metrics["accuracy"]
            if scheduler is not None:
                scheduler.step()
            entry["seconds"] = time.perf_counter() - start
            history.epochs.append(entry)
            if not quiet:
                val_text = ("" if val is None else
                            f", val loss {entry['val_loss']:.4f}, val acc {entry['val_accuracy']:.4f}")
                tqdm.write(f"{desc} epoch {epoch}/{epochs}: loss {entry['loss']:.4f}, "
                           f"acc {entry['accuracy']:.4f}{val_text} ({entry['seconds']:.1f}s)")
    finally:
        _restore_modes(modes)
    return history


# ---------------------------------------------------------------------- measuring
def evaluate(model: Module, data: Any, batch_size: int = 256) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``, in eval mode, without grad.

    x (N, ...) -> {"loss": −(1/N) Σᵢ log softmax(zᵢ)[yᵢ], "accuracy": (1/N) Σᵢ [argmax zᵢ = yᵢ]}.
    The model's mode is restored afterwards.
    """
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    batch_size = _check_positive("batch_size", batch_size)
    batches, _ = _batches(data, "data", batch_size, rng=None)
    dtype, modes = _model_dtype(model), _modes(model)
    loss_sum, correct, seen = 0.0, 0, 0
    try:
        model.eval()
        with no_grad():
            for xb, yb in batches:
                logits = _forward(model, xb, yb, dtype)
                loss_sum += F.cross_entropy(logits, np.asarray(yb), reduction="sum").item()
                correct += int(np.sum(logits.data.argmax(axis=1) == np.asarray(yb)))
                seen += len(yb)
    finally:
        _restore_modes(modes)
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def predict(model: Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The logits of ``model`` on ``x``, in eval mode, without grad: (N, ...) -> (N, K)."""
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    batch_size = _check_positive("batch_size", batch_size)
    reject_foreign(x, "x", "array")
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, ...) array, got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"x must be numeric, got dtype {x.dtype}")
    dtype, modes = _model_dtype(model), _modes(model)
    outputs = []
    try:
        model.eval()
        with no_grad():
            for s in range(0, len(x), batch_size):
                outputs.append(model(Tensor(x[s:s + batch_size], dtype=dtype)).data)
    finally:
        _restore_modes(modes)
    return np.concatenate(outputs)


def gradients(model: Module, data: Any, batch_size: int = 64, num_batches: int | None = None,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Mean gradient of the cross-entropy with respect to every named parameter.

    {name: (shape of the parameter)}: g = Σ_b (n_b / n) ∇_w L_b, the gradient of the mean
    loss over the n samples of the batches used (L_b is batch b's mean cross-entropy, n_b its
    size). The first ``num_batches`` batches (all when None) of a pass shuffled by ``seed``;
    the gradient criteria (Molchanov et al. 2017) and SNIP (Lee et al. 2019) score from it.

    The batches run in training mode (batch statistics, as the loss being pruned against);
    afterwards every ``.grad``, BatchNorm running statistic, dropout generator and the
    module modes are exactly as they were before the call. Pruned entries get gradient 0.
    """
    reject_foreign(model, "model", "model")
    if not isinstance(model, Module):
        raise TypeError(f"model must be an nnprune.nn.Module, got {type(model).__name__}")
    batch_size = _check_positive("batch_size", batch_size)
    if num_batches is not None:
        num_batches = _check_positive("num_batches", num_batches)
    params = dict(model.named_parameters())
    saved_grads = {name: p.grad for name, p in params.items()}
    saved_buffers = {name: b.copy() for name, b in model.named_buffers()}
    saved_rngs = [(m, m.rng.bit_generator.state) for m in model.modules()
                  if isinstance(getattr(m, "rng", None), np.random.Generator)]
    dtype, modes = _model_dtype(model), _modes(model)
    total = {name: np.zeros_like(p.data) for name, p in params.items()}
    batches, _ = _batches(data, "data", batch_size, np.random.default_rng(seed))
    seen = 0
    try:
        model.train()
        for b, (xb, yb) in enumerate(batches):
            if num_batches is not None and b == num_batches:
                break
            for p in params.values():
                p.grad = None
            loss = F.cross_entropy(_forward(model, xb, yb, dtype), np.asarray(yb))
            loss.backward()
            n = len(yb)
            for name, p in params.items():
                if p.grad is not None:
                    total[name] += n * p.grad
            seen += n
    finally:
        for name, p in params.items():
            p.grad = saved_grads[name]
        for name, b in model.named_buffers():  # batch norm updates its statistics in place
            b[...] = saved_buffers[name]
        for m, state in saved_rngs:
            m.rng.bit_generator.state = state
        _restore_modes(modes)
    return {name: g / seen for name, g in total.items()}
