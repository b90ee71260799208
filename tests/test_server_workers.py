"""Several gunicorn workers writing one mirror, and graceful shutdown: every acknowledged
signature is in the mirror exactly once, whatever the interleaving."""

from __future__ import annotations

import json
import signal
import socket
import threading

import pytest

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.server import ServerProcess
from asfaload.model import SignaturesFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.rules.ops import RegisterRelease
from asfaload.store import Mirror
from tests.support.server import server_with_project

P = "https/github.com/443/acme/busy"
N = 10


def _release_path(tag: str) -> str:
    return layout.github_release_index_path(P, tag)


@pytest.fixture(scope="module")
def project_server(tmp_path_factory):
    keys = [SecretKey.generate("ed25519") for _ in range(N)]
    data = tmp_path_factory.mktemp("srv") / "data"
    with server_with_project(data, P, keys, workers=2) as (server, mirror):
        yield server, mirror, keys


def _new_release(mirror: Mirror, key: SecretKey, tag: str) -> tuple[str, bytes]:
    asset = PublishedFile(
        "a.bin", "Sha256", f"https://github.com/acme/busy/releases/download/{tag}/a.bin", "cd" * 32
    )
    raw = ReleaseIndex.create([asset], mirrored_on=1_700_000_000).to_bytes()
    path = _release_path(tag)
    mirror.submit(RegisterRelease(path, raw, key.public_key))
    return path, raw


def _request_bytes(server: ServerProcess, key: SecretKey, subject: str, data: bytes) -> bytes:
    body = json.dumps(
        {
            "file_path": subject,
            "public_key": str(key.public_key),
            "signatures": {subject: key.sign(sha512(data)).to_wire()},
        }
    ).encode()
    headers = sign_request(key, "POST", "/v1/signatures", body)
    lines = [
        "POST /v1/signatures HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _status(sock: socket.socket) -> tuple[int | None, bytes]:
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        pass
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1.1 "):
        return None, raw
    return int(raw[9:12]), raw.split(b"\r\n\r\n", 1)[-1]


def _collected(mirror: Mirror, subject: str) -> SignaturesFile:
    view = mirror.view()
    raw = view.read(layout.signatures_path(subject)) or view.read(
        layout.pending_signatures_path(subject)
    )
    assert raw is not None
    return SignaturesFile.from_bytes(raw)


def test_concurrent_signatures_across_workers(project_server):
    server, mirror, keys = project_server
    subject, data = _new_release(mirror, keys[0], "v1")
    results: list[tuple[int | None, bytes]] = [(None, b"")] * N
    barrier = threading.Barrier(N)

    def sign(i: int) -> None:
        payload = _request_bytes(server, keys[i], subject, data)
        barrier.wait()
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
            s.sendall(payload)
            results[i] = _status(s)

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [200] * N, results
    completes = [json.loads(body)["is_complete"] for _, body in results]
    assert completes.count(True) == 1  # exactly the last signature completed it
    sigs = _collected(mirror, subject)
    assert {str(k) for k in sigs.entries} == {str(k.public_key) for k in keys}
    assert mirror.view().read(layout.signatures_path(subject)) is not None


def test_graceful_shutdown_keeps_every_acknowledged_write(project_server):
    server, mirror, keys = project_server
    subject, data = _new_release(mirror, keys[0], "v2")
    socks = []
    for k in keys:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        s.sendall(_request_bytes(server, k, subject, data))
        socks.append((k, s))
    # Every request is on the wire: now ask the server to stop.
    proc = server._proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    acknowledged = []
    for k, s in socks:
        status, _ = _status(s)
        s.close()
        if status == 200:
            acknowledged.append(str(k.public_key))
    assert server.stop() == 0
    signed = {str(k) for k in _collected(mirror, subject).entries}
    assert set(acknowledged) <= signed
    server.start()
