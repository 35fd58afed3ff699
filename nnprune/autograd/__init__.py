"""Reverse-mode automatic differentiation on NumPy arrays."""
from nnprune.autograd.tensor import Tensor, as_tensor
from nnprune.autograd.function import Function, is_grad_enabled, no_grad, unbroadcast

__all__ = ["Tensor", "Function", "as_tensor", "is_grad_enabled", "no_grad", "unbroadcast"]
