"""Atomic writes: the old file survives any error, no temporary file is left behind."""
import pytest

from nnprune.files import atomic_open, atomic_write_bytes, atomic_write_text

pytestmark = pytest.mark.io


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_success_replaces_and_creates_folders(tmp_path):
    target = tmp_path / "sub" / "b.bin"
    atomic_write_bytes(target, b"\x00\x01")
    atomic_write_bytes(target, b"\x02")
    assert target.read_bytes() == b"\x02"


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "c", "a"):
            pass


def test_a_payload_of_the_wrong_type_is_a_type_error_that_writes_nothing(tmp_path):
    """bytes for atomic_write_bytes, str for atomic_write_text: the other is refused by the
    file object, and neither the target nor a temporary file appears."""
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "a.bin", "text")
    with pytest.raises(TypeError):
        atomic_write_text(tmp_path / "b.txt", b"bytes")
    assert list(tmp_path.iterdir()) == []
