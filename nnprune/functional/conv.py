"""The tuned im2col convolution: conv_plain.py's algorithm, arranged for speed.

Shapes and math as in ``conv_plain.py`` (the reference to read first): x (N, C, H, W) ⋆
w (F, C, kh, kw) + b (F,) -> out (N, F, OH, OW); K = C·kh·kw, P = OH·OW; im2col on the way
forward, col2im on the way back (Chellapilla et al. 2006). What this module adds, each for a
reason ``nnprune bench conv`` shows (the GEMMs take most of the time, then the copies
around them):

- the bias rides in the GEMM as the weight of an input that is always 1 (a last row of ones
  in cols), so dW's GEMM yields db too:

      out[n] = [W | b] [cols[n]; 1]        [dW | db] = Σ_n dout[n] [cols[n]; 1]ᵀ

- the batch runs in chunks of images (bands of output rows for batch-last), each chunk's
  cols at most CHUNK_ELEMENTS entries, so they stay in cache from the copy to the GEMM; a
  large layer's chunks run side by side on BLAS's threads (``_runner``);
- the rows of cols, dcols and the relaid-out outputs lie ``row_step`` apart: a cache line
  more than their length when that is a whole number of kilobytes;
- scratch arrays are kept from call to call, one set per thread (``scratch.take``: a fresh
  array costs a page fault per 4 KB on first touch); the cache keeps the padded input and
  backward rebuilds each chunk's cols (cheaper than keeping kh·kw copies of the input),
  except when the whole batch is one chunk: its cols are kept;
- the memory layout of cols is chosen per shape (``default_layout``; im2col.py describes
  the three). channels-first: GEMMs per image, (F, K+1) @ (b, K+1, P) in blocks of
  FILTER_BLOCK filters, land straight in NCHW. channels-last: one GEMM per chunk,
  (F, K+1) @ (K+1, b·P), its output (F, b, P) relaid out to (b, F, P). batch-last: one
  GEMM per band of rows, (F, K+1) @ (K+1, rows·OW·N), into (F, OH, OW, N), relaid out once
  at the end.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from nnprune.functional import scratch
from nnprune.functional.im2col import (LAYOUTS, Geometry, reshaped_view, col2im, col2im_band,
                                       copy_relaid, im2col, im2col_band, interior, pad_images,
                                       padded_shape)
from nnprune.functional.conv_plain import check_conv_inputs, conv_output_size
from nnprune.functional.validation import Pair, check_dout, pair
from nnprune.threads import SMALL_LAYER_MACS, ChunkMap, chunk_runner, chunk_slices

CHUNK_ELEMENTS = 1 << 21   # entries of cols per chunk of the batch (8 MB in float32)
# Channels-first's forward GEMM writes each image's (F, P) output in blocks of this many
# filters. Its K is small there (C < 8), and OpenBLAS ran the whole (F, K) @ (K, P) slower
# than two halves once F reached 64: VGG's 3→64 layer at 32×32 (K = 28, P = 1024), forward
# 3.2–3.4 ms on two threads in one piece, 2.5–2.8 ms in blocks of 32 (one process, in turns).
FILTER_BLOCK = 32


def default_layout(c: int, p: int) -> str:
    """The faster layout of cols for C channels and P output pixels per image, as measured
    by ``nnprune bench conv`` (forward+backward):

    - channels-first for few channels (C < 8) and many pixels (P ≥ 256): with more channels
      its GEMMs, one per image, are too small to run at speed;
    - batch-last for 8 ≤ C < 32, and for C < 64 when P < 256: its col2im adds runs of OW·N
      values where the others add runs of OW or of C;
    - channels-last from C = 64, and from C = 32 at P ≥ 256: its runs of C values are long
      enough, and batch-last's transposes of x and out grow with the image.
    """
    if c >= 64 or (c >= 32 and p >= 256):
        return "channels_last"
    if c < 8 and p >= 256:
        return "channels_first"
    return "batch_last"


class ConvCache(NamedTuple):
    """What conv2d_backward needs: the padded input, W as (F, K) in cols' row order, and
    cols itself when the whole batch made one chunk (at most CHUNK_ELEMENTS entries)."""
    xp: np.ndarray     # padded x in the layout's axis order (pad_images; x if unpadded NCHW)
    w_mat: np.ndarray  # (F, K)
    has_bias: bool
    geometry: Geometry
    cols: np.ndarray | None = None  # as cols_of returns it, or None: rebuilt chunk by chunk


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                   stride: int | Pair = 1, padding: int | Pair = 0, dilation: int | Pair = 1,
                   *, layout: str | None = None) -> tuple[np.ndarray, ConvCache]:
    """out = x ⋆ w + b:  (N, C, H, W) ⋆ (F, C, kh, kw) + (F,) -> (N, F, OH, OW).

    out[n, f, y, z] = b[f] + Σ_{c,i,j} x_pad[n, c, y·sh + i·dh, z·sw + j·dw] · w[f, c, i, j].
    ``layout`` forces "channels_first", "channels_last" or "batch_last" (default: by the
    channels and the output pixels, ``default_layout``).
    Mixed float32/float64 inputs are promoted as NumPy does. The cache refers to x without
    copying it: x must not change in place before the backward pass.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, _ = conv2d_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]), stride=2)
    >>> out[0, 0]
    array([[10.5, 18.5],
           [42.5, 50.5]])
    """
    stride, padding, dilation = (pair("stride", stride, 1), pair("padding", padding, 0),
                                 pair("dilation", dilation, 1))
    check_conv_inputs(x, w, b, stride, padding, dilation)
    out_hw = conv_output_size(*x.shape[2:], w.shape[2:], stride, padding, dilation)
    if layout is None:
        layout = default_layout(x.shape[1], out_hw[0] * out_hw[1])
    elif layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
    dtype = np.result_type(x, w, *(() if b is None else (b,)))
    n, f = x.shape[0], w.shape[0]
    g = Geometry(x.shape, w.shape[2:], out_hw, stride, padding, dilation, layout)
    order = (0, 2, 3, 1) if layout == "channels_last" else (0, 1, 2, 3)  # rows of cols
    w_aug = np.empty((f, g.k + 1), dtype)  # [W | b]: the bias is the weight of a constant 1
    w_aug[:, :g.k] = w.transpose(order).reshape(f, g.k)
    w_aug[:, g.k] = 0 if b is None else b
    xp = pad_images(x.astype(dtype, copy=False), padding, layout)
    out = np.empty((n, f, g.p), dtype)
    with _runner(g, f) as map_chunks:
        buffers = _Buffers(g, dtype, _chunk_size(g, f), map_chunks.workers)
        out_t = buffers.take("out_t", (f, *out_hw, n), row=3) if layout == "batch_last" else None
        keep = len(buffers.chunks) == 1  # one chunk: keep cols for the backward, not scratch

        def forward_chunk(s: slice) -> np.ndarray:
            cols = buffers.cols_of(xp, s, fresh=keep)
            if layout == "channels_first":  # GEMMs per image, straight into NCHW
                for rows in range(0, f, FILTER_BLOCK):  # (F, K+1) @ (b, K+1, P) -> (b, F, P)
                    block = slice(rows, rows + FILTER_BLOCK)
                    np.matmul(w_aug[block], cols, out=out[s, block])
            elif layout == "channels_last":  # one GEMM, then (F, b, P) -> (b, F, P)
                chunk_t = buffers.take("out_t", (f, cols.shape[1]), row=1)
                np.matmul(w_aug, cols, out=chunk_t)
                np.copyto(out[s], chunk_t.reshape(f, -1, g.p).transpose(1, 0, 2))
            else:  # one GEMM for the band of rows s, into its rows of out_t (F, OH, OW, N)
                np.matmul(w_aug, cols, out=out_t[:, s].reshape(f, -1))
            return cols

        cols = map_chunks(forward_chunk, buffers.chunks)[-1]
    out = out.reshape(n, f, *out_hw)
    if layout == "batch_last":
        copy_relaid(out, out_t.transpose(3, 0, 1, 2), batch_last=True)
    return out, ConvCache(xp, w_aug[:, :g.k], b is not None, g, cols if keep else None)


def conv2d_backward(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """dx (N, C, H, W), dw (F, C, kh, kw), db (F,) or None from dout (N, F, OH, OW).

    dW = dout colsᵀ, db = Σ dout, dx = col2im(Wᵀ dout), chunk by chunk. ``need_dx=False``
    skips dx (returned as None): the first layer of a network needs no input gradient.
    """
    xp, w_mat, has_bias, g, _ = cache
    n, c, h, wd = g.x_shape
    f = w_mat.shape[0]
    dout = check_dout(dout, (n, f, *g.out_hw))
    dtype = w_mat.dtype
    dout = dout.astype(dtype, copy=False)
    d_nfp = dout.reshape(n, f, g.p)
    dx = np.empty(g.x_shape, dtype) if need_dx else None
    with _runner(g, f) as map_chunks:
        buffers = _Buffers(g, dtype, _chunk_size(g, f), map_chunks.workers)
        if cache.cols is not None:  # the forward's one chunk, whatever the threads now
            buffers.chunks = [slice(0, len(d_nfp) if g.layout != "batch_last" else g.out_hw[0])]
        d_t = dx_pad = None
        if g.layout == "batch_last":
            d_t = buffers.take("dout_t", (f, *g.out_hw, n), row=3)  # dout in cols' order
            copy_relaid(d_t.transpose(3, 0, 1, 2), dout, batch_last=True)
            if need_dx:
                dx_pad = buffers.take("dx_pad", xp.shape)  # (C, Hp, Wp, N): bands add into it
                dx_pad[...] = 0

        def backward_chunk(s: slice) -> np.ndarray:
            cols = buffers.cols_of(xp, s) if cache.cols is None else cache.cols
            d = d_nfp[s] if d_t is None else d_t[:, s].reshape(f, -1)
            return _chunk_gradients(buffers, cols, d, w_mat, s, dx, dx_pad)

        dw_aug = sum(map_chunks(backward_chunk, buffers.chunks))  # [dW | db], chunk by chunk
    if need_dx and g.layout == "batch_last":
        copy_relaid(dx, interior(dx_pad, g.padding, g.layout), batch_last=True)
    db = dw_aug[:, g.k].copy() if has_bias else None
    order = (0, 3, 1, 2) if g.layout == "channels_last" else (0, 1, 2, 3)
    kernel_shape = (*g.kernel, c) if g.layout == "channels_last" else (c, *g.kernel)
    dw = np.ascontiguousarray(dw_aug[:, :g.k].reshape(f, *kernel_shape).transpose(order))
    return dx, dw, db


# ---------------------------------------------------------------------------- helpers
def _chunk_gradients(buffers: "_Buffers", cols: np.ndarray, d: np.ndarray, w_mat: np.ndarray,
                     s: slice, dx: np.ndarray | None, dx_pad: np.ndarray | None) -> np.ndarray:
    """[dW | db] of chunk ``s`` (cols and dout ``d`` in the layout's GEMM order), and its
    images' (channels-first, channels-last) or its band's (batch-last) part of dx."""
    g, f = buffers.g, w_mat.shape[0]
    if g.layout == "channels_first":  # d (b, F, P)
        if dx is not None:
            dcols = buffers.take("dcols", (len(d), g.k, g.p), row=1)
            col2im(np.matmul(w_mat.T, d, out=dcols), g, dx[s], buffers.dx_pad(dx[s]))
        return np.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0)  # Σ_b (F, P) @ (P, K+1)
    if g.layout == "channels_last":  # dout of the chunk relaid out to (F, b·P)
        d_t = buffers.take("dout_t", (f, cols.shape[1]), row=1)
        np.copyto(reshaped_view(d_t, (f, -1, g.p)), d.transpose(1, 0, 2))
        if dx is not None:
            dcols = buffers.take("dcols", (cols.shape[1], g.k), row=1)
            col2im(np.matmul(d_t.T, w_mat, out=dcols), g, dx[s], buffers.dx_pad(dx[s]))
        return np.matmul(d_t, cols.T)  # (F, b·P) @ (b·P, K+1)
    if dx_pad is not None:  # batch-last: d (F, rows·OW·N)
        dcols = buffers.take("dcols", (g.k, d.shape[1]), row=1)
        col2im_band(np.matmul(w_mat.T, d, out=dcols), g, s, dx_pad)
    # [dW | db]ᵀ = cols dᵀ: (K+1, rows·OW·N) @ (rows·OW·N, F). The same GEMM as d colsᵀ,
    # but OpenBLAS runs it faster with cols on the left in this layout
    return np.matmul(cols, d.T).T


@contextlib.contextmanager
def _runner(g: Geometry, f: int) -> Iterator[ChunkMap]:
    """Where the chunks run: side by side on BLAS's threads (``threads.chunk_runner``) for a
    layer of at least SMALL_LAYER_MACS multiply-accumulates outside batch-last, in turn
    otherwise. Batch-last's bands add into one dx_pad, and a small layer's chunks gained
    nothing from threads: they stay on one thread and BLAS shares out their GEMMs."""
    if g.layout == "batch_last" or g.x_shape[0] * f * g.p * g.k < SMALL_LAYER_MACS:
        yield ChunkMap()
        return
    with chunk_runner() as map_chunks:
        yield map_chunks


def _chunk_size(g: Geometry, f: int) -> int:
    """Images per chunk (output rows per band for batch-last): as many as keep cols and the
    GEMM output within CHUNK_ELEMENTS."""
    n, (oh, ow) = g.x_shape[0], g.out_hw
    if g.layout == "batch_last":
        return max(1, min(oh, CHUNK_ELEMENTS // ((g.k + f) * ow * n)))
    return max(1, min(n, CHUNK_ELEMENTS // ((g.k + f) * g.p)))


class _Buffers:
    """The chunks of the batch, and this thread's scratch arrays (never returned to the caller)."""

    def __init__(self, g: Geometry, dtype: np.dtype, chunk: int, workers: int = 1) -> None:
        self.g, self.dtype = g, np.dtype(dtype)
        units = g.out_hw[0] if g.layout == "batch_last" else g.x_shape[0]  # rows or images
        self.chunks = chunk_slices(units, chunk, workers)

    def take(self, name: str, shape: tuple[int, ...], fresh: bool = False, row: int = 0
             ) -> np.ndarray:
        """``scratch.take`` in this call's dtype (the calling thread's array)."""
        return scratch.take(name, shape, self.dtype, fresh, row)

    def cols_of(self, xp: np.ndarray, s: slice, fresh: bool = False) -> np.ndarray:
        """cols of chunk ``s`` of the padded images with a last row of ones (for the bias):
        (b, K+1, P) for channels-first, (K+1, b·P) for channels-last (a transposed (b·P, K+1)
        array), (K+1, rows·OW·N) for batch-last. In scratch memory unless ``fresh``."""
        g = self.g
        if g.layout == "channels_first":
            cols = self.take("cols", (s.stop - s.start, g.k + 1, g.p), fresh, row=1)
            cols[:, g.k] = 1
            im2col(xp[s], g, cols[:, :g.k])
            return cols
        if g.layout == "channels_last":
            cols = self.take("cols", ((s.stop - s.start) * g.p, g.k + 1), fresh, row=1)
            cols[:, g.k] = 1
            im2col(xp[s], g, cols[:, :g.k])
            return cols.T
        cols = self.take("cols", (g.k + 1, (s.stop - s.start) * g.out_hw[1] * g.x_shape[0]),
                         fresh, row=1)
        cols[g.k] = 1
        im2col_band(xp, g, s, cols[:g.k])
        return cols

    def dx_pad(self, dx: np.ndarray) -> np.ndarray:
        """Scratch for col2im's sums over the padded images (dx itself if it can be)."""
        if self.g.layout == "channels_first" and not any(self.g.padding):
            return dx
        return self.take("dx_pad", padded_shape(dx.shape, self.g.padding, self.g.layout))
