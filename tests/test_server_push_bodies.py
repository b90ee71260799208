"""Large request bodies to ``/mirror.git`` (git pushes, up to ``ASFALOAD_MAX_PUSH_BYTES``).

The front reads a request whole before the app sees it. A push may be tens of MiB, and anyone
may push: held in memory, a handful of clients that each send most of a large push and stop
would grow the workers by the sum of their bodies. Past the in-memory bound a push body goes to
a temporary file, and each worker spools at most ``ASFALOAD_GIT_MAX_CONCURRENT`` of them at once
(more get 503, as when its git programs are all busy).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from asfaload.devtools.server import ServerProcess, process_tree
from tests.support.http import raw_request

MIB = 1024 * 1024
CLIENTS = 6
SENT = 40 * MIB  # of a declared 48 MiB: each client stops before the end of its body
PER_WORKER = 2
WORKERS = 1  # one worker: which pushes it spools and which it refuses is exact
PATIENCE = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("push-bodies") / "data"
    env = {"ASFALOAD_GIT_MAX_CONCURRENT": str(PER_WORKER), "ASFALOAD_REQUEST_TIMEOUT": "60"}
    proc = ServerProcess(data_dir, env=env, workers=WORKERS).start()
    try:
        yield proc
    finally:
        proc.stop()


def _rss_bytes(server: ServerProcess) -> int:
    total = 0
    for pid in process_tree(server.pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _all_spooled(server: ServerProcess) -> bool:
    """Whether as many stalled large pushes as the worker has slots are all taken in."""
    pushes = [_StalledPush(server) for _ in range(PER_WORKER * WORKERS)]
    for p in pushes:
        p.start()
    try:
        for p in pushes:
            assert p.sent.wait(PATIENCE)
        return [p.read_answer() for p in pushes] == [b""] * len(pushes)
    finally:
        for p in pushes:
            p.sock.close()
        time.sleep(0.5)


class _StalledPush(threading.Thread):
    """Sends the head and SENT bytes of a 48 MiB push body, then stops sending; keeps what the
    server answered before the client gave up."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
        self.sent = threading.Event()
        self.answer = b""

    def run(self) -> None:
        head = (
            "POST /mirror.git/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-git-receive-pack-request\r\n"
            f"Content-Length: {48 * MIB}\r\n\r\n"
        ).encode()
        piece = os.urandom(MIB)
        try:
            self.sock.sendall(head)
            for _ in range(SENT // MIB):
                self.sock.sendall(piece)
        except OSError:
            pass  # refused: the server answered and closed while the body was coming
        self.sent.set()

    def read_answer(self) -> bytes:
        self.sock.settimeout(2.0)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _settled_rss_bytes(server: ServerProcess) -> int:
    """The server's size once every worker has booted and served git (it stops moving)."""
    for _ in range(4 * WORKERS):
        requests.get(server.url("/mirror.git/info/refs?service=git-receive-pack"), timeout=30)
    last = _rss_bytes(server)
    for _ in range(40):
        time.sleep(0.5)
        now = _rss_bytes(server)
        if abs(now - last) < MIB:
            return now
        last = now
    return last


def test_stalled_large_pushes_neither_grow_the_workers_nor_pile_up(
    server: ServerProcess,
) -> None:
    before = _settled_rss_bytes(server)
    pushes = [_StalledPush(server) for _ in range(CLIENTS)]
    for p in pushes:
        p.start()
    try:
        for p in pushes:
            assert p.sent.wait(PATIENCE)
        grown = _rss_bytes(server) - before
        # Held in memory, the stalled bodies alone would be over 150 MiB.
        assert grown < 48 * MIB, f"the server grew by {grown // MIB} MiB"
        answers = [p.read_answer() for p in pushes]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
        assert len(busy) == CLIENTS - PER_WORKER * WORKERS, answers
        for a in busy:
            assert "try again" in json.loads(a.partition(b"\r\n\r\n")[2])["error"]
        assert all(a == b"" for a in answers if a not in busy), answers  # still reading
    finally:
        for p in pushes:
            p.sock.close()
    # The slots come back when the stalled clients go: as many new large pushes are spooled
    # again, none refused (tried a few times: the server sees the closes a moment later), and
    # a whole one reaches git (which refuses it as no pack at all).
    assert any(_all_spooled(server) for _ in range(10)), "the spool slots were not given back"
    for _ in range(10):
        reply = raw_request(
            server.base_url,
            "POST",
            "/mirror.git/git-receive-pack",
            b"0" * (3 * MIB),
            {"Content-Type": "application/x-git-receive-pack-request"},
        )
        if reply.status != 503:  # the probes' slots, given back a moment after they closed
            break
        time.sleep(0.5)
    assert reply.status == 200, reply
