"""Reverse-mode automatic differentiation on NumPy arrays."""
from nnprune.autograd.grad_mode import is_grad_enabled, no_grad
from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.autograd.function import Function, unbroadcast

__all__ = ["Tensor", "Function", "as_tensor", "is_grad_enabled", "no_grad", "unbroadcast"]
