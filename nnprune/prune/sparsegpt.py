"""SparseGPT: layer-wise OBS in one pass over the columns (Frantar & Alistarh 2023), on arrays.

Exact OBC (``obc.py``) downdates a separate H⁻¹ for every row. SparseGPT makes every row
visit the inputs in one shared order, left to right: at column j the weight w_rj is kept or
deleted, its error is spread over the columns to its right, and column j leaves H⁻¹. With one
order the downdated inverses are the same for every row, all in the upper Cholesky factor of
the inverse:

    H⁻¹ = Uᵀ U  (U upper triangular):
    U[j, j:] = (H⁻¹ after deleting 0..j−1)[j, j:] / √(its [j, j])

so deleting (or keeping) column j moves the row by δw_{j:} = −(err_j) U[j, j:], with
err_j = (w_j − ŵ_j) / U_jj, where ŵ_j = 0 if pruned, w_j if kept (Algorithm 1 of the paper).
The mask is chosen block by block (``blocksize`` columns) from w² / U_jj² over the whole block:
exactly the block's share of k, or n of every m along the inputs (N:M). Errors inside a block
are applied column by column, to the rest of the layer once per block (one GEMM).

The result is never worse than the layer masked without compensation, and is the
least-squares fit on the kept inputs when the pruned columns are a prefix of the order.
"""
from __future__ import annotations

import numpy as np

from nnprune.prune.masks import prune_count
from nnprune.prune.obc import _rows


def inverse_cholesky(h: np.ndarray) -> np.ndarray:
    """U upper triangular with H⁻¹ = Uᵀ U. (d, d) positive definite -> (d, d)."""
    h_inv = np.linalg.inv(np.asarray(h, dtype=np.float64))
    return np.linalg.cholesky((h_inv + h_inv.T) / 2).T


def sparsegpt(w: np.ndarray, h: np.ndarray, sparsity: float | None = None,
              mask: np.ndarray | None = None, alive: np.ndarray | None = None,
              nm: tuple[int, int] | None = None, blocksize: int = 128,
              groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SparseGPT on one layer: (Ŵ, mask). (R, d) W, (d, d) damped H -> (R, d), (R, d).

    Give a fixed ``mask`` (1 = keep), or a ``sparsity`` (k = ⌊s·R·d + ½⌋ deleted, each block
    of columns deleting its share) or ``nm`` = (n, m): n of every m inputs kept along the
    input groups ``groups`` (d,) of group ids (default j // m). Entries with ``alive`` = 0
    stay deleted (chosen first).
    """
    w, h = _rows(w, h)
    r, d = w.shape
    u = inverse_cholesky(h)
    alive = np.ones((r, d), bool) if alive is None else np.asarray(alive) != 0
    fixed = mask is not None
    if fixed:
        keep_all = np.asarray(mask) != 0
        if keep_all.shape != (r, d):
            raise ValueError(f"mask must have W's shape {(r, d)}, got {keep_all.shape}")
        keep_all = keep_all & alive
    elif nm is None:
        if sparsity is None:
            raise ValueError("sparsegpt needs a mask, a sparsity or nm=(n, m)")
        k_total = prune_count(r * d, sparsity)
        keep_all = np.ones((r, d), bool)
    else:
        keep_all = np.ones((r, d), bool)
        gid = np.arange(d) // nm[1] if groups is None else np.asarray(groups)
    w = w.copy()
    done = 0
    for i1 in range(0, d, blocksize):
        i2 = min(d, i1 + blocksize)
        w1, u1 = w[:, i1:i2], u[i1:i2, i1:i2]
        if not fixed:
            score = w1 ** 2 / np.diag(u1) ** 2
            score[~alive[:, i1:i2]] = -np.inf
            if nm is None:  # this block's share of k, cheapest first (ties by position)
                k = k_total if i2 == d else int(np.floor(
                    k_total * i2 / d + 0.5))
                k_block = k - done
                done = k
                flat = np.argsort(score.ravel(), kind="stable")[:k_block]
                keep_all[:, i1:i2].flat[flat] = False
            else:
                keep_all[:, i1:i2] = _nm_keep(score, gid[i1:i2], nm, alive[:, i1:i2])
        err = np.zeros((r, i2 - i1))
        for j in range(i2 - i1):
            target = np.where(keep_all[:, i1 + j], w1[:, j], 0.0)
            err[:, j] = (w1[:, j] - target) / u1[j, j]
            w1[:, j:] -= np.outer(err[:, j], u1[j, j:])
            w1[:, j] = target  # exactly, not up to rounding
        w[:, i2:] -= err @ u[i1:i2, i2:]
    return w, keep_all.astype(np.float64)


def _nm_keep(score: np.ndarray, gid: np.ndarray, nm: tuple[int, int],
             alive: np.ndarray) -> np.ndarray:
    """Keep the n best of every group of m columns (by id) in each row of one block."""
    n, m = nm
    keep = np.ones(score.shape, bool)
    for g in np.unique(gid):
        cols = np.flatnonzero(gid == g)
        if len(cols) != m:
            raise ValueError(f"an N:M group must lie inside one block: group {g} has "
                             f"{len(cols)} of its {m} columns here (use a blocksize that is "
                             f"a multiple of the group layout)")
        ranked = np.argsort(score[:, cols], axis=1, kind="stable")[:, :m - n]
        keep[np.arange(len(score))[:, None], cols[ranked]] = False
    return keep & alive
