"""The IDX file format of MNIST and Fashion-MNIST: read and write, optionally gzip-compressed.

Layout (LeCun, Cortes & Burges, "THE MNIST DATABASE of handwritten digits", file formats):

============ ============================================================================
bytes         content
============ ============================================================================
0, 1          zero
2             data type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
              0x0E float64
3             number of dimensions d
4 .. 4+4d     the d sizes, each a big-endian unsigned 32-bit integer
then          prod(sizes) values, big-endian, C order (last index fastest)
============ ============================================================================

So the MNIST images start with magic 0x00000803 (2051: uint8, 3 dimensions: N, 28, 28) and
the labels with 0x00000801 (2049: uint8, 1 dimension: N).
"""
from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnprune.files import atomic_write_bytes

IDX_DTYPES: dict[int, np.dtype] = {code: np.dtype(t) for code, t in (
    (0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"))}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_SIGNATURE = b"\x1f\x8b"
_MAX_DIM = 2**32 - 1


def _describe_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dt.newbyteorder('=').name})"
                     for code, dt in IDX_DTYPES.items())


def _read_bytes(source: str | os.PathLike | BinaryIO) -> tuple[bytes, str]:
    """(the whole content, a name for error messages) of a path or a binary file object."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read(), os.fspath(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"the file object must be opened in binary mode; read() returned "
                            f"{type(data).__name__}")
        return bytes(data), str(getattr(source, "name", "<file object>"))
    raise TypeError(f"read_idx needs a path or a binary file object, got "
                    f"{type(source).__name__}")


def read_decompressed(source: str | os.PathLike | BinaryIO) -> tuple[bytes, str]:
    """(the IDX bytes of ``source``, gunzipped when they start with the gzip signature,
    a name for error messages)."""
    data, name = _read_bytes(source)
    if data[:2] == _GZIP_SIGNATURE:
        try:
            data = _gunzip_bounded(data, name)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{name}: corrupt or truncated gzip data ({error})") from error
    return data, name


MAX_BYTES = 2**30  # an IDX file may declare up to 1 GiB of data (MNIST's largest: 47 MB)


def _gunzip_bounded(data: bytes, name: str) -> bytes:
    """The IDX bytes inside gzip ``data``, decompressing no more than its header declares
    (plus one byte, to detect trailing data) and never more than ``MAX_BYTES``."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        head = stream.read(4)
        if len(head) < 4 or head[2] not in IDX_DTYPES:
            return head  # parse_idx says what is wrong with the header
        dims = stream.read(4 * head[3])
        if len(dims) < 4 * head[3]:
            return head + dims
        size = IDX_DTYPES[head[2]].itemsize * math.prod(
            int(d) for d in np.frombuffer(dims, dtype=">u4"))
        if size > MAX_BYTES:
            raise ValueError(f"{name}: the header declares {size:,} bytes of data, more than "
                             f"the {MAX_BYTES:,} an IDX file may hold")
        return head + dims + stream.read(size + 1)


def read_idx(source: str | os.PathLike | BinaryIO) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not).

    Shape: the d sizes in the header, e.g. (10000, 28, 28); dtype: the header's type in
    native byte order (uint8 for MNIST). The result is a fresh, writable array.

    Every inconsistency (corrupt gzip, a bad or short header, fewer or more data bytes than
    the sizes declare) raises ValueError naming the file and the problem.

    >>> import io
    >>> buffer = io.BytesIO(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    >>> read_idx(buffer).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    return parse_idx(*read_decompressed(source))


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """The array encoded by uncompressed IDX ``data``; ``name`` labels the errors."""
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes is too short for an IDX file "
                         f"(the magic number alone has 4)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: bad magic number 0x{data[:4].hex()}: an IDX file starts "
                         f"with two zero bytes, a type code and the number of dimensions")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX data type code 0x{code:02X}; expected one of "
                         f"{_describe_codes()}")
    if ndim == 0:
        raise ValueError(f"{name}: the header declares 0 dimensions; IDX arrays have >= 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(f"{name}: truncated data: shape {shape} of {dtype.newbyteorder('=')} "
                         f"needs {expected} bytes after the header, the file has {found}")
    if found > expected:
        raise ValueError(f"{name}: size mismatch: {found - expected} unexpected bytes after "
                         f"the {expected} bytes of data of shape {shape}")
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array`` (uncompressed): header then big-endian data."""
    array = np.asarray(array)
    code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; supported: {_describe_codes()}")
    if array.ndim == 0:
        raise ValueError("IDX stores arrays with at least one dimension, got a 0-d array")
    if array.ndim > 255 or max(array.shape) > _MAX_DIM:
        raise ValueError(f"IDX sizes are unsigned 32-bit integers, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file at ``path``; gzip-compressed when the name ends in .gz.

    Shape: any array with >= 1 dimension of uint8, int8, int16, int32, float32 or float64.
    Written atomically; compression uses mtime 0, so the same array always gives the same
    bytes. Returns ``Path(path)``.
    """
    payload = idx_bytes(array)
    if Path(path).name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    return atomic_write_bytes(path, payload)

