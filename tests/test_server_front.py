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
from urllib.parse import unquote

import pytest

from asfaload.auth import sign_request
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess
from tests.support.http import raw_request, signed_request

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
PROBE = "/v1/signatures/https/github.com/443/acme/repo/missing.json"


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


# --- errors the HTTP layer answers itself ----------------------------------------------------
def _get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # Request line over the limit, whole or still coming (no line end yet).
        (_get("/v1/files/" + "a" * 9000), 414),
        (b"GET /v1/files/" + b"a" * 20000, 414),
        # One header field over the limit, too many fields, a head over the total limit.
        (_get("/v1/ping", "X-Big: " + "b" * 9000), 431),
        (_get("/v1/ping", *(f"X-H{i}: v" for i in range(150))), 431),
        (_get("/v1/ping", *(f"X-H{i}: {'c' * 4000}" for i in range(40))), 431),
        # Malformed requests.
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/ping HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (_get("/v1/ping", "Bad Header"), 400),
        (_get("/v1/ping", "X-Nul: a\x00b"), 400),
        (b"GET /v1/ping?a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (_get("v1/ping"), 400),
        (b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (
            b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
        ),
        (
            b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (b"GET /v1/ping HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        # Declared bodies over the limit, answered before the body is read.
        (b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{", 413),
        (
            b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + b"9" * 5000
            + b"\r\n\r\n",
            400,
        ),
    ],
    ids=[
        "line-too-long",
        "line-too-long-unterminated",
        "field-too-large",
        "too-many-fields",
        "head-too-large",
        "garbage",
        "no-host",
        "header-without-colon",
        "nul-in-header",
        "space-in-target",
        "relative-target",
        "bad-content-length",
        "two-content-lengths",
        "bad-chunk",
        "http-2.0",
        "gzip-transfer-coding",
        "declared-body-too-big",
        "content-length-5000-digits",
    ],
)
def test_http_layer_errors_are_json(server: ServerProcess, raw: bytes, status: int):
    got, headers, body = _exchange(server, raw)
    assert got == status, body[:200]
    message = _error(got, headers, body)
    assert str(server.data_dir) not in message
    assert headers["connection"] == "close"


def test_chunked_body_over_the_limit_is_413(server: ServerProcess):
    chunk = b"x" * 65536
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    raw = (
        b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + piece * 20  # 1.25 MiB, over the default 1 MiB body limit
        + b"0\r\n\r\n"
    )
    status, headers, body = _exchange(server, raw)
    assert status == 413
    assert _error(status, headers, body).startswith("Request too big")


def test_chunked_body_reaches_the_app_whole(server: ServerProcess):
    # The app sees the de-chunked body (here: refused by authentication, which reads it).
    doc = b'{"signers_file_url": "https://github.com/a/b", "public_key": "k"}'
    raw = (
        b"POST /v1/register_repo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n"
        % (len(doc), doc)
    )
    status, headers, body = _exchange(server, raw)
    assert status == 401, body
    _error(status, headers, body)


@pytest.mark.parametrize(
    "target",
    [PROBE.replace("missing", "mis%73ing") + "?x=%41", PROBE + "?", PROBE + "?a=1&a=2%20"],
)
def test_signed_target_reaches_the_app_as_sent(server: ServerProcess, target: str):
    # Requests sign the target exactly as sent (percent-encoding and query included): signed
    # as sent, authentication passes (404: no such file); signed in a decoded spelling, 401.
    key = SecretKey.generate("ed25519")
    assert signed_request(server.base_url, key, "GET", target).status == 404
    decoded = unquote(target).rstrip("?")
    headers = sign_request(key, "GET", decoded)
    assert raw_request(server.base_url, "GET", target, headers=headers).status == 401


def test_keep_alive_serves_several_requests(server: ServerProcess):
    one = b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(server) as s:
        s.sendall(one + one + _get("/v1/ping"))  # pipelined, the last one closes
        reply = _read_all(s)
    assert reply.count(b"HTTP/1.1 200 ") == 3, reply
