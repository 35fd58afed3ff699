"""Finite-difference checks of vector-Jacobian products, in float64.

For an op f and an upstream gradient ``dout`` (the shape of f's output), backward claims
g_i = ∂⟨f(args), dout⟩ / ∂args_i. Central differences estimate the same number entry by entry:

    g_i[k] ≈ (⟨f(.., a_i + h e_k, ..), dout⟩ − ⟨f(.., a_i − h e_k, ..), dout⟩) / (2h)

with error O(h²) for a smooth f. A random ``dout`` checks every output at once (the whole
Jacobian, folded by one vector), not only the gradient of a sum.

Two entry points:

- ``check_vjp(f, args, grads, dout, ...)`` for array-level kernels: ``f(*args) -> ndarray``
  and ``grads`` the claimed gradients (None to skip an argument);
- ``check_tensor_grad(fn, *arrays, ...)`` for Tensor-level ops: runs ``fn`` on Tensors that
  require grad, back-propagates ``dout`` and checks every input's ``.grad``.

A failure names the function, the argument, the index, the value received and the value
expected, e.g. ``conv2d: d/d(weight)[0, 1, 2, 0] = 0.41 received, 0.38 expected (central
difference, h = 1e-06)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nnprune import Tensor

H = 1e-6


def numerical_vjp(f: Callable[..., np.ndarray], args: Sequence[np.ndarray], i: int,
                  dout: np.ndarray, h: float = H) -> np.ndarray:
    """Central-difference estimate of ∂⟨f(args), dout⟩ / ∂args[i], the shape of args[i]."""
    args = [np.array(a, dtype=np.float64) for a in args]
    x = args[i]
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        saved = x[k]
        x[k] = saved + h
        plus = np.sum(np.asarray(f(*args), dtype=np.float64) * dout)
        x[k] = saved - h
        minus = np.sum(np.asarray(f(*args), dtype=np.float64) * dout)
        x[k] = saved
        grad[k] = (plus - minus) / (2 * h)
    return grad


def assert_grad_close(name: str, arg_name: str, received: np.ndarray, expected: np.ndarray,
                      rtol: float = 1e-5, atol: float = 1e-7, how: str = "") -> None:
    """Fail at the worst entry with a message naming function, argument, index and values."""
    received = np.asarray(received, dtype=np.float64)
    if received.shape != expected.shape:
        raise AssertionError(f"{name}: d/d({arg_name}) has shape {received.shape}, "
                             f"expected {expected.shape}")
    excess = np.abs(received - expected) - (atol + rtol * np.abs(expected))
    if excess.size and (excess.max() > 0 or not np.isfinite(received).all()):
        k = np.unravel_index(np.argmax(np.where(np.isfinite(excess), excess, np.inf)),
                             excess.shape)
        where = ", ".join(str(int(v)) for v in k)
        raise AssertionError(f"{name}: d/d({arg_name})[{where}] = {float(received[k])!r} "
                             f"received, {float(expected[k])!r} expected{how} "
                             f"(rtol {rtol}, atol {atol})")


def check_vjp(f: Callable[..., np.ndarray], args: Sequence[np.ndarray],
              grads: Sequence[np.ndarray | None], dout: np.ndarray, *, name: str | None = None,
              arg_names: Sequence[str] | None = None, h: float = H, rtol: float = 1e-5,
              atol: float = 1e-7) -> None:
    """Assert that each claimed gradient ``grads[i]`` equals the central difference of
    ⟨f(args), dout⟩ with respect to ``args[i]`` (float64 throughout)."""
    name = name or getattr(f, "__name__", "f")
    arg_names = list(arg_names or [f"argument {i}" for i in range(len(args))])
    for i, claimed in enumerate(grads):
        if claimed is None:
            continue
        expected = numerical_vjp(f, args, i, dout, h)
        assert_grad_close(name, arg_names[i], claimed, expected, rtol, atol,
                          f" (central difference, h = {h})")


def check_tensor_grad(fn: Callable[..., Tensor], *arrays: np.ndarray,
                      dout: np.ndarray | None = None, seed: int = 0, name: str | None = None,
                      arg_names: Sequence[str] | None = None, h: float = H,
                      rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Run ``fn`` on float64 Tensors (requires_grad) made from ``arrays``, back-propagate
    ``dout`` (a seeded standard normal one if None) and check every input's ``.grad``."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = fn(*tensors)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(dout)

    def f(*a: np.ndarray) -> np.ndarray:
        return fn(*(Tensor(v, dtype=np.float64) for v in a)).data

    f.__name__ = name or getattr(fn, "__name__", "fn")
    # an input the gradient never reached must have a zero numerical gradient too
    grads = [np.zeros_like(a) if t.grad is None else t.grad for a, t in zip(arrays, tensors)]
    check_vjp(f, arrays, grads, dout, arg_names=arg_names, h=h, rtol=rtol, atol=atol)
