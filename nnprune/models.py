"""The classic pruning benchmarks, as ``nn.Sequential`` models.

Every builder takes ``in_channels``, ``num_classes``, ``input_size`` (an int or (H, W), so
the same architecture runs on 28×28 MNIST and on 8×8 digits), a ``width`` multiplier (counts
become ``max(1, round(width * c))``), a ``seed`` (all layers draw, in order, from one
generator), a ``dtype`` and the ``init`` / ``bias_init`` of every Linear and Conv2d.

Parameter counts at the papers' settings (tested exactly):

============== ============ ==============================================================
model           parameters   source
============== ============ ==============================================================
lenet_300_100      266,610   Han et al. 2015 (784-300-100-10 MLP)
lenet5             431,080   Han et al. 2015, the Caffe LeNet-5 (conv 20, 50 of 5×5; fc 500)
simple_cnn         268,650   two 3×3 conv + pool blocks (16, 32), fc 128, on 3×32×32
vgg16           14,986,698   Li et al. 2017, CIFAR VGG-16 with BatchNorm
resnet20           272,474   He et al. 2016, CIFAR ResNet-20 (1×1 projection shortcuts)
============== ============ ==============================================================
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from nnprune import nn
from nnprune.checks import check_int


def _common(input_size: Any, width: Any, in_channels: Any, num_classes: Any, seed: Any,
            dtype: Any, init: Any, bias_init: Any) -> tuple[int, int, dict[str, Any]]:
    """Check the arguments every builder shares; (H, W) and the options of all its layers
    (one generator seeded by ``seed``, the dtype and the initialisation)."""
    hw = input_size if isinstance(input_size, (tuple, list)) else (input_size, input_size)
    if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                           for v in hw):
        raise ValueError(f"input_size must be a positive int or (H, W), got {input_size!r}")
    nn.init.resolve_bias_init(nn.init.check_init(init), bias_init)
    check_int(in_channels, "in_channels", 1)
    check_int(num_classes, "num_classes", 1)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    return int(hw[0]), int(hw[1]), dict(rng=rng, dtype=dtype, init=init, bias_init=bias_init)


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(width * c)))


def lenet_300_100(in_channels: int = 1, num_classes: int = 10, input_size: Any = 28,
                  width: float = 1.0, seed: int = 0, dtype: Any = np.float32, init: str = "torch",
               bias_init: str | None = None) -> nn.Sequential:
    """LeNet-300-100: Flatten, Linear(C·H·W, 300), ReLU, Linear(300, 100), ReLU, Linear(100, K).

    (N, C, H, W) -> (N, K). 266,610 parameters on 28×28 (266,200 weights + 410 biases).
    Its parameter names and shapes (``1.weight, 1.bias, 3.weight, ...``) are those of the same
    PyTorch ``nn.Sequential``, so a state dict moves across unchanged.
    """
    h, w, kw = _common(input_size, width, in_channels, num_classes, seed, dtype, init,
                       bias_init)
    h1, h2 = _scaled(300, width), _scaled(100, width)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * h * w, h1, **kw), nn.ReLU(),
        nn.Linear(h1, h2, **kw), nn.ReLU(),
        nn.Linear(h2, num_classes, **kw),
    )


def lenet5(in_channels: int = 1, num_classes: int = 10, input_size: Any = 28,
           width: float = 1.0, seed: int = 0, dtype: Any = np.float32,
           padding: int | None = None, init: str = "torch",
           bias_init: str | None = None) -> nn.Sequential:
    """The Caffe LeNet-5 used by Han et al. 2015.

    conv 5×5 (20) → max-pool 2 → conv 5×5 (50) → max-pool 2 → fc 500 → ReLU → fc K, as in
    Caffe's prototxt (no ReLU after the convolutions). 431,080 parameters and 2,293,000 MACs
    on 28×28. ``padding`` defaults to 0 for inputs of at least 28 pixels and to 2 ("same")
    below, so 8×8 digits still fit through two 5×5 convolutions.
    """
    h, w, kw = _common(input_size, width, in_channels, num_classes, seed, dtype, init,
                       bias_init)
    if padding is not None and (isinstance(padding, bool) or not isinstance(padding, int)
                                or padding < 0):
        raise ValueError(f"padding must be None or an int >= 0, got {padding!r}")
    pad = (0 if min(h, w) >= 28 else 2) if padding is None else padding
    c1, c2, f1 = _scaled(20, width), _scaled(50, width), _scaled(500, width)
    for _ in range(2):  # two conv + pool blocks
        h, w = (h + 2 * pad - 4) // 2, (w + 2 * pad - 4) // 2
    if h < 1 or w < 1:
        raise ValueError(f"input_size {input_size!r} is too small for lenet5 with padding {pad}")
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=pad, **kw), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=pad, **kw), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * h * w, f1, **kw), nn.ReLU(),
        nn.Linear(f1, num_classes, **kw),
    )


def simple_cnn(in_channels: int = 3, num_classes: int = 10, input_size: Any = 32,
               width: float = 1.0, seed: int = 0, dtype: Any = np.float32, init: str = "torch",
               bias_init: str | None = None) -> nn.Sequential:
    """Two conv blocks and an MLP head: the classic small CNN.

    [conv 3×3 pad 1 (16) → ReLU → max-pool 2] → [conv 3×3 pad 1 (32) → ReLU → max-pool 2]
    → fc 32·(H/4)·(W/4) → 128 → ReLU → fc K.
    """
    h, w, kw = _common(input_size, width, in_channels, num_classes, seed, dtype, init,
                       bias_init)
    if h < 4 or w < 4:
        raise ValueError(f"simple_cnn needs an input of at least 4×4, got {input_size!r}")
    c1, c2, f1 = _scaled(16, width), _scaled(32, width), _scaled(128, width)
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * (h // 4) * (w // 4), f1, **kw), nn.ReLU(),
        nn.Linear(f1, num_classes, **kw),
    )


VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(in_channels: int = 3, num_classes: int = 10, input_size: Any = 32,
          width: float = 1.0, seed: int = 0, dtype: Any = np.float32, init: str = "torch",
          bias_init: str | None = None) -> nn.Sequential:
    """CIFAR VGG-16 as in Li et al. 2017 ("Pruning Filters for Efficient ConvNets").

    13 bias-free 3×3 pad-1 convolutions, each followed by BatchNorm (γ, β) and ReLU, five
    max-pools, then Linear(512, 512) → ReLU → Linear(512, K). 14,986,698 parameters and
    313,463,808 MACs on 3×32×32 (BatchNorm's running statistics are buffers, not parameters).
    A max-pool that would shrink a map below 1×1 is left out, so small inputs still fit.
    """
    h, w, kw = _common(input_size, width, in_channels, num_classes, seed, dtype, init,
                       bias_init)
    layers: list[nn.Module] = []
    c = in_channels
    for v in VGG16_LAYERS:
        if v == "M":
            if h >= 2 and w >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            continue
        out = _scaled(v, width)
        layers += [nn.Conv2d(c, out, 3, padding=1, bias=False, **kw),
                   nn.BatchNorm2d(out, dtype=dtype), nn.ReLU()]
        c = out
    hidden = _scaled(512, width)
    layers += [nn.Flatten(),
               nn.Linear(c * h * w, hidden, **kw), nn.ReLU(),
               nn.Linear(hidden, num_classes, **kw)]
    return nn.Sequential(*layers)


def _basic_block(c_in: int, c_out: int, stride: int, kw: dict[str, Any]) -> nn.Residual:
    """[conv 3×3 (stride) → BN → ReLU → conv 3×3 → BN] + shortcut; the shortcut is the
    identity, or conv 1×1 (stride) → BN where the width or the map size changes. ``kw``:
    the Conv2d options (rng, dtype, init, bias_init)."""
    dtype = kw["dtype"]
    body = nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False, **kw),
        nn.BatchNorm2d(c_out, dtype=dtype), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False, **kw),
        nn.BatchNorm2d(c_out, dtype=dtype))
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False, **kw),
                                 nn.BatchNorm2d(c_out, dtype=dtype))
    return nn.Residual(body, shortcut)


def resnet(in_channels: int = 3, num_classes: int = 10, input_size: Any = 32,
           width: float = 1.0, seed: int = 0, dtype: Any = np.float32, init: str = "torch",
           bias_init: str | None = None, depth: int = 20) -> nn.Sequential:
    """The CIFAR ResNet of He et al. 2016 (Sec. 4.2): 6n + 2 layers, ``depth`` = 20, 32, 44, ...

    conv 3×3 (16) → BN → ReLU → 3 stages of n basic blocks (16, 32, 64 channels; the first
    block of stages 2 and 3 has stride 2), each followed by a ReLU → global average pool →
    fc K. Convolutions have no bias (BatchNorm follows). Where a block changes the width and
    map size its shortcut is a 1×1 convolution with BatchNorm (He et al.'s option B; their
    CIFAR models use option A, zero-padding, which has no parameters), so ResNet-20 has
    269,722 + 2,752 = 272,474 parameters and 40,813,184 MACs on 3×32×32 (the paper: 0.27 M).
    Any input size works (each stride-2 stage halves it, rounding up).
    """
    h, w, kw = _common(input_size, width, in_channels, num_classes, seed, dtype, init,
                       bias_init)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), "
                         f"got {depth!r}")
    widths = [_scaled(c, width) for c in (16, 32, 64)]
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False, **kw),
        nn.BatchNorm2d(widths[0], dtype=dtype), nn.ReLU()]
    c = widths[0]
    for stage, c_out in enumerate(widths):
        for block in range((depth - 2) // 6):
            stride = 2 if stage > 0 and block == 0 else 1
            layers += [_basic_block(c, c_out, stride, kw), nn.ReLU()]
            h, w, c = -(-h // stride), -(-w // stride), c_out  # stride 2 rounds up
    layers += [nn.AvgPool2d((h, w)), nn.Flatten(),
               nn.Linear(c, num_classes, **kw)]
    return nn.Sequential(*layers)


def resnet20(in_channels: int = 3, num_classes: int = 10, input_size: Any = 32,
             width: float = 1.0, seed: int = 0, dtype: Any = np.float32, init: str = "torch",
             bias_init: str | None = None) -> nn.Sequential:
    """ResNet-20 (He et al. 2016): ``resnet`` with depth 20, three blocks per stage."""
    return resnet(in_channels, num_classes, input_size, width, seed, dtype, init, bias_init,
                  depth=20)


MODELS: dict[str, Callable[..., nn.Sequential]] = {
    "lenet_300_100": lenet_300_100, "lenet5": lenet5, "simple_cnn": simple_cnn, "vgg16": vgg16,
    "resnet20": resnet20}


def build_model(name: str, **kwargs: Any) -> nn.Sequential:
    """The model called ``name`` (a key of ``MODELS``), built with ``kwargs``."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    accepted = inspect.signature(MODELS[name]).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{name}() does not take {unknown}; it takes {list(accepted)}")
    return MODELS[name](**kwargs)
