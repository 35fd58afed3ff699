"""Curvature of a model's loss: Hessian-vector products, the Hessian diagonal, small Hessians.

OBD and OBS (``nnprune.prune.hessian``) need second derivatives of the loss with respect to
the weights. The engine's backward pass gives first derivatives; a second one comes from a
central difference of gradients, in float64::

    H v ≈ (∇L(w + εv) − ∇L(w − εv)) / (2ε)

The error is O(ε²) (third derivatives) plus rounding O(u/ε), exact up to rounding when L is
quadratic in w; a float32 model is refused. Hutchinson's estimate of the diagonal,
diag(H) = E[z ⊙ Hz] over Rademacher vectors z, is Bekas, Kokiopoulou & Saad 2007.

``loss_fn(model) -> Tensor`` is any closure returning a scalar loss, e.g.
``lambda m: F.cross_entropy(m(Tensor(x)), y)``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np

from nnprune.autograd.tensor import Tensor
from nnprune.checks import check_choice, check_int
from nnprune.prune.apply import named_parameters

LossFn = Callable[[object], Tensor]


def _parameters(model, names: Iterable[str] | None) -> dict:
    params = named_parameters(model)
    chosen = list(params) if names is None else list(names)
    unknown = [n for n in chosen if n not in params]
    if unknown:
        raise ValueError(f"unknown parameter names {unknown}; the model has {sorted(params)}")
    for n in chosen:
        if params[n].dtype != np.float64:
            raise TypeError(f"parameter {n!r} is {params[n].dtype}: curvature needs a float64 "
                            "model (build it with dtype=np.float64)")
    return {n: params[n] for n in chosen}


def loss_gradients(model, loss_fn: LossFn,
                   names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """∇L for the named parameters (all by default); the model's ``.grad`` is restored."""
    params = _parameters(model, names)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model -> scalar Tensor), "
                        f"got {type(loss_fn).__name__}")
    everything = list(model.parameters())
    saved = [p.grad for p in everything]
    for p in everything:
        p.grad = None
    try:
        loss = loss_fn(model)
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise ValueError("loss_fn must return a one-element Tensor")
        loss.backward()
        return {n: (np.zeros_like(p.data) if p.grad is None else p.grad.copy())
                for n, p in params.items()}
    finally:
        for p, g in zip(everything, saved):
            p.grad = g


def hessian_vector_product(model, loss_fn: LossFn, v: Mapping[str, np.ndarray],
                           eps: float = 1e-4) -> dict[str, np.ndarray]:
    """H v for the parameters named in ``v`` by a central difference of gradients.

    ``v`` maps names to arrays of the parameters' shapes; the step is ε·v scaled so that
    the largest entry of ε·v is ``eps`` times the largest weight (at least ``eps``).
    The weights are restored exactly afterwards.
    """
    params = _parameters(model, list(v))
    for n, vec in v.items():
        if np.shape(vec) != params[n].shape:
            raise ValueError(f"v[{n!r}] must have shape {params[n].shape}, got {np.shape(vec)}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < np.inf:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    vmax = max(float(np.max(np.abs(vec))) for vec in v.values())
    if vmax == 0:
        return {n: np.zeros_like(p.data) for n, p in params.items()}
    wmax = max(float(np.max(np.abs(p.data))) for p in params.values())
    step = eps * max(wmax, 1.0) / vmax
    originals = {n: p.data.copy() for n, p in params.items()}
    try:
        for n, p in params.items():
            p.data[...] = originals[n] + step * v[n]
        plus = loss_gradients(model, loss_fn, params)
        for n, p in params.items():
            p.data[...] = originals[n] - step * v[n]
        minus = loss_gradients(model, loss_fn, params)
    finally:
        for n, p in params.items():
            p.data[...] = originals[n]
    return {n: (plus[n] - minus[n]) / (2 * step) for n in params}


def _unit_products(model, loss_fn: LossFn, name: str, max_size: int, instead: str):
    """H e_i for each entry i of parameter ``name`` (flattened, C order), one product each:
    the columns of its Hessian. Refused above ``max_size`` entries, naming what to use
    ``instead``."""
    p = _parameters(model, [name])[name]
    if p.size > max_size:
        raise ValueError(f"{name!r} has {p.size} entries, more than max_size={max_size}: "
                         f"use {instead}")
    for i in range(p.size):
        e = np.zeros(p.size)
        e[i] = 1.0
        yield hessian_vector_product(model, loss_fn, {name: e.reshape(p.shape)})[name].ravel()


def hessian(model, loss_fn: LossFn, name: str, max_size: int = 4096) -> np.ndarray:
    """The full (n, n) Hessian of the loss with respect to one parameter (flattened, C order).

    n products H e_i, symmetrised as (H + Hᵀ)/2. Refused above ``max_size`` weights.
    """
    h = np.stack(list(_unit_products(model, loss_fn, name, max_size,
                                     "hessian_diagonal(method='hutchinson') instead")), axis=1)
    return (h + h.T) / 2


def hessian_diagonal(model, loss_fn: LossFn, names: Iterable[str] | None = None,
                     method: str = "exact", samples: int = 100, seed: int = 0,
                     max_size: int = 4096) -> dict[str, np.ndarray]:
    """diag(H) for each named parameter: exactly, or by Hutchinson's estimator.

    exact: (H e_i)_i, one product per entry (refused above ``max_size`` entries per layer);
    hutchinson: (1/S) Σ_s z_s ⊙ H z_s with Rademacher z_s drawn from ``seed`` (all layers at
    once, so each product costs two backward passes whatever the model's size).
    """
    params = _parameters(model, names)
    if check_choice(method, "method", ("exact", "hutchinson")) == "exact":
        return {n: np.array([column[i] for i, column in enumerate(_unit_products(
                    model, loss_fn, n, max_size, "method='hutchinson'"))]).reshape(p.shape)
                for n, p in params.items()}
    check_int(samples, "samples", 1)
    rng = np.random.default_rng(seed)
    total = {n: np.zeros(p.shape) for n, p in params.items()}
    for _ in range(samples):
        z = {n: rng.choice([-1.0, 1.0], size=p.shape) for n, p in params.items()}
        hz = hessian_vector_product(model, loss_fn, z)
        for n in params:
            total[n] += z[n] * hz[n]
    return {n: t / samples for n, t in total.items()}
