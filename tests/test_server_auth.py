"""Authentication attacks against the real server process; each is refused with 401.

An authenticated GET of a file that does not exist answers 404: that is how these tests tell
"authentication passed" from "refused" without depending on mirror content.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from asfaload.auth import HEADER_NONCE, HEADER_PK, HEADER_SIG, HEADER_TIMESTAMP, sign_request
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess
from tests.support.http import raw_request, signed_request

PROBE = "/v1/signatures/https/github.com/443/acme/repo/missing.json"
BODY = json.dumps(
    {
        "signers_file_url": "https://github.com/acme/repo/blob/main/asfaload.signers.json",
        "public_key": "k",
    }
).encode()


@pytest.fixture(scope="module", params=["minisign", "ed25519"])
def key(request) -> SecretKey:
    return SecretKey.generate(request.param)


def _is_401(reply) -> str:
    assert reply.status == 401, (reply.status, reply.body)
    return str(reply.json()["error"])


def test_valid_request_passes_authentication(live_server: ServerProcess, key):
    reply = signed_request(live_server.base_url, key, "GET", PROBE)
    assert reply.status == 404, reply.body


def test_replayed_nonce_refused(live_server: ServerProcess, key):
    headers = sign_request(key, "GET", PROBE)
    assert raw_request(live_server.base_url, "GET", PROBE, headers=headers).status == 404
    reply = raw_request(live_server.base_url, "GET", PROBE, headers=headers)
    assert "Replay" in _is_401(reply)


@pytest.mark.parametrize(
    "respell",
    [str.upper, lambda n: "{" + n + "}", lambda n: "urn:uuid:" + n, lambda n: n.replace("-", "")],
    ids=["upper", "braces", "urn", "simple"],
)
def test_same_nonce_in_another_spelling_refused(live_server: ServerProcess, key, respell):
    headers = sign_request(key, "GET", PROBE)
    assert raw_request(live_server.base_url, "GET", PROBE, headers=headers).status == 404
    # Re-signed by the key holder with the nonce re-spelt: still refused (not canonical).
    nonce = respell(headers[HEADER_NONCE])
    again = sign_request(key, "GET", PROBE, nonce=nonce)
    _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=again))
    # And an attacker re-spelling the captured nonce without re-signing: refused too.
    tampered = dict(headers, **{HEADER_NONCE: nonce})
    _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=tampered))


@pytest.mark.parametrize("offset", [-360, 60], ids=["6-minutes-old", "1-minute-ahead"])
def test_timestamp_outside_window_refused(live_server: ServerProcess, key, offset):
    reply = signed_request(live_server.base_url, key, "GET", PROBE, now=int(time.time()) + offset)
    assert "Timestamp" in _is_401(reply)


def test_tampered_body_refused(live_server: ServerProcess, key):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY)
    tampered = BODY.replace(b'"k"', b'"x"')
    _is_401(raw_request(live_server.base_url, "POST", "/v1/register_repo", tampered, headers))


def test_register_body_replayed_on_update_signers_refused(live_server: ServerProcess, key):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY)
    _is_401(raw_request(live_server.base_url, "POST", "/v1/update_signers", BODY, headers))


def test_same_headers_on_other_method_refused(live_server: ServerProcess, key):
    headers = sign_request(key, "GET", "/v1/pending_signatures")
    reply = raw_request(live_server.base_url, "POST", "/v1/signatures", b"", headers)
    _is_401(reply)


def test_query_string_is_signed(live_server: ServerProcess, key):
    headers = sign_request(key, "GET", PROBE)
    _is_401(raw_request(live_server.base_url, "GET", PROBE + "?x=1", headers=headers))


def test_signature_by_another_key_refused(live_server: ServerProcess, key):
    other = SecretKey.generate(key.public_key.algorithm)
    headers = sign_request(other, "GET", PROBE)
    headers[HEADER_PK] = str(key.public_key)
    _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=headers))


@pytest.mark.parametrize("missing", [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_PK, HEADER_SIG])
def test_missing_header_refused(live_server: ServerProcess, key, missing):
    headers = sign_request(key, "GET", PROBE)
    del headers[missing]
    assert _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=headers)) == (
        "Missing authentication headers"
    )


def test_no_headers_at_all_on_every_authenticated_endpoint(live_server: ServerProcess):
    for method, target in [
        ("POST", "/v1/register_repo"),
        ("POST", "/v1/update_signers"),
        ("POST", "/v1/signatures"),
        ("GET", "/v1/pending_signatures"),
        ("GET", "/v1/files-to-sign/a/b"),
        ("POST", "/v1/revoke"),
        ("POST", "/v1/assets"),
    ]:
        body = b"{}" if method == "POST" else b""
        _is_401(raw_request(live_server.base_url, method, target, body))


def test_status_is_public_yet_sent_headers_must_verify(live_server: ServerProcess, key):
    # GET /v1/signatures/... answers without headers (the state is public) ...
    assert raw_request(live_server.base_url, "GET", PROBE).status == 404
    # ... but headers that are sent are checked like anywhere else.
    headers = sign_request(key, "GET", "/v1/signatures/elsewhere")
    _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=headers))


def test_bad_signature_does_not_burn_the_nonce(live_server: ServerProcess, key):
    headers = sign_request(key, "GET", PROBE)
    forged = dict(headers, **{HEADER_SIG: sign_request(key, "GET", "/other")[HEADER_SIG]})
    _is_401(raw_request(live_server.base_url, "GET", PROBE, headers=forged))
    assert raw_request(live_server.base_url, "GET", PROBE, headers=headers).status == 404


def test_duplicate_auth_header_refused(live_server: ServerProcess, key):
    headers = sign_request(key, "GET", PROBE)
    host, port = live_server.base_url.removeprefix("http://").split(":")
    import http.client

    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", PROBE)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader(HEADER_NONCE, str(uuid.uuid4()))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 401
    conn.close()


def test_replay_after_restart_refused(tmp_path, key):
    server = ServerProcess(tmp_path / "data").start()
    try:
        headers = sign_request(key, "GET", PROBE)
        assert raw_request(server.base_url, "GET", PROBE, headers=headers).status == 404
        server.restart()
        assert "Replay" in _is_401(raw_request(server.base_url, "GET", PROBE, headers=headers))
    finally:
        server.stop()
