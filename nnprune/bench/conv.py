"""``nnprune bench conv``: time the conv kernels and a LeNet-5 training step.

FLOPs = 2 · MACs; a conv's backward is two GEMMs of the forward's size (dx and dW), so
forward+backward counts 3× the forward FLOPs. The peak is the best float32 2048³ GEMM of
the same run, with the same BLAS. Each algorithm's forward and forward+backward are timed
in turns, the algorithms and torch in alternating blocks (``timing.grouped_times``). The
ratios to torch are of the medians over all blocks; "by block" gives the least and the
greatest of the blocks' ratios, each of two blocks that ran one after the other: a target
inside that range is within the noise of the run.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from nnprune.bench.machine import blas_line, machine
from nnprune.bench.step import lenet5_steps
from nnprune.bench.timing import block_ratios, grouped_times, median_ms, ratio_range, timings

# (name, N, C, H, W, F, k, padding), stride 1
CONV_CASES = [
    ("lenet conv1", 64, 1, 28, 28, 6, 5, 0),
    ("lenet conv2", 64, 6, 12, 12, 16, 5, 0),
    ("vgg 3->64 @32", 64, 3, 32, 32, 64, 3, 1),
    ("vgg 64->128 @16", 64, 64, 16, 16, 128, 3, 1),
    ("vgg 128->256 @8", 64, 128, 8, 8, 256, 3, 1),
]
GEMM_SIZE = 2048


def gemm_peak_gflops(repeat: int, n: int = GEMM_SIZE) -> float:
    """GFLOP/s of the best of ``repeat`` float32 n×n×n GEMMs (2n³ FLOPs each)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    return 2 * n ** 3 / min(timings(lambda: a @ b, max(3, repeat))) / 1e9


def conv_flops(case: tuple) -> int:
    """Forward FLOPs = 2 · N·F·OH·OW·C·k² (stride 1)."""
    _, n, c, h, w, f, k, p = case
    return 2 * n * f * (h + 2 * p - k + 1) * (w + 2 * p - k + 1) * c * k * k


def conv_arrays(case: tuple, dtype=np.float32) -> tuple[np.ndarray, ...]:
    """x, weight, b and dout of ``case`` (seed 0)."""
    _, n, c, h, w, f, k, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    dout = rng.standard_normal((n, f, h + 2 * p - k + 1, w + 2 * p - k + 1)).astype(dtype)
    return x, weight, b, dout


def conv_kernels(algorithm: str) -> tuple[Callable, Callable]:
    """(forward, backward) array kernels of ``algorithm``, called as forward(x, w, b, padding)
    and backward(dout, cache) for stride 1."""
    from nnprune.functional import conv, winograd
    from nnprune.functional.conv_algorithms import TILE

    if algorithm == "im2col":
        return (lambda x, w, b, p: conv.conv2d_forward(x, w, b, 1, p)), conv.conv2d_backward
    m = TILE[algorithm]
    return (lambda x, w, b, p: winograd.winograd_forward(x, w, b, p, m=m)), \
        winograd.winograd_backward


def conv_fns(case: tuple, algorithm: str = "im2col") -> tuple[Callable, Callable]:
    """(forward, forward+backward) closures of nnprune's ``algorithm`` on ``case``, float32."""
    x, weight, b, dout = conv_arrays(case)
    forward, backward = conv_kernels(algorithm)
    p = case[7]
    return (lambda: forward(x, weight, b, p),
            lambda: backward(dout, forward(x, weight, b, p)[1]))


def conv_algorithms(case: tuple) -> list[str]:
    """The algorithms that can run ``case``: im2col, and Winograd for 3×3 kernels."""
    return ["im2col", "winograd2", "winograd4"] if case[6] == 3 else ["im2col"]


def auto_algorithm(case: tuple) -> str:
    """The algorithm conv2d(algorithm="auto") runs for ``case``."""
    from nnprune.functional.conv_algorithms import conv_algorithm

    _, n, c, h, w, f, k, p = case
    return conv_algorithm("auto", (n, c, h, w), (f, c, k, k), (1, 1), (1, 1), (p, p))


def float32_errors(case: tuple, algorithm: str) -> dict[str, float]:
    """max |float32 result − float64 im2col| / max |float64 im2col| for out, dx and dw."""
    x, weight, b, dout = conv_arrays(case, np.float64)
    exact_fwd, exact_bwd = conv_kernels("im2col")
    out, cache = exact_fwd(x, weight, b, case[7])
    exact = (out, *exact_bwd(dout, cache)[:2])
    forward, backward = conv_kernels(algorithm)
    out, cache = forward(*(a.astype(np.float32) for a in (x, weight, b)), case[7])
    got = (out, *backward(dout.astype(np.float32), cache)[:2])
    return {name: float(np.abs(g - e).max() / np.abs(e).max())
            for name, g, e in zip(("out", "dx", "dw"), got, exact)}


def conv_layout(case: tuple) -> str:
    """The im2col layout conv2d picks for ``case`` (``default_layout``)."""
    from nnprune.functional.conv import default_layout

    _, n, c, h, w, f, k, p = case
    return default_layout(c, (h + 2 * p - k + 1) * (w + 2 * p - k + 1))


def torch_conv_fns(torch: Any, case: tuple) -> tuple[Callable, Callable]:
    """The same case in PyTorch: (forward under no_grad, forward+backward) closures."""
    _, n, c, h, w, f, k, p = case
    x = torch.randn(n, c, h, w, requires_grad=True)
    conv = torch.nn.Conv2d(c, f, k, padding=p)
    dout = torch.randn(conv(x).shape)

    def forward():
        with torch.no_grad():
            conv(x)

    def forward_backward():
        x.grad = None
        conv.zero_grad()
        conv(x).backward(dout)

    return forward, forward_backward


def run(args: Any, torch: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """The conv benchmark: the table by layer, by algorithm, and the LeNet-5 step."""
    peak = gemm_peak_gflops(args.repeat)
    result: dict[str, Any] = {
        **machine(), "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
        "repeat": args.repeat, "matmul_peak_gflops": peak, "conv": []}
    say(blas_line(result))
    say(f"float32 GEMM {GEMM_SIZE}³ peak: {peak:.1f} GFLOP/s;  load average "
        f"{result['load_average'][0]:.2f} on {result['cpus']} CPUs;  median of "
        f"{args.repeat} runs" + (f";  torch {torch.__version__} "
                                            f"({torch.get_num_threads()} threads)" if torch else ""))
    say(f"{'conv case':<17}{'fwd ms':>8}{'GFLOP/s':>9}{'peak':>6}{'f+b ms':>9}{'GFLOP/s':>9}"
        f"{'peak':>6}" + (f"{'torch fwd':>11}{'f+b':>8}{'ratio fwd':>11}{'f+b':>7}"
                          f"{'by block fwd':>14}{'f+b':>11}" if torch else "")
        + "  algorithm (im2col layout)")
    winograd_lines = []
    for case in CONV_CASES:
        row, line, winograd_line = conv_row(case, args.repeat, peak, torch)
        result["conv"].append(row)
        if winograd_line:
            winograd_lines.append(winograd_line)
        say(line)
    say("\n3×3 layers by algorithm, fwd and f+b ms; float32 error of out, dx, dw against float64 "
        "im2col (max |error| / max |value|)")
    say(f"{'':<17}{'im2col':>16}{'F(2×2,3×3)':>16}{'F(4×4,3×3)':>16}"
        f"{'im2col error':>26}{'F(2×2) error':>26}{'F(4×4) error':>26}")
    for line in winograd_lines:
        say(line)
    result["lenet5_step"] = lenet5_step(args.repeat, torch, say)
    return result


def conv_row(case: tuple, repeat: int, peak: float, torch: Any
             ) -> tuple[dict[str, Any], str, str | None]:
    """Time every algorithm of ``case`` and torch's conv in alternating blocks
    (``grouped_times``): the JSON row, the line of the main table and, for a 3×3 case, the
    line of the by-algorithm table."""
    algorithm = auto_algorithm(case)
    groups = []  # one block per algorithm: one's threads (a pool, BLAS's) must not run into
    for name in conv_algorithms(case):  # the next's timings
        groups.append(dict(zip((name + " fwd", name + " f+b"), conv_fns(case, name))))
    if torch:
        groups.append(dict(zip(("torch fwd", "torch f+b"), torch_conv_fns(torch, case))))
    times = grouped_times(groups, repeat)
    ms = median_ms(times)
    fwd, fb = ms[algorithm + " fwd"], ms[algorithm + " f+b"]
    flops = conv_flops(case)
    row = {"case": case[0], "shape": "x {}x{}x{}x{}, w {}x{}x{}x{}, pad {}".format(
        *case[1:5], case[5], case[2], case[6], case[6], case[7]),
        "layout": conv_layout(case), "algorithm": algorithm,
        "fwd_ms": fwd, "fwd_gflops": flops / fwd / 1e6,
        "fwd_bwd_ms": fb, "fwd_bwd_gflops": 3 * flops / fb / 1e6,
        "algorithms": {name: {"fwd_ms": ms[name + " fwd"], "fwd_bwd_ms": ms[name + " f+b"]}
                       for name in conv_algorithms(case)}}
    line = (f"{case[0]:<17}{fwd:8.2f}{row['fwd_gflops']:9.1f}{row['fwd_gflops'] / peak:6.0%}"
            f"{fb:9.2f}{row['fwd_bwd_gflops']:9.1f}{row['fwd_bwd_gflops'] / peak:6.0%}")
    if torch:
        t_fwd, t_fb = ms["torch fwd"], ms["torch f+b"]
        blocks = {kind: block_ratios(times, f"{algorithm} {kind}", f"torch {kind}")
                  for kind in ("fwd", "f+b")}
        row.update(torch_fwd_ms=t_fwd, torch_fwd_bwd_ms=t_fb, ratio_fwd=fwd / t_fwd,
                   ratio_fwd_bwd=fb / t_fb, ratio_fwd_blocks=blocks["fwd"],
                   ratio_fwd_bwd_blocks=blocks["f+b"])
        line += (f"{t_fwd:11.2f}{t_fb:8.2f}{fwd / t_fwd:10.2f}×{fb / t_fb:6.2f}×"
                 + f"{ratio_range(blocks['fwd']):>14}{ratio_range(blocks['f+b']):>11}")
    line += f"  {algorithm} ({row['layout']})"
    if case[6] != 3:
        return row, line, None
    row["float32_error"] = {name: float32_errors(case, name)
                            for name in ("im2col", "winograd2", "winograd4")}
    winograd_line = f"{case[0]:<17}" + "".join(
        f"{ms[name + ' fwd']:8.2f}{ms[name + ' f+b']:8.2f}"
        for name in conv_algorithms(case)) + "".join(
        f"  {e['out']:.1e} {e['dx']:.1e} {e['dw']:.1e}" for e in row["float32_error"].values())
    return row, line, winograd_line


def lenet5_step(repeat: int, torch: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Time the LeNet-5 training step (``step.lenet5_steps``) and print it: the JSON entry."""
    try:
        step = lenet5_steps(repeat, torch)
    except ImportError as err:  # models or optim not available
        say(f"LeNet-5 training step: skipped ({err})")
        return {"skipped": str(err)}
    step["autograd_overhead"] = step["autograd_ms"] / step["kernels_ms"] - 1
    say(f"LeNet-5 training step (batch 64, SGD momentum): {step['autograd_ms']:.1f} ms "
        f"through autograd, {step['kernels_ms']:.1f} ms calling the kernels directly "
        f"(autograd adds {step['autograd_overhead']:.0%})")
    if torch:
        step["ratio"] = step["autograd_ms"] / step["torch_ms"]
        say(f"  torch: {step['torch_ms']:.1f} ms, ratio {step['ratio']:.2f}× (by block "
            f"{ratio_range(step['ratio_blocks'])}×)")
    return step
