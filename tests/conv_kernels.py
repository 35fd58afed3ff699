"""Every conv2d of the package on one problem, so that a test can hold them all equal.

The three levels of ``nnprune.functional``: the seven loops (``naive.py``), the plain
im2col + GEMM reference (``conv_plain.py``), the tuned im2col in each memory layout
(``conv.py``) and, where the kernel is 3×3 at stride and dilation 1, Winograd F(2×2, 3×3)
and F(4×4, 3×3) (``winograd.py``).
"""
from __future__ import annotations

import numpy as np

from nnprune.functional import naive
from nnprune.functional.conv import conv2d_backward, conv2d_forward
from nnprune.functional.conv_plain import conv2d_plain_backward, conv2d_plain_forward
from nnprune.functional.im2col import LAYOUTS
from nnprune.functional.winograd import winograd_backward, winograd_forward


def kernels_for(w_shape, stride, padding, dilation) -> dict:
    """name -> (forward(x, w, b) returning (out, cache), backward(dout, cache)) of every
    kernel that computes this geometry (stride, padding, dilation as (h, w) pairs)."""
    def tuned(layout):
        return lambda x, w, b: conv2d_forward(x, w, b, stride, padding, dilation, layout=layout)

    found = {"plain": (lambda x, w, b: conv2d_plain_forward(x, w, b, stride, padding, dilation),
                       conv2d_plain_backward)}
    found.update({f"im2col {layout}": (tuned(layout), conv2d_backward) for layout in LAYOUTS})
    if tuple(w_shape[2:]) == (3, 3) and stride == (1, 1) and dilation == (1, 1):
        for m in (2, 4):
            found[f"winograd{m}"] = (
                lambda x, w, b, m=m: winograd_forward(x, w, b, padding, m=m), winograd_backward)
    return found


def assert_all_equal_the_loops(x, w, b, stride, padding, dilation, tol=1e-10) -> list[str]:
    """Run every kernel that fits, forward and backward (with one random dout), and assert
    that out, dx, dw and db equal the seven loops' within ``tol``; the names run."""
    ref, ref_cache = naive.conv2d_naive_forward(x, w, b, stride, padding, dilation)
    dout = np.random.default_rng(x.size).standard_normal(ref.shape)
    expected = naive.conv2d_naive_backward(dout, ref_cache)
    run = kernels_for(w.shape, stride, padding, dilation)
    for name, (forward, backward) in run.items():
        out, cache = forward(x, w, b)
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=f"{name}: out")
        for grad, got, want in zip(("dx", "dw", "db"), backward(dout, cache), expected):
            if want is None:
                assert got is None, f"{name}: {grad}"
            else:
                assert got.dtype == want.dtype, f"{name}: {grad} is {got.dtype}"
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol,
                                           err_msg=f"{name}: {grad}")
    return list(run)
