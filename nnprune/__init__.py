"""nnprune: a pure-NumPy, property-tested reference implementation of neural-network pruning."""

__version__ = "0.1.0"
