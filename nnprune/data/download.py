"""Verified downloads into a cache directory, and where that directory is.

A download goes to a temporary file beside its destination and is renamed into place only
once its SHA-256 matches; a download without a checksum is refused unless the caller says
``verify=False``: a silently corrupted or substituted dataset is worse than an error.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from nnprune.checks import check_bool
from nnprune.files import atomic_open

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not on disk (and were not, or could not be, downloaded);
    ``missing`` says which, where, without the advice worded for Python callers."""

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = message if missing is None else missing


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the expected one."""


def data_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The directory holding dataset ``name``: ``root`` if given, else ``$NNPRUNE_DATA/<name>``
    when the environment variable is set, else ``~/.cache/nnprune/<name>``."""
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
        return Path(root).expanduser()
    base = os.environ.get("NNPRUNE_DATA")
    base_path = Path(base).expanduser() if base else Path.home() / ".cache" / "nnprune"
    return base_path / name


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of the file at ``path``, as 64 lower-case hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None, *, verify: bool = True,
             timeout: float = 60.0, progress: bool = False) -> Path:
    """Download ``url`` (http, https or file) to ``dest`` and check its SHA-256; returns
    ``Path(dest)``. An existing ``dest`` with that digest is kept (with ``verify=False``, any
    existing ``dest``); ``sha256=None`` is refused unless ``verify=False``.

    ``dest`` is replaced only once the whole body (and the declared length, if any) arrived
    and the digest matched. A mismatch raises ``ChecksumError`` (a ValueError) naming the URL
    and both digests; a network failure is an ``OSError``, a short body a ValueError; either
    way nothing is left behind. ``progress`` shows a tqdm bar on stderr.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    if urllib.parse.urlparse(url).scheme not in _SCHEMES:
        raise ValueError(f"url must start with http://, https:// or file://, got {url!r}")
    check_bool(verify, "verify")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256.lower())):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    sha256 = sha256 and sha256.lower()
    if sha256 is None and verify:
        raise ValueError(f"no sha256 to verify {url} against: pass sha256='<64 hex digits>', "
                         f"or verify=False to accept the file unverified")
    dest = Path(dest)
    if dest.exists() and (not verify or file_sha256(dest) == sha256):
        return dest
    with atomic_open(dest, "wb", suffix=".part") as out:
        got = _stream(url, out, timeout, progress, dest.name)
        if verify and got != sha256:
            raise ChecksumError(f"checksum mismatch for {url}: expected sha256 {sha256}, got "
                                f"{got}; the download was discarded ({dest} not written)")
    return dest


def _stream(url: str, out, timeout: float, progress: bool, label: str) -> str:
    """Copy the body of ``url`` into ``out`` chunk by chunk; returns its SHA-256 hex digest."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with tqdm(total=expected, unit="B", unit_scale=True, desc=label,
                  disable=not progress) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise ValueError(f"incomplete download of {url}: received {received} of {expected} bytes")
    return digest.hexdigest()


def fetch(urls: list[str], dest: Path, sha256: str | None) -> Path:
    """Download ``dest`` from the first of ``urls`` (mirrors) that works, verified against
    ``sha256``. Raises ``DatasetNotFoundError`` listing every mirror's error if none does."""
    errors = []
    for url in urls:
        try:
            return download(url, dest, sha256, progress=True)
        except (OSError, ValueError) as error:  # network failure, short body, wrong checksum
            errors.append(f"  {url}: {error}")
    raise DatasetNotFoundError(f"could not download {dest.name} into {dest.parent}:\n"
                               + "\n".join(errors))
