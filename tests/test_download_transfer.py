"""URL → index mapping and the streaming, hash-while-writing transfer (real HTTP on loopback)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.client.locate import locate
from asfaload.client.transfer import download_verified, fetch_small, rewrite_url
from asfaload.devtools.forge import ForgeEmulator
from asfaload.errors import (
    AsfaloadError,
    DigestMismatchError,
    ForgeError,
    FormatError,
    UnsupportedAlgorithmError,
)


@pytest.mark.parametrize(
    ("url", "forge", "index", "name"),
    [
        (
            "https://github.com/Acme/Tool/releases/download/v1.0/tool-linux-amd64.tar.gz",
            "github",
            "https/github.com/443/acme/tool/releases/tag/v1.0/asfaload.index.json",
            "tool-linux-amd64.tar.gz",
        ),
        (
            "https://gitlab.com/acme/sub/tool/-/releases/v1.0/downloads/tool.tar.gz",
            "gitlab",
            "https/gitlab.com/443/acme/sub/tool/-/releases/v1.0/asfaload.index.json",
            "tool.tar.gz",
        ),
        (
            "https://files.example.com/tool/v1.0/tool%20x.tar.gz",
            "fileserver",
            "https/files.example.com/443/tool/v1.0/asfaload.index.json",
            "tool x.tar.gz",
        ),
        (
            "http://localhost:8080/releases/v1.0/tool.bin",
            "fileserver",
            "http/localhost/8080/releases/v1.0/asfaload.index.json",
            "tool.bin",
        ),
    ],
)
def test_locate(url: str, forge: str, index: str, name: str) -> None:
    loc = locate(url)
    assert (loc.forge, loc.index_path, loc.file_name) == (forge, index, name)


def test_locate_type_override_and_errors() -> None:
    # --type fileserver on a GitHub URL: the file's own directory (checksum mode).
    loc = locate("https://github.com/acme/tool/releases/download/v1.0/t.gz", "fileserver")
    assert (
        loc.index_path
        == "https/github.com/443/acme/tool/releases/download/v1.0/asfaload.index.json"
    )
    loc = locate("https://git.example.org/acme/tool/-/releases/v2/downloads/t.gz", "gitlab")
    assert loc.index_path == "https/git.example.org/443/acme/tool/-/releases/v2/asfaload.index.json"
    with pytest.raises(FormatError, match="Not a GitHub release download URL"):
        locate("https://github.com/acme/tool/blob/main/x")
    with pytest.raises(FormatError, match="Unknown forge type"):
        locate("https://github.com/acme/tool/releases/download/v1/x", "bitbucket")
    with pytest.raises(FormatError):
        locate("ftp://example.com/x")
    with pytest.raises(FormatError):
        locate("https://example.com/a/../../x")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.sampled_from([None, "github", "gitlab", "fileserver"]))
def test_locate_never_crashes(url: str, forge: str | None) -> None:
    try:
        loc = locate(url, forge)
    except AsfaloadError:
        return
    assert loc.index_path.endswith("/asfaload.index.json")
    assert ".." not in loc.index_path.split("/")


def test_rewrite_url_longest_prefix() -> None:
    spec = "https://github.com=http://127.0.0.1:1/gh,https://github.com/acme=http://127.0.0.1:2/a"
    assert rewrite_url("https://github.com/acme/x", spec) == "http://127.0.0.1:2/a/x"
    assert rewrite_url("https://github.com/other/x", spec) == "http://127.0.0.1:1/gh/other/x"
    assert rewrite_url("https://gitlab.com/x", spec) == "https://gitlab.com/x"


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeEmulator]:
    with ForgeEmulator(tmp_path_factory.mktemp("forge")) as emu:
        yield emu


@pytest.fixture
def rewrites(forge: ForgeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASFALOAD_URL_REWRITES", forge.rewrites())


DATA = os.urandom(3 * 1024 * 1024 + 17)


def test_download_verified_streams_hashes_and_moves(
    forge: ForgeEmulator, rewrites: None, tmp_path: Path
) -> None:
    url = forge.put_fileserver_file("rel/v1/data.bin", DATA)
    dest = tmp_path / "out" / "data.bin"
    seen: list[int] = []
    sizes: list[int | None] = []
    out = download_verified(
        url,
        dest,
        "Sha256",
        hashlib.sha256(DATA).hexdigest().upper(),
        on_start=sizes.append,
        on_progress=lambda d, t: seen.append(d),
    )
    assert dest.read_bytes() == DATA
    assert out.size == len(DATA) and out.algo == "sha256"
    assert sizes == [len(DATA)] and seen[-1] == len(DATA)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.bin"]  # no temp file left
    # SHA-512 works too, and an existing file is replaced atomically.
    download_verified(url, dest, "Sha512", hashlib.sha512(DATA).hexdigest())
    assert dest.read_bytes() == DATA


def test_hash_mismatch_leaves_no_output(
    forge: ForgeEmulator, rewrites: None, tmp_path: Path
) -> None:
    url = forge.put_fileserver_file("rel/v1/tampered.bin", DATA)
    with pytest.raises(DigestMismatchError, match="Hash mismatch"):
        download_verified(url, tmp_path / "t.bin", "Sha256", hashlib.sha256(b"x").hexdigest())
    assert list(tmp_path.iterdir()) == []


def test_http_errors_and_unsupported_algo_leave_no_output(
    forge: ForgeEmulator, rewrites: None, tmp_path: Path
) -> None:
    url = "https://files.example.com/rel/v1/missing.bin"
    with pytest.raises(ForgeError, match="HTTP 404"):
        download_verified(url, tmp_path / "m.bin", "Sha256", "0" * 64)
    with pytest.raises(UnsupportedAlgorithmError):
        download_verified(url, tmp_path / "m.bin", "Md5", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_fetch_small_is_byte_exact_and_capped(forge: ForgeEmulator, rewrites: None) -> None:
    body = b'\xef\xbb\xbf{"a": 1}\r\n'  # a BOM and CRLF must survive untouched
    url = forge.put_fileserver_file("signers/s.json", body)
    assert fetch_small(url) == body
    with pytest.raises(ForgeError, match="too large"):
        fetch_small(url, cap=4)
