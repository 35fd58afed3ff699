"""``nnprune bench prune``: measured inference speed of dense, masked and shrunk models.

Filter pruning only pays once the zeros are cut out: a masked model multiplies its zero
filters like the dense one, the shrunk model (``prune.shrink``) is a smaller dense network.
"""
from __future__ import annotations

import statistics
from typing import Any, Callable

import numpy as np

from nnprune.bench.machine import blas_line, machine
from nnprune.bench.timing import interleaved

CASES = ("vgg16-pruned-A", "vgg16-slim", "vgg16-late", "lenet5-50", "lenet5-75",
         "resnet20-50")


def build_case(name: str) -> tuple[Any, tuple[int, int, int], dict[str, float] | float]:
    """(dense model, input shape (C, H, W), per-layer sparsity or one fraction) of a case:
    vgg16-pruned-A is Li et al. 2017's (34 % fewer FLOPs); vgg16-late has the profile of Liu
    et al.'s slimmed VGG (most parameters removed from the deep layers, fewer MACs); lenet5
    is Caffe's LeNet-5 of Han et al. 2015; resnet20-50 ties the skips' channels."""
    from nnprune import models

    if name.startswith("vgg16"):
        model = models.vgg16(3, 10, 32, seed=0)
        weights = {kind: [f"{n}.weight" for n, m in model.named_modules()
                          if type(m).__name__ == kind] for kind in ("Conv2d", "Linear")}
        convs, linear = weights["Conv2d"], weights["Linear"][0]
        if name == "vgg16-pruned-A":  # conv_1 and conv_8 .. conv_13 (1-based)
            return model, (3, 32, 32), {convs[i]: 0.5 for i in (0, *range(7, 13))}
        if name == "vgg16-late":
            return model, (3, 32, 32), {**{c: 0.25 if i < 7 else 0.75
                                           for i, c in enumerate(convs)}, linear: 0.75}
        return model, (3, 32, 32), {**{c: 0.6 for c in convs}, linear: 0.6}
    if name.startswith("lenet5"):
        share = 0.5 if name == "lenet5-50" else 0.75
        return models.lenet5(1, 10, 28, seed=0), (1, 28, 28), dict.fromkeys(
            ("0.weight", "2.weight", "5.weight"), share)
    if name == "resnet20-50":
        return models.resnet20(3, 10, 32, seed=0), (3, 32, 32), 0.5
    raise ValueError(f"unknown case {name!r}; the cases are {CASES}")


def time_case(name: str, repeat: int, batch: int = 64, seed: int = 0) -> dict[str, Any]:
    """Build the case, prune whole filters by L1 norm, mask the dead units, shrink, and time
    the forward pass (eval mode, no graph) of the three models in turns; a JSON-able row."""
    from nnprune.autograd import Tensor, no_grad
    from nnprune.count import count
    from nnprune.experiment.runs import clone_model
    from nnprune.prune import mask_units, prune_model, shrink

    dense, shape, sparsity = build_case(name)
    masked = clone_model(dense)
    prune_model(masked, "l1_norm", sparsity, "layer", "filter")
    mask_units(masked)
    shrunk, report = shrink(masked, shape)
    params = [count(dense, shape).params, count(shrunk, shape).params]
    models = {"dense": dense.eval(), "masked": masked.eval(), "shrunk": shrunk.eval()}
    x = Tensor(np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32))
    with no_grad():
        wall, cpu = interleaved({k: lambda m=m: m(x) for k, m in models.items()}, repeat,
                                warmup=1)
    ms = {k: 1e3 * statistics.median(t) for k, t in wall.items()}
    cpu_ms = {k: 1e3 * statistics.median(t) for k, t in cpu.items()}
    mac_ratio = report.macs[0] / report.macs[1]
    return {"case": name, "input_shape": list(shape), "batch": batch,
            "params": params, "macs": [report.macs[0], report.macs[1]],
            "params_fewer": 1 - params[1] / params[0], "mac_ratio": mac_ratio,
            "ms": ms, "ms_range": {k: [1e3 * min(t), 1e3 * max(t)] for k, t in wall.items()},
            "cpu_ms": cpu_ms, "speedup_masked": ms["dense"] / ms["masked"],
            "speedup_shrunk": ms["dense"] / ms["shrunk"],
            "speedup_shrunk_cpu": cpu_ms["dense"] / cpu_ms["shrunk"],
            "share_of_theory": ms["dense"] / ms["shrunk"] / mac_ratio,
            "share_of_theory_cpu": cpu_ms["dense"] / cpu_ms["shrunk"] / mac_ratio}


def run(args: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """``nnprune bench prune``: time every case of ``args.cases`` (default all), print the
    table; the results for the JSON."""
    cases = args.cases or list(CASES)
    for case in cases:
        if case not in CASES:
            raise ValueError(f"--cases: unknown case {case!r}; the cases are {', '.join(CASES)}")
    result: dict[str, Any] = {**machine(), "repeat": args.repeat, "cases": []}
    say(blas_line(result))
    say(f"inference, batch 64, median of {args.repeat} interleaved runs; load average "
        f"{result['load_average'][0]:.2f} on {result['cpus']} CPUs (a loaded machine slows "
        f"all three alike: compare the ratios)")
    say(f"{'':<16}{'':>12}{'':>7}{'':>10}{'wall clock':>28}{'':>19}{'CPU time':>10}")
    say(f"{'case':<16}{'params':>12}{'fewer':>7}{'MAC ratio':>10}{'dense ms':>10}"
        f"{'masked':>9}{'shrunk':>9}{'speed-up':>9}{'of theory':>10}{'speed-up':>9}"
        f"{'of theory':>10}")
    for case in cases:
        row = time_case(case, args.repeat)
        result["cases"].append(row)
        say(f"{case:<16}{row['params'][1]:>12,}{row['params_fewer']:>7.0%}"
            f"{row['mac_ratio']:>9.2f}×{row['ms']['dense']:>10.1f}{row['ms']['masked']:>9.1f}"
            f"{row['ms']['shrunk']:>9.1f}{row['speedup_shrunk']:>8.2f}×"
            f"{row['share_of_theory']:>10.0%}{row['speedup_shrunk_cpu']:>8.2f}×"
            f"{row['share_of_theory_cpu']:>10.0%}")
    return result
