"""nnprune: a pure-NumPy, property-tested reference implementation of neural-network pruning."""
from nnprune.autograd import Tensor, no_grad

__version__ = "0.1.0"
__all__ = ["Tensor", "no_grad", "__version__"]
