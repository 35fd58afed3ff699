"""Writes that leave nothing behind and respect the user's file: temporary files of a
process killed mid-write (``kill -9``) are swept by the next write to the same target (a
download's ``.part`` too); new files get 0o666 minus the umask, a replaced file keeps its
mode; a symbolic link is written through; errors name the user's path, not the temporary
file."""
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnprune import io, nn
from nnprune.data.download import download
from nnprune.files import atomic_open, atomic_write_bytes, check_writable, sweep_stale

pytestmark = pytest.mark.io

KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from nnprune.files import atomic_open
    with atomic_open(sys.argv[1], "wb", suffix=sys.argv[2]) as f:
        f.write(b"half of a big file")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the write
""")


def killed_write(target, suffix=".tmp"):
    """Run a process that dies by SIGKILL while writing ``target``; its temporary files."""
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target), suffix])
    assert done.returncode == -signal.SIGKILL
    return [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]


def test_temporary_files_of_killed_writers_are_swept_by_the_next_save(tmp_path):
    target = tmp_path / "model.npz"
    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    io.save(target, model)
    before = target.read_bytes()
    left = killed_write(target) + killed_write(target)
    assert len(left) == 2 and target.read_bytes() == before  # the kill kept the target
    other = tmp_path / "other.npz"
    left_other = killed_write(other)
    io.save(target, model, {"again": True})
    remaining = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert remaining == [p.name for p in left_other]  # another target's are not ours to sweep
    assert io.load(target)[1] == {"again": True}


def test_a_live_writers_temporary_file_is_kept(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic_open(target, "w") as f:
        f.write("x")
        assert sweep_stale(target) == []  # our own, still being written
        assert len(list(tmp_path.iterdir())) == 1
    assert target.read_text() == "x"


def test_a_killed_download_part_is_swept_by_the_next_download(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload" * 100)
    dest = tmp_path / "data" / "file.gz"
    dest.parent.mkdir()
    assert len(killed_write(dest, ".part")) == 1
    download(source.as_uri(), dest, hashlib.sha256(source.read_bytes()).hexdigest())
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.gz"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write_bytes(tmp_path / "new.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.npz"
    path.write_bytes(b"old")
    path.chmod(0o640)
    io.save(path, nn.Sequential(nn.Linear(2, 2, rng=0)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_symbolic_link_is_written_through(tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    real.write_bytes(b"old")
    link.symlink_to(real)
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    io.save(link, model)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(io.load(real)[0][0].weight.data, model[0].weight.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "real.npz"]


def test_a_failed_write_removes_its_temporary_file(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write(b"partial")
            raise RuntimeError("the disk is full")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, error, fragment", [
    ("", ValueError, "empty"),
    ("newdir/", IsADirectoryError, "path separator"),
    ("file.txt/inner.npz", NotADirectoryError, "is a file"),
])
def test_path_sanity_errors_name_the_users_path(tmp_path, name, error, fragment):
    (tmp_path / "file.txt").write_text("a file")
    path = f"{tmp_path}{os.sep}{name}" if name else name
    with pytest.raises(error, match=fragment) as info:
        check_writable(path)
    assert path in str(info.value) and ".tmp" not in str(info.value)
    with pytest.raises(error):
        atomic_write_bytes(path, b"x")
    assert not (tmp_path / "newdir").exists()


def test_a_failed_rename_names_the_users_path_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "model.npz"

    def full_disk(src, dst):
        raise OSError(28, "No space left on device", str(src))
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x")
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert "No space left" in str(info.value)
    assert list(tmp_path.iterdir()) == []
