"""``nnprune bench conv``: time the conv kernels and a LeNet-5 training step (``nnprune bench
demo``: the quick demo at 1 and 2 BLAS threads, see ``nnprune.bench_demo``).

Every timing is the median of ``--repeat`` runs after two warm-up runs. FLOPs = 2 · MACs; a
conv's MACs are N·F·OH·OW·C·kh·kw (bias excluded), and its backward is two GEMMs of the same
size (dx and dW), so forward+backward counts 3× the forward FLOPs. The peak is the best of
``--repeat`` float32 2048³ GEMMs in the same run, with the same BLAS: the share of peak
compares like with like on this machine. If PyTorch is importable (never a dependency), the
same cases run in torch on the CPU and the ratio nnprune / torch is printed.

The machine state matters: other processes on the cores and OPENBLAS_CORETYPE (which picks
OpenBLAS's GEMM kernel) change every figure, so both are printed with the results.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

# (name, N, C, H, W, F, k, padding), stride 1
CONV_CASES = [
    ("lenet conv1", 64, 1, 28, 28, 6, 5, 0),
    ("lenet conv2", 64, 6, 12, 12, 16, 5, 0),
    ("vgg 3->64 @32", 64, 3, 32, 32, 64, 3, 1),
    ("vgg 64->128 @16", 64, 64, 16, 16, 128, 3, 1),
    ("vgg 128->256 @8", 64, 128, 8, 8, 256, 3, 1),
]
GEMM_SIZE = 2048


def timings(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> list[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones (first-touch
    allocations, BLAS threads starting)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    return 1e3 * statistics.median(timings(fn, repeat))


def gemm_peak_gflops(repeat: int, n: int = GEMM_SIZE) -> float:
    """GFLOP/s of the best of ``repeat`` float32 n×n×n GEMMs (2n³ FLOPs each)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    return 2 * n ** 3 / min(timings(lambda: a @ b, max(3, repeat))) / 1e9


def blas_info() -> str:
    """The BLAS NumPy calls, as threadpoolctl reports it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl is not installed: pip install threadpoolctl)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} "
                     f"kernel, {i.get('num_threads')} threads)" for i in libs) or "none found"


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


def time_conv(case: tuple, repeat: int, algorithm: str = "im2col") -> tuple[float, float]:
    """(forward ms, forward+backward ms) of nnprune's conv kernels, float32."""
    fwd, fb = conv_fns(case, algorithm)
    return median_ms(fwd, repeat), median_ms(fb, repeat)


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


def interleaved_ms(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median ms of each function, timed in turns (a, b, c, a, b, c, ...) after two warm-up
    calls each, so that a change in the machine's load reaches every function alike."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


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


def time_torch_conv(torch: Any, case: tuple, repeat: int) -> tuple[float, float]:
    """The same case in PyTorch: (forward ms under no_grad, forward+backward ms)."""
    forward, forward_backward = torch_conv_fns(torch, case)
    return median_ms(forward, repeat), median_ms(forward_backward, repeat)


def lenet5_steps(repeat: int, torch: Any = None) -> dict[str, float]:
    """One SGD step of LeNet-5 (28×28 inputs, batch 64): through autograd, and the same
    arithmetic calling the kernels directly (no graph), so the difference is autograd's cost;
    and PyTorch's step if ``torch`` is given. Timed in turns (``interleaved_ms``)."""
    from nnprune import Tensor, functional as F, models
    from nnprune.optim import SGD

    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)  # pixels in [0, 1), as MNIST's
    y = rng.integers(0, 10, 64)
    model = models.lenet5(seed=0)
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def autograd_step():
        optimizer.zero_grad()
        F.cross_entropy(model(Tensor(x)), y).backward()
        optimizer.step()

    def kernel_step():
        optimizer.zero_grad()
        kernel_backward(model, x, y)
        optimizer.step()

    fns = {"autograd_ms": autograd_step, "kernels_ms": kernel_step}
    if torch is not None:
        fns["torch_ms"] = torch_lenet5_step(torch)
    return interleaved_ms(fns, repeat)


def kernel_backward(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Forward and backward of the mean cross-entropy through a Sequential of Conv2d,
    MaxPool2d/AvgPool2d, Flatten, Linear and ReLU layers with the array kernels, no graph;
    sets each weight's and bias's .grad as loss.backward() would."""
    from nnprune import nn
    from nnprune.functional import conv, dense, loss, pool

    backs = []  # (layer, backward closure) in forward order
    for layer in model:
        kind = type(layer)
        bias = None if getattr(layer, "bias", None) is None else layer.bias.data
        if kind is nn.Conv2d:
            x, cache = conv.conv2d_forward(x, layer.weight.data, bias, layer.stride,
                                           layer.padding, layer.dilation)
            backs.append((layer, lambda d, c=cache, first=not backs:
                          conv.conv2d_backward(d, c, need_dx=not first)))
        elif kind in (nn.MaxPool2d, nn.AvgPool2d):
            fwd, bwd = ((pool.max_pool2d_forward, pool.max_pool2d_backward) if kind is nn.MaxPool2d
                        else (pool.avg_pool2d_forward, pool.avg_pool2d_backward))
            x, cache = fwd(x, layer.kernel_size, layer.stride, layer.padding)
            backs.append((None, lambda d, c=cache, bwd=bwd: (bwd(d, c),)))
        elif kind is nn.Flatten:
            shape, x = x.shape, x.reshape(len(x), -1)
            backs.append((None, lambda d, s=shape: (d.reshape(s),)))
        elif kind is nn.Linear:
            x, cache = dense.linear_forward(x, layer.weight.data, bias)
            backs.append((layer, lambda d, c=cache: dense.linear_backward(d, c)))
        elif kind is nn.ReLU:
            positive = x > 0
            x = x * positive
            backs.append((None, lambda d, m=positive: (d * m,)))
        else:
            raise TypeError(f"no kernel path for {kind.__name__}")
    _, cache = loss.cross_entropy_forward(x, y)
    d = loss.cross_entropy_backward(np.float32(1.0), cache)
    for layer, backward in reversed(backs):
        grads = backward(d)
        if layer is not None:
            layer.weight.grad = grads[1]
            if layer.bias is not None:
                layer.bias.grad = grads[2]
        d = grads[0]


def time_torch_lenet5(torch: Any, repeat: int) -> float:
    """The same LeNet-5 step in PyTorch, ms."""
    return median_ms(torch_lenet5_step(torch), repeat)


def torch_lenet5_step(torch: Any) -> Callable[[], None]:
    """The LeNet-5 SGD step of ``lenet5_steps`` in PyTorch, as a closure."""
    nnt = torch.nn
    model = nnt.Sequential(nnt.Conv2d(1, 20, 5), nnt.MaxPool2d(2), nnt.Conv2d(20, 50, 5),
                           nnt.MaxPool2d(2), nnt.Flatten(), nnt.Linear(800, 500), nnt.ReLU(),
                           nnt.Linear(500, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step():
        optimizer.zero_grad()
        nnt.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the bench options to ``parser`` (the ``nnprune bench`` subcommand)."""
    parser.add_argument("what", nargs="?", default="conv",
                        choices=["conv", "prune", "train", "hessian", "demo"],
                        help="what to time (conv: the conv layers and a LeNet-5 step; prune: "
                             "inference of dense, masked and shrunk filter-pruned models; train: "
                             "training epochs end to end, see nnprune.bench_train; hessian: "
                             "exact OBC, SparseGPT and the Hessian diagonals; demo: "
                             "'demo --quick' with 1 and 2 BLAS threads, try --repeat 3)")
    parser.add_argument("--cases", type=lambda text: [t.strip() for t in text.split(",")
                                                      if t.strip()],
                        help="prune: comma-separated cases (default: all of "
                             "nnprune.bench_prune.CASES)")
    parser.add_argument("--repeat", type=_positive_int, default=10,
                        help="timed runs per case, the median is reported (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results as JSON to FILE ('-': standard output, "
                             "the table then goes to standard error)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch comparison even if torch is importable")
    parser.add_argument("--threads", type=_positive_int,
                        help="BLAS threads (through threadpoolctl) and torch threads, the same "
                             "for both (default: BLAS as configured, torch one per CPU)")
    from nnprune import bench_train

    bench_train.configure_parser(parser, _positive_int)


def _import_torch(skip: bool, threads: int | None = None) -> Any:
    if skip:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


def _blas_threads(threads: int | None) -> Any:
    """A context that runs the BLAS on ``threads`` threads (nothing if None)."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise ValueError("--threads needs threadpoolctl: pip install threadpoolctl") from err
    return threadpool_limits(threads, user_api="blas")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (and write JSON); the exit status."""
    if isinstance(args.repeat, bool) or not isinstance(args.repeat, int) or args.repeat < 1:
        raise ValueError(f"--repeat must be a positive int, got {args.repeat!r}")
    if getattr(args, "what", "conv") == "prune":
        from nnprune import bench_prune

        return bench_prune.run(args)
    if getattr(args, "what", "conv") == "hessian":
        from nnprune import bench_hessian

        with _blas_threads(getattr(args, "threads", None)):
            return bench_hessian.run(args)
    out = sys.stderr if args.json == "-" else sys.stdout

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    if getattr(args, "what", "conv") == "demo":
        from nnprune.bench_demo import bench_demo

        say(f"BLAS: {blas_info()}; OPENBLAS_CORETYPE="
            f"{os.environ.get('OPENBLAS_CORETYPE') or '(unset)'}")
        _write_json(args.json, bench_demo(args.repeat, say))
        return 0
    threads = getattr(args, "threads", None)
    torch = _import_torch(args.no_torch, threads)
    with _blas_threads(threads):
        if getattr(args, "what", "conv") == "train":
            from nnprune import bench_train

            result = {"blas": blas_info(), "cpus": os.cpu_count(),
                      "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                      "load_average": list(os.getloadavg()),
                      "torch": getattr(torch, "__version__", None)}
            say(f"BLAS: {result['blas']}; OPENBLAS_CORETYPE="
                f"{result['OPENBLAS_CORETYPE'] or '(unset)'}; load average "
                f"{result['load_average'][0]:.2f} on {result['cpus']} CPUs"
                + (f";  torch {torch.__version__} ({torch.get_num_threads()} threads)"
                   if torch else ""))
            result.update(bench_train.run(args, torch, say))
        else:
            result = run_conv(args, torch, say)
    _write_json(args.json, result)
    return 0


def run_conv(args: argparse.Namespace, torch: Any, say: Callable[[str], None]
             ) -> dict[str, Any]:
    """The conv benchmark: the table by layer, by algorithm, and the LeNet-5 step."""
    peak = gemm_peak_gflops(args.repeat)
    result: dict[str, Any] = {
        "blas": blas_info(), "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
        "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
        "repeat": args.repeat, "matmul_peak_gflops": peak, "conv": []}
    say(f"BLAS: {result['blas']}; OPENBLAS_CORETYPE={result['OPENBLAS_CORETYPE'] or '(unset)'}")
    say(f"float32 GEMM {GEMM_SIZE}³ peak: {peak:.1f} GFLOP/s;  load average "
        f"{result['load_average'][0]:.2f} on {result['cpus']} CPUs;  median of "
        f"{args.repeat} interleaved runs" + (f";  torch {torch.__version__} "
                                            f"({torch.get_num_threads()} threads)" if torch else ""))
    say(f"{'conv case':<17}{'fwd ms':>8}{'GFLOP/s':>9}{'peak':>6}{'f+b ms':>9}{'GFLOP/s':>9}"
        f"{'peak':>6}" + (f"{'torch fwd':>11}{'f+b':>8}{'ratio fwd':>11}{'f+b':>7}" if torch else "")
        + "  algorithm (im2col layout)")
    winograd_lines = []
    for case in CONV_CASES:
        algorithm = auto_algorithm(case)
        fns = {}
        for name in conv_algorithms(case):
            fns[name + " fwd"], fns[name + " f+b"] = conv_fns(case, name)
        if torch:
            fns["torch fwd"], fns["torch f+b"] = torch_conv_fns(torch, case)
        ms = interleaved_ms(fns, args.repeat)
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
            row.update(torch_fwd_ms=t_fwd, torch_fwd_bwd_ms=t_fb, ratio_fwd=fwd / t_fwd,
                       ratio_fwd_bwd=fb / t_fb)
            line += f"{t_fwd:11.2f}{t_fb:8.2f}{fwd / t_fwd:10.2f}×{fb / t_fb:6.2f}×"
        line += f"  {algorithm} ({row['layout']})"
        if case[6] == 3:
            row["float32_error"] = {name: float32_errors(case, name)
                                    for name in ("im2col", "winograd2", "winograd4")}
            winograd_lines.append(f"{case[0]:<17}" + "".join(
                f"{ms[name + ' fwd']:8.2f}{ms[name + ' f+b']:8.2f}"
                for name in conv_algorithms(case)) + "".join(
                f"  {e['out']:.1e} {e['dx']:.1e} {e['dw']:.1e}"
                for e in row["float32_error"].values()))
        result["conv"].append(row)
        say(line)
    say("\n3×3 layers by algorithm, fwd and f+b ms; float32 error of out, dx, dw against float64 "
        "im2col (max |error| / max |value|)")
    say(f"{'':<17}{'im2col':>16}{'F(2×2,3×3)':>16}{'F(4×4,3×3)':>16}"
        f"{'im2col error':>26}{'F(2×2) error':>26}{'F(4×4) error':>26}")
    for line in winograd_lines:
        say(line)
    try:
        step = lenet5_steps(args.repeat, torch)
    except ImportError as err:  # models or optim not available
        result["lenet5_step"] = {"skipped": str(err)}
        say(f"LeNet-5 training step: skipped ({err})")
    else:
        step["autograd_overhead"] = step["autograd_ms"] / step["kernels_ms"] - 1
        result["lenet5_step"] = step
        say(f"LeNet-5 training step (batch 64, SGD momentum): {step['autograd_ms']:.1f} ms "
            f"through autograd, {step['kernels_ms']:.1f} ms calling the kernels directly "
            f"(autograd adds {step['autograd_overhead']:.0%})")
        if torch:
            step["ratio"] = step["autograd_ms"] / step["torch_ms"]
            say(f"  torch: {step['torch_ms']:.1f} ms, ratio {step['ratio']:.2f}×")
    return result


def _write_json(where: str | None, result: dict[str, Any]) -> None:
    """``result`` as JSON to standard output ('-') or to the file ``where`` (None: nowhere)."""
    if where == "-":
        print(json.dumps(result, indent=2))
    elif where:
        from nnprune.files import atomic_write_text

        atomic_write_text(where, json.dumps(result, indent=2))
