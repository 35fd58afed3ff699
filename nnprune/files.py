"""Atomic file writes: what a user saved is never lost or half-written.

``atomic_open(path)`` hands out a temporary file in ``path``'s directory; when the block ends
without an error the data is flushed to disk (fsync) and the temporary file is renamed over
``path`` with ``os.replace`` — atomic on POSIX and Windows, so a reader sees the old file or the
new one, never a mix. On any error (or Ctrl-C) the temporary file is removed and ``path`` is
untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", suffix: str = ".tmp") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_open(target, "w") as f:
    ...     _ = f.write("kept")
    >>> target.read_text()
    'kept'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the data is written, and name the temp
        raise IsADirectoryError(f"{path}: is a folder; expected the name of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically; returns ``Path(path)``."""
    with atomic_open(path, "wb") as f:
        f.write(payload)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``Path(path)``."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)
