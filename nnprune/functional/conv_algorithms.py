"""Which kernel runs a conv2d, and the autograd op that runs it.

Three levels of the same convolution live beside this file: ``naive.py``'s seven loops,
``conv_plain.py``'s im2col and one GEMM (the reference to read), and the tuned kernels that
``F.conv2d`` runs: ``conv.py`` (im2col in three memory layouts, ``im2col.py``) and
``winograd.py`` (3×3 kernels by minimal filtering). The tests hold all of them equal.

``F.conv2d(..., algorithm=...)`` and ``nn.Conv2d(..., algorithm=...)`` take one of
ALGORITHMS; "auto" runs ``auto_winograd``'s rule.
"""
from __future__ import annotations

from nnprune.autograd.function import Function
from nnprune.functional.conv import conv2d_backward, conv2d_forward
from nnprune.functional.validation import Pair
from nnprune.functional.winograd import winograd_backward, winograd_forward

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
    it wins once the GEMMs dominate. ``nnprune bench conv`` times both: F(4×4, 3×3) wins
    from 16 input channels with outputs of at least 4×4 (a 4×4 tile over a 2×2 output
    wastes most of its work), im2col wins below (the first layer of an image network, with
    3 channels, most clearly); F(2×2, 3×3) never won.
    """
    out_h, out_w = (x_shape[2] + 2 * padding[0] - 2, x_shape[3] + 2 * padding[1] - 2)
    return "winograd4" if x_shape[1] >= 16 and min(out_h, out_w) >= 4 else "im2col"


class Conv2d(Function):
    """out = x ⋆ w + b as one autograd op, by the algorithm ``conv_algorithm`` chose:
    "im2col" (conv.py), "winograd2" or "winograd4" (winograd.py, stride and dilation 1)."""

    def forward(self, x, w, *b, algorithm="im2col", stride=1, padding=0, dilation=1):
        self.dtypes = [a.dtype for a in (x, w, *b)]
        bias = b[0] if b else None
        if algorithm == "im2col":
            self.kernel_backward = conv2d_backward
            out, self.cache = conv2d_forward(x, w, bias, stride, padding, dilation)
        else:
            self.kernel_backward = winograd_backward
            out, self.cache = winograd_forward(x, w, bias, padding, m=TILE[algorithm])
        return out

    def backward(self, dout):
        need_dx = self.parents[0].requires_grad  # an input image needs no gradient
        grads = self.kernel_backward(dout, self.cache, need_dx=need_dx)[:len(self.dtypes)]
        return tuple(None if g is None else g.astype(dt, copy=False)
                     for g, dt in zip(grads, self.dtypes))
