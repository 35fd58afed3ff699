"""Keep freed memory for the next training step instead of returning it to the system.

A training step allocates the graph's arrays (about 9 MB for LeNet-5 at batch 64) and frees
them together when the graph goes. glibc then sees more than its trim threshold free at the
top of the heap and returns it (``brk``), so the next step touches fresh pages: about 2,200
page faults per LeNet-5 step, and with a second BLAS thread alive in the process each
fault and each trim cost more. ``keep_freed_memory`` sets, once per process, glibc's mmap
threshold to 32 MB (arrays up to that size come from the heap) and its trim threshold to
``TRIM_BYTES`` (freed memory up to that size stays with the process), with ``mallopt``.

The cost is memory: the process keeps up to ``TRIM_BYTES`` of freed heap. Nothing changes
outside glibc, or when the user chose malloc settings (``MALLOC_*_`` or ``GLIBC_TUNABLES``
in the environment).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
MMAP_BYTES = 32 << 20   # glibc's largest mmap threshold on 64-bit systems
TRIM_BYTES = 256 << 20

_done: list[bool] = []  # [kept] once tried: the settings are made once per process


def user_malloc_settings() -> bool:
    """Whether the environment already tunes glibc's malloc."""
    return "GLIBC_TUNABLES" in os.environ or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in os.environ)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (once per process); True if the settings hold.

    Setting either threshold turns off glibc's own adjustment of both, so both are set.
    """
    if not _done:
        _done.append(_set_thresholds())
    return _done[0]


def freed_memory_kept() -> bool:
    """Whether ``keep_freed_memory`` has run in this process and its settings hold."""
    return bool(_done and _done[0])


def _set_thresholds() -> bool:
    if user_malloc_settings():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: musl, macOS, Windows
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
