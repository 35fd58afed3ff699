"""nnprune: a pure-NumPy, property-tested reference implementation of neural-network pruning.

``import nnprune`` is light: the subpackages (``nnprune.nn``, ``nnprune.prune``, ``nnprune.data``,
...) load on first use, so matplotlib is imported only when needed.
"""
import importlib

from nnprune.autograd import Tensor, no_grad

__version__ = "0.1.0"

_SUBMODULES = ("autograd", "functional", "nn", "optim", "models", "data", "train", "io",
               "count", "prune", "curvature", "experiment", "assignments", "interop")

__all__ = ["Tensor", "no_grad", "__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"nnprune.{name}")
    raise AttributeError(f"module 'nnprune' has no attribute {name!r}")
