"""The HTTP front of ``asfaload serve``, over raw sockets against the real server.

Slow or stalled clients must not starve the others: a request reaches the app only once the
front holds all of it, and the front closes connections that stop sending. Errors the front
answers itself (request line or headers too big, malformed requests) are JSON like every other.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest_server import ServerProcess

# Seconds the server gives a client to send a whole request (head and body): short here so the
# stalled sockets are closed while the test waits.
REQUEST_TIMEOUT = 5
# Patience for any one answer or close: generous, these are not speed checks.
PATIENCE = 60.0

STALLED_BODY = (
    b"POST /v1/register_repo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    b'{"signers_file_url": '
)
STALLS: dict[str, bytes] = {
    "silent": b"",
    "partial request line": b"GET /v1/pi",
    "partial headers": b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    "stalled body": STALLED_BODY,
    "stalled chunked body": (
        b"POST /v1/register_repo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"sign'
    ),
}
PER_KIND = 25  # 125 stalled sockets in all


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("front") / "data"
    proc = ServerProcess(data_dir, env={"ASFALOAD_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}).start()
    try:
        yield proc
    finally:
        proc.stop()


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _exchange(server: ServerProcess, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; the status, headers and body of the one answer."""
    with _connect(server) as s:
        # The server may answer (and close) before it has read everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(raw)
        reply = _read_all(s)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), reply[:200]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _ping(server: ServerProcess) -> int:
    status, _, body = _exchange(
        server, b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert json.loads(body) == {"status": "ok"}
    return status


def _error(status: int, headers: dict[str, str], body: bytes) -> str:
    assert headers["content-type"].startswith("application/json"), headers
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    message = doc["error"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and "<html" not in message.lower()
    return message


def test_stalled_connections_do_not_starve_other_clients(server: ServerProcess):
    stalled: list[tuple[str, socket.socket]] = []
    try:
        for kind, prefix in STALLS.items():
            for _ in range(PER_KIND):
                s = _connect(server)
                if prefix:
                    s.sendall(prefix)
                stalled.append((kind, s))
        assert len(stalled) >= 100
        # Every ping answers while the stalled sockets are open (old front: the worker's threads
        # all sat in a blocking read, and the pings hung).
        assert [_ping(server) for _ in range(5)] == [200] * 5
        # The server closes each stalled socket itself; a client that had sent part of a
        # request is told why first.
        for kind, s in stalled:
            s.settimeout(PATIENCE)
            reply = _read_all(s)
            if kind == "silent":
                assert reply == b"", reply[:200]
            else:
                assert reply.startswith(b"HTTP/1.1 408 "), (kind, reply[:200])
                body = reply.partition(b"\r\n\r\n")[2]
                assert json.loads(body) == {"error": "Request timeout"}
    finally:
        for _, s in stalled:
            s.close()
    assert _ping(server) == 200


def test_slow_but_steady_client_is_served(server: ServerProcess):
    # A client that sends its request in pieces, within the request timeout, is answered.
    with _connect(server) as s:
        for piece in (
            b"GET /v1/pi",
            b"ng HTTP/1.1\r\nHo",
            b"st: x\r\nConnection: close\r\n",
            b"\r\n",
        ):
            s.sendall(piece)
            time.sleep(0.2)
        reply = _read_all(s)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
