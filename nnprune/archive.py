"""Reading an ``.npz`` archive that may be hostile, at a cost bounded by what it holds.

``np.load`` trusts what a file says about itself: a member whose ``.npy`` header claims 10¹⁰
floats is allocated before its data are found missing. ``read_npz`` reads the zip directory
and every member's ``.npy`` header first, and refuses the archive before any array is
allocated when a member's name, compression, header or dtype is wrong, when the caller's
policy refuses it, or when the bytes its header declares differ from what the zip directory
holds (a lying header) or exceed a budget. Then each member's zip CRC is checked as it is
read. Every refusal is one ``ValueError`` naming the file and the member.
"""
from __future__ import annotations

import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

MAX_MEMBERS = 10_000
MIN_BUDGET = 32 * 2**20  # bytes: a file of any size may hold this much
BUDGET_RATIO = 8         # ... or this many times its own size (deflate packs zeros well)
_KEY = re.compile(r"(?s).{1,1000}")
_HEADER_LIMIT = 10_000   # bytes of a .npy header (NumPy's own default limit)

Policy = Callable[[str, np.dtype, tuple], "str | None"]


def read_npz(path: str | os.PathLike, allowed: Policy, max_bytes: int | None = None,
             only: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """{key: array} of the ``.npz`` at ``path``, every member checked before any is read.

    ``allowed(key, dtype, shape)`` returns None to accept a member, else the reason it is
    refused (a sentence naming the key). With ``only``, the other members are skipped.
    ``max_bytes`` (default: max(32 MiB, 8 × the file's size)) bounds the bytes all the
    arrays declare together.
    """
    path = os.fspath(path)
    budget = max(MIN_BUDGET, BUDGET_RATIO * os.path.getsize(path)) if max_bytes is None \
        else max_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            plan = _plan(path, archive, allowed, budget, only)
            return {key: _read(path, archive, info, header) for key, (info, header)
                    in plan.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError, OverflowError) as err:
        raise ValueError(f"{path}: not a readable .npz file (corrupted, truncated or of "
                         f"another kind): {_one_line(err)}") from None


def _plan(path: str, archive: zipfile.ZipFile, allowed: Policy, budget: int,
          only: Collection[str] | None) -> dict[str, tuple[zipfile.ZipInfo, tuple]]:
    """Every member's (zip entry, (shape, fortran_order, dtype, header length)), checked."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(f"{path}: {len(infos)} arrays; an nnprune file holds at most "
                         f"{MAX_MEMBERS}")
    plan: dict[str, Any] = {}
    declared = 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key is None or not _KEY.fullmatch(key):
            raise ValueError(f"{path}: unexpected member {info.filename[:80]!r}: expected "
                             f"<name>.npy")
        if only is not None and key not in only:
            continue
        if key in plan:
            raise ValueError(f"{path}: the member {info.filename!r} appears twice")
        if info.flag_bits & 0x1:
            raise ValueError(f"{path}: the member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{path}: the member {info.filename!r} uses compression method "
                             f"{info.compress_type}; expected stored or deflated")
        with archive.open(info) as member:
            shape, fortran, dtype = _header(path, key, member)
            header_length = member.tell()
        if dtype.itemsize == 0:
            raise ValueError(f"{path}: {key} has dtype {dtype} of zero bytes per entry")
        if dtype.hasobject:
            raise ValueError(f"{path}: {key} holds Python objects (dtype {dtype}); nnprune "
                             f"never unpickles")
        reason = allowed(key, dtype, shape)
        if reason:
            raise ValueError(f"{path}: {reason}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes + header_length != info.file_size:
            raise ValueError(f"{path}: {key} declares shape {shape} of {dtype} ({nbytes:,} "
                             f"bytes) but the archive holds {info.file_size - header_length:,}")
        declared += nbytes
        if declared > budget:
            raise ValueError(f"{path}: the arrays declare more than {budget:,} bytes, more "
                             f"than a file of {os.path.getsize(path):,} bytes may hold; pass "
                             f"max_bytes to load it anyway")
        plan[key] = (info, (shape, fortran, dtype, header_length))
    return plan


def _header(path: str, key: str, member: Any) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the ``.npy`` header at the start of ``member``."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            return fmt.read_array_header_1_0(member, max_header_size=_HEADER_LIMIT)
        if version == (2, 0):
            return fmt.read_array_header_2_0(member, max_header_size=_HEADER_LIMIT)
    except (ValueError, TypeError, SyntaxError, EOFError, OverflowError, MemoryError,
            RecursionError) as err:
        raise ValueError(f"{path}: {key} has no readable .npy header: {_one_line(err)}") from None
    raise ValueError(f"{path}: {key} is .npy format version {version}; expected 1.0 or 2.0")


def _read(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
          header: tuple[tuple, bool, np.dtype, int]) -> np.ndarray:
    """The array of one checked member (its CRC is checked once its last byte is read)."""
    shape, fortran, dtype, header_length = header
    nbytes = math.prod(shape) * dtype.itemsize
    buffer = bytearray(nbytes)
    with archive.open(info) as member:
        member.read(header_length)
        got = member.readinto(buffer) if nbytes else 0
        if got != nbytes or member.read(1):
            raise ValueError(f"{path}: {info.filename} is truncated")
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__
