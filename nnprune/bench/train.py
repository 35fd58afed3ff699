"""``nnprune bench train``: training epochs end to end, nnprune against PyTorch when importable.

The PyTorch models mirror nnprune's layer for layer (same shapes, same optimizer); their
initial weights differ, which does not change the time of an epoch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnprune.bench.machine import blas_line, machine
from nnprune.bench.timing import interleaved, ratio_range

BATCH = 64
MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_t10k(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | str:
    """MNIST t10k as x (10000, 1, 28, 28) float32 in [0, 1] and y (10000,) int64, or the
    reason it cannot be read (a message naming the folder and the missing files)."""
    from nnprune.data.idx import read_idx

    root, arrays = Path(data_dir), []
    for name in MNIST_FILES:
        found = [root / (name + ext) for ext in ("", ".gz") if (root / (name + ext)).is_file()]
        if not found:
            return f"{name}[.gz] not found in {root}"
        arrays.append(read_idx(found[0]))
    images, labels = arrays
    return (images.reshape(-1, 1, 28, 28).astype(np.float32) / 255,
            labels.astype(np.int64))


def nnprune_epoch(model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """One epoch of SGD (lr 0.01, momentum 0.9) over (x, y) in batches of 64, seeded order."""
    from nnprune import Tensor
    from nnprune import functional as F
    from nnprune.optim import SGD

    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    rng = np.random.default_rng(0)

    def epoch() -> None:
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            batch = order[start:start + BATCH]
            optimizer.zero_grad()
            F.cross_entropy(model(Tensor(x[batch])), y[batch]).backward()
            optimizer.step()

    return epoch


def torch_epoch(torch: Any, model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """The same epoch in PyTorch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)

    def epoch() -> None:
        order = torch.randperm(len(tx), generator=generator)
        for start in range(0, len(tx), BATCH):
            batch = order[start:start + BATCH]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(tx[batch]), ty[batch]).backward()
            optimizer.step()

    return epoch


def torch_lenet5(torch: Any) -> Any:
    """``models.lenet5()`` on 28×28 in PyTorch."""
    nnt = torch.nn
    return nnt.Sequential(nnt.Conv2d(1, 20, 5), nnt.MaxPool2d(2), nnt.Conv2d(20, 50, 5),
                          nnt.MaxPool2d(2), nnt.Flatten(), nnt.Linear(800, 500), nnt.ReLU(),
                          nnt.Linear(500, 10))


def torch_vgg16(torch: Any, width: float) -> Any:
    """``models.vgg16(width=width)`` on 3×32×32 in PyTorch."""
    from nnprune.models import VGG16_LAYERS, _scaled

    nnt, layers, c = torch.nn, [], 3
    for v in VGG16_LAYERS:
        if v == "M":
            layers.append(nnt.MaxPool2d(2))
            continue
        out = _scaled(v, width)
        layers += [nnt.Conv2d(c, out, 3, padding=1, bias=False), nnt.BatchNorm2d(out),
                   nnt.ReLU()]
        c = out
    hidden = _scaled(512, width)
    return nnt.Sequential(*layers, nnt.Flatten(), nnt.Linear(c, hidden), nnt.ReLU(),
                          nnt.Linear(hidden, 10))


def wall_time(command: list[str], cwd: str | Path | None = None,
              threads: int | None = None) -> dict[str, Any]:
    """Seconds a fresh process of ``command`` took, and its exit status; with ``threads``,
    the process's OpenBLAS runs that many threads (OPENBLAS_NUM_THREADS, for it alone)."""
    env = None if threads is None else {**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    status = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, check=False).returncode
    return {"command": " ".join(command), "seconds": time.perf_counter() - start,
            "exit_status": status}


def run(args: argparse.Namespace, torch: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """The end-to-end figures, printed with ``say``; returned as a dict for the JSON."""
    from nnprune import models

    result: dict[str, Any] = {**machine(), "torch": getattr(torch, "__version__", None)}
    say(f"{blas_line(result)}; load average {result['load_average'][0]:.2f} on "
        f"{result['cpus']} CPUs" + (f";  torch {torch.__version__} "
                                    f"({torch.get_num_threads()} threads)" if torch else ""))
    cases = []  # (name, label, nnprune model, torch model, (x, y))
    data = read_t10k(args.data_dir) if args.data_dir else "no --data-dir given"
    if isinstance(data, str):
        say(f"LeNet-5 epoch on MNIST t10k: skipped ({data})")
        result["lenet5_epoch"] = {"skipped": data}
    else:
        cases.append(("lenet5_epoch", "LeNet-5, one epoch of MNIST t10k",
                      lambda: models.lenet5(seed=0), torch_lenet5, data))
    rng, n = np.random.default_rng(0), args.vgg_samples
    cases.append(("vgg16_epoch", f"VGG-16 width {args.vgg_width}, one epoch of {n} random "
                  f"3×32×32", lambda: models.vgg16(width=args.vgg_width, seed=0),
                  lambda torch: torch_vgg16(torch, args.vgg_width),
                  (rng.standard_normal((n, 3, 32, 32), dtype=np.float32),
                   rng.integers(0, 10, n))))
    for name, label, build, torch_build, (x, y) in cases:
        fns = {"nnprune_s": nnprune_epoch(build(), x, y)}
        if torch:
            fns["torch_s"] = torch_epoch(torch, torch_build(torch), x, y)
        wall, _ = interleaved(fns, args.epochs)
        row = {"samples": len(x), "batch": BATCH,
               **{key: statistics.median(t) for key, t in wall.items()}}
        line = f"{label} (batch {BATCH}): {row['nnprune_s']:.2f} s"
        if torch:
            row["ratio"] = row["nnprune_s"] / row["torch_s"]
            # each nnprune epoch ran just before a torch one (interleaved): their ratios
            row["ratio_by_epoch"] = [a / b for a, b in zip(wall["nnprune_s"], wall["torch_s"])]
            line += (f", torch {row['torch_s']:.2f} s, ratio {row['ratio']:.2f}× (by epoch "
                     f"{ratio_range(row['ratio_by_epoch'])}×)")
        result[name] = row
        say(line + f"  (median of {args.epochs})")
    for key, wanted, what, command, cwd in (
            ("demo", args.demo, "nnprune demo", ["nnprune", "demo"], None),
            ("tests", args.tests, f"test suite in {args.project}",
             ["pytest", "-q", "-x", "-p", "no:cacheprovider"], args.project)):
        if wanted:  # a fresh process, whose OpenBLAS runs --threads threads too
            result[key] = wall_time([sys.executable, "-m", *command], cwd, args.threads)
            say(f"{what}: {result[key]['seconds']:.1f} s wall "
                f"(exit status {result[key]['exit_status']})")
    return result
