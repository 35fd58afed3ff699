"""Measuring a model: ``evaluate`` (loss and accuracy), ``predict`` (logits) and
``gradients`` (the mean gradient of the loss, for the gradient-based pruning criteria).
Each runs in the mode it needs and leaves the model's modes as they were."""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune import functional as F
from nnprune.autograd import Tensor, no_grad
from nnprune.foreign import reject_foreign
from nnprune.nn import Module
from nnprune.nn.module import check_model, kept_modes
from nnprune.train.batches import batches, check_positive, forward, model_dtype


def evaluate(model: Module, data: Any, batch_size: int = 256) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``, in eval mode, without grad.

    x (N, ...) -> {"loss": −(1/N) Σᵢ log softmax(zᵢ)[yᵢ], "accuracy": (1/N) Σᵢ [argmax zᵢ = yᵢ]}.
    The model's mode is restored afterwards.
    """
    check_model(model)
    batch_size = check_positive("batch_size", batch_size)
    one_pass, _ = batches(data, "data", batch_size, rng=None)
    dtype, loss_sum, correct, seen = model_dtype(model), 0.0, 0, 0
    with kept_modes(model), no_grad():
        model.eval()
        for xb, yb in one_pass:
            logits = forward(model, xb, yb, dtype)
            loss_sum += F.cross_entropy(logits, np.asarray(yb), reduction="sum").item()
            correct += int(np.sum(logits.data.argmax(axis=1) == np.asarray(yb)))
            seen += len(yb)
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def predict(model: Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The logits of ``model`` on ``x``, in eval mode, without grad: (N, ...) -> (N, K)."""
    check_model(model)
    batch_size = check_positive("batch_size", batch_size)
    reject_foreign(x, "x", "array")
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, ...) array, got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"x must be numeric, got dtype {x.dtype}")
    dtype, outputs = model_dtype(model), []
    with kept_modes(model), no_grad():
        model.eval()
        for s in range(0, len(x), batch_size):
            outputs.append(model(Tensor(x[s:s + batch_size], dtype=dtype)).data)
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
    check_model(model)
    batch_size = check_positive("batch_size", batch_size)
    if num_batches is not None:
        num_batches = check_positive("num_batches", num_batches)
    params = dict(model.named_parameters())
    saved_grads = {name: p.grad for name, p in params.items()}
    saved_buffers = {name: b.copy() for name, b in model.named_buffers()}
    saved_rngs = [(m, m.rng.bit_generator.state) for m in model.modules()
                  if isinstance(getattr(m, "rng", None), np.random.Generator)]
    dtype = model_dtype(model)
    total = {name: np.zeros_like(p.data) for name, p in params.items()}
    one_pass, _ = batches(data, "data", batch_size, np.random.default_rng(seed))
    seen = 0
    with kept_modes(model):
        model.train()
        try:
            for b, (xb, yb) in enumerate(one_pass):
                if num_batches is not None and b == num_batches:
                    break
                for p in params.values():
                    p.grad = None
                loss = F.cross_entropy(forward(model, xb, yb, dtype), np.asarray(yb))
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
    return {name: g / seen for name, g in total.items()}
