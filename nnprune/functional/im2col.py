"""im2col and col2im: unfold the receptive fields of a batch of images into the columns of a
matrix, and fold a matrix of the same shape back onto the images, adding up overlaps.

For x (N, C, H, W), a kernel kh×kw, stride (sh, sw), padding (ph, pw) and dilation (dh, dw),
with K = C·kh·kw and P = OH·OW output pixels per image:

    cols[(c, i, j), (n, y, z)] = x_pad[n, c, y·sh + i·dh, z·sw + j·dw]       cols: (K, N·P)

col2im is its adjoint: dx_pad[n, c, y·sh + i·dh, z·sw + j·dw] += dcols[(c, i, j), (n, y, z)],
one strided add of an (N, C, OH, OW) block per kernel offset (i, j).

No loop runs over pixels: ``as_strided`` presents the windows as a 6-D view of the padded
input, and one copy turns the view into cols. Three layouts of cols are offered (conv.py's
``default_layout`` picks one per shape):

- "channels_first": per image, rows (c, i, j): cols (b, K, P). The copy moves runs of OW
  pixels of the NCHW input; col2im adds runs of OW.
- "channels_last": rows (i, j, c), columns (n, y, z): cols (b·P, K). The input is first
  relaid out to NHWC; the copy then moves runs of kw·C values, col2im adds runs of C.
- "batch_last": rows (c, i, j), columns (y, z, n): cols (K, rows·OW·N) for a band of output
  rows of the whole batch. The input is relaid out to (C, Hp, Wp, N), so with stride 1 the
  copy moves, and col2im adds, runs of OW·N values: long runs even when C and OW are small.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnprune.functional.validation import Pair

LAYOUTS = ("channels_first", "channels_last", "batch_last")
L1_LINE, L1_SETS, L1_WAYS = 64, 64, 8  # bytes per line, sets, ways (rows_in_l1)
MIN_BUFFER = 128  # col2im sets NumPy's ufunc buffer to one row of its blocks from this size on


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


def padded_shape(shape: tuple[int, ...], padding: Pair, layout: str) -> tuple[int, ...]:
    """(b, C, H, W) -> (b, C, Hp, Wp) channels-first, (b, Hp, Wp, C) channels-last or
    (C, Hp, Wp, b) batch-last, with Hp = H + 2ph and Wp = W + 2pw."""
    b, c, h, w = shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    return {"channels_first": (b, c, hp, wp), "channels_last": (b, hp, wp, c),
            "batch_last": (c, hp, wp, b)}[layout]


def interior(xp: np.ndarray, padding: Pair, layout: str) -> np.ndarray:
    """The unpadded part of ``xp`` (a view) in NCHW axis order, whatever ``layout`` it has."""
    ph, pw = padding
    if layout == "channels_first":
        return xp[:, :, ph:xp.shape[2] - ph, pw:xp.shape[3] - pw]
    if layout == "channels_last":
        return xp[:, ph:xp.shape[1] - ph, pw:xp.shape[2] - pw, :].transpose(0, 3, 1, 2)
    return xp[:, ph:xp.shape[1] - ph, pw:xp.shape[2] - pw, :].transpose(3, 0, 1, 2)


def pad_images(x: np.ndarray, padding: Pair, layout: str) -> np.ndarray:
    """(b, C, H, W) -> zero-padded images in the axis order of ``layout`` (``padded_shape``):
    the relayout and the padding in one copy; x itself when there is nothing to do."""
    ph, pw = padding
    if not ph and not pw and layout == "channels_first":
        return x
    xp = np.empty(padded_shape(x.shape, padding, layout), x.dtype)
    copy_relaid(interior(xp, padding, layout), x, layout == "batch_last")
    hp, wp = xp.shape[1:3] if layout != "channels_first" else xp.shape[2:]
    axes = (2, 3) if layout == "channels_first" else (1, 2)
    for axis, p, size in zip(axes, padding, (hp, wp)):  # zero the frame, not the whole array
        for border in (slice(0, p), slice(size - p, size)):
            xp[(slice(None),) * axis + (border,)] = 0
    return xp


def copy_relaid(dst: np.ndarray, src: np.ndarray, batch_last: bool) -> None:
    """dst[...] = src for two (N, C, H, W)-indexed arrays of different memory orders.

    Out of batch-last (N the last axis in memory) the copy goes one channel at a time: the
    channel's (H·W, N) block stays in cache while it is read, where a whole-array copy is
    up to twice as slow. Into batch-last or channels-last it goes in slabs of the axis
    that is contiguous in dst (N or C), as many at a time as ``rows_in_l1`` allows.
    """
    if batch_last and dst.strides[0] != dst.itemsize:  # out of batch-last
        for c in range(src.shape[1]):
            np.copyto(dst[:, c], src[:, c])
        return
    axis = 0 if batch_last else 1
    if dst.strides[axis] != dst.itemsize:  # NCHW to NCHW: nothing to transpose
        copy_runs(dst, src)
        return
    rows = rows_in_l1(src.strides[axis])
    for start in range(0, src.shape[axis], rows):
        part = (slice(None),) * axis + (slice(start, start + rows),)
        np.copyto(dst[part], src[part])


def copy_runs(dst: np.ndarray, src: np.ndarray) -> None:
    """dst[...] = src for two arrays of one shape and dtype, each run along the last axis
    moved as one element when that axis is contiguous in both (else a plain copy).

    NumPy's copy loop pays its overhead per run of the innermost axis: Winograd's m×m
    tiles (runs of 2 or 4 values) and im2col's windows (runs of OW) cost it about a
    nanosecond a value. Viewed as (run · itemsize)-byte void elements the same bytes moved
    3–7× faster (a (7, 128, 16, 16) float32 output from its 4×4 tiles: 0.33 → 0.06 ms),
    bit for bit.
    """
    if (dst.shape != src.shape or dst.dtype != src.dtype or not dst.ndim
            or dst.shape[-1] < 2 or dst.strides[-1] != dst.itemsize
            or src.strides[-1] != src.itemsize):
        np.copyto(dst, src)
        return
    run = np.dtype((np.void, dst.shape[-1] * dst.itemsize))
    np.copyto(dst.view(run), src.view(run))


def rows_in_l1(step: int) -> int:
    """How many rows ``step`` bytes apart a transposing copy can read side by side before
    they evict each other from a 32 KB, 8-way L1 data cache of 64-byte lines (the x86
    cores of the last decade): rows a multiple of 4 KB apart all fall in one of its 64
    sets, so only 8 fit; rows 3,456 bytes apart spread over 32 sets. A transposing copy
    reads one value from each of dst's contiguous run of rows before it moves on along
    the row, so past this many rows every read misses. LeNet conv2's dout (N images of
    16·8·8 float32 values, 4 KB) went into batch-last 4× faster in slabs of 8 images than
    in one copy; VGG's 64-channel 16×16 input into channels-last 2× faster.
    """
    if step % L1_LINE:
        return 1 << 30
    return L1_WAYS * L1_SETS // math.gcd(abs(step) // L1_LINE, L1_SETS)


def row_step(length: int, itemsize: int) -> int:
    """Values from the start of one row of a GEMM operand to the next: ``length``, and one
    cache line more when the row fills a multiple of 1 KB. OpenBLAS packs its operands
    reading many rows side by side, and rows a multiple of 4 KB apart fall in a few sets
    of the L1 cache (``rows_in_l1``): LeNet conv2's three GEMMs, rows of 8·8·64 float32
    values (16 KB), ran 1.6–2× faster with their rows one line further apart.
    """
    return length + (L1_LINE // itemsize if length * itemsize % 1024 == 0 else 0)


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
        copy_runs(reshaped_view(out, windows.shape), windows)  # runs of OW when sw = 1
        return out
    b, c = xp.shape[0], xp.shape[3]
    sn, sy, sx, sc = xp.strides
    windows = as_strided(xp, (b, oh, ow, kh, kw, c),
                         (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc), writeable=False)
    np.copyto(reshaped_view(out, windows.shape), windows)
    return out


def im2col_band(xp: np.ndarray, g: Geometry, rows: slice, out: np.ndarray) -> np.ndarray:
    """Batch-last im2col of the output rows ``rows`` (a band y0 ≤ y < y1 of every image):
    xp (C, Hp, Wp, N) -> out (K, (y1 − y0)·OW·N). Returns ``out``.

    out[(c, i, j), (y − y0, z, n)] = xp[c, y·sh + i·dh, z·sw + j·dw, n]
    """
    kh, kw = g.kernel
    (_, ow), (sh, sw), (dh, dw) = g.out_hw, g.stride, g.dilation
    c, n = xp.shape[0], xp.shape[3]
    sc, sy, sx, sn = xp.strides
    windows = as_strided(xp[:, rows.start * sh:], (c, kh, kw, rows.stop - rows.start, ow, n),
                         (sc, sy * dh, sx * dw, sy * sh, sx * sw, sn), writeable=False)
    np.copyto(reshaped_view(out, windows.shape), windows)
    return out


def reshaped_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without a copy (a copy would make the writes into it vanish)."""
    v = a.reshape(shape)
    if not np.may_share_memory(v, a):
        raise AssertionError(f"cannot view an array of shape {a.shape} as {shape}")
    return v


def col2im(dcols: np.ndarray, g: Geometry, dx: np.ndarray, dx_pad: np.ndarray) -> None:
    """Fold dcols of b images, stored as ``im2col`` stores cols ((b, K, P) channels-first,
    (b·P, K) channels-last), onto ``dx`` (b, C, H, W). ``dx_pad`` is scratch of the padded
    shape in the layout's order, or dx itself when there is no padding (channels-first).

    One strided add per kernel offset (i, j): dx_pad[.., i·dh::sh, j·dw::sw] += block (i, j),
    with NumPy's ufunc buffer sized to one row of a block (``_ufunc_buffer``). With stride 1
    the first block covers [0, OH) × [0, OW) and is written, not added.
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
        copy_runs(pixels(slice(0, oh), slice(0, ow)), block(0, 0))
        pixels(slice(oh, None), slice(None))[...] = 0
        pixels(slice(0, oh), slice(ow, None))[...] = 0
        offsets = offsets[1:]
    else:
        dx_pad[...] = 0
    with _ufunc_buffer(block(0, 0)):
        for i, j in offsets:
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dwl, j * dwl + sw * (ow - 1) + 1, sw)
            pixels(rows, cols)[...] += block(i, j)
    if dx_pad is not dx:
        copy_runs(dx, interior(dx_pad, (ph, pw), g.layout))


def col2im_band(dcols: np.ndarray, g: Geometry, rows: slice, dx_pad: np.ndarray) -> None:
    """Add dcols (K, (y1 − y0)·OW·N) of the output rows ``rows``, stored as ``im2col_band``
    stores cols, onto dx_pad (C, Hp, Wp, N). Bands of rows overlap in the input, so dx_pad
    accumulates (the caller zeroes it once).

    dx_pad[c, y·sh + i·dh, z·sw + j·dw, n] += dcols[(c, i, j), (y − y0, z, n)]: one strided
    add per kernel offset (i, j) (ufunc buffer as in ``col2im``); with stride 1 its runs are
    OW·N values long.
    """
    kh, kw = g.kernel
    (_, ow), (sh, sw), (dh, dwl) = g.out_hw, g.stride, g.dilation
    m = rows.stop - rows.start
    blocks = dcols.reshape(dx_pad.shape[0], kh, kw, m, ow, dx_pad.shape[3])
    with _ufunc_buffer(blocks[:, 0, 0]):
        for i in range(kh):
            for j in range(kw):
                top, left = rows.start * sh + i * dh, j * dwl
                dx_pad[:, top:top + sh * (m - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw] += \
                    blocks[:, i, j]


@contextmanager
def _ufunc_buffer(block: np.ndarray) -> Iterator[None]:
    """Inside the ``with``, ufuncs buffer as many values as the last two axes of ``block``
    hold (rounded up to a multiple of 16, as ``np.setbufsize`` requires) when that is at
    least MIN_BUFFER; the caller's size is back on exit. Only speed depends on it, never a
    result.

    Why: an add between strided 4-D views runs through NumPy's buffered iterator, which
    copies strided operands through its buffers (default 8192 values; larger ones are
    slower still). Buffers of one row of the block (the two axes col2im's adds run along)
    make col2im markedly faster in every layout (``nnprune bench conv``). No one size suits
    all shapes, and rows under MIN_BUFFER values lose with any change.
    """
    values = block.shape[-1] * block.shape[-2]
    if values < MIN_BUFFER:
        yield
        return
    previous = np.setbufsize(-(-values // 16) * 16)
    try:
        yield
    finally:
        np.setbufsize(previous)
