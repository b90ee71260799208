"""Disk full: the data dir on a small tmpfs, filled to the last block.

Writes are then refused 507 with a one-line JSON error (no traceback, no server path), over REST
and by git push; nothing in the mirror is corrupt (``git fsck --strict``, ``mirror verify``);
and once space returns (the filler is deleted) the same writes succeed. The store-level tests
reach the writer's pack and the nonce store directly, where ENOSPC first surfaces.

Mounting needs root, which the test environment has: a failed mount fails the test.
"""

from __future__ import annotations

import contextlib
import errno
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.auth import NonceClaim, sign_request
from asfaload.client.gitsign import sign_pending_by_git
from asfaload.crypto import SecretKey, sha512
from asfaload.errors import DiskFullError, RuleViolation
from asfaload.rules import RegisterRelease
from asfaload.store import Mirror
from asfaload.store.nonces import SqliteNonceStore
from tests.reliability.support import KillableServer, assert_mirror_sound
from tests.support.http import Reply, raw_request, signed_request
from tests.support.rules import P, index_bytes, register_and_activate, sign_op, signers_bytes


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted at ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses one more byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


def sign_body(key: SecretKey, x: str, data: bytes) -> bytes:
    doc = {
        "file_path": x,
        "public_key": str(key.public_key),
        "signatures": {x: key.sign(sha512(data)).to_wire()},
    }
    return json.dumps(doc).encode()


def post_signature(base_url: str, key: SecretKey, x: str, data: bytes) -> Reply:
    body = sign_body(key, x, data)
    headers = sign_request(key, "POST", "/v1/signatures", body)
    return raw_request(base_url, "POST", "/v1/signatures", body, headers)


def assert_disk_full_answer(reply: Reply) -> None:
    assert reply.status == 507, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    doc = reply.json()
    assert set(doc) == {"error"}
    message = doc["error"]
    assert "disk is full" in message
    assert "Traceback" not in message and "/" not in message and "\n" not in message


def test_server_refuses_writes_507_when_the_disk_is_full_and_resumes(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(2)]
    with small_disk(tmp_path / "disk", "24m") as disk:
        server = KillableServer(disk / "data", log_path=tmp_path / "server.log").start()
        mirror = Mirror.open(str(server.data_dir / "mirror.git"))
        try:
            register_and_activate(
                mirror, P, signers_bytes([(keys, 2)], admin=[([keys[0]], 1)]), keys
            )
            xs = [layout.github_release_index_path(P, f"f{n}") for n in range(3)]
            for n, x in enumerate(xs):
                mirror.submit(RegisterRelease(x, index_bytes(f"f{n}.tgz"), keys[0].public_key))
            data = index_bytes("f0.tgz")
            assert post_signature(server.base_url, keys[0], xs[0], data).status == 200
            head = mirror.head()

            filler = fill(disk)
            assert_disk_full_answer(post_signature(server.base_url, keys[1], xs[0], data))
            # An authenticated read must record its nonce too: it cannot, so it is refused.
            listing = signed_request(server.base_url, keys[1], "GET", "/v1/pending_signatures")
            assert_disk_full_answer(listing)
            with pytest.raises(RuleViolation, match="No space left|unpack"):
                sign_pending_by_git(server.url("/mirror.git"), keys[1], xs[1])
            # Unauthenticated reads need no disk.
            assert raw_request(server.base_url, "GET", "/v1/files/" + xs[0]).body == data
            assert mirror.head() == head
            assert_mirror_sound(mirror.path)

            filler.unlink()
            reply = post_signature(server.base_url, keys[1], xs[0], data)
            assert reply.status == 200 and reply.json() == {"is_complete": True}, reply.body
            sign_pending_by_git(server.url("/mirror.git"), keys[1], xs[1])
            listing = signed_request(server.base_url, keys[1], "GET", "/v1/pending_signatures")
            assert listing.status == 200 and listing.json()["file_paths"] == [xs[2]]
            assert_mirror_sound(mirror.path)
            assert "Traceback" not in server.log()
        finally:
            mirror.close()
            server.stop()


def test_writer_refuses_with_disk_full_and_writes_once_space_returns(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(2)]
    with small_disk(tmp_path / "disk", "4m") as disk:
        mirror = Mirror.init(str(disk / "mirror.git"))
        try:
            register_and_activate(
                mirror, P, signers_bytes([(keys, 2)], admin=[([keys[0]], 1)]), keys
            )
            x = layout.github_release_index_path(P, "w")
            mirror.submit(RegisterRelease(x, index_bytes("w.tgz"), keys[0].public_key))
            head = mirror.head()
            filler = fill(disk)
            with pytest.raises(DiskFullError) as refused:
                mirror.submit(sign_op(mirror.view(), x, keys[0]))
            assert refused.value.http_status == 507
            assert mirror.head() == head
            filler.unlink()
            mirror.submit(sign_op(mirror.view(), x, keys[0]))
            assert mirror.head() != head
        finally:
            mirror.close()
        assert_mirror_sound(disk / "mirror.git")


def test_nonce_store_reports_a_full_disk_as_disk_full(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = SqliteNonceStore(disk / "private" / "nonces.sqlite3")
        try:
            store.claim(NonceClaim("first", 2_000_000_000, 1_700_000_000))
            filler = fill(disk)
            with pytest.raises(DiskFullError):
                # SQLite may still fit a few rows in pages it holds; not thousands.
                for _ in range(5000):
                    store.claim(NonceClaim(secrets.token_hex(16), 2_000_000_000, 1_700_000_000))
            filler.unlink()
            store.claim(NonceClaim("after", 2_000_000_000, 1_700_000_000))
            assert store.count() >= 2
        finally:
            store.close()


def test_a_publish_is_acknowledged_even_when_the_dumb_http_files_cannot_be_written(
    tmp_path: Path,
) -> None:
    # The ref has moved and is durable before info/refs is rewritten: a failure there (a full
    # disk; here a file where the directory should be) must not report the commit as failed.
    keys = [SecretKey.generate("ed25519")]
    mirror = Mirror.init(str(tmp_path / "mirror.git"))
    try:
        register_and_activate(mirror, P, signers_bytes([(keys, 1)], admin=[(keys, 1)]), keys)
        info = tmp_path / "mirror.git" / "info"
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
        info.write_bytes(b"not a directory")
        x = layout.github_release_index_path(P, "i")
        result = mirror.submit(RegisterRelease(x, index_bytes("i.tgz"), keys[0].public_key))
        assert mirror.head() == result.commit_id
    finally:
        mirror.close()
