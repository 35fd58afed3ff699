"""``nnprune bench conv``: time the conv kernels and a LeNet-5 training step.

Each timing is the median of ``--repeat`` runs after one warm-up. FLOPs = 2 · MACs; a conv's
MACs are N·F·OH·OW·C·kh·kw, and backward costs two more GEMMs of the same size (dx and dw),
so forward+backward counts 3× the forward FLOPs. The "peak" is a float32 GEMM of size
2048³ measured in the same run, so the share of peak compares like with like on this machine
and BLAS. If PyTorch happens to be importable, the same cases run in torch (CPU) and the
ratio nnprune / torch is printed; PyTorch is never a dependency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any, Callable

import numpy as np

# (name, N, C, H, W, F, k, padding)
CONV_CASES = [
    ("lenet conv1", 64, 1, 28, 28, 6, 5, 0),
    ("lenet conv2", 64, 6, 12, 12, 16, 5, 0),
    ("vgg 3->64 @32", 64, 3, 32, 32, 64, 3, 1),
    ("vgg 64->128 @16", 64, 64, 16, 16, 128, 3, 1),
    ("vgg 128->256 @8", 64, 128, 8, 8, 256, 3, 1),
]


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: first-touch allocations, BLAS thread start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(repeat: int, n: int = 2048) -> float:
    """GFLOP/s of a float32 n×n×n GEMM."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, max(3, repeat // 2)) / 1e9


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see the BLAS in use)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
                     f"{i.get('num_threads')} threads)" for i in libs) or "none found"


def _nnprune_conv(case, repeat):
    from nnprune.functional.conv import conv2d_backward, conv2d_forward

    _, n, c, h, w, f, k, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c, k, k)).astype(np.float32)
    b = np.zeros(f, np.float32)
    out, cache = conv2d_forward(x, wt, b, 1, p, 1)
    dout = np.ones_like(out)

    def fwd_bwd():
        _, c_ = conv2d_forward(x, wt, b, 1, p, 1)
        conv2d_backward(dout, c_)

    return median_seconds(lambda: conv2d_forward(x, wt, b, 1, p, 1), repeat), median_seconds(fwd_bwd, repeat), out.shape


def _torch_conv(torch, case, repeat):
    _, n, c, h, w, f, k, p = case
    x = torch.randn(n, c, h, w, requires_grad=True)
    conv = torch.nn.Conv2d(c, f, k, padding=p)

    def fwd():
        with torch.no_grad():
            conv(x)

    def fwd_bwd():
        conv.zero_grad()
        x.grad = None
        conv(x).sum().backward()

    return median_seconds(fwd, repeat), median_seconds(fwd_bwd, repeat)


def _lenet_step(repeat):
    """One SGD step of LeNet-5 (28×28, batch 64), through autograd and through kernels alone."""
    from nnprune import Tensor, models
    from nnprune import functional as F
    from nnprune.functional import conv as C
    from nnprune.functional import layers as L
    from nnprune.optim import SGD

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    model = models.lenet5(seed=0)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(Tensor(x)), y).backward()
        opt.step()

    autograd = median_seconds(step, repeat)
    # the same arithmetic calling the kernels directly, no graph
    w = [m for m in model.modules() if hasattr(m, "weight") and m.weight is not None]

    def direct():
        o1, c1 = C.conv2d_forward(x, w[0].weight.data, w[0].bias.data, 1, 0, 1)
        p1 = L.MaxPool2d(); q1 = p1.forward(o1, 2)
        o2, c2 = C.conv2d_forward(q1, w[1].weight.data, w[1].bias.data, 1, 0, 1)
        p2 = L.MaxPool2d(); q2 = p2.forward(o2, 2)
        flat = q2.reshape(64, -1)
        l1 = L.Linear(); h = l1.forward(flat, w[2].weight.data, w[2].bias.data)
        r = np.maximum(h, 0)
        l2 = L.Linear(); z = l2.forward(r, w[3].weight.data, w[3].bias.data)
        ce = L.CrossEntropy(); ce.forward(z, y)
        dz = ce.backward(np.float32(1.0))[0]
        dr, _, _ = l2.backward(dz)
        dh = dr * (h > 0)
        dflat, _, _ = l1.backward(dh)
        dq2 = p2.backward(dflat.reshape(q2.shape))[0]
        dq1, _, _ = C.conv2d_backward(dq2, c2)
        C.conv2d_backward(p1.backward(dq1)[0], c1)

    return autograd, median_seconds(direct, repeat)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", default="conv", choices=["conv"],
                        help="what to time (conv: the conv layers and a LeNet-5 step)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per case (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise ValueError(f"--repeat must be a positive int, got {args.repeat}")
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F401
            torch.set_num_threads(os.cpu_count() or 1)
        except ImportError:
            torch = None
    peak = matmul_peak(args.repeat)
    result: dict[str, Any] = {"blas": blas_info(), "matmul_peak_gflops": peak,
                              "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                              "torch": getattr(torch, "__version__", None), "conv": []}
    print(f"BLAS: {result['blas']}")
    print(f"OPENBLAS_CORETYPE={result['OPENBLAS_CORETYPE']}   float32 GEMM peak: {peak:.1f} GFLOP/s")
    head = f"{'case':<17}{'fwd ms':>9}{'GFLOP/s':>9}{'%peak':>7}{'f+b ms':>9}{'GFLOP/s':>9}{'%peak':>7}"
    print(head + ("   torch fwd  f+b   ratio fwd  f+b" if torch else ""))
    for case in CONV_CASES:
        fwd, fb, shape = _nnprune_conv(case, args.repeat)
        _, n, c, h, w, f, k, p = case
        flops = 2 * n * f * shape[2] * shape[3] * c * k * k
        row = {"case": case[0], "fwd_ms": fwd * 1e3, "fwd_bwd_ms": fb * 1e3,
               "fwd_gflops": flops / fwd / 1e9, "fwd_bwd_gflops": 3 * flops / fb / 1e9}
        line = (f"{case[0]:<17}{fwd * 1e3:9.2f}{row['fwd_gflops']:9.1f}{100 * row['fwd_gflops'] / peak:6.0f}%"
                f"{fb * 1e3:9.2f}{row['fwd_bwd_gflops']:9.1f}{100 * row['fwd_bwd_gflops'] / peak:6.0f}%")
        if torch:
            tf, tfb = _torch_conv(torch, case, args.repeat)
            row.update(torch_fwd_ms=tf * 1e3, torch_fwd_bwd_ms=tfb * 1e3,
                       ratio_fwd=fwd / tf, ratio_fwd_bwd=fb / tfb)
            line += f"   {tf * 1e3:8.2f} {tfb * 1e3:6.2f}   {fwd / tf:8.2f}× {fb / tfb:5.2f}×"
        result["conv"].append(row)
        print(line)
    autograd, direct = _lenet_step(args.repeat)
    result["lenet5_step"] = {"autograd_ms": autograd * 1e3, "kernels_ms": direct * 1e3,
                             "autograd_overhead": autograd / direct - 1}
    print(f"LeNet-5 training step (batch 64): {autograd * 1e3:.1f} ms through autograd, "
          f"{direct * 1e3:.1f} ms calling the kernels: autograd adds {100 * (autograd / direct - 1):.0f} %")
    if torch:
        tmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 20, 5), torch.nn.MaxPool2d(2),
                                     torch.nn.Conv2d(20, 50, 5), torch.nn.MaxPool2d(2),
                                     torch.nn.Flatten(), torch.nn.Linear(800, 500), torch.nn.ReLU(),
                                     torch.nn.Linear(500, 10))
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

        def tstep():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

        t = median_seconds(tstep, args.repeat)
        result["lenet5_step"].update(torch_ms=t * 1e3, ratio=autograd / t)
        print(f"  torch: {t * 1e3:.1f} ms   ratio {autograd / t:.2f}×")
    if args.json:
        from pathlib import Path
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
