"""The IDX format: exact round trips, the byte layout of the spec, and clear errors."""
import gzip
import io
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune.data import idx, read_idx, write_idx
from strategies import idx_arrays

pytestmark = pytest.mark.data


def same_array(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@given(idx_arrays(), st.booleans())
@settings(max_examples=25)
def test_write_then_read_gives_the_same_bits(array, compressed):
    """read_idx(write_idx(a)) has a's dtype, shape and bytes (NaN and ±inf included), for
    every IDX dtype, gzip-compressed or not."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("a.idx.gz" if compressed else "a.idx")
        write_idx(path, array)
        back = read_idx(path)
        assert same_array(back, array.astype(array.dtype.newbyteorder("=")))
        assert back.flags.writeable
        assert os.listdir(tmp) == [path.name]


@given(idx_arrays())
def test_bytes_round_trip_through_a_file_object(array):
    """read_idx on a binary file object decodes what idx_bytes encoded."""
    assert same_array(read_idx(io.BytesIO(idx.idx_bytes(array))), array)


def test_layout_follows_the_spec(tmp_path):
    """Two zero bytes, the type code, ndim, big-endian uint32 sizes, big-endian values."""
    array = np.array([[1, 258, -2]], dtype=np.int16)
    path = write_idx(tmp_path / "a.idx", array)
    expected = bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 1, 3) + struct.pack(">hhh", 1, 258, -2)
    assert path.read_bytes() == expected


def test_mnist_headers_have_the_published_magic_numbers(tmp_path):
    """uint8 images (N, 28, 28) start with 2051 and uint8 labels with 2049."""
    images = write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8)).read_bytes()
    labels = write_idx(tmp_path / "labels", np.zeros(2, np.uint8)).read_bytes()
    assert struct.unpack(">I", images[:4])[0] == 2051
    assert struct.unpack(">IIII", images[:16]) == (2051, 2, 28, 28)
    assert struct.unpack(">II", labels[:8]) == (2049, 2)


def test_gz_names_are_compressed_reproducibly(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    first = write_idx(tmp_path / "a.gz", array).read_bytes()
    second = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert first[:2] == b"\x1f\x8b" and first == second
    assert gzip.decompress(first) == write_idx(tmp_path / "a", array).read_bytes()


def test_compression_is_detected_by_content_not_name(tmp_path):
    payload = gzip.compress(idx.idx_bytes(np.arange(6, dtype=np.int32)))
    (tmp_path / "no-suffix").write_bytes(payload)
    np.testing.assert_array_equal(read_idx(tmp_path / "no-suffix"), np.arange(6))
    with open(tmp_path / "no-suffix", "rb") as f:
        np.testing.assert_array_equal(read_idx(f), np.arange(6))


GOOD = idx.idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize("payload, match", [
    (GOOD[:-1], "truncated data.*needs 12 bytes.*has 11"),
    (GOOD + b"\x00", "size mismatch: 1 unexpected bytes"),
    (GOOD[:10], "truncated header"),
    (GOOD[:3], "too short"),
    (b"", "too short"),
    (b"\x01" + GOOD[1:], "bad magic number 0x01000802"),
    (GOOD[:1] + b"\x07" + GOOD[2:], "bad magic number"),
    (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX data type code 0x0A"),
    (GOOD[:3] + b"\x00", "0 dimensions"),
    (gzip.compress(GOOD)[:-12], "corrupt or truncated gzip"),
    (b"\x1f\x8b" + b"garbage" * 5, "corrupt or truncated gzip"),
])
def test_damaged_files_raise_errors_naming_file_and_problem(tmp_path, payload, match):
    path = tmp_path / "damaged-idx3-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_stream_with_bad_crc_is_rejected(tmp_path):
    data = bytearray(gzip.compress(GOOD))
    data[-8] ^= 0xFF  # the CRC32 field of the gzip trailer
    (tmp_path / "a.gz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="a.gz: corrupt or truncated gzip"):
        read_idx(tmp_path / "a.gz")


@pytest.mark.parametrize("array, error, match", [
    (np.zeros(3, dtype=bool), TypeError, "cannot store dtype bool"),
    (np.zeros(3, dtype=np.int64), TypeError, "cannot store dtype int64"),
    (np.zeros(3, dtype=np.uint16), TypeError, "uint16"),
    (np.zeros(3, dtype=np.complex64), TypeError, "complex64"),
    (np.array(5, dtype=np.uint8), ValueError, "at least one dimension"),
])
def test_write_rejects_what_idx_cannot_hold_and_writes_nothing(tmp_path, array, error, match):
    with pytest.raises(error, match=match):
        write_idx(tmp_path / "a.idx", array)
    assert os.listdir(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "a.idx", np.arange(3, dtype=np.uint8))
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(idx.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_idx(path, np.arange(5, dtype=np.uint8))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.idx"]


def test_read_rejects_things_that_are_not_files(tmp_path):
    with pytest.raises(TypeError, match="path or a binary file object"):
        read_idx(42)
    (tmp_path / "a").write_bytes(GOOD)
    with open(tmp_path / "a", "r", encoding="latin-1") as text:
        with pytest.raises(TypeError, match="binary mode"):
            read_idx(text)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")
