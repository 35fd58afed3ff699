"""Verified downloads over file:// URLs (no network): checksums, atomicity, mirrors, cache dir."""
import hashlib
import importlib
import io
import os
import urllib.error
from pathlib import Path

import pytest

from nnprune.data import ChecksumError, DatasetNotFoundError, download
from nnprune.data.download import data_root, fetch, file_sha256

# the module, not the function of the same name that nnprune.data exports
download_module = importlib.import_module("nnprune.data.download")

pytestmark = pytest.mark.data

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = "0" * 64


@pytest.fixture
def source(tmp_path):
    """A file served through a file:// URL."""
    path = tmp_path / "server" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri()


def test_download_with_the_right_checksum_writes_the_file(tmp_path, source):
    dest = tmp_path / "cache" / "payload.bin"
    assert download(source, dest, DIGEST) == dest
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(dest.parent) == ["payload.bin"]


def test_a_wrong_checksum_raises_and_leaves_nothing(tmp_path, source):
    dest = tmp_path / "cache" / "payload.bin"
    with pytest.raises(ChecksumError, match=f"expected sha256 {WRONG}, got {DIGEST}") as info:
        download(source, dest, WRONG)
    assert isinstance(info.value, ValueError) and source in str(info.value)
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_upper_case_digests_are_accepted(tmp_path, source):
    dest = download(source, tmp_path / "a.bin", DIGEST.upper())
    assert file_sha256(dest) == DIGEST


def test_no_checksum_is_refused_unless_verify_is_false(tmp_path, source):
    dest = tmp_path / "a.bin"
    with pytest.raises(ValueError, match="verify=False"):
        download(source, dest, None)
    assert not dest.exists()
    download(source, dest, None, verify=False)
    assert dest.read_bytes() == PAYLOAD


def test_an_existing_verified_file_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(PAYLOAD)
    missing_url = (tmp_path / "nowhere.bin").as_uri()
    assert download(missing_url, dest, DIGEST) == dest


def test_an_existing_file_with_another_digest_is_replaced(tmp_path, source):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"stale")
    download(source, dest, DIGEST)
    assert dest.read_bytes() == PAYLOAD


def test_an_unreachable_url_raises_oserror_and_leaves_nothing(tmp_path):
    dest = tmp_path / "cache" / "a.bin"
    with pytest.raises(urllib.error.URLError):
        download((tmp_path / "nowhere.bin").as_uri(), dest, DIGEST)
    assert os.listdir(dest.parent) == []


class FakeResponse(io.BytesIO):
    """An HTTP response whose Content-Length may lie, or whose stream may break."""

    def __init__(self, body, length, fail_after=None):
        super().__init__(body)
        self.headers = {"Content-Length": str(length)}
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


def test_a_short_body_is_an_incomplete_download(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module.urllib.request, "urlopen",
                        lambda url, timeout: FakeResponse(PAYLOAD[:100], len(PAYLOAD)))
    with pytest.raises(ValueError, match=f"received 100 of {len(PAYLOAD)} bytes"):
        download("https://example.org/a.bin", tmp_path / "a.bin", DIGEST)
    assert os.listdir(tmp_path) == []


def test_a_broken_connection_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "_CHUNK", 1000)  # several chunks arrive, then a break
    monkeypatch.setattr(download_module.urllib.request, "urlopen",
                        lambda url, timeout: FakeResponse(PAYLOAD, len(PAYLOAD), 5000))
    with pytest.raises(ConnectionResetError):
        download("https://example.org/a.bin", tmp_path / "a.bin", DIGEST)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"url": "ftp://example.org/a"}, ValueError, "http://, https:// or file://"),
    ({"url": "/local/path"}, ValueError, "file://"),
    ({"url": b"https://example.org"}, TypeError, "url must be a str"),
    ({"sha256": "abc"}, ValueError, "64 hexadecimal digits"),
    ({"sha256": "g" * 64}, ValueError, "64 hexadecimal digits"),
    ({"sha256": 123}, ValueError, "64 hexadecimal digits"),
    ({"verify": "no"}, TypeError, "verify must be a bool"),
])
def test_bad_arguments_raise_clear_errors(tmp_path, source, kwargs, error, match):
    args = {"url": source, "dest": tmp_path / "a.bin", "sha256": DIGEST, **kwargs}
    with pytest.raises(error, match=match):
        download(**args)
    assert not (tmp_path / "a.bin").exists()


def test_fetch_falls_back_to_the_next_mirror(tmp_path, source):
    dest = tmp_path / "cache" / "a.bin"
    broken = (tmp_path / "nowhere.bin").as_uri()
    assert fetch([broken, source], dest, DIGEST) == dest
    assert dest.read_bytes() == PAYLOAD


def test_fetch_lists_every_mirror_error_when_all_fail(tmp_path, source):
    dest = tmp_path / "cache" / "a.bin"
    broken = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(DatasetNotFoundError) as info:
        fetch([broken, source], dest, WRONG)
    message = str(info.value)
    assert broken in message and source in message and "checksum mismatch" in message
    assert isinstance(info.value, FileNotFoundError)
    assert os.listdir(dest.parent) == []


def test_data_root_prefers_argument_then_environment_then_home(tmp_path, monkeypatch):
    assert data_root("mnist", tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("NNPRUNE_DATA", str(tmp_path / "env"))
    assert data_root("mnist") == tmp_path / "env" / "mnist"
    monkeypatch.delenv("NNPRUNE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root("cifar10") == Path(tmp_path / "home" / ".cache" / "nnprune" / "cifar10")
    with pytest.raises(TypeError, match="root must be a path"):
        data_root("mnist", 3)
