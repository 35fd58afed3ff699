"""im2col and col2im: unfold the receptive fields of a batch of images into the columns of a
matrix, and fold a matrix of the same shape back onto the images, adding up overlaps.

For x (N, C, H, W), a kernel kh×kw, stride (sh, sw), padding (ph, pw) and dilation (dh, dw),
with K = C·kh·kw and P = OH·OW output pixels per image:

    cols[(c, i, j), (n, y, z)] = x_pad[n, c, y·sh + i·dh, z·sw + j·dw]       cols: (K, N·P)

col2im is its adjoint: dx_pad[n, c, y·sh + i·dh, z·sw + j·dw] += dcols[(c, i, j), (n, y, z)],
one strided add of an (N, C, OH, OW) block per kernel offset (i, j).

No loop runs over pixels: ``as_strided`` presents the windows as a 6-D view of the padded
input, and one copy turns the view into cols. Two layouts of cols are offered (conv.py's
``default_layout`` picks one per shape):

- "channels_first": per image, rows (c, i, j): cols (b, K, P). The copy moves runs of OW
  pixels of the NCHW input; col2im adds runs of OW.
- "channels_last": rows (i, j, c), columns (n, y, z): cols (b·P, K). The input is first
  relaid out to NHWC; the copy then moves runs of kw·C values, col2im adds runs of C.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnprune.functional.validation import Pair

LAYOUTS = ("channels_first", "channels_last")


class Geometry(NamedTuple):
    """Everything about one convolution's shapes."""
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    kernel: Pair                        # (kh, kw)
    out_hw: Pair                        # (OH, OW)
    stride: Pair
    padding: Pair
    dilation: Pair
    layout: str

    @property
    def k(self) -> int:
        """Rows of cols: C·kh·kw."""
        return self.x_shape[1] * self.kernel[0] * self.kernel[1]

    @property
    def p(self) -> int:
        """Output pixels per image: OH·OW."""
        return self.out_hw[0] * self.out_hw[1]


def padded_shape(shape: tuple[int, ...], padding: Pair, channels_last: bool) -> tuple[int, ...]:
    """(b, C, H, W) -> (b, C, H + 2ph, W + 2pw), or (b, H + 2ph, W + 2pw, C) channels-last."""
    b, c, h, w = shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    return (b, hp, wp, c) if channels_last else (b, c, hp, wp)


def pad_images(x: np.ndarray, padding: Pair, channels_last: bool) -> np.ndarray:
    """(b, C, H, W) -> zero-padded (b, C, H + 2ph, W + 2pw), or (b, H + 2ph, W + 2pw, C)
    when ``channels_last`` (the relayout and the padding in one copy); x itself when there
    is nothing to do."""
    ph, pw = padding
    if not ph and not pw and not channels_last:
        return x
    b, c, h, w = x.shape
    xp = np.empty(padded_shape(x.shape, padding, channels_last), x.dtype)
    hp, wp = h + 2 * ph, w + 2 * pw
    if channels_last:
        np.copyto(xp[:, ph:ph + h, pw:pw + w, :], x.transpose(0, 2, 3, 1))
        rows, cols = (slice(None),), (slice(None), slice(None))
    else:
        np.copyto(xp[:, :, ph:ph + h, pw:pw + w], x)
        rows, cols = (slice(None), slice(None)), (slice(None), slice(None), slice(None))
    for border in (slice(0, ph), slice(ph + h, hp)):  # zero the frame, not the whole array
        xp[rows + (border,)] = 0
    for border in (slice(0, pw), slice(pw + w, wp)):
        xp[cols + (border,)] = 0
    return xp


def im2col(xp: np.ndarray, g: Geometry, out: np.ndarray) -> np.ndarray:
    """Copy the windows of b padded images ``xp`` (laid out as ``pad_images`` returns them
    for ``g.layout``) into ``out``: (b, K, P) for channels-first, (b·P, K) for
    channels-last. Returns ``out``.

    channels-first:  out[n, (c, i, j), (y, z)] = xp[n, c, y·sh + i·dh, z·sw + j·dw]
    channels-last:   out[(n, y, z), (i, j, c)] = xp[n, y·sh + i·dh, z·sw + j·dw, c]
    """
    kh, kw = g.kernel
    (oh, ow), (sh, sw), (dh, dw) = g.out_hw, g.stride, g.dilation
    if g.layout == "channels_first":
        b, c = xp.shape[:2]
        sn, sc, sy, sx = xp.strides
        windows = as_strided(xp, (b, c, kh, kw, oh, ow),  # a view: nothing is copied yet
                             (sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)
        np.copyto(_view(out, windows.shape), windows)
        return out
    b, c = xp.shape[0], xp.shape[3]
    sn, sy, sx, sc = xp.strides
    windows = as_strided(xp, (b, oh, ow, kh, kw, c),
                         (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc), writeable=False)
    np.copyto(_view(out, windows.shape), windows)
    return out


def _view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without a copy (a copy would make the writes into it vanish)."""
    v = a.reshape(shape)
    if not np.may_share_memory(v, a):
        raise AssertionError(f"cannot view an array of shape {a.shape} as {shape}")
    return v


def col2im(dcols: np.ndarray, g: Geometry, dx: np.ndarray, dx_pad: np.ndarray) -> None:
    """Fold dcols of b images, stored as ``im2col`` stores cols ((b, K, P) channels-first,
    (b·P, K) channels-last), onto ``dx`` (b, C, H, W). ``dx_pad`` is scratch of the padded
    shape in the layout's order, or dx itself when there is no padding (channels-first).

    One strided add per kernel offset (i, j): dx_pad[.., i·dh::sh, j·dw::sw] += block (i, j).
    With stride 1 the first block covers [0, OH) × [0, OW) and is written, not added.
    """
    b, c, h, w = dx.shape
    kh, kw = g.kernel
    (oh, ow), (sh, sw), (ph, pw), (dh, dwl) = g.out_hw, g.stride, g.padding, g.dilation
    channels_last = g.layout == "channels_last"
    if channels_last:
        blocks = dcols.reshape(b, oh, ow, kh, kw, c)

        def pixels(rows: slice, cols: slice) -> np.ndarray:
            return dx_pad[:, rows, cols, :]

        def block(i: int, j: int) -> np.ndarray:
            return blocks[:, :, :, i, j, :]
    else:
        blocks = dcols.reshape(b, c, kh, kw, oh, ow)

        def pixels(rows: slice, cols: slice) -> np.ndarray:
            return dx_pad[:, :, rows, cols]

        def block(i: int, j: int) -> np.ndarray:
            return blocks[:, :, i, j]

    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    if (sh, sw) == (1, 1):
        np.copyto(pixels(slice(0, oh), slice(0, ow)), block(0, 0))
        pixels(slice(oh, None), slice(None))[...] = 0
        pixels(slice(0, oh), slice(ow, None))[...] = 0
        offsets = offsets[1:]
    else:
        dx_pad[...] = 0
    for i, j in offsets:
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        cols = slice(j * dwl, j * dwl + sw * (ow - 1) + 1, sw)
        pixels(rows, cols)[...] += block(i, j)
    if channels_last:
        np.copyto(dx, dx_pad[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2))
    elif dx_pad is not dx:
        np.copyto(dx, dx_pad[:, :, ph:ph + h, pw:pw + w])
