"""Second-order pruning: Optimal Brain Damage and Optimal Brain Surgeon, on arrays.

Both expand the loss to second order around a trained minimum (gradient ≈ 0)::

    δL ≈ ½ δwᵀ H δw

- **OBD** (LeCun, Denker & Solla 1990) keeps only the Hessian's diagonal and deletes weight k
  without touching the others, so its saliency is ``s_k = ½ h_kk w_k²``. For one deletion at
  the minimum of a quadratic this is exact for any H; for several it ignores the cross terms,
  so it is exact when H is diagonal.
- **OBS** (Hassibi & Stork 1993) deletes weight q *and* moves the others to compensate:
  the constrained minimum of ½ δwᵀHδw subject to w_q + δw_q = 0 is
  ``δw = −(w_q / [H⁻¹]_qq) H⁻¹ e_q`` with saliency ``L_q = ½ w_q² / [H⁻¹]_qq`` — exact on a
  quadratic. Deleting weights one after another, ``H⁻¹`` of the remaining weights is the old
  one with row and column q eliminated: ``H⁻¹ ← H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq``
  (the downdate used by Optimal Brain Compression, Frantar & Alistarh 2022).

Here w is a flat vector of n weights (``w.ravel()``) and H its (n, n) Hessian.
"""
from __future__ import annotations

import numpy as np

from nnprune.checks import check_number, check_scores
from nnprune.prune.masks import prune_count
from nnprune.prune.obc import refit_rows


def _checked(w: np.ndarray, h: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """w (n,) and its (n, n) matrix ``name`` as float64, or a clear error."""
    w = check_scores(np.asarray(w, dtype=np.float64), "w")
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array, got shape {w.shape}")
    h = check_scores(np.asarray(h, dtype=np.float64), name)
    n = w.size
    if h.shape != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}) to match w, got {h.shape}")
    return w, h


def obd_saliency(w: np.ndarray, h_diag: np.ndarray) -> np.ndarray:
    """OBD saliency ``s_k = ½ h_kk w_k²`` (LeCun et al. 1990); any shape, higher = keep.

    >>> obd_saliency(np.array([1.0, -2.0]), np.array([4.0, 1.0]))
    array([2., 2.])
    """
    w = check_scores(np.asarray(w, dtype=np.float64), "w")
    h_diag = check_scores(np.asarray(h_diag, dtype=np.float64), "h_diag")
    if w.shape != h_diag.shape:
        raise ValueError(f"h_diag must have w's shape {w.shape}, got {h_diag.shape}")
    # task 3.2: OBD saliency
    return 0.5 * h_diag * w * w
    # end task


def obs_saliency(w: np.ndarray, h_inv: np.ndarray) -> np.ndarray:
    """OBS saliency ``L_q = ½ w_q² / [H⁻¹]_qq`` for every q (Hassibi & Stork 1993).

    (n,), (n, n) -> (n,): the loss increase of deleting q alone with the optimal update.
    """
    w, h_inv = _checked(w, h_inv, "h_inv")
    d = np.diag(h_inv)
    if np.any(d <= 0):
        raise ValueError("h_inv must have a positive diagonal (is H positive definite?)")
    return 0.5 * w * w / d


def obs_update(w: np.ndarray, h_inv: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    """Delete weight q optimally: returns (w + δw, L_q), δw = −(w_q / [H⁻¹]_qq) H⁻¹ e_q.

    (n,), (n, n) -> (n,), float. The returned vector is exactly 0 at q.
    """
    w, h_inv = _checked(w, h_inv, "h_inv")
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 0 <= q < w.size:
        raise ValueError(f"q must be an index in [0, {w.size}), got {q!r}")
    d = h_inv[q, q]
    if d <= 0:
        raise ValueError(f"h_inv[{q}, {q}] must be positive, got {d}")
    # task 3.3: the OBS update that deletes one weight
    new = w - (w[q] / d) * h_inv[:, q]
    new[q] = 0.0  # exactly, not up to rounding
    return new, float(0.5 * w[q] ** 2 / d)
    # end task


def obs_prune(w: np.ndarray, hessian: np.ndarray, sparsity: float,
              mask: np.ndarray | None = None,
              damping: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Prune k = floor(sparsity·n + 0.5) weights one at a time by OBS; return (w, mask, δL).

    (n,), (n, n) -> (n,), (n,), float. Entries already zero in ``mask`` count toward k and
    stay pruned: the survivors are first re-fitted to them. Then, while fewer than k are
    pruned, the survivor with the smallest saliency is deleted (ties by index), the survivors
    are moved by δw, and H⁻¹ is downdated. ``δL = ½ δwᵀHδw`` is the predicted loss increase,
    which on a quadratic equals the true one.

    H must be invertible; a real layer's often is not. ``damping`` λ ≥ 0 then uses
    H + λ·mean(diag H)·I (Hassibi & Stork start their recursive inverse from α⁻¹I), and δL is
    measured with it. An ill-conditioned H without enough damping is an error.
    """
    w0, hessian = _checked(w, hessian, "hessian")
    n = w0.size
    check_number(damping, "damping")
    if damping:
        hessian = hessian + damping * np.mean(np.diag(hessian)) * np.eye(n)
    if np.linalg.cond(hessian) > 1e10:
        raise ValueError(f"hessian is singular or ill-conditioned (condition number "
                         f"{np.linalg.cond(hessian):.1e}); pass damping > 0, e.g. 0.01")
    keep = np.ones(n, bool) if mask is None else np.asarray(mask) != 0
    if keep.shape != (n,):
        raise ValueError(f"mask must have shape ({n},), got {keep.shape}")
    k = prune_count(n, sparsity)
    w = refit_rows(w0[None], hessian, keep[None])[0]  # the survivors fitted to the zeros
    h_inv = np.zeros((n, n))  # the inverse Hessian of the survivors, zero elsewhere
    kept = np.flatnonzero(keep)
    if kept.size:
        h_inv[np.ix_(kept, kept)] = np.linalg.inv(hessian[np.ix_(kept, kept)])
    for _ in range(max(0, k - int((~keep).sum()))):
        d = np.diag(h_inv)
        saliency = np.full(n, np.inf)
        saliency[keep] = 0.5 * w[keep] ** 2 / d[keep]
        q = int(np.argmin(saliency))  # first minimum: ties by index
        w = w - (w[q] / d[q]) * h_inv[:, q]
        h_inv = h_inv - np.outer(h_inv[:, q], h_inv[q, :]) / d[q]
        keep[q] = False
        w[~keep] = 0.0
    delta = w - w0
    return w, keep.astype(np.float64), float(0.5 * delta @ hessian @ delta)
