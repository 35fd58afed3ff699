"""Hessian diagonals of a model's loss by second-order backpropagation, and the Fisher diagonal.

For a chain z = f_L(… f_1(x)) and a loss L = (1/N) Σ_n ℓ(z_n), the Hessian with respect to
the weights splits (Gauss–Newton; Levenberg–Marquardt in LeCun et al. 1990)

    H = (1/N) Σ_n J_nᵀ H_ℓ,n J_n  +  (1/N) Σ_n Σ_k (∂ℓ/∂z_nk) ∇²z_nk,

J_n = ∂z_n/∂w, H_ℓ = ∂²ℓ/∂z². The first term G (the Gauss–Newton matrix) drops the f''
terms. Three diagonals of it are computed here, each by one backward walk over the layers
(Linear, Conv2d, ReLU, Tanh, MaxPool2d, AvgPool2d, Flatten, Dropout as the identity):

- ``gauss_newton_diagonal``: diag(G) exactly. Factor H_ℓ = S Sᵀ (cross-entropy:
  S = diag(√p) − p √pᵀ, since Σp = 1; MSE with mean reduction over K outputs: S = √(2/K)·I)
  and backpropagate the K columns of S instead of one gradient: for a Linear weight,
  G_ij = (1/N) Σ_n Σ_k (B_nk,i x_nj)², B = Jᵀ-propagated columns at the layer's output.
- ``lecun_diagonal``: OBD's own recursion (LeCun, Denker & Solla 1990): only the diagonal
  ∂²E/∂a_i² of each layer's output is carried, ∂²E/∂a_i² = f'(a_i)² Σ_l w_li² ∂²E/∂a_l²,
  and ∂²E/∂w_ij² = Σ_n (∂²E/∂a_i²) x_j²; one backward pass. It drops the cross terms
  ∂²E/∂a_l∂a_m (l ≠ m) of the layer above, so it equals diag(G) where those vanish: on the
  output layer for any loss, and on the layer below it too for MSE (H_ℓ = (2/K)·I is
  diagonal; cross-entropy's diag(p) − ppᵀ is not). Further down it is an approximation
  (tested both ways).
- ``fisher_diagonal``: the empirical Fisher, (1/N) Σ_n (∇_w ℓ_n)², per-sample gradients by
  the same walk with the one column ∇_z ℓ_n.

diag(G) is the exact Hessian diagonal (up to kinks of measure zero) of the **last** Linear
layer of any chain (z is linear in its weights) and of every layer of a **piecewise-linear**
chain (Linear, Conv2d, ReLU, max/avg pool, Flatten): z is then piecewise linear in any one
weight, so ∂²z/∂w² = 0. With Tanh before a weight's output it is not.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nnprune import nn
from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_choice, check_int
from nnprune.curvature_tape import backward_squares, chain, output_columns, record

LOSSES = ("cross_entropy", "mse")


def _diagonal(model, x, y, loss, kind, batch_size, units=None):
    """{param: diagonal} of ``kind`` summed over batches of the walk (``curvature_tape``);
    ``units``, if given, receives each weight layer's mean unit curvature."""
    check_choice(loss, "loss", LOSSES)
    layers = chain(model)
    x = np.asarray(x)
    if len(x) == 0 or len(np.asarray(y)) != len(x):
        raise ValueError(f"x and y must hold the same positive number of samples, got "
                         f"{len(x)} and {len(np.asarray(y))}")
    check_int(batch_size, "batch_size", 1)
    total, unit_sums = {}, {}
    # the model's float dtype: float32 halves the cost, float64 models are computed in float64
    dtype = np.result_type(np.float32, *(p.dtype for p in model.parameters()))
    for s in range(0, len(x), batch_size):
        z, tape = record(layers, np.asarray(x[s:s + batch_size], dtype=dtype))
        b = output_columns(z, np.asarray(y)[s:s + batch_size], loss, kind)
        if kind == "lecun":
            b = np.square(b).sum(axis=1)
        found = {}
        part = backward_squares(tape, b, kind == "lecun", found)
        for name, value in part.items():
            total[name] = total.get(name, 0.0) + value.astype(np.float64)  # sums in float64
        for name, value in found.items():
            unit_sums[name] = unit_sums.get(name, 0.0) + value * len(z)
    if units is not None:
        units.update({name: v / len(x) for name, v in unit_sums.items()})
    params = dict(model.named_parameters())
    return {name: (v / len(x)).astype(params[name].dtype) for name, v in total.items()}


def gauss_newton_diagonal(model: Any, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                          batch_size: int = 256) -> dict[str, np.ndarray]:
    """diag of G = (1/N) Σ_n J_nᵀ H_ℓ J_n for every weight and bias: {name: (shape)}.

    x: (N, …) inputs; y: (N,) labels (cross-entropy) or (N, K) targets (MSE, mean over all
    entries, as ``F.mse_loss``). See the module docstring for the method and its exactness.
    """
    return _diagonal(model, x, y, loss, "exact", batch_size)


def lecun_diagonal(model: Any, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                   batch_size: int = 256) -> dict[str, np.ndarray]:
    """OBD's second-order backpropagation (LeCun et al. 1990), Gauss–Newton form: {name: (shape)}
    (the recursion, and where it is exact, in the module docstring)."""
    return _diagonal(model, x, y, loss, "lecun", batch_size)


def fisher_diagonal(model: Any, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                    batch_size: int = 256) -> dict[str, np.ndarray]:
    """Empirical Fisher diagonal (1/N) Σ_n (∇_w ℓ_n)²: {name: (shape)}, every weight and bias."""
    return _diagonal(model, x, y, loss, "fisher", batch_size)


def unit_curvature(model: Any, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                   batch_size: int = 256) -> dict[str, np.ndarray]:
    """Mean Gauss–Newton curvature of the loss in each Linear/Conv2d output unit:
    {layer prefix: (F,)}, (1/N) Σ_n [J_aᵀ H_ℓ J_a]_ii averaged over a conv's positions.

    ½ · this · E[δa_i²] is the loss rise of a small error δa_i in unit i's pre-activation:
    the weight layer-wise OBS puts on each row's reconstruction error to compare layers.
    """
    units: dict[str, np.ndarray] = {}
    _diagonal(model, x, y, loss, "exact", batch_size, units)
    return units


HESSIANS = ("gauss-newton", "lecun", "fisher", "hutchinson", "exact")
EXACT_MAX_SIZE = 4096  # weights per layer for hessian="exact": one H·e_i product each


def hessian_diagonals(model: Any, x: np.ndarray, y: np.ndarray, kind: str = "gauss-newton",
                      names: Any = None, samples: int = 100, seed: int = 0,
                      batch_size: int = 256) -> dict[str, np.ndarray]:
    """diag(H) of the mean cross-entropy on (x, y) for the named weights, by ``kind``:

    ``gauss-newton`` (``gauss_newton_diagonal``), ``lecun`` (``lecun_diagonal``), ``fisher``
    (``fisher_diagonal``), ``hutchinson`` (``samples`` Rademacher products, ``seed``) or
    ``exact`` (one finite-difference product per weight, refused above ``EXACT_MAX_SIZE``
    weights in a layer). The last two run on a float64 copy of the model.
    {name: (shape)} for ``names`` (default: every weight with ndim ≥ 2).
    """
    from nnprune import curvature
    from nnprune.functional import cross_entropy

    check_choice(kind, "hessian", HESSIANS)
    params = dict(model.named_parameters())
    names = [n for n, p in params.items() if n.endswith("weight") and p.ndim >= 2] \
        if names is None else list(names)
    if kind in ("gauss-newton", "lecun", "fisher"):
        diag = {"gauss-newton": gauss_newton_diagonal, "lecun": lecun_diagonal,
                "fisher": fisher_diagonal}[kind](model, x, y, batch_size=batch_size)
        return {n: diag[n] for n in names}
    big = {n: params[n].size for n in names if params[n].size > EXACT_MAX_SIZE}
    if kind == "exact" and big:
        raise ValueError(f"hessian='exact' takes one Hessian-vector product per weight and is "
                         f"limited to {EXACT_MAX_SIZE} weights per layer; "
                         f"{', '.join(f'{n} has {s}' for n, s in big.items())}: use "
                         f"hessian='gauss-newton' (the exact Gauss–Newton diagonal, equal to "
                         f"the Hessian's for ReLU networks) or 'hutchinson'")
    copy = _float64_copy(model)
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y)

    def loss(m):
        return cross_entropy(m(Tensor(xs)), ys)

    diag = curvature.hessian_diagonal(copy, loss, names, method=kind, samples=samples,
                                      seed=seed, max_size=max(EXACT_MAX_SIZE, 1))
    return {n: d.astype(params[n].dtype) for n, d in diag.items()}


def _float64_copy(model: Any) -> Any:
    """The model rebuilt in float64 with the same weights and masks, in eval mode."""
    config = _with_dtype(model.config(), "float64")
    copy = nn.from_config(config)
    params = dict(copy.named_parameters())
    for name, p in model.named_parameters():
        params[name].data[...] = p.data
        if p.mask is not None:
            params[name].set_mask(p.mask.astype(np.float64))
    return copy.eval()


def _with_dtype(config: Any, dtype: str) -> Any:
    if isinstance(config, dict):
        return {k: (dtype if k == "dtype" else _with_dtype(v, dtype)) for k, v in config.items()}
    if isinstance(config, list):
        return [_with_dtype(v, dtype) for v in config]
    return config
