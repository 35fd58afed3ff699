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
  G_ij = (1/N) Σ_n Σ_k (B_nk,i x_nj)², B = Jᵀ-propagated columns at the layer's output. It
  costs K column-backprops through the layers above the first (LeNet-300-100: K = 10 columns
  through two small layers, about 2 backward passes in all, ``nnprune bench hessian``).
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
from nnprune.functional.columns import patches
from nnprune.functional.conv import conv2d_backward, conv2d_forward
from nnprune.functional.pool import (avg_pool2d_backward, avg_pool2d_forward,
                                     max_pool2d_backward, max_pool2d_forward)

LOSSES = ("cross_entropy", "mse")
SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten,
             nn.Dropout)


def chain(model: Any) -> list[tuple[str, Any]]:
    """(prefix, layer) of a ``Sequential`` whose layers the walk supports, else a ValueError."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential of layers, got {type(model).__name__}")
    layers = []
    for i, layer in enumerate(model):
        if not isinstance(layer, SUPPORTED):
            raise ValueError(f"layer {i} is {type(layer).__name__}, which the second-order "
                             f"backpropagation does not handle (it handles "
                             f"{', '.join(t.__name__ for t in SUPPORTED)}); use hessian="
                             f"'hutchinson' or 'exact' for this model")
        layers.append((str(i), layer))
    return layers


def _forward(layers, x):
    """Run the chain in x's dtype (the model's), keeping what each layer's backward needs."""
    tape = []
    for name, layer in layers:
        if isinstance(layer, nn.Linear):
            w = layer.weight.data
            out = x @ w.T + (0 if layer.bias is None else layer.bias.data)
            tape.append((name, layer, x, w))
        elif isinstance(layer, nn.Conv2d):
            w = layer.weight.data
            b = None if layer.bias is None else layer.bias.data
            out, cache = conv2d_forward(x, w, b, layer.stride, layer.padding, layer.dilation)
            tape.append((name, layer, x, (w, cache)))
        elif isinstance(layer, nn.ReLU):
            out = np.maximum(x, 0.0)
            tape.append((name, layer, None, (x > 0).astype(x.dtype)))
        elif isinstance(layer, nn.Tanh):
            out = np.tanh(x)
            tape.append((name, layer, None, 1.0 - out * out))
        elif isinstance(layer, nn.MaxPool2d):
            out, cache = max_pool2d_forward(x, layer.kernel_size, layer.stride, layer.padding)
            tape.append((name, layer, None, cache))
        elif isinstance(layer, nn.AvgPool2d):
            out, cache = avg_pool2d_forward(x, layer.kernel_size, layer.stride, layer.padding)
            tape.append((name, layer, None, cache))
        elif isinstance(layer, nn.Flatten):
            out = x.reshape(len(x), -1)
            tape.append((name, layer, None, x.shape))
        else:  # Dropout: the identity outside training
            out = x
            tape.append((name, layer, None, None))
        x = out
    return x, tape


def _output_factor(z, y, loss, kind):
    """Columns at the output, (N, c, K): S of H_ℓ = S Sᵀ (exact), √diag H_ℓ (lecun, as
    (N, 1, K) squared later) or ∇_z ℓ_n (fisher)."""
    n, k = z.shape
    if loss == "cross_entropy":
        y = np.asarray(y)
        if y.shape != (n,) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= k:
            raise ValueError(f"y must be {n} class indices in [0, {k}), got shape {y.shape}")
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if kind == "fisher":
            g = p.copy()
            g[np.arange(n), y] -= 1
            return g[:, None, :]
        if kind == "lecun":
            return np.sqrt(p - p * p)[:, None, :]
        root = np.sqrt(p)
        s = root[:, :, None] * np.eye(k, dtype=z.dtype) - p[:, :, None] * root[:, None, :]
        return s.transpose(0, 2, 1)  # (N, column, K): column c is S[:, c]
    t = np.asarray(y, dtype=z.dtype)
    if t.shape != z.shape:
        raise ValueError(f"y (MSE targets) must have the output's shape {z.shape}, got {t.shape}")
    if kind == "fisher":
        return (2.0 / k * (z - t))[:, None, :]
    scale = np.sqrt(2.0 / k)
    if kind == "lecun":
        return np.full((n, 1, k), scale, z.dtype)
    return np.broadcast_to(scale * np.eye(k, dtype=z.dtype), (n, k, k)).copy()


def _conv_weight_squares(b, x, layer):
    """Σ_n Σ_c (B[n, c] colsᵀ)²: (F, C·kh·kw) from B (N, c, F, P) and the layer input x."""
    cols = patches(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    n, c, f, p = b.shape
    total = np.zeros((f, cols.shape[1]), b.dtype)
    step = max(1, (1 << 21) // max(1, c * f * cols.shape[1]))
    for s in range(0, n, step):
        g = np.matmul(b[s:s + step].reshape(-1, c * f, p), cols[s:s + step].transpose(0, 2, 1))
        total += np.square(g).reshape(-1, c, f, cols.shape[1]).sum(axis=(0, 1))
    return total


def _backward(tape, b, squared_only, units):
    """Walk the tape backwards with the columns b (N, c, …) — or, ``squared_only``, with the
    diagonal carrier d (N, …) = Σ_c b² of LeCun's recursion. Returns {param: Σ_n squares}."""
    out = {}
    first = next(i for i, entry in enumerate(tape) if isinstance(entry[1], (nn.Linear,
                                                                            nn.Conv2d)))
    for i in range(len(tape) - 1, first - 1, -1):  # nothing below the first weight needs b
        name, layer, x, saved = tape[i]
        below = i > first
        if isinstance(layer, nn.Linear):
            w = saved
            s2 = b if squared_only else np.square(b).sum(axis=1)          # (N, out)
            units[name] = s2.mean(axis=0)
            out[f"{name}.weight"] = s2.T @ np.square(x)
            if layer.bias is not None:
                out[f"{name}.bias"] = s2.sum(axis=0)
            # (N, c, out) as one (N·c, out) GEMM: matmul would loop over N small products
            if below:
                b = b @ np.square(w) if squared_only else \
                    (b.reshape(-1, w.shape[0]) @ w).reshape(*b.shape[:2], w.shape[1])
        elif isinstance(layer, nn.Conv2d):
            w, cache = saved
            shape = w.shape
            if squared_only:
                units[name] = b.mean(axis=(0, 2, 3))
                _, cache2 = conv2d_forward(np.square(x), np.square(w), None, layer.stride,
                                           layer.padding, layer.dilation)
                dx, dw, _ = conv2d_backward(b, cache2, need_dx=below)
                out[f"{name}.weight"] = dw
                if layer.bias is not None:
                    out[f"{name}.bias"] = b.sum(axis=(0, 2, 3))
                b = dx
            else:
                n, c = b.shape[:2]
                flat = b.reshape(n, c, shape[0], -1)
                units[name] = np.square(flat).sum(axis=1).mean(axis=(0, 2))
                out[f"{name}.weight"] = _conv_weight_squares(flat, x, layer).reshape(shape)
                if layer.bias is not None:
                    out[f"{name}.bias"] = np.square(flat.sum(axis=3)).sum(axis=(0, 1))
                if below:
                    b = np.stack([conv2d_backward(np.ascontiguousarray(b[:, j]), cache)[0]
                                  for j in range(c)], axis=1)
        elif isinstance(layer, (nn.ReLU, nn.Tanh)):
            factor = saved * saved if squared_only and isinstance(layer, nn.Tanh) else saved
            b = b * (factor if squared_only else factor[:, None])
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            back = max_pool2d_backward if isinstance(layer, nn.MaxPool2d) else \
                avg_pool2d_backward
            if squared_only:  # Σ_i A_ij² d_i: A is 0/1 (max) or 1/(kh·kw) (average)
                b = back(b, saved)
                if isinstance(layer, nn.AvgPool2d):
                    b = b / (layer.kernel_size[0] * layer.kernel_size[1])
            else:
                b = np.stack([back(np.ascontiguousarray(b[:, j]), saved)
                              for j in range(b.shape[1])], axis=1)
        elif isinstance(layer, nn.Flatten):
            b = b.reshape(saved) if squared_only else b.reshape(len(b), -1, *saved[1:])
    return out


def _diagonal(model, x, y, loss, kind, batch_size, units=None):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    layers = chain(model)
    x = np.asarray(x)
    if len(x) == 0 or (loss == "cross_entropy" and len(np.asarray(y)) != len(x)) \
            or (loss == "mse" and len(np.asarray(y)) != len(x)):
        raise ValueError(f"x and y must hold the same positive number of samples, got "
                         f"{len(x)} and {len(np.asarray(y))}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    total, unit_sums = {}, {}
    # the model's float dtype: float32 halves the cost, float64 models are computed in float64
    dtype = np.result_type(np.float32, *(p.dtype for p in model.parameters()))
    for s in range(0, len(x), batch_size):
        z, tape = _forward(layers, np.asarray(x[s:s + batch_size], dtype=dtype))
        b = _output_factor(z, np.asarray(y)[s:s + batch_size], loss, kind)
        if kind == "lecun":
            b = np.square(b).sum(axis=1)
        found = {}
        part = _backward(tape, b, kind == "lecun", found)
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
    """OBD's second-order backpropagation (LeCun et al. 1990), Gauss–Newton form: {name: (shape)}.

    ∂²E/∂a_i² = f'(a_i)² Σ_l w_li² ∂²E/∂a_l² from diag(H_ℓ) at the output; exact on the
    output layer (and, for MSE, the one below), an approximation (no cross terms) elsewhere.
    """
    return _diagonal(model, x, y, loss, "lecun", batch_size)


def fisher_diagonal(model: Any, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                    batch_size: int = 256) -> dict[str, np.ndarray]:
    """Empirical Fisher diagonal (1/N) Σ_n (∇_w ℓ_n)², per-sample gradients batched.

    {name: (shape)} for every weight and bias.
    """
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

    if kind not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {kind!r}")
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
        from nnprune.autograd.tensor import Tensor
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
