"""Git clients cannot take the REST API's threads: a git request waiting for a git program waits
in an app thread, so a worker admits only so many git requests at once and answers the rest 503
straight away, leaving at least half its threads to REST."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from asfaload.devtools.server import ServerProcess

MIB = 1024 * 1024
STALLERS = 12
PATIENCE = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"ASFALOAD_GIT_MAX_CONCURRENT": "1"}
    proc = ServerProcess(tmp_path / "data", env=env, workers=1).start()
    try:
        yield proc
    finally:
        proc.stop()


def _big_object(server: ServerProcess, tmp_path: Path) -> str:
    """A large loose object in the mirror: served over dumb HTTP, more than sockets buffer."""
    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(32 * MIB))
    oid = subprocess.run(
        [
            "git",
            "--git-dir",
            str(server.data_dir / "mirror.git"),
            "hash-object",
            "-w",
            str(payload),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"/mirror.git/objects/{oid[:2]}/{oid[2:]}"


def _first_bytes(sock: socket.socket) -> bytes:
    sock.settimeout(3.0)
    with contextlib.suppress(OSError):
        return sock.recv(65536)
    return b""


def test_git_clients_that_do_not_read_leave_rest_its_threads(
    server: ServerProcess, tmp_path: Path
) -> None:
    target = _big_object(server, tmp_path)
    stallers = []
    try:
        for _ in range(STALLERS):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            stallers.append(s)
        answers = [_first_bytes(s) for s in stallers]
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
        # One git program and one request waiting for it; every other git request is turned
        # away at once instead of holding a thread for the REST API's clients.
        assert len(busy) >= STALLERS - 2, [a[:40] for a in answers]
        ping = requests.get(server.url("/v1/ping"), timeout=PATIENCE)
        assert ping.status_code == 200
    finally:
        for s in stallers:
            s.close()
