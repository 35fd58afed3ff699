"""Winograd's F(m×m, 3×3), the pieces: its exact matrices and the three steps that apply them.

``winograd.py`` holds the algorithm (its docstring derives it) and runs these steps, chunk
by chunk of images: the filter transform U = G g Gᵀ, the input transform V = Bᵀ d B of
every α×α input tile d (α = m + 2), then the α² GEMMs M[ξ] = V[ξ] U[ξ] and the output
transform Y = Aᵀ M A of every tile. Each transform is itself one GEMM, by
vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d) with row-major vec.
"""
from __future__ import annotations

import functools
from fractions import Fraction as Fr
from typing import NamedTuple

import numpy as np

from nnprune.functional.im2col import copy_relaid, copy_runs, reshaped_view
from nnprune.functional.scratch import take
from nnprune.functional.validation import Pair

# m -> (Bᵀ (α, α), G (α, 3), Aᵀ (m, α)), exact, from Lavin & Gray 2016 (points 0, ±1, ±2, ∞)
TRANSFORMS: dict[int, tuple[tuple, tuple, tuple]] = {
    2: (((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (Fr(1, 2), Fr(1, 2), Fr(1, 2)), (Fr(1, 2), Fr(-1, 2), Fr(1, 2)), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1))),
    4: (((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
         (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
        ((Fr(1, 4), 0, 0), (Fr(-1, 6), Fr(-1, 6), Fr(-1, 6)), (Fr(-1, 6), Fr(1, 6), Fr(-1, 6)),
         (Fr(1, 24), Fr(1, 12), Fr(1, 6)), (Fr(1, 24), Fr(-1, 12), Fr(1, 6)), (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))),
}


class Tiling(NamedTuple):
    """The tile grid of one call: m×m output tiles, ⌈OH/m⌉ × ⌈OW/m⌉ of them per image."""
    m: int
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    padding: Pair
    out_hw: Pair                        # (OH, OW)
    tiles: Pair                         # (⌈OH/m⌉, ⌈OW/m⌉)

    @property
    def alpha(self) -> int:
        return self.m + 2

    @property
    def count(self) -> int:
        """T, the tiles of the whole batch."""
        return self.x_shape[0] * self.tiles[0] * self.tiles[1]


def transform_matrices(m: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Bᵀ, G, Aᵀ) of F(m×m, 3×3) as ``dtype`` arrays, m = 2 or 4 (α = m + 2):
    Bᵀ (α, α), G (α, 3), Aᵀ (m, α).

    >>> bt, g, at = transform_matrices(2)
    >>> at
    array([[ 1.,  1.,  1.,  0.],
           [ 0.,  1., -1., -1.]])
    """
    if m not in TRANSFORMS:
        raise ValueError(f"m must be one of {sorted(TRANSFORMS)} (output tile m×m), got {m!r}")
    return tuple(a.copy() for a in matrices(m, np.dtype(dtype).str)[:3])


@functools.lru_cache(maxsize=None)
def matrices(m: int, dtype: str) -> tuple[np.ndarray, ...]:
    """Bᵀ, G, Aᵀ and the Kronecker products Bᵀ⊗Bᵀ, G⊗G, Aᵀ⊗Aᵀ that transform a whole
    (row-major flattened) tile at once; made once per (m, dtype), read-only."""
    bt, g, at = (np.array([[float(v) for v in row] for row in mat], dtype)
                 for mat in TRANSFORMS[m])
    arrays = (bt, g, at, np.kron(bt, bt), np.kron(g, g), np.kron(at, at))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def tile_grid(x_shape: tuple, padding: Pair, m: int) -> Tiling:
    """The m×m output tiles of a 3×3 conv of x (N, C, H, W) with ``padding``."""
    oh, ow = x_shape[2] + 2 * padding[0] - 2, x_shape[3] + 2 * padding[1] - 2
    return Tiling(m, tuple(x_shape), padding, (oh, ow), (-(-oh // m), -(-ow // m)))


def output_tiles(dout: np.ndarray, t: Tiling) -> np.ndarray:
    """dout (b, F, OH, OW) as its m×m output tiles (b, th, tw, F, m, m), zero-padded to whole
    tiles, in scratch memory."""
    (n, f), (th, tw), m, (oh, ow) = dout.shape[:2], t.tiles, t.m, t.out_hw
    dy = take("dy", (n, th, tw, f, m, m), dout.dtype)
    if (th * m, tw * m) != (oh, ow):
        dout = np.pad(dout, ((0, 0), (0, 0), (0, th * m - oh), (0, tw * m - ow)))
    copy_runs(dy.transpose(0, 3, 1, 4, 2, 5), dout.reshape(n, f, th, m, tw, m))
    return dy


def input_transform(x: np.ndarray, t: Tiling, keep: bool) -> np.ndarray:
    """V = Bᵀ d B of every α×α input tile d (tiles overlap by 2):  (N, C, H, W) -> (α², T, C),
    a new array if ``keep``, else scratch memory."""
    (n, c, h, wd), (ph, pw), (th, tw), m, a = t.x_shape, t.padding, t.tiles, t.m, t.alpha
    # x padded and extended with zeros to whole tiles, channels last: (N, th·m + 2,
    # tw·m + 2, C), so that the tiles' copy below moves runs of C values (a copy with C
    # innermost from NCHW reads one value per line and ran 2–7 % slower end to end)
    xp = take("xp", (n, th * m + 2, tw * m + 2, c), x.dtype)
    xp[:, :ph], xp[:, ph + h:], xp[:, :, :pw], xp[:, :, pw + wd:] = 0, 0, 0, 0
    copy_relaid(xp[:, ph:ph + h, pw:pw + wd].transpose(0, 3, 1, 2), x, batch_last=False)
    sn, sh, sw, sc = xp.strides
    tiles = np.lib.stride_tricks.as_strided(   # (N, th, tw, α, α, C), a view
        xp, (n, th, tw, a, a, c), (sn, m * sh, m * sw, sh, sw, sc), writeable=False)
    d = take("d", (a * a, c * t.count), x.dtype, row=1)  # d[(i, j), (tile, c)]
    copy_runs(reshaped_view(d, (a, a, n, th, tw, c)), tiles.transpose(3, 4, 0, 1, 2, 5))
    v = take("v", (a * a, c * t.count), x.dtype, fresh=keep, row=1)
    np.matmul(matrices(m, x.dtype.str)[3], d, out=v)  # (α², α²) @ (α², T·C)
    return v.reshape(a * a, t.count, c)


def filter_transform(w: np.ndarray, m: int, out: np.ndarray | None = None) -> np.ndarray:
    """U = G g Gᵀ of every 3×3 kernel g:  (F, C, 3, 3) -> (α², C, F), written into ``out``
    if given (a slice along C of a larger U will do: its last two axes must be contiguous)."""
    f, c = w.shape[:2]
    # (α², 9) @ (9, C·F): G⊗G applied to every flattened kernel
    kernels = w.transpose(1, 0, 2, 3).reshape(c * f, 9)
    kg = matrices(m, w.dtype.str)[4]
    if out is None:
        return (kg @ kernels.T).reshape(-1, c, f)
    if (out.shape != (len(kg), c, f) or out.dtype != w.dtype
            or out.strides[1:] != (f * out.itemsize, out.itemsize)):
        raise ValueError(f"out must be a {w.dtype} array of shape {(len(kg), c, f)} whose last "
                         f"two axes are contiguous, got {out.dtype} {out.shape} with strides "
                         f"{out.strides}")
    np.matmul(kg, kernels.T, out=reshaped_view(out, (len(kg), c * f)))
    return out


def multiply_and_gather(u: np.ndarray, v: np.ndarray, b: np.ndarray | None, t: Tiling,
                         out: np.ndarray) -> None:
    """The α² GEMMs M[ξ] = V[ξ] U[ξ], then Y = Aᵀ M A per tile, written into out
    (N, F, OH, OW)."""
    (n, c, _, _), (th, tw), m, a = t.x_shape, t.tiles, t.m, t.alpha
    f = u.shape[2]
    # M with one more row holding the bias, so the output transform adds it: [Aᵀ⊗Aᵀ | 1]
    mm = take("m", (a * a + 1, t.count * f), v.dtype, row=1).reshape(a * a + 1, t.count, f)
    np.matmul(v, u, out=mm[:a * a])  # (α², T, C) @ (α², C, F)
    mm[a * a] = 0 if b is None else b
    ka = np.empty((m * m, a * a + 1), v.dtype)
    ka[:, :a * a], ka[:, a * a] = matrices(m, v.dtype.str)[5], 1
    y = np.matmul(mm.reshape(a * a + 1, -1).T, ka.T,  # (T·F, α²+1) @ (α²+1, m²)
                  out=take("y", (t.count * f, m * m), v.dtype))  # rows (n, ty, tx, f)
    tiles = y.reshape(n, th, tw, f, m, m).transpose(0, 3, 1, 4, 2, 5)  # (N, F, th, m, tw, m)
    if (th * m, tw * m) == out.shape[2:]:
        copy_runs(out.reshape(n, f, th, m, tw, m), tiles)
    else:  # whole tiles first, then the part inside the output
        whole = take("whole", (n, f, th * m, tw * m), v.dtype)
        copy_runs(whole.reshape(n, f, th, m, tw, m), tiles)
        np.copyto(out, whole[:, :, :out.shape[2], :out.shape[3]])
