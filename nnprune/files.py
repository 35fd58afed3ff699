"""Atomic file writes: what a user saved is never lost, half-written or left behind.

``atomic_open(path)`` writes a temporary file ``.<name>.<pid>-<random><suffix>`` beside
``path``, flushes it to disk and renames it over ``path`` with ``os.replace`` (atomic: a reader
sees the old file or the new one, never a mix). On any error (or Ctrl-C) the temporary file is
removed and ``path`` is untouched; one left by a killed process is removed by the next write to
``path`` (``sweep_stale``). A new file gets ``0o666`` minus the umask, a replaced file keeps
its mode, and a symbolic link is written through (the file it points to is replaced).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterator

from nnprune.checks import check_choice


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
    check_choice(mode, "mode", ("w", "wb"))
    if not isinstance(suffix, str) or not re.fullmatch(r"\.[A-Za-z0-9]+", suffix):
        raise ValueError(f"suffix must be a dot and letters or digits, e.g. '.tmp', got "
                         f"{suffix!r}")
    check_writable(path)
    target = _write_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target, suffix)
    file_mode = _mode_for(target)
    tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o600)
    except OSError as err:
        raise _named(err, path) from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            try:  # the disk filling up, or a folder that vanished: say it of the user's path
                f.flush()
                os.fsync(f.fileno())
                os.chmod(tmp, file_mode)
                os.replace(tmp, target)
            except OSError as err:
                raise _named(err, path) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path``, or what a symbolic link points to."""
    path = Path(fspath(path))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def fspath(path: Any) -> str:
    """``path`` as a string, or a TypeError naming the argument."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or os.PathLike), got {type(path).__name__}")
    return os.fspath(path)


def check_writable(path: str | os.PathLike) -> Path:
    """``Path(path)`` if a file can be written there, else an error naming ``path``.

    Refused: an empty name, a folder's name, a parent that is a file, and a folder this
    process cannot write to. Missing parent folders are fine (a write creates them).
    """
    text = fspath(path)
    if not text:
        raise ValueError("the output file name is empty; expected a file name such as "
                         "'model.npz'")
    if text.endswith((os.sep, "/")) or (os.altsep and text.endswith(os.altsep)):
        raise IsADirectoryError(f"{text}: ends with a path separator, so it names a folder; "
                                f"expected a file name, e.g. {os.path.join(text, 'model.npz')}")
    target = _write_target(text)
    if target.is_dir():
        raise IsADirectoryError(f"{text}: is a folder; expected the name of a file to write")
    folder = target.parent
    while not folder.exists():  # the nearest existing folder is where files get created
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"{text}: {folder} is a file, so no file can be created "
                                 f"under it")
    reason = folder_unwritable(folder)
    if reason:
        raise PermissionError(f"{text}: cannot write to the folder {folder}: {reason}")
    return Path(text)


def folder_unwritable(folder: str | os.PathLike) -> str | None:
    """Why no file can be created in the existing ``folder``, or None if one can.

    Asked by creating and removing an empty file: permission bits do not tell (root ignores
    them; read-only mounts and access lists are not in them).
    """
    probe = Path(folder) / f".nnprune-probe.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        return err.strerror or str(err)
    with contextlib.suppress(OSError):
        os.remove(probe)
    return None


def _named(err: OSError, path: str | os.PathLike) -> OSError:
    """``err`` reworded to name the user's ``path`` instead of a temporary file."""
    reason = err.strerror or str(err)
    return type(err)(f"{os.fspath(path)}: cannot write: {reason}")


def _mode_for(path: Path) -> int:
    """The mode a file written at ``path`` gets: the existing file's, else 0o666 − umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (read from /proc where there is one: setting it is not needed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, and put it back
    os.umask(mask)
    return mask


def sweep_stale(path: str | os.PathLike, suffix: str = ".tmp") -> list[Path]:
    """Remove the temporary files of ``path`` left by processes that no longer run.

    They are ``.<name>.<pid>-<hex><suffix>`` beside ``path``; one whose process ``pid`` is
    alive is being written and is kept. Returns the removed files.
    """
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)-[0-9a-f]+" + re.escape(suffix))
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.remove(entry.path)
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    """Does a process ``pid`` run on this machine?"""
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it only asks
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        pass  # another user's process, or a pid we cannot ask about: keep its file
    return True


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
