"""``nnprune bench hessian``: time second-order pruning on the classic layer shapes.

Inputs are drawn from a fixed seed (the cost depends only on the shapes); exact OBC runs
once per layer, the other cases are the median of ``--repeat`` runs.
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

import numpy as np

from nnprune.bench.machine import blas_info
from nnprune.bench.timing import timings

LAYERS = (("lenet_300_100 fc1", 784, 300), ("lenet5 fc1", 800, 500))  # (name, d, rows)
SPARSITY = 0.9
SAMPLES = 1024      # calibration inputs per layer
DIAG_BATCH = 256    # images per Hessian-diagonal timing


def _seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``fn``."""
    return statistics.median(timings(fn, repeat, warmup=0))


def time_layer(d: int, rows: int, samples: int, repeat: int) -> dict[str, Any]:
    """Exact OBC and SparseGPT of one (rows, d) layer to ``SPARSITY``, each from the layer's
    H = 2XXᵀ/N (damped by 0.01·mean diag): seconds and reconstruction losses ‖WX − ŴX‖²/N."""
    from nnprune.prune.obc import (damp, masks_from_counts, obc_traces, reconstruction_loss,
                                   refit_rows, select_counts)
    from nnprune.prune.masks import prune_count
    from nnprune.prune.sparsegpt import sparsegpt

    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((d, samples)), 0.0)  # ReLU-like inputs, some zeros
    w = rng.uniform(-1, 1, (rows, d)) / np.sqrt(d)
    h = damp(2 * x @ x.T / samples, 0.01)

    start = time.perf_counter()  # once: it takes seconds to minutes
    order, losses = obc_traces(w, h)
    mask = masks_from_counts(order, select_counts(losses, prune_count(w.size, SPARSITY)), d)
    obc_w = refit_rows(w, h, mask)
    obc_s = time.perf_counter() - start
    gpt_s = _seconds(lambda: sparsegpt(w, h, SPARSITY), repeat)
    gpt_w, _ = sparsegpt(w, h, SPARSITY)
    obc_loss = float(reconstruction_loss(w, obc_w, h).sum())
    gpt_loss = float(reconstruction_loss(w, gpt_w, h).sum())
    return {"shape": [rows, d], "samples": samples, "obc_seconds": obc_s,
            "sparsegpt_seconds": gpt_s, "obc_loss": obc_loss, "sparsegpt_loss": gpt_loss,
            "loss_ratio": gpt_loss / obc_loss}


def time_diagonals(batch: int, repeat: int) -> dict[str, Any]:
    """Seconds of each Hessian diagonal of LeNet-300-100, also in units of one backward pass
    of the cross-entropy on the same batch."""
    from nnprune import Tensor, models
    from nnprune import functional as F
    from nnprune.curvature_diag import fisher_diagonal, gauss_newton_diagonal, lecun_diagonal

    model = models.lenet_300_100()
    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)

    def backward():
        for p in model.parameters():
            p.grad = None
        F.cross_entropy(model(Tensor(x)), y).backward()

    base = _seconds(backward, repeat)
    out = {"batch": batch, "backward_ms": 1e3 * base}
    for name, fn in (("gauss-newton", gauss_newton_diagonal), ("lecun", lecun_diagonal),
                     ("fisher", fisher_diagonal)):
        seconds = _seconds(lambda fn=fn: fn(model, x, y, batch_size=batch), repeat)
        out[name] = {"ms": 1e3 * seconds, "backward_passes": seconds / base}
    return out


def run(args: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Time every layer and the diagonals, print the table; the results for the JSON."""
    result: dict[str, Any] = {"blas": blas_info(), "load_average": list(os.getloadavg()),
                              "cpus": os.cpu_count(), "repeat": args.repeat, "layers": {}}
    say(f"BLAS: {result['blas']};  load average {result['load_average'][0]:.2f} on "
        f"{result['cpus']} CPUs;  median of {args.repeat} runs (exact OBC: one run)")
    say(f"{'layer to 90%':<20}{'exact OBC s':>12}{'SparseGPT s':>12}{'loss OBC':>11}"
        f"{'SparseGPT':>11}{'ratio':>7}")
    for name, d, rows in LAYERS:
        row = time_layer(d, rows, SAMPLES, args.repeat)
        result["layers"][name] = row
        say(f"{name:<20}{row['obc_seconds']:12.1f}{row['sparsegpt_seconds']:12.2f}"
            f"{row['obc_loss']:11.4f}{row['sparsegpt_loss']:11.4f}{row['loss_ratio']:7.2f}")
    diag = time_diagonals(DIAG_BATCH, args.repeat)
    result["diagonals"] = diag
    say(f"LeNet-300-100 Hessian diagonals, batch {diag['batch']} (one backward pass "
        f"{diag['backward_ms']:.1f} ms):")
    for name in ("gauss-newton", "lecun", "fisher"):
        say(f"  {name:<13}{diag[name]['ms']:8.1f} ms = {diag[name]['backward_passes']:.2f} "
            f"backward passes")
    return result
