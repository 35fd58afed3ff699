"""Scratch arrays for the conv kernels, kept from call to call, one set per thread.

A fresh multi-megabyte array costs a page fault per 4 KB page on first touch: as much time
as the rest of a small layer's backward. So im2col's cols and Winograd's tiles go into
arrays kept under a name (``take``), grown when a call needs more, never returned to the
caller. The names form one namespace per thread: two buffers alive at once need two names.
Chunks that run side by side (``threads.chunk_runner``) each get their own thread's set.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from nnprune.functional.im2col import reshaped_view, row_step

_ARRAYS = threading.local()


def take(name: str, shape: tuple[int, ...], dtype: np.dtype, fresh: bool = False,
         row: int = 0) -> np.ndarray:
    """An array of ``shape`` with garbage in it: the front of this thread's buffer kept under
    ``name``, grown when a call needs more, or a new array if ``fresh``.

    With ``row`` > 0 the last ``row`` axes make one row of a GEMM operand, and the rows lie
    ``row_step`` values apart (a cache line more than their length when that is a multiple
    of 1 KB); otherwise the array is contiguous.

    >>> a = take("doc", (2, 256), np.float32, row=1)  # rows of 1 KB, a cache line apart
    >>> a.shape, a.strides
    ((2, 256), (1088, 4))
    """
    dtype = np.dtype(dtype)
    lead, length = shape[:len(shape) - row], math.prod(shape[len(shape) - row:])
    rows = math.prod(lead)
    step = row_step(length, dtype.itemsize) if row else length
    if fresh:
        flat = np.empty(rows * step, dtype)
    else:
        arrays = _ARRAYS.__dict__.setdefault("arrays", {})
        flat = arrays.get((name, dtype))
        if flat is None or flat.size < rows * step:
            flat = arrays[(name, dtype)] = np.empty(rows * step, dtype)
    return reshaped_view(flat[:rows * step].reshape(rows, step)[:, :length], shape)
