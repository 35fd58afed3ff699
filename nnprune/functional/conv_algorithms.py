"""Which algorithm runs a conv2d: im2col (conv.py) or Winograd (winograd.py).

``F.conv2d(..., algorithm=...)`` and ``nn.Conv2d(..., algorithm=...)`` take one of
ALGORITHMS; "auto" runs ``auto_winograd``'s measured rule.
"""
from __future__ import annotations

from nnprune.functional.validation import Pair

ALGORITHMS = ("auto", "im2col", "winograd2", "winograd4")
TILE = {"winograd2": 2, "winograd4": 4}  # the output tile m of each Winograd algorithm


def conv_algorithm(algorithm: str, x_shape: tuple, w_shape: tuple, stride: Pair,
                   dilation: Pair, padding: Pair = (1, 1)) -> str:
    """The conv2d algorithm to run: "im2col", "winograd2" or "winograd4".

    "auto" picks Winograd for a 3×3, stride-1, undilated kernel when ``auto_winograd`` says it
    wins for this shape (measured), im2col for everything else.
    A forced Winograd on a kernel it cannot compute raises ValueError.

    >>> conv_algorithm("auto", (64, 64, 16, 16), (128, 64, 3, 3), (1, 1), (1, 1))
    'winograd4'
    >>> conv_algorithm("auto", (64, 6, 12, 12), (16, 6, 5, 5), (1, 1), (1, 1), (0, 0))
    'im2col'
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    four_d = len(x_shape) == 4 and len(w_shape) == 4  # else the kernel's checks say why
    fits = tuple(w_shape[2:]) == (3, 3) and stride == (1, 1) and dilation == (1, 1)
    if algorithm == "auto":
        return auto_winograd(x_shape, w_shape, padding) if four_d and fits else "im2col"
    if algorithm != "im2col" and four_d and not fits:
        raise ValueError(f"algorithm {algorithm!r} computes 3×3 kernels at stride 1 and "
                         f"dilation 1 only, got kernel {tuple(w_shape[2:])}, stride {stride}, "
                         f"dilation {dilation}")
    return algorithm


def auto_winograd(x_shape: tuple, w_shape: tuple, padding: Pair = (1, 1)) -> str:
    """The faster algorithm for a 3×3 stride-1 conv of x (N, C, H, W) with F filters.

    Winograd trades GEMM work (÷2.25 or ÷4) for transforms that copy the data a few times;
    it wins once the GEMMs dominate. Measured forward+backward, batch 64, padding 1, one BLAS
    thread, CPU time in ms (im2col / F(2×2) / F(4×4)): C=8, F=16 @32²: 24.8 / 31.1 / 22.6;
    C=F=16 @32²: 46.2 / 48.0 / 31.8; C=F=32 @16²: 34.3 / 33.2 / 25.1; C=F=64 @4²:
    4.8 / 7.2 / 4.0; C=F=128 @4²: 13.8 / 14.2 / 9.6, but @2²: 3.9 / 4.6 / 10.5 (one 4×4
    tile for 2×2 outputs); the bench's VGG 3->64 @32²: im2col 2-3× faster. So F(4×4, 3×3)
    from 16 channels with outputs of at least 4×4, im2col otherwise; F(2×2, 3×3) never won.
    """
    out_h, out_w = (x_shape[2] + 2 * padding[0] - 2, x_shape[3] + 2 * padding[1] - 2)
    return "winograd4" if x_shape[1] >= 16 and min(out_h, out_w) >= 4 else "im2col"
