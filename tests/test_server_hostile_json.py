"""Hostile JSON request bodies against the real server: nesting past the decoder's recursion and
integers past Python's int-str digit limit are a 400 with a JSON error on every route family
that reads a body (/v1, /login, /tuf/v1), never a 500 or a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess
from asfaload.tuf.accounts import Accounts
from tests.support.http import Reply, raw_request, signed_request

HOSTILE = {
    "nested-arrays": b"[" * 100_000,
    "nested-objects": b'{"a":' * 100_000,
    "closed-nesting": b"[" * 100_000 + b"]" * 100_000,
    "giant-int": b'{"file_path": ' + b"9" * 5000 + b"}",
    "giant-negative-int-in-array": b'{"csum_files": [-' + b"1" * 4301 + b"]}",
}
V1_POSTS = ["/v1/register_repo", "/v1/update_signers", "/v1/signatures", "/v1/revoke", "/v1/assets"]
# /tuf/v1/metadata checks that the app is bootstrapped before it reads the body.
TUF_POSTS = [
    "/tuf/v1/bootstrap",
    "/tuf/v1/metadata/sign?appName=app",
    "/tuf/v1/metadata/sign/delete?appName=app",
    "/tuf/v1/metadata/online?appName=app",
]


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    data_dir: Path = tmp_path_factory.mktemp("hostile") / "data"
    data_dir.mkdir()
    Accounts(data_dir / "private").add_user("admin", "admin-password", opslimit=1, memlimit=8192)
    server = ServerProcess(data_dir).start()
    try:
        r = requests.post(
            server.url("/login"),
            json={"username": "admin", "password": "admin-password"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        yield server, r.json()["token"]
    finally:
        server.stop()


def _error(reply: Reply, server: ServerProcess) -> str:
    assert reply.status == 400, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    doc: dict[str, Any] = reply.json()
    message = doc["error"]
    assert isinstance(message, str) and message
    for leak in ("Traceback", "RecursionError", "sys.set_int_max_str_digits", str(server.data_dir)):
        assert leak not in message
    return message


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("target", V1_POSTS)
def test_v1_bodies(admin_server, target: str, body: bytes):
    server, _ = admin_server
    # Signed, so that authentication passes and the handler parses the body.
    reply = signed_request(server.base_url, SecretKey.generate("ed25519"), "POST", target, body)
    assert _error(reply, server).startswith("Invalid request body: invalid JSON")


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_login_body(admin_server, body: bytes):
    server, _ = admin_server
    reply = raw_request(server.base_url, "POST", "/login", body)
    assert _error(reply, server) == "invalid request body"


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("target", TUF_POSTS)
def test_tuf_bodies(admin_server, target: str, body: bytes):
    server, token = admin_server
    headers = {"Authorization": f"Bearer {token}"}
    reply = raw_request(server.base_url, "POST", target, body, headers)
    assert _error(reply, server).startswith("Invalid payload format: invalid JSON")


def test_server_still_answers(admin_server):
    server, _ = admin_server
    assert raw_request(server.base_url, "GET", "/v1/ping").json() == {"status": "ok"}
