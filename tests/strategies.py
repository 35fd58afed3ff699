"""Hypothesis strategies shared by the test suite: shapes, arrays, sparsities, conv geometries.

Each topic adds its strategies in its own section below; tests import them from here.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# ---------------------------------------------------------------- shapes and arrays


def shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    """Array shapes with every side in [min_side, max_side]."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, dtype=np.float64, low: float = -3.0, high: float = 3.0):
    """Finite float arrays of ``shape`` (a tuple or a strategy) with values in [low, high]."""
    return hnp.arrays(
        dtype,
        shape,
        elements=st.floats(low, high, allow_nan=False, allow_infinity=False, width=64),
    )


sparsities = st.floats(0.0, 1.0, allow_nan=False)
seeds = st.integers(0, 2**32 - 1)
