"""A LeNet-5 training step through autograd, through the kernels and in PyTorch (bench conv)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from nnprune.bench.timing import block_ratios, grouped_times, median_ms
from nnprune.bench.train import torch_lenet5


def lenet5_steps(repeat: int, torch: Any = None) -> dict[str, Any]:
    """One SGD step of LeNet-5 (28×28 inputs, batch 64): through autograd, and the same
    arithmetic calling the kernels directly (no graph), so the difference is autograd's cost;
    and PyTorch's step if ``torch`` is given, in alternating blocks (``grouped_times``):
    median ms of each, and with torch the autograd step's ratio to torch's block by block."""
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

    groups = [{"autograd_ms": autograd_step, "kernels_ms": kernel_step}]
    if torch is not None:
        groups.append({"torch_ms": torch_lenet5_step(torch)})
    times = grouped_times(groups, repeat)
    step: dict[str, Any] = median_ms(times)
    if torch is not None:
        step["ratio_blocks"] = block_ratios(times, "autograd_ms", "torch_ms")
    return step


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


def torch_lenet5_step(torch: Any) -> Callable[[], None]:
    """The LeNet-5 SGD step of ``lenet5_steps`` in PyTorch, as a closure."""
    nnt = torch.nn
    model = torch_lenet5(torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step():
        optimizer.zero_grad()
        nnt.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step
