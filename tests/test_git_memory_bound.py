"""The git programs that read a stranger's data run under a memory bound (``ASFALOAD_GIT_MAX_MEMORY``).

A pushed pack is unpacked before the pre-receive hook can look at it, and anyone may push: a
16 KiB pack holding a 16 MiB blob of zeros and one delta that copies it many times over asks
git for the whole result in memory. Bounded, git fails as out of memory and the push is refused;
the same bound leaves real clones and signature pushes alone.
"""

from __future__ import annotations

import hashlib
import http.client
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from asfaload.client.gitsign import sign_pending_by_git
from asfaload.crypto import SecretKey
from asfaload.rules import RegisterRelease
from tests.support.rules import INDEX, P, index_bytes
from tests.support.server import server_with_project

MIB = 1024 * 1024
BOUND = 160 * MIB
EXPANDS_TO = 512 * MIB  # what the delta asks for: over three times the bound
BASE = 16 * MIB - 1  # the largest copy one delta instruction makes


def _object_header(kind: int, size: int) -> bytes:
    out = bytearray()
    first = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(first | 0x80)
        first = size & 0x7F
        size >>= 7
    out.append(first)
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _offset(n: int) -> bytes:
    """An OFS_DELTA base offset, in git's encoding."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        n -= 1
        out.insert(0, 0x80 | (n & 0x7F))
        n >>= 7
    return bytes(out)


def delta_bomb(old_tip: str) -> bytes:
    """A receive-pack request moving main to a blob (never reached: git unpacks first)."""
    base = b"\0" * BASE
    blob = _object_header(3, BASE) + zlib.compress(base, 9)
    copies = EXPANDS_TO // BASE
    copy_all = bytes([0x80 | 0x70, 0xFF, 0xFF, 0xFF])  # from offset 0, 0xFFFFFF bytes
    delta = _varint(BASE) + _varint(BASE * copies) + copy_all * copies
    packed = _object_header(6, len(delta)) + _offset(len(blob)) + zlib.compress(delta, 9)
    pack = b"PACK" + struct.pack(">II", 2, 2) + blob + packed
    pack += hashlib.sha1(pack).digest()
    blob_id = hashlib.sha1(b"blob %d\0" % BASE + base).hexdigest()
    line = f"{old_tip} {blob_id} refs/heads/main\0report-status object-format=sha1\n".encode()
    return b"%04x" % (len(line) + 4) + line + b"0000" + pack


class _PeakRss(threading.Thread):
    """The largest resident size seen of git's unpacking programs while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            ps = subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True)
            for line in ps.stdout.splitlines():
                if "unpack-objects" in line or "index-pack" in line:
                    self.peak = max(self.peak, int(line.split()[0]) * 1024)
            time.sleep(0.02)


def test_a_delta_bomb_push_is_refused_within_the_bound(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519"), SecretKey.generate("ed25519")]
    env = {"ASFALOAD_GIT_MAX_MEMORY": str(BOUND)}
    with server_with_project(tmp_path / "data", P, keys, env=env) as (server, mirror):
        mirror.submit(RegisterRelease(INDEX, index_bytes(), keys[0].public_key))
        head = mirror.head()
        body = delta_bomb(head)
        assert len(body) < 64 * 1024
        url = urlsplit(server.url("/mirror.git/git-receive-pack"))
        watch = _PeakRss()
        watch.start()
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        try:
            conn.request(
                "POST", url.path, body, {"Content-Type": "application/x-git-receive-pack-request"}
            )
            answer = conn.getresponse().read()
        finally:
            conn.close()
            watch.done.set()
            watch.join()
        assert b"unpack " in answer and b"unpack ok" not in answer, answer[-300:]
        assert watch.peak < BOUND + 64 * MIB, f"git grew to {watch.peak // MIB} MiB"
        assert mirror.head() == head
        # The bound leaves the real thing alone: a signature pushed over HTTP lands.
        pushed = sign_pending_by_git(server.url("/mirror.git"), keys[0], INDEX)
        assert mirror.head() == pushed.commit_id


@pytest.mark.parametrize("value", ["12", "lots", "-1"])
def test_a_bound_that_is_no_bound_is_refused(value: str, monkeypatch) -> None:
    from asfaload.errors import ConfigError
    from asfaload.store.gitlimits import limited

    monkeypatch.setenv("ASFALOAD_GIT_MAX_MEMORY", value)
    with pytest.raises(ConfigError, match="ASFALOAD_GIT_MAX_MEMORY"):
        limited(["git", "version"])
