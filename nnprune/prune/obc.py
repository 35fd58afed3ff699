"""Layer-wise Optimal Brain Surgeon, exact per row: Optimal Brain Compression, on arrays.

A layer y = W x (W: (R, d), one row per output unit) is pruned to keep its outputs on the
calibration inputs X (d, N): minimise ‖W X − Ŵ X‖² / N over Ŵ with the chosen zeros. That loss
is quadratic in each row with the same Hessian for every row (Frantar, Singh & Alistarh 2022),

    H = 2 X Xᵀ / N,      δL_r = ½ (ŵ_r − w_r)ᵀ H (ŵ_r − w_r) = ‖(w_r − ŵ_r) X‖² / N,

so the rows are independent and OBS is exact within each: delete the weight with the least
saliency ½ w_q² / [H⁻¹]_qq, move the others by δw = −(w_q / [H⁻¹]_qq) H⁻¹ e_q, downdate
H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq, repeat (``hessian.obs_prune`` for one vector).
``obc_traces`` keeps the downdates lazily as a low-rank factor V (H⁻¹ = base − V Vᵀ), folded
into the base by one batched GEMM every ``lazy`` deletions.
"""
from __future__ import annotations

import numpy as np

from nnprune.checks import check_number, check_scores
from nnprune.prune.masks import prune_count

SHRINK = 0.75  # cut deleted entries out of H⁻¹ when the survivors are this share of it


def damp(h: np.ndarray, damping: float) -> np.ndarray:
    """H + λ·mean(diag H)·I (λ ≥ 0), checked positive definite. (d, d) -> (d, d) float64.

    Without damping a singular H (fewer samples than inputs, or an input that never varies)
    is a ValueError that says so.
    """
    h = check_scores(np.asarray(h, dtype=np.float64), "H")
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise ValueError(f"H must be a non-empty square matrix, got shape {h.shape}")
    check_number(damping, "damping")
    mean = float(np.mean(np.diag(h)))
    h = h + damping * (mean if mean > 0 else 1.0) * np.eye(len(h))
    try:
        np.linalg.cholesky(h)
        ok = np.linalg.cond(h) < 1e12
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        raise ValueError(f"H ({len(h)}×{len(h)}) is singular or ill-conditioned with damping="
                         f"{damping}: there are fewer calibration samples than inputs, or "
                         "inputs that never vary; use more calibration batches or damping > 0 "
                         "(e.g. 0.01)")
    return h


def recursive_inverse(x: np.ndarray, alpha: float) -> np.ndarray:
    """Hassibi & Stork's H⁻¹ by Sherman–Morrison, one sample at a time. (P, d) -> (d, d).

    H_0 = αI, H_{k+1} = H_k + x_k x_kᵀ / P, so
    H_{k+1}⁻¹ = H_k⁻¹ − H_k⁻¹ x_k x_kᵀ H_k⁻¹ / (P + x_kᵀ H_k⁻¹ x_k):
    the result is inv(αI + (1/P) Σ_k x_k x_kᵀ), in any order of the samples.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be (P, d) with P >= 1 samples, got shape {x.shape}")
    check_number(alpha, "alpha", strict=True)
    p = len(x)
    h_inv = np.eye(x.shape[1]) / alpha
    for row in x:
        hx = h_inv @ row
        h_inv -= np.outer(hx, hx) / (p + row @ hx)
    return h_inv


def _rows(w: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = check_scores(np.asarray(w, dtype=np.float64), "W")
    h = check_scores(np.asarray(h, dtype=np.float64), "H")
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"W must be a non-empty 2-D array (rows, inputs), got shape {w.shape}")
    if h.shape != (w.shape[1], w.shape[1]):
        raise ValueError(f"H must be ({w.shape[1]}, {w.shape[1]}) to match W {w.shape}, "
                         f"got {h.shape}")
    return w, h


def obc_traces(w: np.ndarray, h: np.ndarray, alive: np.ndarray | None = None,
               groups: tuple[np.ndarray, int] | None = None, rows_per_chunk: int = 32,
               lazy: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Greedy OBS to the end of every row: (order, losses), both (R, d).

    (R, d) W, (d, d) H (positive definite: ``damp`` it) -> order[r, t] the input deleted at
    step t of row r, losses[r, t] = ½ w_q² / [H⁻¹]_qq its loss increase (exactly the rise
    of ‖w_r X − ŵ_r X‖²/N). Entries with ``alive`` = 0 are deleted first (they are zero in a
    pruned model, so at no cost). ``groups`` = (gid (d,), n): N:M, at most n deletions per
    group id (the rest of a full group is never chosen; its order entries are −1).
    """
    w, h = _rows(w, h)
    r_all, d = w.shape
    alive = np.ones(w.shape, bool) if alive is None else np.asarray(alive) != 0
    if alive.shape != w.shape:
        raise ValueError(f"alive must have W's shape {w.shape}, got {alive.shape}")
    h_inv = np.linalg.inv(h)
    order = np.full((r_all, d), -1, np.int64)
    losses = np.full((r_all, d), np.inf)
    for start in range(0, r_all, rows_per_chunk):
        rows = slice(start, min(r_all, start + rows_per_chunk))
        order[rows], losses[rows] = _chunk_traces(w[rows].copy(), h_inv, alive[rows], groups,
                                                  lazy)
    return order, losses


def _chunk_traces(w, h_inv, alive, groups, lazy):
    """``obc_traces`` for one chunk of rows (see there): the lazy low-rank downdates."""
    r, d = w.shape
    at = np.arange(r)
    idx = np.broadcast_to(np.arange(d), (r, d)).copy()   # column of each compact position
    base = np.broadcast_to(h_inv, (r, d, d)).copy()       # (r, m, m): H⁻¹ before V
    diag = base[:, np.arange(d), np.arange(d)].copy()     # current diag(H⁻¹), kept exact
    forced = ~alive                                       # pruned already: deleted first
    open_ = np.ones((r, d), bool)                          # not deleted yet
    v = np.zeros((r, d, lazy))                            # current H⁻¹ = base − V Vᵀ
    if groups is not None:
        gid, limit = groups
        used = np.zeros((r, int(gid.max()) + 1), np.int64)
    order = np.full((r, d), -1, np.int64)
    losses = np.full((r, d), np.inf)
    t = 0
    for step in range(d):
        with np.errstate(divide="ignore", invalid="ignore"):  # deleted entries: diag 0
            saliency = np.where(open_, 0.5 * w * w / diag, np.inf)
        saliency[forced & open_] = -1.0
        if groups is not None:  # a group that has lost n may lose no more
            saliency[used[at[:, None], gid[idx]] >= limit] = np.inf
        q = np.argmin(saliency, axis=1)
        ok = np.isfinite(saliency[at, q])
        if not ok.any():
            break
        col = base[at, :, q] - np.einsum("rmt,rt->rm", v[:, :, :t], v[at, q, :t])
        dq = col[at, q]
        wq = w[at, q]
        order[ok, step] = idx[at, q][ok]
        losses[ok, step] = np.where(forced[at, q], 0.0, 0.5 * wq * wq / dq)[ok]
        scale = np.where(ok, wq / dq, 0.0)
        w -= scale[:, None] * col
        diag -= np.where(ok, 1.0 / dq, 0.0)[:, None] * col * col
        v[:, :, t] = col * np.where(ok, 1.0 / np.sqrt(dq), 0.0)[:, None]
        w[at[ok], q[ok]] = 0.0
        open_[at[ok], q[ok]] = False
        if groups is not None:
            used[at[ok], gid[idx[at[ok], q[ok]]]] += 1
        t += 1
        if t == lazy or step == d - 1:
            base -= np.matmul(v[:, :, :t], v[:, :, :t].transpose(0, 2, 1))
            t = 0
            m = base.shape[1]
            if ok.all() and groups is None and (d - step - 1) <= SHRINK * m:
                # every row has lost one per step: cut the deleted out once enough are
                # (the gather costs more per entry than a GEMM update, so not every time)
                keep = np.argsort(~open_, axis=1, kind="stable")[:, :d - step - 1]
                base = np.take_along_axis(np.take_along_axis(base, keep[:, :, None], 1),
                                          keep[:, None, :], 2)
                w, diag, idx, open_, forced = (np.take_along_axis(a, keep, 1)
                                               for a in (w, diag, idx, open_, forced))
                v = np.zeros((r, keep.shape[1], lazy))
                if keep.shape[1] == 0:
                    break
    return order, losses


def select_counts(losses: np.ndarray, k: int) -> np.ndarray:
    """How many of its first trace steps each row deletes: the k cheapest over all rows.

    (R, d) losses (+inf where a row cannot go on) -> (R,) counts summing to min(k, finite
    steps). Each row's increments are first replaced by their running maximum, so a row's
    steps are taken in order (a prefix of its trace); ties by row, then step.
    """
    losses = np.asarray(losses, dtype=np.float64)
    envelope = np.maximum.accumulate(np.where(np.isnan(losses), np.inf, losses), axis=1)
    flat = envelope.ravel()
    k = int(min(k, np.isfinite(flat).sum()))
    chosen = np.argsort(flat, kind="stable")[:k]
    return np.bincount(chosen // losses.shape[1], minlength=losses.shape[0])


def masks_from_counts(order: np.ndarray, counts: np.ndarray, d: int) -> np.ndarray:
    """(R, d) 0/1 mask deleting the first counts[r] entries of each row's order."""
    mask = np.ones((len(order), d))
    for r, c in enumerate(counts):
        steps = order[r, :int(c)]
        mask[r, steps[steps >= 0]] = 0.0  # −1: a step the row could not take
    return mask


def refit_rows(w: np.ndarray, h: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The best rows with ``mask``'s zeros: ŵ_K = w_K + H_KK⁻¹ H_KS w_S, 0 on S.

    (R, d), (d, d), (R, d) -> (R, d): argmin ½(ŵ − w)ᵀH(ŵ − w) with ŵ_S = 0, row by row
    (rows with the same mask solved together).
    """
    w, h = _rows(w, h)
    keep = np.asarray(mask) != 0
    out = np.where(keep, w, 0.0)
    patterns, which = np.unique(keep, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == p)
        k, s = np.flatnonzero(pattern), np.flatnonzero(~pattern)
        if k.size and s.size:
            rhs = h[np.ix_(k, s)] @ w[np.ix_(rows, s)].T            # (|K|, rows)
            out[np.ix_(rows, k)] += np.linalg.solve(h[np.ix_(k, k)], rhs).T
    return out


def reconstruction_loss(w: np.ndarray, w_new: np.ndarray, h: np.ndarray) -> np.ndarray:
    """½ (ŵ_r − w_r)ᵀ H (ŵ_r − w_r) per row: = ‖(w_r − ŵ_r) X‖²/N for H = 2XXᵀ/N. -> (R,)."""
    delta = np.asarray(w_new, np.float64) - np.asarray(w, np.float64)
    return 0.5 * np.einsum("rd,de,re->r", delta, np.asarray(h, np.float64), delta)


def obc_prune(w: np.ndarray, h: np.ndarray, sparsity: float,
              alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """One layer to ``sparsity`` by exact OBC: (Ŵ, mask, δL), rows combined by their traces.

    (R, d), (d, d) -> (R, d), (R, d), float. k = ⌊sparsity·R·d + ½⌋ deletions, shared among
    the rows by ``select_counts``; δL = Σ_r ½ δw_rᵀ H δw_r, the rise of ‖WX − ŴX‖²/N.
    """
    w, h = _rows(w, h)
    order, losses = obc_traces(w, h, alive)
    counts = select_counts(losses, prune_count(w.size, sparsity))
    mask = masks_from_counts(order, counts, w.shape[1])
    new = refit_rows(w, h, mask)
    return new, mask, float(reconstruction_loss(w, new, h).sum())


def group_traces(w: np.ndarray, h: np.ndarray, groups: np.ndarray,
                 row_weights: np.ndarray | None = None,
                 dead: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy group OBS when every row deletes the same inputs: (order, losses), both (G,).

    (R, d) W, (d, d) H, (G, q) ``groups`` (the input columns of each group, e.g. the kh·kw
    columns of one input channel of a conv) -> the group deleted at each step and its loss.
    Deleting a set Q from every row at once costs (Hassibi & Stork's group form, as OBC)

        δL_Q = ½ Σ_r c_r w_rQ ([H⁻¹]_QQ)⁻¹ w_rQᵀ,   δW = −W_Q ([H⁻¹]_QQ)⁻¹ [H⁻¹]_Q:,

    and since all rows lose the same inputs they share one H⁻¹, downdated as
    H⁻¹ ← H⁻¹ − [H⁻¹]_:Q ([H⁻¹]_QQ)⁻¹ [H⁻¹]_Q:. ``row_weights`` c_r (default 1); ``dead``
    (G,) bool: groups pruned already, deleted first (at the cost their weights still have).
    """
    w, h = _rows(w, h)
    groups = np.asarray(groups, dtype=np.int64)
    if groups.ndim != 2 or groups.size == 0 or groups.min() < 0 or groups.max() >= w.shape[1]:
        raise ValueError(f"groups must be a (G, q) array of input columns in [0, {w.shape[1]}), "
                         f"got shape {groups.shape}")
    c = np.ones(len(w)) if row_weights is None else np.asarray(row_weights, np.float64)
    dead = np.zeros(len(groups), bool) if dead is None else np.asarray(dead, bool)
    h_inv = np.linalg.inv(h)
    w = w.copy()
    open_ = np.ones(len(groups), bool)
    order, losses = np.empty(len(groups), np.int64), np.empty(len(groups))
    for step in range(len(groups)):
        blocks = np.linalg.inv(h_inv[groups[:, :, None], groups[:, None, :]])  # (G, q, q)
        wq = w[:, groups]                                                       # (R, G, q)
        cost = 0.5 * np.einsum("r,rgi,gij,rgj->g", c, wq, blocks, wq)
        cost[~open_] = np.inf
        cost[open_ & dead] = -1.0  # already pruned: first
        g = int(np.argmin(cost))
        q, m = groups[g], blocks[g]
        order[step] = g
        losses[step] = 0.5 * np.einsum("r,ri,ij,rj->", c, w[:, q], m, w[:, q])
        w -= (w[:, q] @ m) @ h_inv[q, :]
        w[:, q] = 0.0
        h_inv = h_inv - h_inv[:, q] @ m @ h_inv[q, :]
        h_inv[q, :] = h_inv[:, q] = 0.0
        h_inv[q, q] = 1.0  # a placeholder: q is closed, its block stays invertible
        open_[g] = False
    return order, losses
