"""3×3, stride-1 convolution by Winograd's minimal filtering (Lavin & Gray 2016).

Shapes: x (N, C, H, W) ⋆ w (F, C, 3, 3) + b (F,) -> out (N, F, OH, OW), OH = H + 2·ph − 2
(likewise OW): PyTorch's Conv2d with kernel 3, stride 1, dilation 1, any padding.

The idea in one dimension, F(m, 3): m outputs of a 3-tap correlation, y_i = Σ_k d_{i+k} g_k,
from α = m + 2 inputs with α multiplications instead of 3m:

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]          g (3,), d (α,), y (m,)

G (α, 3), Bᵀ (α, α) and Aᵀ (m, α) evaluate the two polynomials at α points (0, ±1, ±2, ∞),
multiply pointwise and interpolate back (Toom-Cook; Winograd 1980). Nesting it in both
directions gives F(m×m, 3×3) on a tile d (α, α) of the padded input:

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A   Y (m, m): one output tile.

Over channels the sum moves inside, because everything but ⊙ is linear: with
U = G g Gᵀ per (f, c) and V = Bᵀ d B per (c, tile), output tile t of filter f is
Aᵀ [Σ_c U[f, c] ⊙ V[c, t]] A. For each of the α² points ξ of the tile that sum is a matrix
product, so the whole layer is α² GEMMs (16 for m = 2, 36 for m = 4):

    M[ξ] = V[ξ] U[ξ]                 (T, C) @ (C, F) -> (T, F),   T = N·⌈OH/m⌉·⌈OW/m⌉ tiles

with m²·9/α² of im2col's multiplications (1/2.25 for F(2×2, 3×3), 1/4 for F(4×4, 3×3)).
The transforms are GEMMs too, by vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d) with row-major vec.

Backward (every step linear, so each gradient is the transpose of its step):
    dM = (Aᵀ ⊗ Aᵀ)ᵀ dY,   dU[ξ] = dM[ξ]ᵀ V[ξ] (F, C),   dw = (G ⊗ G)ᵀ dU,   db = Σ dout;
    dx is the full correlation of dout with the kernel rotated by 180° and its F and C axes
    swapped: dx = dout ⋆ rot(w) with padding 2 − p, the same algorithm again.

Tiles that run past the output (OH or OW not a multiple of m) read zeros and their extra
outputs are dropped. F(4×4, 3×3)'s matrices hold 4, 5 and 1/24: in float32 it loses more
accuracy than F(2×2, 3×3), whose entries are 0, ±1/2 and ±1 (``nnprune bench conv`` prints
both errors against float64).

The matrices and the three steps are in ``winograd_transforms.py``; this module runs them
chunk by chunk of images, forward and backward, the chunks side by side on BLAS's threads
(``threads.chunk_runner``) when their GEMMs are large enough to gain from it (``_shared``),
and U in as many parts along C as the runner has threads.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from nnprune.functional.conv_plain import check_conv_inputs
from nnprune.functional.norm import channel_sums
from nnprune.functional.scratch import take
from nnprune.threads import SMALL_LAYER_MACS, chunk_runner, chunk_slices, even_slices
from nnprune.functional.validation import Pair, check_dout, pair
from nnprune.functional.winograd_transforms import (TRANSFORMS, Tiling, filter_transform,
                                                    input_transform, matrices,
                                                    multiply_and_gather, output_tiles,
                                                    tile_grid)

# float32 results stay within FLOAT32_TOLERANCE[m] · max(|x| ⋆ |w| + |b|) of the exact ones
# (and likewise for dx and dw with |dout|): measured up to 5e-7 for m = 2, 4e-6 for m = 4
FLOAT32_TOLERANCE = {2: 1e-6, 4: 1e-5}
CHUNK_ELEMENTS = 1 << 20  # values of d, V and M per chunk of images (4 MB in float32)
TILES_PER_FILTER = 0.5    # a chunk holds at least F/2 tiles, whatever CHUNK_ELEMENTS (_chunks)


class WinogradCache(NamedTuple):
    """What winograd_backward needs: the transformed input tiles V (α², T_chunk, C) of each
    chunk of images, w, the tiling of the whole batch and the chunks (slices of images)."""
    v: list[np.ndarray]
    w: np.ndarray
    has_bias: bool
    tiling: Tiling
    chunks: list[slice]


def winograd_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     padding: int | Pair = 0, *, m: int = 2) -> tuple[np.ndarray, WinogradCache]:
    """out = x ⋆ w + b by F(m×m, 3×3):  (N, C, H, W) ⋆ (F, C, 3, 3) + (F,) -> (N, F, OH, OW).

    out[n, f, y, z] = b[f] + Σ_{c,i,j} x_pad[n, c, y + i, z + j] · w[f, c, i, j], computed
    tile by tile as Aᵀ [Σ_c (G w[f, c] Gᵀ) ⊙ (Bᵀ d[c] B)] A (module docstring). m = 2 or 4.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, _ = winograd_forward(x, np.ones((1, 1, 3, 3)), np.array([0.5]))
    >>> out[0, 0]
    array([[45.5, 54.5],
           [81.5, 90.5]])
    """
    padding = pair("padding", padding, 0)
    _check_inputs(x, w, b, padding, m)
    out, v, tiling, chunks = _correlate(x, w, b, padding, m, keep=True)
    return out, WinogradCache(v, w, b is not None, tiling, chunks)


def _correlate(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair, m: int,
               keep: bool) -> tuple[np.ndarray, list[np.ndarray], Tiling, list[slice]]:
    """out, V of each chunk of images, the tiling and the chunks of x ⋆ w + b; V in scratch
    memory (and overwritten by the next chunk) unless ``keep``."""
    dtype = np.result_type(x, w, *(() if b is None else (b,)))
    x, b = x.astype(dtype, copy=False), None if b is None else b.astype(dtype, copy=False)
    grid = tile_grid(x.shape, padding, m)
    out = np.empty((x.shape[0], w.shape[0], *grid.out_hw), dtype)

    def correlate_chunk(s: slice) -> np.ndarray:
        chunk = tile_grid(x[s].shape, padding, m)
        v = input_transform(x[s], chunk, keep)
        multiply_and_gather(u, v, b, chunk, out[s])
        return v

    with chunk_runner(_shared(grid, w.shape[0])) as map_chunks:  # BLAS at one thread
        # U inside the runner, its channels shared out like the chunks: computed before it
        # on two BLAS threads, it left OpenBLAS's second thread spinning beside the chunks'
        # threads, and the forward ran 50–75 % slower on two cores (VGG's 64→128 and
        # 128→256 layers); on one thread it took 10–20 % of the 128→256 forward
        u = np.empty(((m + 2) ** 2, *w.shape[1::-1]), dtype)
        w = w.astype(dtype, copy=False)
        map_chunks(lambda s: filter_transform(w[:, s], m, u[:, s]),
                   even_slices(w.shape[1], map_chunks.workers))
        chunks = _chunks(grid, w.shape[0], map_chunks.workers)
        return out, map_chunks(correlate_chunk, chunks), grid, chunks


def _shared(t: Tiling, f: int) -> bool:
    """Whether the chunks run side by side: when the α² GEMMs (α²·T·C·F multiply-adds, about
    a quarter of the layer's for F(4×4)) reach SMALL_LAYER_MACS. Below, two threads lost
    to one on five of VGG-16 ×0.25's seven Winograd layers."""
    return t.alpha ** 2 * t.count * t.x_shape[1] * f >= SMALL_LAYER_MACS


def _chunks(t: Tiling, f: int, workers: int = 1) -> list[slice]:
    """The batch in chunks of images whose tiles (d, V and M: α²·(2C + F) values per tile)
    fit in CHUNK_ELEMENTS, so that each array stays in cache from one step to the next, but
    of at least F/2 tiles: each chunk's α² GEMMs (T, C) @ (C, F) pack U's (C, F) anew, and
    on fewer tiles the packing outweighs the product (VGG's 128→256 at 8×8, 4 tiles an
    image: chunks of 32 images instead of 14 or 11 made forward + backward 9–19 % faster).
    As many chunks as a multiple of ``workers`` where the batch allows, so none waits idle."""
    n, c = t.x_shape[:2]
    tiles = t.tiles[0] * t.tiles[1]
    size = max(CHUNK_ELEMENTS // (t.alpha ** 2 * (2 * c + f) * tiles),
               math.ceil(TILES_PER_FILTER * f / tiles))
    return chunk_slices(n, size, workers)


def winograd_backward(dout: np.ndarray, cache: WinogradCache, *, need_dx: bool = True
                      ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """dx (N, C, H, W), dw (F, C, 3, 3), db (F,) or None from dout (N, F, OH, OW).

    dw = (G ⊗ G)ᵀ [dM V ᵀ] with dM = (Aᵀ ⊗ Aᵀ)ᵀ dY; dx = dout ⋆ rot180(w)ᵀ with padding 2 − p
    (a full correlation, by the same Winograd forward). ``need_dx=False`` skips dx.
    """
    v, w, has_bias, t, _ = cache
    n, c, h, wd = t.x_shape
    f = w.shape[0]
    dout = check_dout(dout, (n, f, *t.out_hw))
    dtype = v[0].dtype
    dout = dout.astype(dtype, copy=False)
    kg, ka, m = *matrices(t.m, dtype.str)[4:], t.m

    def du_of_chunk(s_v: tuple[slice, np.ndarray]) -> np.ndarray:
        s, v_chunk = s_v
        chunk = tile_grid(dout[s].shape[:2] + (h, wd), t.padding, m)
        # dY (b, th, tw, F, m, m): each output tile's m×m gradients, zeros past the edge
        dy = output_tiles(dout[s], chunk)
        dm = np.matmul(ka.T, dy.reshape(-1, m * m).T,  # (α², m²) @ (m², T·F)
                       out=take("dm", (t.alpha ** 2, chunk.count * f), dtype, row=1))
        # dUᵀ: (α², F, T) @ (α², T, C), dM transposed (OpenBLAS runs this form fastest here)
        return np.matmul(dm.reshape(-1, chunk.count, f).transpose(0, 2, 1), v_chunk)

    with chunk_runner(_shared(t, f)) as map_chunks:  # one runner for dU's chunks and dx's
        du, *rest = map_chunks(du_of_chunk, list(zip(cache.chunks, v)))  # dU as (α², F, C)
        for part in rest:  # in place: sum() would make a new array of α²·F·C per chunk
            du += part
        dx = _input_gradient(dout, w, t) if need_dx else None
        dw = (kg.T @ du.reshape(-1, f * c)).T.reshape(f, c, 3, 3)
    db = channel_sums(dout) if has_bias else None
    return dx, np.ascontiguousarray(dw), db


def _input_gradient(dout: np.ndarray, w: np.ndarray, t: Tiling) -> np.ndarray:
    """dx: dout padded by 2, correlated with w rotated by 180° and transposed to (C, F, 3, 3),
    cropped to x's shape."""
    h, wd = t.x_shape[2:]
    w_rot = np.ascontiguousarray(w.astype(dout.dtype, copy=False)[:, :, ::-1, ::-1]
                                 .transpose(1, 0, 2, 3))
    pad = tuple(max(2 - p, 0) for p in t.padding)
    crop = tuple(max(p - 2, 0) for p in t.padding)
    full = _correlate(dout, w_rot, None, pad, t.m, keep=False)[0]
    dx = full[:, :, crop[0]:crop[0] + h, crop[1]:crop[1] + wd]
    return np.ascontiguousarray(dx) if any(crop) else dx


def _check_inputs(x, w, b, padding: Pair, m: int) -> None:
    """The checks of every conv (``check_conv_inputs``) at stride 1 and dilation 1, then
    Winograd's own: a 3×3 kernel and a tile m it has matrices for."""
    check_conv_inputs(x, w, b, (1, 1), padding, (1, 1))
    if w.shape[2:] != (3, 3):
        raise ValueError(f"weight must be (F, C, 3, 3) for Winograd F(m×m, 3×3), "
                         f"got shape {w.shape}")
    if m not in TRANSFORMS:
        raise ValueError(f"m must be one of {sorted(TRANSFORMS)} (output tile m×m), got {m!r}")
